"""What coders do in the review app, as plain functions over a SQLAlchemy session (no HTTP).

Rules (also in docs/review.md):

- **The decision log is append-only.** Every call of :func:`decide` appends one row to ``decisions``,
  even when it changes nothing (``applied=False``). Undo is a new decision; nothing is deleted.
- **First wins.** A suggestion moves out of ``pending`` only through
  ``UPDATE suggestions ... WHERE id=? AND revision=? AND state=?``; when another coder got there first,
  0 rows change, the decision is still logged with ``applied=False`` and the caller is told who was first.
- **accept** turns the suggestion into a coding of its code by the deciding coder, origin ``model-accepted``.
  A suggestion whose code is no longer a codable code of the newest codebook cannot be accepted
  (:class:`~pipeline.errors.InputError`); recode or reject it.
- **No duplicate codings.** When the coder already has an identical active coding (same source, start,
  end and code; for example from another model version's suggestion of the same passage), accept and
  recode make no second one: the decision is still logged and applied, and links no coding. The
  database enforces the rule too (the partial unique index ``uq_codings_active``): when a concurrent
  request stored the identical coding between the look-up and the insert, :func:`store_coding` finds it
  and every writer answers as its look-up would have.
- **reject** makes no coding; the retraining flow reads it as an explicit negative.
- **recode** (state ``recoded``) makes a coding of the *new* code, origin ``human`` (the coder chose the
  code, the model only pointed at the passage), memo ``recoded from '<old>' (suggestion N)``; the old
  code counts as rejected for training.
- **undo** reverts the last applied decision on a suggestion (by the same coder, or by a lead): the
  suggestion goes back to ``pending`` and the coding that decision made is retracted (``active=False``).
- **Candidate open codes** are resolved by leads: *accept* stores a new codebook version with the new
  code and accepts every pending member suggestion as that code; *merge* accepts the members as an
  existing code; *reject* rejects the members. Each member gets its own logged decision.

One module, one concern: the suggestion → coding state machine (decide, undo, recode, memo,
candidate resolution, queue order), whose concurrency rules must be read in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import Connection, CursorResult, Table, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from pipeline.domain import CandidateState, Code, Codebook, SuggestionState
from pipeline.errors import InputError, NotFoundError, QualflowError
from pipeline.store import savepoint
from pipeline.store.queries import require_codebook, store_codebook
from pipeline.store.schema import (
    CandidateRow,
    CodebookVersionRow,
    CodeRow,
    CoderRow,
    CodingRow,
    DecisionRow,
    SourceRow,
    SuggestionRow,
    utcnow,
)

_S = cast(Table, SuggestionRow.__table__)
_C = cast(Table, CodingRow.__table__)
_D = cast(Table, DecisionRow.__table__)
_CODERS = cast(Table, CoderRow.__table__)
_CODES = cast(Table, CodeRow.__table__)
_LATEST_CB_ID = select(func.max(CodebookVersionRow.__table__.c.id)).scalar_subquery()
# Statements of the decision fast path, built once: SQLAlchemy then reuses their cache keys and compiled
# SQL, and a decision costs a few hundred microseconds instead of milliseconds of statement building.
_READ_SUGGESTION = select(
    _S.c.id,
    _S.c.kind,
    _S.c.candidate_id,
    _S.c.code,
    _S.c.revision,
    _S.c.state,
    _S.c.source_id,
    _S.c.start,
    _S.c.end,
    _S.c.model_version_id,
    _LATEST_CB_ID.label("cb_id"),
    exists()
    .where(_CODES.c.codebook_version_id == _LATEST_CB_ID, _CODES.c.name == _S.c.code, _CODES.c.is_codable)
    .label("codable"),
).where(_S.c.id == bindparam("sid"))
_FIRST_WINS = (
    update(_S)
    .where(
        _S.c.id == bindparam("sid"), _S.c.revision == bindparam("rev"), _S.c.state == SuggestionState.PENDING
    )
    .values(state=bindparam("target"), decided_by=bindparam("by"), revision=bindparam("new_rev"))
)
_READ_WINNER = (
    select(_S.c.state, _S.c.revision, _S.c.decided_by, _S.c.model_version_id, _CODERS.c.name)
    .select_from(_S.outerjoin(_CODERS, _CODERS.c.id == _S.c.decided_by))
    .where(_S.c.id == bindparam("sid"))
)
# an identical active coding by the same coder (uses the index ix_codings_source_coder)
_SAME_CODING = (
    select(_C.c.id)
    .where(
        _C.c.source_id == bindparam("source_id"),
        _C.c.coder_id == bindparam("coder_id"),
        _C.c.start == bindparam("start"),
        _C.c.end == bindparam("end"),
        _C.c.code == bindparam("code"),
        _C.c.active,
    )
    .limit(1)
)
_INSERT_CODING = insert(_C)
_INSERT_DECISION = insert(_D)

Action = Literal["accept", "reject", "recode", "undo"]
ACTIONS: tuple[str, ...] = ("accept", "reject", "recode", "undo")
RESULTING_STATE = {
    "accept": SuggestionState.ACCEPTED,
    "reject": SuggestionState.REJECTED,
    "recode": SuggestionState.RECODED,
}
CANDIDATE_ACTIONS: tuple[str, ...] = ("accept", "merge", "reject")
MAX_MEMO = 10_000


class ForbiddenError(QualflowError):
    """The coder may not do this (not their coding, not a lead)."""


class DuplicateCodingError(QualflowError):
    """The coder already has an identical active coding (same source, start, end and code)."""

    def __init__(self, message: str, coding_id: int) -> None:
        super().__init__(message)
        self.coding_id = coding_id


@dataclass(frozen=True)
class DecisionResult:
    """What happened to one decision.

    ``applied`` is ``False`` when another coder decided first (``message`` says who); ``state`` is the
    suggestion's state afterwards and ``revision`` its revision afterwards.
    """

    decision_id: int
    suggestion_id: int
    action: str
    applied: bool
    previous_state: str
    state: str
    revision: int
    coding_id: int | None
    message: str


@dataclass(frozen=True)
class CandidateResult:
    """What happened to a candidate open code (``applied`` is ``False`` when it was resolved already)."""

    candidate_id: int
    action: str
    applied: bool
    state: str
    code: str | None
    codebook_version_id: int | None
    members_decided: int
    message: str


# --------------------------------------------------------------------------- helpers


def codable_names(session: Session, codebook_version_id: int) -> list[str]:
    """Names of the codable codes of one codebook version, in codebook order."""
    return list(
        session.scalars(
            select(CodeRow.name)
            .where(CodeRow.codebook_version_id == codebook_version_id, CodeRow.is_codable)
            .order_by(CodeRow.position)
        )
    )


def _latest_codebook_id(session: Session) -> int:
    cb_id = session.scalar(select(func.max(CodebookVersionRow.id)))
    if cb_id is None:
        raise NotFoundError("the project has no codebook yet; run `qualflow codebook import FILE` first")
    return int(cb_id)


def _check_code(session: Session, code: str, codebook_version_id: int) -> str:
    """The key of the codable code ``code`` names: its key, or a unique name, path or guid (an
    ambiguous name is refused listing its candidates by path)."""
    names = codable_names(session, codebook_version_id)
    if code in names:
        return code
    from pipeline.codebook import resolve_code
    from pipeline.store.mappers import codebook_from_row

    row = session.get(CodebookVersionRow, codebook_version_id)
    cb = codebook_from_row(row) if row is not None else None
    found = resolve_code(code, cb) if cb is not None else None
    if found is not None and found.name in names:
        return found.name
    if found is not None and cb is not None and not found.is_codable:  # a category: say so
        from pipeline.codebook import not_codable_message

        raise InputError(not_codable_message(code, found, cb))
    from pipeline.errors import did_you_mean

    raise InputError(
        f"code {code!r} is not a codable code of the current codebook{did_you_mean(code, names)}; "
        f"choose one of {names}"
    )


def _changed(session: Session, stmt: Any) -> int:
    """Execute a conditional UPDATE and return how many rows it changed."""
    result = cast(CursorResult[Any], session.execute(stmt.execution_options(synchronize_session=False)))
    return int(result.rowcount)


def _coder_name(session: Session, coder_id: int | None) -> str:
    if coder_id is None:
        return "nobody"
    return session.scalar(select(CoderRow.name).where(CoderRow.id == coder_id)) or f"coder {coder_id}"


def _human(coder: CoderRow) -> None:
    if coder.kind != "human":
        raise ForbiddenError(f"{coder.name!r} is a model, not a person; only people decide")


def _lead(coder: CoderRow) -> None:
    _human(coder)
    if coder.role != "lead":
        raise ForbiddenError(f"{coder.name!r} is a coder; only a lead can do this")


# --------------------------------------------------------------------------- suggestions


def _expire_loaded(session: Session, cls: type, pk: int) -> None:
    """Expire ``cls`` row ``pk`` if this session holds it, so a core UPDATE is seen on its next access."""
    obj = session.identity_map.get(identity_key(cls, pk))
    if obj is not None:
        session.expire(obj)


def read_for_decision(
    session: Session, suggestion_id: int, coder: CoderRow, action: str
) -> tuple[Connection, Any, int]:
    """The checks every review policy makes before a decision: a known action, a human coder, a
    deductive suggestion under a codebook. Returns the session's connection (after a flush: the core
    statements that follow bypass autoflush), the suggestion as ``_READ_SUGGESTION`` reads it, and the
    newest codebook version's id."""
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}; choose one of {list(ACTIONS)}")
    _human(coder)
    session.flush()
    conn = session.connection()
    sugg = conn.execute(_READ_SUGGESTION, {"sid": suggestion_id}).one_or_none()
    if sugg is None:
        raise NotFoundError(f"no suggestion {suggestion_id}")
    if sugg.kind != "deductive":
        raise InputError(
            f"suggestion {suggestion_id} belongs to candidate open code {sugg.candidate_id}; "
            "a lead resolves it on the candidates page"
        )
    if sugg.cb_id is None:
        raise NotFoundError("the project has no codebook yet; run `qualflow codebook import FILE` first")
    return conn, sugg, int(sugg.cb_id)


