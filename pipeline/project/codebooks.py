"""A project's codebook: import a file as a new version (unless the same content is stored), export the newest.

A new version keeps every coding usable: a code it renames (same path, or same guid, under a new key)
takes its codings and its pending suggestions along (:func:`move_pending_suggestions`), and a version
that leaves out codes still used by codings is refused unless the caller allows it (``qualflow
codebook import --allow-removed``); those codings then stay stored, left out of the report and the
REFI-QDA export (:func:`split_by_codebook`) until a version has their codes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.domain import Code, Codebook, Coding, SuggestionState
from pipeline.errors import InputError
from pipeline.project.core import Project
from pipeline.store.queries import code_uses, latest_codebook, require_codebook, store_codebook
from pipeline.store.schema import AdjudicationRow, CodingRow, SuggestionRow


@dataclass(frozen=True)
class CodebookImport:
    """What storing a codebook did: the version (new or found unchanged) and the codings it touched."""

    version: int
    codes: int
    hash: str
    created: bool
    renamed: dict[str, str] = field(default_factory=dict)  # old key -> new key, for codes with codings
    moved: int = 0  # codings that followed a renamed code
    suggestions_moved: int = 0  # pending suggestions that followed a renamed code
    suggestions_superseded: int = 0  # pending suggestions of a renamed code its new key had already
    left_out: dict[str, int] = field(default_factory=dict)  # removed code -> its codings (current sources)


def same_codes(old: Codebook, new: Codebook, *, by_key: bool = True) -> dict[str, str]:
    """Old key -> new key for every code of ``old`` that ``new`` still has.

    A code is the same code when it has the same path (ignoring case), else the same guid (REFI-QDA's
    identity; a code without one has the guid the ``.qdc`` export derives from its key), else the same
    key if no new code is already claimed by that path or guid. With ``by_key=False`` (another
    project's codebook, where a bare name may sit elsewhere) only the path and the guids both
    codebooks state count.

    >>> from pipeline.domain import Code
    >>> old = Codebook([Code("trust"), Code("budget", guid="0f8fad5b-d9cb-469f-a165-70867728950e")])
    >>> new = Codebook([Code("Trust"), Code("money", guid="{0F8FAD5B-D9CB-469F-A165-70867728950E}")])
    >>> same_codes(old, new)
    {'trust': 'Trust', 'budget': 'money'}
    >>> same_codes(Codebook([Code("trust")]), Codebook([Code("budget")]))
    {}
    >>> a = Codebook([Code("A"), Code("Other", parent="A")])
    >>> b = Codebook([Code("B"), Code("Other", parent="B")])
    >>> same_codes(a, b), same_codes(a, b, by_key=False)
    ({'Other': 'Other'}, {})
    >>> c = Codebook([Code("A"), Code("A/Other", given_name="Other", parent="A"), Code("Other")])
    >>> same_codes(a, c)["Other"]  # the new root "Other" does not take A's "Other"
    'A/Other'
    """
    from pipeline.codebook import code_paths
    from pipeline.refi.qdc import code_guid, normalize_guid

    def guid(code: Code) -> str | None:
        if by_key:
            return normalize_guid(code_guid(code))
        return normalize_guid(code.guid) if code.guid else None

    keys = {c.name for c in new.codes} if by_key else set()
    paths = {p.casefold(): k for k, p in code_paths(new).items()}
    guids = {g: c.name for c in new.codes if (g := guid(c)) is not None}
    old_paths = code_paths(old)
    out: dict[str, str] = {}
    # the path, then a guid, claim first: a key is only a fallback (a code moved under another parent
    # keeps its unique name), never one a new code already took by path or guid. Otherwise a new root
    # code "Other" (key "Other") would take the codings of an old "A/Other" whose key was "Other".
    for code in old.codes:
        if old_paths[code.name].casefold() in paths:
            out[code.name] = paths[old_paths[code.name].casefold()]
        elif (g := guid(code)) is not None and g in guids:
            out[code.name] = guids[g]
    claimed = set(out.values())
    for code in old.codes:
        if code.name not in out and code.name in keys and code.name not in claimed:
            out[code.name] = code.name
            claimed.add(code.name)
    return out


def merge_codebooks(current: Codebook, other: Codebook, origin: str) -> tuple[Codebook, dict[str, str]]:
    """``current`` with the codes of ``other`` it lacks added after its own, and each code of ``other``
    mapped to its key in the result.

    Codes are the same by path (ignoring case) or a guid both state (:func:`same_codes`); a code ``current``
    has keeps its definition, place and key (unless a new code shares its name: then both are keyed
    by path, and :func:`store_codebook_version` moves the codings along). A new code keeps its place
    under its parent.

    >>> from pipeline.domain import Code
    >>> cb, keys = merge_codebooks(Codebook([Code("budget"), Code("trust")], name="cb"),
    ...                            Codebook([Code("trust", description="other words"), Code("weather")]), "x")
    >>> [(c.name, c.description) for c in cb.codes], keys
    ([('budget', ''), ('trust', ''), ('weather', '')], {'trust': 'trust', 'weather': 'weather'})
    """
    from dataclasses import replace

    from pipeline.codebook import code_paths, validate_codebook

    known = same_codes(other, current, by_key=False)
    paths = {**code_paths(other), **{k: code_paths(current)[c] for k, c in known.items()}}
    cur_paths = code_paths(current)

    def unvalidated(code: Code, parent_path: str | None) -> Code:
        # as a reader returns it: the name as written, the parent by its full path
        return replace(code, name=code.title, given_name=None, parent=parent_path)

    codes = [unvalidated(c, cur_paths[c.parent] if c.parent else None) for c in current.codes]
    codes += [
        unvalidated(c, paths[c.parent] if c.parent else None) for c in other.codes if c.name not in known
    ]
    merged = validate_codebook(Codebook(codes=codes, name=current.name), origin)
    return merged, same_codes(other, merged, by_key=False)


def _codings_phrase(uses: dict[str, int]) -> str:
    return ", ".join(f"'{k}' ({n} coding{'s' if n != 1 else ''})" for k, n in sorted(uses.items()))


def store_codebook_version(
    session: Session, codebook: Codebook, *, origin: str, note: str, allow_removed: bool = False
) -> CodebookImport:
    """Store ``codebook`` as the newest version (see :func:`pipeline.store.queries.store_codebook`),
    moving the codings of renamed codes to their new keys.

    Raises
    ------
    InputError
        The codebook has no codes; or it leaves out codes that codings on the current sources use and
        ``allow_removed`` is false (naming the codes and their codings).
    """
    if not codebook.codes:
        raise InputError(f"{origin}: the codebook has no codes; add at least one code and import it again")
    current = latest_codebook(session)
    row, created = store_codebook(session, codebook, note=note)
    result = CodebookImport(row.id, len(codebook.codes), row.hash, created)
    if not created or current is None:
        return result
    old = current[1]
    same = same_codes(old, codebook)
    uses = code_uses(session)
    removed = {k: n for k, n in uses.items() if old.get(k) is not None and k not in same}
    if removed and not allow_removed:
        n, many = sum(removed.values()), len(removed) > 1
        what = f"codes {_codings_phrase(removed)}" if many else f"code '{next(iter(removed))}'"
        raise InputError(
            f"{origin}: the new codebook leaves out {what}, used by {n} coding{'s' if n != 1 else ''}; "
            f"add {'them' if many else 'it'} back (a renamed code keeps its guid or path), or import with "
            "--allow-removed to keep those codings out of the report and export until a codebook has "
            f"{'those codes' if many else 'the code'} again"
        )
    renamed = {o: k for o, k in same.items() if o != k}
    moved = move_codings(session, renamed) if renamed else 0
    s_moved, s_superseded = move_pending_suggestions(session, renamed) if renamed else (0, 0)
    return CodebookImport(
        row.id,
        len(codebook.codes),
        row.hash,
        True,
        renamed={o: k for o, k in renamed.items() if o in uses},
        moved=moved,
        left_out=removed,
        suggestions_moved=s_moved,
        suggestions_superseded=s_superseded,
    )


def move_codings(session: Session, renamed: dict[str, str]) -> int:
    """Move the active codings of renamed codes to their new keys; returns how many moved.

    In two steps, as :func:`move_pending_suggestions`: two codes may swap names, and the unique index of
    active codings (one per source, span, code and coder) is checked row by row. A moved coding
    identical to an active one the coder has under the new key already (two old codes that became one)
    is retracted, its memo joined into the one kept.
    """
    from pipeline.project.codings import join_memos

    rows = list(
        session.scalars(
            select(CodingRow)
            .where(CodingRow.active, CodingRow.code.in_(list(renamed)))
            .order_by(CodingRow.id)
        )
    )
    if not rows:
        return 0
    moves = [(r, renamed[r.code]) for r in rows]
    targets = sorted({new for _, new in moves})
    held = {
        (r.source_id, r.start, r.end, r.code, r.coder_id): r
        for r in session.scalars(
            select(CodingRow).where(CodingRow.active, CodingRow.code.in_(targets)).order_by(CodingRow.id)
        )
        if r.code not in renamed  # a code renamed away frees its key
    }
    for r, _ in moves:
        r.code = f"(coding {r.id} being renamed)"
    session.flush()
    merged: dict[int, int] = {}  # retracted coding id -> the id of the one kept
    for r, new in moves:
        r.code = new
        key = (r.source_id, r.start, r.end, new, r.coder_id)
        kept = held.setdefault(key, r)
        if kept is not r:
            kept.memo = join_memos(kept.memo, r.memo)
            r.active = False
            merged[r.id] = kept.id
    if merged:  # adjudications that listed a retracted coding list the one kept (as migration 0008 does)
        for adj in session.scalars(
            select(AdjudicationRow).where(AdjudicationRow.source_id.in_({r.source_id for r, _ in moves}))
        ):
            for attr in ("coding_ids", "settled_coding_ids"):
                ids = list(getattr(adj, attr) or [])
                if any(int(i) in merged for i in ids):
                    setattr(adj, attr, list(dict.fromkeys(merged.get(int(i), int(i)) for i in ids)))
    session.flush()
    return len(moves)


def move_pending_suggestions(session: Session, renamed: dict[str, str]) -> tuple[int, int]:
    """Move the pending (undecided) deductive suggestions of renamed codes to their new keys, so the
    review queue shows, and accepting makes, codings of codes the codebook has; returns (moved,
    superseded).

    Decided, covered, duplicate and superseded suggestions keep the code they were made for (their
    history), and inductive ones are keyed by a candidate's label, not a code. A suggestion is unique
    per (segment, code, model version, kind): where the new key already has a suggestion there

    - pending too: one of the two stays in the queue, under the new key, with the higher score (and
      that suggestion's span, rank and priority); the renamed one is superseded under its old key;
    - already answered (or covered, duplicate, superseded): the renamed one is superseded under its old
      key (the model's opinion of that code on that segment is recorded already).
    """
    pending = list(
        session.scalars(
            select(SuggestionRow)
            .where(
                SuggestionRow.state == SuggestionState.PENDING,
                SuggestionRow.kind == "deductive",
                SuggestionRow.code.in_(list(renamed)),
            )
            .order_by(SuggestionRow.id)
        )
    )
    if not pending:
        return 0, 0
    moving = {r.id for r in pending}
    targets = {(r.segment_id, renamed[r.code], r.model_version_id, r.kind) for r in pending}
    held: dict[tuple[int, str, int, str], SuggestionRow] = {}
    segments = sorted({t[0] for t in targets})
    for k in range(0, len(segments), 500):  # bounded IN lists (SQLite's variable limit)
        for other in session.scalars(
            select(SuggestionRow).where(
                SuggestionRow.code.in_(sorted({t[1] for t in targets})),
                SuggestionRow.segment_id.in_(segments[k : k + 500]),
            )
        ):
            key = (other.segment_id, other.code, other.model_version_id, other.kind)
            if other.id not in moving and key in targets:
                held[key] = other
    moves: list[tuple[SuggestionRow, str]] = []
    superseded = 0
    for r in sorted(pending, key=lambda r: (-r.score, r.id)):  # the higher score first
        key = (r.segment_id, renamed[r.code], r.model_version_id, r.kind)
        there = held.get(key)
        if there is None:
            held[key] = r
            moves.append((r, key[1]))
            continue
        if there.state == SuggestionState.PENDING and there.id not in moving and r.score > there.score:
            # the suggestion under the new key stays, with the renamed one's higher score and span
            there.score, there.rank, there.priority = r.score, r.rank, r.priority
            there.start, there.end = r.start, r.end
            there.revision += 1
        r.state = SuggestionState.SUPERSEDED
        superseded += 1
    # in two steps: two codes may swap names, and the constraint is checked row by row
    for r, _ in moves:
        r.code = f"(suggestion {r.id} being renamed)"
    session.flush()
    for r, new in moves:
        r.code = new
    session.flush()
    return len(moves), superseded


def import_codebook(project: Project, path: Path, *, allow_removed: bool = False) -> CodebookImport:
    """Import a codebook file as a new version (a no-op when the newest version has the same content).

    Refused, with nothing written, when it has no codes or leaves out codes that codings use (unless
    ``allow_removed``); see :func:`store_codebook_version`.
    """
    from pipeline.codebook_files import read_codebook

    codebook = read_codebook(path)
    with project.store.transaction() as session:
        return store_codebook_version(
            session,
            codebook,
            origin=str(path),
            note=f"imported from {path.name}",
            allow_removed=allow_removed,
        )


def split_by_codebook(codebook: Codebook, codings: Sequence[Coding]) -> tuple[list[Coding], str | None]:
    """The codings whose code is in ``codebook``, and a one-line note on those left out (or ``None``).

    Codings of a code a later codebook version left out (``--allow-removed``) stay stored; the report
    and the export leave them out and say so.

    >>> from pipeline.domain import Code
    >>> cb = Codebook([Code("budget")])
    >>> kept, note = split_by_codebook(cb, [Coding("i1", 0, 5, "budget", "sara"),
    ...                                     Coding("i1", 6, 9, "trust", "sara")])
    >>> [c.code for c in kept], note
    (['budget'], "left out 1 coding whose code is not in the current codebook: 'trust' (1 coding); import a codebook with that code to include it")
    """
    names = set(codebook.names())
    kept = [c for c in codings if c.code in names]
    if len(kept) == len(codings):
        return kept, None
    missing: dict[str, int] = {}
    for c in codings:
        if c.code not in names:
            missing[c.code] = missing.get(c.code, 0) + 1
    n, many = len(codings) - len(kept), len(missing) > 1
    return kept, (
        f"left out {n} coding{'s' if n != 1 else ''} whose code is not in the current codebook: "
        f"{_codings_phrase(missing)}; import a codebook with {'those codes' if many else 'that code'} "
        f"to include {'them' if n != 1 else 'it'}"
    )


def export_codebook(project: Project, path: Path) -> Codebook:
    """Write the current codebook to ``path`` (format by suffix). Every code gets its guid (the one it
    has, else the one derived from its key, as in a ``.qdpx``), so a file edited by hand and imported
    again keeps each code's identity through a rename, a category's included (:func:`same_codes`)."""
    from dataclasses import replace

    from pipeline.codebook_files import write_codebook
    from pipeline.refi.qdc import code_guid

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
    codebook = replace(codebook, codes=[replace(c, guid=code_guid(c)) for c in codebook.codes])
    write_codebook(codebook, path)
    return codebook
