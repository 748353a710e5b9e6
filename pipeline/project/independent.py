"""Independent review (``[review] policy = "independent"``): every coder decides each suggestion for
themselves.

Rules (the first-wins rules of :mod:`pipeline.project.decisions` stay as they are for first-wins projects):

- The shared suggestion row is not moved out of ``pending``: one coder's decision never takes a
  suggestion away from another. Each coder's current state on a suggestion is one row of
  ``coder_decisions``, unique per (suggestion, coder): that key is the concurrency rule (no lost and
  no duplicated decision per coder). A coder's state moves only through
  ``UPDATE coder_decisions ... WHERE id=? AND revision=? AND state='pending'`` (or the INSERT of the
  row, which a unique-key violation makes fail for the slower of two tabs).
- **The decision log is append-only**, as in first-wins: every call appends one ``decisions`` row
  (``applied=False`` when the coder's own state changed meanwhile).
- accept / recode make **the coder's own** coding (origin ``model-accepted`` / ``human``); reject makes
  none; undo reverts the coder's last decision and retracts the coding it made.
- Others' decisions stay hidden: the queue lists what *this* coder has not decided yet (restricted to
  their assignment in the open rounds when they have one), and the transcript views show only the
  coder's own codings (leads see everyone's, to adjudicate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.domain import SuggestionState
from pipeline.errors import InputError
from pipeline.project.decisions import (
    _SAME_CODING,
    RESULTING_STATE,
    DecisionResult,
    _log,
    _new_id,
    codable_names,
    read_for_decision,
    store_coding,
)
from pipeline.store import savepoint
from pipeline.store.schema import (
    AssignmentRow,
    CoderDecisionRow,
    CoderRow,
    CodingRow,
    RoundRow,
)

POLICIES = ("first-wins", "independent")
_CD = cast(Table, CoderDecisionRow.__table__)
_C = cast(Table, CodingRow.__table__)
_READ_MINE = select(_CD.c.id, _CD.c.state, _CD.c.revision, _CD.c.decision_id).where(
    _CD.c.suggestion_id == bindparam("sid"), _CD.c.coder_id == bindparam("cid")
)
_MOVE = (
    update(_CD)
    .where(
        _CD.c.id == bindparam("row_id"), _CD.c.revision == bindparam("rev"), _CD.c.state == bindparam("was")
    )
    .values(state=bindparam("target"), revision=bindparam("new_rev"), decision_id=bindparam("did"))
)


def decide_independent(
    session: Session,
    suggestion_id: int,
    coder: CoderRow,
    action: str,
    new_code: str | None = None,
    expected_revision: int | None = None,
) -> DecisionResult:
    """Record ``coder``'s own ``action`` on a suggestion (independent review; see the module docstring).

    ``expected_revision`` is the revision of *the coder's own* state the page showed (0 before their
    first decision); ``None`` means "the current one". The caller commits.
    """
    conn, sugg, cb_id = read_for_decision(session, suggestion_id, coder, action)
    names = codable_names(session, cb_id)
    if action == "accept" and not sugg.codable:
        raise InputError(
            f"suggestion {suggestion_id} is for code {sugg.code!r}, which is not a codable code of the "
            f"current codebook; recode it to one of {names} or reject it"
        )
    if action == "recode":
        if not new_code or new_code not in names:
            raise InputError(f"recode needs a codable code of the current codebook; choose one of {names}")
        if new_code == sugg.code:
            raise InputError(f"recode to {new_code!r} is the suggested code itself; accept it instead")
    elif new_code is not None:
        raise InputError(f"{action} takes no new code (got {new_code!r}); use recode")
    mine = conn.execute(_READ_MINE, {"sid": suggestion_id, "cid": coder.id}).one_or_none()
    state = mine.state if mine is not None else SuggestionState.PENDING
    revision = mine.revision if mine is not None else 0
    seen = revision if expected_revision is None else expected_revision
    common = {
        "suggestion_id": suggestion_id,
        "coder_id": coder.id,
        "model_version_id": sugg.model_version_id,
        "codebook_version_id": cb_id,
    }

    def refused(message: str) -> DecisionResult:
        did = _log(
            conn,
            **common,
            action=action,
            new_code=new_code,
            previous_state=state,
            resulting_state=state,
            applied=False,
            note=message,
        )
        return DecisionResult(did, suggestion_id, action, False, state, state, revision, None, message)

    if seen != revision:
        return refused(
            f"your decision on suggestion {suggestion_id} changed since you loaded it (revision "
            f"{revision}); reload and decide again"
        )
    if action == "undo":
        return _undo_own(session, sugg, coder, mine, common, refused)
    if state != SuggestionState.PENDING:
        return refused(f"you already {state} suggestion {suggestion_id}; undo it first")
    target = RESULTING_STATE[action]
    coding_id: int | None = None
    note = None
    if action in ("accept", "recode"):
        code = sugg.code if action == "accept" else new_code
        same = {"source_id": sugg.source_id, "coder_id": coder.id, "start": sugg.start, "end": sugg.end}
        existing = conn.scalar(_SAME_CODING, {**same, "code": code})
        if existing is not None:
            note = f"identical active coding {existing} exists; no second coding made"
    # the coder's state first: a concurrent second tab fails here, before any coding is made
    if mine is None:
        try:
            with savepoint(session):
                row_id = _new_id(
                    session.connection().execute(
                        insert(_CD),
                        {
                            "suggestion_id": suggestion_id,
                            "coder_id": coder.id,
                            "state": target,
                            "revision": 1,
                            "decision_id": None,
                        },
                    )
                )
        except IntegrityError:
            return refused(f"you decided suggestion {suggestion_id} in another tab meanwhile; reload")
    else:
        row_id = mine.id
        changed = conn.execute(
            _MOVE,
            {
                "row_id": row_id,
                "rev": revision,
                "was": SuggestionState.PENDING,
                "target": target,
                "new_rev": revision + 1,
                "did": mine.decision_id,
            },
        ).rowcount
        if changed != 1:
            return refused(f"your decision on suggestion {suggestion_id} changed meanwhile; reload")
    if action in ("accept", "recode") and note is None:
        stored, made = store_coding(
            session,
            {
                "source_id": sugg.source_id,
                "coder_id": coder.id,
                "start": sugg.start,
                "end": sugg.end,
                "code": sugg.code if action == "accept" else new_code,
                "codebook_version_id": cb_id,
                "origin": "model-accepted" if action == "accept" else "human",
                "suggestion_id": sugg.id,
                "memo": None if action == "accept" else f"recoded from {sugg.code!r} (suggestion {sugg.id})",
            },
        )
        if made:
            coding_id = stored
        else:  # another of the coder's requests stored the identical coding after the look-up
            note = f"identical active coding {stored} exists; no second coding made"
    did = _log(
        conn,
        **common,
        action=action,
        new_code=new_code,
        previous_state=SuggestionState.PENDING,
        resulting_state=target,
        applied=True,
        note=note,
    )
    conn.execute(update(_CD).where(_CD.c.id == row_id).values(decision_id=did))
    return DecisionResult(
        did, suggestion_id, action, True, SuggestionState.PENDING, target, revision + 1, coding_id, note or ""
    )


def _undo_own(
    session: Session,
    sugg: Any,
    coder: CoderRow,
    mine: Any,
    common: dict[str, Any],
    refused: Callable[[str], DecisionResult],
) -> DecisionResult:
    if mine is None or mine.state == SuggestionState.PENDING:
        raise InputError(f"suggestion {sugg.id} is pending for you; there is no decision to undo")
    conn = session.connection()
    changed = conn.execute(
        _MOVE,
        {
            "row_id": mine.id,
            "rev": mine.revision,
            "was": mine.state,
            "target": SuggestionState.PENDING,
            "new_rev": mine.revision + 1,
            "did": mine.decision_id,
        },
    ).rowcount
    if changed != 1:
        return refused(f"your decision on suggestion {sugg.id} changed meanwhile; reload")
    conn.execute(
        update(_C)
        .where(_C.c.suggestion_id == sugg.id, _C.c.coder_id == coder.id, _C.c.active)
        .values(active=False)
    )
    did = _log(
        conn,
        **common,
        action="undo",
        new_code=None,
        previous_state=mine.state,
        resulting_state=SuggestionState.PENDING,
        applied=True,
        note=f"undid decision {mine.decision_id}",
    )
    conn.execute(update(_CD).where(_CD.c.id == mine.id).values(decision_id=did))
    return DecisionResult(
        did, sugg.id, "undo", True, mine.state, SuggestionState.PENDING, mine.revision + 1, None, ""
    )


# --------------------------------------------------------------------------- what a coder sees


@dataclass(frozen=True)
class Scope:
    """What one coder is to decide: ``sources`` (ids) and ``segments`` (ids; a sample of a source)
    from their assignments in open rounds, or everything when ``everything``; minus ``decided``."""

    everything: bool
    sources: frozenset[int]
    segments: frozenset[int]
    sampled_sources: frozenset[int]
    decided: frozenset[int]
    revisions: dict[int, int]  # the coder's own revision per suggestion they have a state on

    def keeps(self, row: Any) -> bool:
        """Whether a pending-suggestion row (``id``, ``source_id``, ``segment_id``) is in this coder's queue."""
        if row.id in self.decided:
            return False
        if self.everything:
            return True
        if row.source_id in self.sampled_sources:
            return row.segment_id in self.segments
        return row.source_id in self.sources