def decide(
    session: Session,
    suggestion_id: int,
    coder: CoderRow,
    action: str,
    new_code: str | None = None,
    expected_revision: int | None = None,
) -> DecisionResult:
    """Record ``coder``'s ``action`` on a suggestion (first wins; see the module docstring).

    Accept, reject and recode run as a few core SQL statements (one read of the suggestion with the
    newest codebook version and whether its code is codable there, the conditional UPDATE, for accept and
    recode a look-up of an identical active coding, the INSERTs of the coding and of the decision): no
    ORM objects are loaded.

    Parameters
    ----------
    session : an open session; the caller commits (one short transaction per decision).
    suggestion_id : the suggestion decided on.
    coder : the deciding person (from the login session, never from the request body).
    action : ``accept``, ``reject``, ``recode`` or ``undo``.
    new_code : the code for ``recode`` (a codable code of the current codebook).
    expected_revision : the revision the coder saw; ``None`` means "the current one".

    Returns
    -------
    DecisionResult
    """
    conn, sugg, cb_id = read_for_decision(session, suggestion_id, coder, action)
    if action == "accept" and not sugg.codable:
        from pipeline.errors import did_you_mean

        names = codable_names(session, cb_id)
        raise InputError(
            f"suggestion {suggestion_id} is for code {sugg.code!r}, which is not a codable code of the "
            f"current codebook (version {cb_id}){did_you_mean(sugg.code, names)}; recode it to one of "
            f"{names} or reject it"
        )
    if action == "recode":
        if not new_code:
            raise InputError("recode needs the new code; pick one from the code list")
        new_code = _check_code(session, new_code, cb_id)
        if new_code == sugg.code:
            raise InputError(f"recode to {new_code!r} is the suggested code itself; accept it instead")
    elif new_code is not None:
        raise InputError(f"{action} takes no new code (got {new_code!r}); use recode")
    revision = sugg.revision if expected_revision is None else expected_revision
    if action == "undo":
        row = session.get(SuggestionRow, suggestion_id)
        assert row is not None
        return _undo(session, row, coder, revision, cb_id)

    target = RESULTING_STATE[action]
    changed = conn.execute(
        _FIRST_WINS,
        {"sid": suggestion_id, "rev": revision, "target": target, "by": coder.id, "new_rev": revision + 1},
    ).rowcount
    if changed != 1:
        return _not_applied(session, suggestion_id, coder, action, new_code, cb_id)
    _expire_loaded(session, SuggestionRow, suggestion_id)
    coding_id = None
    note = None
    if action in ("accept", "recode"):
        code = sugg.code if action == "accept" else new_code
        same = {"source_id": sugg.source_id, "coder_id": coder.id, "start": sugg.start, "end": sugg.end}
        existing = conn.scalar(_SAME_CODING, {**same, "code": code})
        if existing is None:
            stored, made = store_coding(
                session,
                {
                    **same,
                    "code": code,
                    "codebook_version_id": cb_id,
                    "origin": "model-accepted" if action == "accept" else "human",
                    "suggestion_id": sugg.id,
                    "memo": None
                    if action == "accept"
                    else f"recoded from {sugg.code!r} (suggestion {sugg.id})",
                },
            )
            coding_id, existing = (stored, None) if made else (None, stored)
        if existing is not None:
            note = f"identical active coding {existing} exists; no second coding made"
    decision_id = _log(
        conn,
        suggestion_id=sugg.id,
        coder_id=coder.id,
        action=action,
        new_code=new_code,
        model_version_id=sugg.model_version_id,
        codebook_version_id=cb_id,
        previous_state=SuggestionState.PENDING,
        resulting_state=target,
        applied=True,
        note=note,
    )
    return DecisionResult(
        decision_id,
        sugg.id,
        action,
        True,
        SuggestionState.PENDING,
        target,
        revision + 1,
        coding_id,
        note or "",
    )


