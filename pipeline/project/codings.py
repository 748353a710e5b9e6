"""Human codings in and out of a project (codings CSV), in one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.domain import Coding
from pipeline.project.core import Project
from pipeline.store import savepoint
from pipeline.store.queries import current_sources, get_or_create_coder, load_codings, require_codebook
from pipeline.store.schema import (
    CoderRow,
    CodingRow,
    SourceRow,
)
from pipeline.text import counted


def import_codings(project: Project, path: Path) -> dict[str, int]:
    """Import a codings CSV; returns codings added per coder. Everything is checked before writing."""
    return import_codings_counted(project, path)[0]


def import_codings_counted(project: Project, path: Path) -> tuple[dict[str, int], int]:
    """:func:`import_codings`, also returning how many lines were not stored because the same coding
    (source, offsets, code, coder) is stored already or comes twice in the file."""
    from pipeline.codings_csv import read_codings_csv

    with project.store.transaction() as session:
        cb_row, codebook = require_codebook(session)
        rows = {r.name: r for r in current_sources(session)}
        codings = read_codings_csv(path, codebook, {n: r.text for n, r in rows.items()})
        added = add_codings(session, codings, rows, cb_row.id)
        return added, len(codings) - sum(added.values())


def add_codings(
    session: Session,
    codings: Sequence[Coding],
    sources: dict[str, SourceRow],
    codebook_version_id: int,
    *,
    created_at: Callable[[Coding], datetime] | None = None,
    stored: list[Coding] | None = None,
) -> dict[str, int]:
    """Store ``codings`` (already validated) on ``sources`` by name; an identical active coding by the
    same coder (same source, start, end and code) is not stored twice, but no memo is lost: the one
    coding kept gets the memos it lacked, the distinct non-empty ones joined by a blank line. Returns
    the codings added per coder; ``stored``, when given, gets each coding added (for what to say about
    them).

    The same holds for an identical coding a concurrent request stores while this runs: the database
    refuses the second (the unique index ``uq_codings_active``), and the new coding's memo is joined
    into the one stored first instead."""
    coders: dict[str, CoderRow] = {}
    existing = {
        (c.source_id, c.start, c.end, c.code, c.coder_id): c
        for c in session.scalars(select(CodingRow).where(CodingRow.active))
    }
    new: dict[tuple[int, int, int, str, int], tuple[str, dict[str, Any]]] = {}  # key -> (coder, columns)
    first: dict[int, Coding] = {}  # id of the columns -> the coding they store
    for c in codings:
        coder = coders.get(c.coder) or get_or_create_coder(session, c.coder)
        coders[c.coder] = coder
        key = (sources[c.source].id, c.start, c.end, c.code, coder.id)
        same = existing.get(key)
        if same is not None:
            same.memo = join_memos(same.memo, c.memo)
            continue
        if key in new:
            new[key][1]["memo"] = join_memos(new[key][1]["memo"], c.memo)
            continue
        columns: dict[str, Any] = {
            "source_id": sources[c.source].id,
            "start": c.start,
            "end": c.end,
            "code": c.code,
            "codebook_version_id": codebook_version_id,
            "coder_id": coder.id,
            "origin": c.origin,
            "memo": c.memo,
        }
        if created_at is not None:
            columns["created_at"] = created_at(c)
        new[key] = (c.coder, columns)
        first[id(columns)] = c
    added: dict[str, int] = {}
    for name, columns in _store_new_codings(session, list(new.values())):
        added[name] = added.get(name, 0) + 1
        if stored is not None:
            stored.append(first[id(columns)])
    return added


def _store_new_codings(
    session: Session, new: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    """Store the new codings ``(coder name, columns)``; those stored.

    All in one SAVEPOINT; when the unique index of active codings refuses one (a concurrent request
    stored an identical coding after :func:`add_codings` looked), one SAVEPOINT each: a refused coding's
    memo is joined into the identical active one instead.
    """
    try:
        with savepoint(session):
            session.add_all([CodingRow(**columns) for _, columns in new])
        return list(new)
    except IntegrityError:
        pass
    stored: list[tuple[str, dict[str, Any]]] = []
    for name, columns in new:
        try:
            with savepoint(session):
                session.add(CodingRow(**columns))
            stored.append((name, columns))
        except IntegrityError:
            same = session.scalar(
                select(CodingRow).where(
                    CodingRow.source_id == columns["source_id"],
                    CodingRow.start == columns["start"],
                    CodingRow.end == columns["end"],
                    CodingRow.code == columns["code"],
                    CodingRow.coder_id == columns["coder_id"],
                    CodingRow.active,
                )
            )
            if same is None:
                raise
            same.memo = join_memos(same.memo, columns["memo"])
    return stored


def join_memos(memo: str | None, other: str | None) -> str | None:
    """``memo`` with ``other`` appended after a blank line, unless ``other`` is empty or already one
    of its paragraphs.

    >>> join_memos(None, "a"), join_memos("a", "b"), join_memos("a\\n\\nb", "b"), join_memos("a", " ")
    ('a', 'a\\n\\nb', 'a\\n\\nb', 'a')
    >>> join_memos(join_memos("mine", "p1\\n\\np2"), "p1\\n\\np2")  # a memo of paragraphs, once
    'mine\\n\\np1\\n\\np2'
    >>> join_memos("note\\n", "note")
    'note\\n'
    """
    other = (other or "").strip() or None
    if other is None:
        return memo
    if memo and f"\n\n{other}\n\n" in f"\n\n{memo.strip()}\n\n":  # already there, whole paragraphs
        return memo
    return f"{memo.strip()}\n\n{other}" if memo and memo.strip() else other


def export_codings(project: Project, path: Path) -> int:
    from pipeline.codings_csv import write_codings_csv

    with project.store.transaction() as session:
        codings = load_codings(session)
    write_codings_csv(codings, path)
    return len(codings)


def interviewer_codings(project: Project) -> dict[str, int]:
    """Code -> active codings on the current sources that sit on interviewer turns (their middle
    character inside an interviewer segment), when ``[segmentation] include_interviewer`` is off:
    codings qualflow neither learns from nor suggests (it reads participant turns only). ``{}`` when
    the setting is on or there are none. A study that codes what the interviewer does (a therapist's
    behaviour) needs the setting on."""
    import bisect

    from pipeline.store.queries import load_segments

    if project.config.segmentation.include_interviewer:
        return {}
    out: dict[str, int] = {}
    with project.store.transaction() as session:
        spans: dict[int, list[tuple[int, int, bool]]] = {}
        for row, _ in load_segments(session, project.config, include_interviewer=True):
            spans.setdefault(row.source_id, []).append((row.start, row.end, row.role == "interviewer"))
        for segs in spans.values():
            segs.sort()
        rows = session.execute(
            select(CodingRow.source_id, CodingRow.start, CodingRow.end, CodingRow.code)
            .join(SourceRow, CodingRow.source_id == SourceRow.id)
            .where(CodingRow.active, SourceRow.is_current)
        )
        for sid, start, end, code in rows:
            segs = spans.get(sid, [])
            mid = (start + end) // 2
            i = bisect.bisect_right(segs, (mid, float("inf"), True)) - 1
            if i >= 0 and segs[i][0] <= mid < segs[i][1] and segs[i][2]:
                out[code] = out.get(code, 0) + 1
    return out


def interviewer_note(project: Project) -> str | None:
    """One line for the user when codings sit on interviewer turns that qualflow skips
    (:func:`interviewer_codings`), else ``None``."""
    found = interviewer_codings(project)
    if not found:
        return None
    n = sum(found.values())
    top = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    codes = ", ".join(f"{code} ({k})" for code, k in top[:5]) + (
        f" and {len(top) - 5} more" if len(top) > 5 else ""
    )
    return (
        f"{counted(n, 'coding')} {'sits' if n == 1 else 'sit'} on interviewer turns ({codes}), which qualflow skips: it learns from and "
        "suggests for participant turns only. To code what the interviewer says too, set "
        "[segmentation] include_interviewer = true in qualflow.toml"
    )