def coder_scope(session: Session, coder: CoderRow) -> Scope:
    """The coder's queue scope under independent review (see :class:`Scope`)."""
    own = session.execute(
        select(CoderDecisionRow.suggestion_id, CoderDecisionRow.state, CoderDecisionRow.revision).where(
            CoderDecisionRow.coder_id == coder.id
        )
    ).all()
    decided = frozenset(int(r.suggestion_id) for r in own if r.state != SuggestionState.PENDING)
    revisions = {int(r.suggestion_id): int(r.revision) for r in own}
    rows = session.execute(
        select(AssignmentRow.source_id, AssignmentRow.segment_ids)
        .join(RoundRow, AssignmentRow.round_id == RoundRow.id)
        .where(AssignmentRow.coder_id == coder.id, RoundRow.state == "open")
    ).all()
    if not rows:
        return Scope(True, frozenset(), frozenset(), frozenset(), decided, revisions)
    whole = {r.source_id for r in rows if not r.segment_ids}
    sampled = {r.source_id for r in rows if r.segment_ids} - whole
    segs = {int(s) for r in rows for s in (r.segment_ids or ())}
    return Scope(False, frozenset(whole), frozenset(segs), frozenset(sampled), decided, revisions)


def decisions_by_coder(session: Session, coders: list[str]) -> dict[str, dict[int, str]]:
    """Each named coder's current non-pending state per suggestion id (independent review)."""
    out: dict[str, dict[int, str]] = {c: {} for c in coders}
    q = (
        select(CoderRow.name, CoderDecisionRow.suggestion_id, CoderDecisionRow.state)
        .join(CoderRow, CoderDecisionRow.coder_id == CoderRow.id)
        .where(CoderRow.name.in_(coders), CoderDecisionRow.state != SuggestionState.PENDING)
    )
    for name, sid, state in session.execute(q).tuples():
        out[name][int(sid)] = state
    return out


def last_decision_ids(session: Session, suggestion_ids: list[int]) -> dict[tuple[int, int], int]:
    """(suggestion id, coder id) -> the id of the decision that set that coder's current state."""
    if not suggestion_ids:
        return {}
    q = select(CoderDecisionRow.suggestion_id, CoderDecisionRow.coder_id, CoderDecisionRow.decision_id).where(
        CoderDecisionRow.suggestion_id.in_(suggestion_ids), CoderDecisionRow.decision_id.is_not(None)
    )
    return {(int(s), int(c)): int(d) for s, c, d in session.execute(q).tuples() if d is not None}