def store_coding(session: Session, values: dict[str, Any]) -> tuple[int, bool]:
    """INSERT one active coding (``values``: its columns; ``active`` is set here) and return
    ``(its id, True)``; or ``(the id of the identical active coding, False)`` when the unique index
    ``uq_codings_active`` refuses it: the same coder stored the same coding (source, start, end, code)
    meanwhile, in a concurrent request that passed the same look-up (a double click, two tabs).

    The INSERT runs in a SAVEPOINT, so the refusal rolls back only the INSERT and the caller's
    transaction goes on. Any other integrity error (an unknown source, say) is raised.
    """
    try:
        with savepoint(session):
            res = session.connection().execute(_INSERT_CODING, {**values, "active": True})
    except IntegrityError:
        key = ("source_id", "coder_id", "start", "end", "code")
        existing = session.connection().scalar(_SAME_CODING, {k: values[k] for k in key})
        if existing is None:
            raise
        return int(existing), False
    return _new_id(res), True


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _log(conn: Connection, **values: Any) -> int:
    """Append one row to the decision log; its id."""
    res = conn.execute(_INSERT_DECISION, values)
    return _new_id(res)


def _not_applied(
    session: Session, suggestion_id: int, coder: CoderRow, action: str, new_code: str | None, cb_id: int
) -> DecisionResult:
    """Log a decision that lost the race, and say who won."""
    conn = session.connection()
    now = conn.execute(_READ_WINNER, {"sid": suggestion_id}).one()
    if now.state == SuggestionState.PENDING:
        message = (
            f"suggestion {suggestion_id} changed since you loaded it (revision {now.revision}); "
            "reload and decide again"
        )
    else:
        if now.decided_by is None:
            who = "nobody"
        else:
            who = now.name or f"coder {now.decided_by}"
        message = f"already {now.state} by {who}"
    _expire_loaded(session, SuggestionRow, suggestion_id)
    decision_id = _log(
        conn,
        suggestion_id=suggestion_id,
        coder_id=coder.id,
        action=action,
        new_code=new_code,
        model_version_id=now.model_version_id,
        codebook_version_id=cb_id,
        previous_state=now.state,
        resulting_state=now.state,
        applied=False,
        note=message,
    )
    return DecisionResult(
        decision_id, suggestion_id, action, False, now.state, now.state, now.revision, None, message
    )


def _undo(
    session: Session, sugg: SuggestionRow, coder: CoderRow, revision: int, cb_id: int
) -> DecisionResult:
    last = session.scalar(
        select(DecisionRow)
        .where(DecisionRow.suggestion_id == sugg.id, DecisionRow.applied)
        .order_by(DecisionRow.id.desc())
        .limit(1)
    )
    if last is None or last.action == "undo" or sugg.state == SuggestionState.PENDING:
        raise InputError(f"suggestion {sugg.id} is pending; there is no decision to undo")
    if last.coder_id != coder.id and coder.role != "lead":
        who = _coder_name(session, last.coder_id)
        raise ForbiddenError(f"suggestion {sugg.id} was decided by {who}; only they or a lead can undo it")
    current = sugg.state
    changed = _changed(
        session,
        update(SuggestionRow)
        .where(
            SuggestionRow.id == sugg.id,
            SuggestionRow.revision == revision,
            SuggestionRow.state == current,
        )
        .values(state=last.previous_state, decided_by=None, revision=revision + 1),
    )
    if changed != 1:
        return _not_applied(session, sugg.id, coder, "undo", None, cb_id)
    for coding in session.scalars(
        select(CodingRow).where(CodingRow.suggestion_id == sugg.id, CodingRow.active)
    ):
        coding.active = False
    session.expire(sugg)
    session.flush()  # the codings' deactivation, before the log row goes in by Core
    decision_id = _log(
        session.connection(),
        suggestion_id=sugg.id,
        coder_id=coder.id,
        action="undo",
        new_code=None,
        model_version_id=sugg.model_version_id,
        codebook_version_id=cb_id,
        previous_state=current,
        resulting_state=last.previous_state,
        applied=True,
        note=f"undid decision {last.id} ({last.action})",
    )
    return DecisionResult(
        decision_id, sugg.id, "undo", True, current, last.previous_state, revision + 1, None, ""
    )


# --------------------------------------------------------------------------- codings by hand


def add_coding(
    session: Session,
    coder: CoderRow,
    *,
    source: str,
    start: int,
    end: int,
    code: str,
    memo: str | None = None,
) -> CodingRow:
    """A coding of ``text[start:end]`` of the current version of ``source`` by ``coder`` (origin ``human``).

    Offsets are character offsets into the stored text; ``0 <= start < end <= len(text)``.
    :class:`DuplicateCodingError` (naming the existing coding) when the coder has an identical active
    coding, also one a concurrent request stored after this one looked (the database refuses the second).
    """
    _human(coder)
    src = session.scalar(select(SourceRow).where(SourceRow.name == source, SourceRow.is_current))
    if src is None:
        raise NotFoundError(f"no source named {source!r}")
    if not (0 <= start < end <= len(src.text)):
        raise InputError(
            f"{source}: offsets {start}..{end} are not a span of the text (0 <= start < end <= {len(src.text)})"
        )
    if not src.text[start:end].strip():
        raise InputError(f"{source}: the selection {start}..{end} is only white space; select some words")
    cb_id = _latest_codebook_id(session)
    code = _check_code(session, code, cb_id)
    memo = _clean_memo(memo)
    same = {"source_id": src.id, "coder_id": coder.id, "start": start, "end": end, "code": code}
    existing = session.scalar(_SAME_CODING, same)
    if existing is None:
        stored, made = store_coding(
            session, {**same, "codebook_version_id": cb_id, "origin": "human", "memo": memo}
        )
        if made:
            row = session.get(CodingRow, stored)
            assert row is not None
            return row
        existing = stored  # a concurrent request stored it after the look-up
    # no second, identical coding (an export would write both and an import keep one)
    where = f"{source} {start}..{end} {code!r}"
    if memo is not None:
        hint = f"; to keep this memo, set it on coding {existing} (POST /api/codings/{existing}/memo)"
    else:
        hint = ""
    raise DuplicateCodingError(f"you already have coding {existing} of {where}{hint}", existing)


def _clean_memo(memo: str | None) -> str | None:
    if memo is None:
        return None
    memo = memo.replace("\r\n", "\n").strip()
    if len(memo) > MAX_MEMO:
        raise InputError(f"the memo has {len(memo)} characters; keep it under {MAX_MEMO}")
    return memo or None


def _own_coding(session: Session, coding_id: int, coder: CoderRow) -> CodingRow:
    row = session.get(CodingRow, coding_id)
    if row is None or not row.active:
        raise NotFoundError(f"no active coding {coding_id}")
    if row.coder_id != coder.id:
        raise ForbiddenError(f"coding {coding_id} belongs to {_coder_name(session, row.coder_id)}, not you")
    return row


def set_memo(session: Session, coding_id: int, coder: CoderRow, memo: str | None) -> CodingRow:
    """Set (or clear, with ``None`` or blank) the memo of one of ``coder``'s own codings."""
    row = _own_coding(session, coding_id, coder)
    row.memo = _clean_memo(memo)
    session.flush()
    return row


def retract_coding(session: Session, coding_id: int, coder: CoderRow) -> CodingRow:
    """Retract (``active=False``, never delete) one of ``coder``'s own hand-made codings.

    Codings made by a decision are retracted by undoing that decision instead.
    """
    row = _own_coding(session, coding_id, coder)
    if row.suggestion_id is not None:
        raise InputError(f"coding {coding_id} came from suggestion {row.suggestion_id}; undo that decision")
    row.active = False
    session.flush()
    return row


# --------------------------------------------------------------------------- codebook and candidates


def add_code(
    session: Session, lead: CoderRow, *, name: str, description: str = "", parent: str | None = None
) -> tuple[CodebookVersionRow, Code]:
    """A new codebook version with the code ``name`` added (leads only)."""
    _lead(lead)
    from pipeline.codebook import validate_codebook

    _, codebook = require_codebook(session)
    name = name.strip()
    if not name:
        raise InputError("the new code needs a name")
    taken = {c.name.lower(): c.name for c in codebook.codes}
    if name.lower() in taken:
        raise InputError(f"code {name!r} exists already (as {taken[name.lower()]!r}); choose another name")
    code = Code(name=name, description=description.strip(), parent=parent or None)
    new = validate_codebook(Codebook(codes=[*codebook.codes, code], name=codebook.name), f"new code {name!r}")
    row, _ = store_codebook(session, new, note=f"code {name!r} added by {lead.name}")
    return row, code


def resolve_candidate(
    session: Session,
    candidate_id: int,
    lead: CoderRow,
    action: str,
    *,
    name: str | None = None,
    definition: str = "",
    code: str | None = None,
) -> CandidateResult:
    """A lead accepts (as new code ``name``), merges (into existing ``code``) or rejects a candidate.

    First wins: a candidate leaves ``pending`` once; a second resolution changes nothing and says so.
    """
    if action not in CANDIDATE_ACTIONS:
        raise InputError(f"unknown candidate action {action!r}; choose one of {list(CANDIDATE_ACTIONS)}")
    _lead(lead)
    cand = session.get(CandidateRow, candidate_id)
    if cand is None:
        raise NotFoundError(f"no candidate open code {candidate_id}")
    if cand.state != CandidateState.PENDING:
        by = (cand.resolution or {}).get("by", "someone")
        return CandidateResult(
            cand.id, action, False, cand.state, None, None, 0, f"already {cand.state} by {by}"
        )
    if action == "accept":
        if not name or not name.strip():
            raise InputError("accepting a candidate needs a name for the new code")
        cb_row, added = add_code(session, lead, name=name, description=definition)
        code_name: str | None = added.name
        cb_id = cb_row.id
    elif action == "merge":
        if not code:
            raise InputError("merging a candidate needs the existing code to merge it into")
        cb_id = _latest_codebook_id(session)
        code = _check_code(session, code, cb_id)
        code_name = code
    else:
        cb_id = _latest_codebook_id(session)
        code_name = None
    state = {
        "accept": CandidateState.ACCEPTED,
        "merge": CandidateState.MERGED,
        "reject": CandidateState.REJECTED,
    }[action]
    changed = _changed(
        session,
        update(CandidateRow)
        .where(CandidateRow.id == candidate_id, CandidateRow.state == CandidateState.PENDING)
        .values(
            state=state,
            resolution={
                "by": lead.name,
                "action": action,
                "code": code_name,
                "codebook_version_id": cb_id,
                "at": utcnow().isoformat(timespec="seconds"),
            },
        ),
    )
    if changed != 1:
        raise InputError(f"candidate {candidate_id} was resolved by someone else meanwhile; reload the page")
    n = _decide_members(session, cand.id, lead, code_name, cb_id)
    return CandidateResult(cand.id, action, True, state, code_name, cb_id, n, "")


def _decide_members(session: Session, candidate_id: int, lead: CoderRow, code: str | None, cb_id: int) -> int:
    """Accept every pending member suggestion as ``code`` (or reject them all when ``code`` is None).

    A member whose span the lead has an identical active coding of already (same source, start, end and
    ``code``: a hand coding, another member's coding of the same passage, or one a concurrent request
    stored) is accepted as :func:`decide` accepts it: the suggestion is marked accepted and its decision
    logged, with a note naming the existing coding, which stays as it was (its origin, suggestion and
    memo); no second coding is made, so undoing that decision retracts nothing.
    """
    members = list(
        session.scalars(
            select(SuggestionRow).where(
                SuggestionRow.candidate_id == candidate_id, SuggestionRow.state == SuggestionState.PENDING
            )
        )
    )
    target = SuggestionState.ACCEPTED if code is not None else SuggestionState.REJECTED
    n = 0
    for s in members:
        changed = _changed(
            session,
            update(SuggestionRow)
            .where(
                SuggestionRow.id == s.id,
                SuggestionRow.revision == s.revision,
                SuggestionRow.state == SuggestionState.PENDING,
            )
            .values(state=target, decided_by=lead.id, revision=s.revision + 1),
        )
        if changed != 1:
            continue
        note = f"candidate {candidate_id}"
        if code is not None:
            same = {
                "source_id": s.source_id,
                "coder_id": lead.id,
                "start": s.start,
                "end": s.end,
                "code": code,
            }
            existing = session.connection().scalar(_SAME_CODING, same)
            if existing is None:
                stored, made = store_coding(
                    session,
                    {
                        **same,
                        "codebook_version_id": cb_id,
                        "origin": "model-accepted",
                        "suggestion_id": s.id,
                        "memo": f"from candidate open code {candidate_id}",
                    },
                )
                existing = None if made else stored
            if existing is not None:
                note += f"; identical active coding {existing} exists; no second coding made"
        _log(
            session.connection(),
            suggestion_id=s.id,
            coder_id=lead.id,
            action="accept" if code is not None else "reject",
            new_code=code,
            model_version_id=s.model_version_id,
            codebook_version_id=cb_id,
            previous_state=SuggestionState.PENDING,
            resulting_state=target,
            applied=True,
            note=note,
        )
        n += 1
    session.flush()
    return n


# --------------------------------------------------------------------------- the queue


class QueueItem(NamedTuple):
    """A pending suggestion as the queue orders it (a named tuple: the queue page builds one per pending
    row on every load, and a frozen dataclass took 2.5 microseconds each)."""

    suggestion_id: int
    segment_id: int
    source_id: int
    code: str
    score: float
    priority: float


COLD_START_DECISIONS = 20


def order_queue(
    items: Sequence[QueueItem],
    *,
    representatives: frozenset[int] = frozenset(),
    cold_start: bool = False,
    limit: int = 50,
    code_penalty: float = 0.15,
    source_penalty: float = 0.05,
) -> list[QueueItem]:
    """The ``limit`` suggestions whose decisions help the model most, in review order.

    Uncertainty with diversity: greedily take the item with the highest
    ``priority - code_penalty * (items already taken with its code) - source_penalty * (same source)``,
    where ``priority`` is :func:`pipeline.project.suggest.review_priority` (1 at the threshold). In cold
    start (few human decisions yet) items on ``representatives`` (segment ids of cluster
    representatives) get +1, so the first decisions cover the clusters. Ties: lower suggestion id. The
    penalties are not negative (a taken item never raises another's value: the heap below relies on it).

    >>> q = [QueueItem(1, 10, 1, "a", .5, .9), QueueItem(2, 11, 1, "a", .5, .8), QueueItem(3, 12, 2, "b", .5, .7)]
    >>> [i.suggestion_id for i in order_queue(q)]
    [1, 3, 2]
    >>> [i.suggestion_id for i in order_queue(q, representatives=frozenset({11}), cold_start=True)]
    [2, 1, 3]
    """
    boost = 1.0 if cold_start else 0.0

    def base(item: QueueItem) -> float:
        return item.priority + (boost if item.segment_id in representatives else 0.0)

    ranked = sorted(items, key=lambda i: (-base(i), i.suggestion_id))
    # Only the best-ranked items can be taken: run the greedy on the first n of them and keep its picks
    # when each was worth more than the best item left out (whose value, like every left-out item's, is
    # at most its base): the whole queue's greedy would have taken the same. Else try 4 times as many.
    n = min(len(ranked), max(QUEUE_CANDIDATES, 20 * limit))
    while True:
        out, values = _greedy(ranked[:n], base, limit, code_penalty, source_penalty)
        if n == len(ranked):
            return out
        bound = base(ranked[n])
        if len(out) == limit and all(v > bound for v in values):
            return out
        n = min(len(ranked), 4 * n)


QUEUE_CANDIDATES = 2000
""":func:`order_queue` first looks for its picks among this many best-ranked items."""


def _greedy(
    ranked: Sequence[QueueItem],
    base: Callable[[QueueItem], float],
    limit: int,
    code_penalty: float,
    source_penalty: float,
) -> tuple[list[QueueItem], list[float]]:
    """:func:`order_queue`'s greedy over ``ranked`` (sorted by base descending, then id): the picks, and
    the value each had when it was taken."""
    import heapq

    groups: dict[tuple[str, int], list[QueueItem]] = {}
    for item in ranked:
        groups.setdefault((item.code, item.source_id), []).append(item)
    heads = dict.fromkeys(groups, 0)
    by_code: dict[str, int] = {}
    by_source: dict[int, int] = {}

    def entry(key: tuple[str, int]) -> tuple[float, int, tuple[str, int], int, int]:
        """A group's head as the greedy ranks it now (smaller first), with the counts it was ranked at."""
        item = groups[key][heads[key]]
        n_code, n_source = by_code.get(item.code, 0), by_source.get(item.source_id, 0)
        value = base(item) - code_penalty * n_code - source_penalty * n_source
        return (-value, item.suggestion_id, key, n_code, n_source)

    # Lazy greedy: a head's value only falls as items of its code or source are taken (the counts only
    # grow), so a heap entry ranked at the current counts that is still first is the best head; a stale
    # one is ranked again and pushed back. The same picks as scanning every head each step, in
    # O(log groups) per step instead of O(groups) (92k pending rows: seconds per /queue).
    heap = [entry(key) for key in groups]
    heapq.heapify(heap)
    out: list[QueueItem] = []
    values: list[float] = []
    while len(out) < limit and heap:
        neg, _, key, n_code, n_source = heap[0]
        item = groups[key][heads[key]]
        if (n_code, n_source) != (by_code.get(item.code, 0), by_source.get(item.source_id, 0)):
            heapq.heapreplace(heap, entry(key))
            continue
        heapq.heappop(heap)
        out.append(item)
        values.append(-neg)
        by_code[item.code] = n_code + 1
        by_source[item.source_id] = n_source + 1
        heads[key] += 1
        if heads[key] < len(groups[key]):
            heapq.heappush(heap, entry(key))
    return out, values
