"""Human codings in and out of a project (codings CSV), in one transaction each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.domain import Coding
from pipeline.project.core import Project
from pipeline.store.queries import current_sources, get_or_create_coder, load_codings, require_codebook
from pipeline.store.schema import (
    CoderRow,
    CodingRow,
    SourceRow,
)


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
) -> dict[str, int]:
    """Store ``codings`` (already validated) on ``sources`` by name; an identical active coding by the
    same coder (same source, start, end and code) is not stored twice, but no memo is lost: the one
    coding kept gets the memos it lacked, the distinct non-empty ones joined by a blank line. Returns
    the codings added per coder."""
    added: dict[str, int] = {}
    coders: dict[str, CoderRow] = {}
    existing = {
        (c.source_id, c.start, c.end, c.code, c.coder_id): c
        for c in session.scalars(select(CodingRow).where(CodingRow.active))
    }
    for c in codings:
        coder = coders.get(c.coder) or get_or_create_coder(session, c.coder)
        coders[c.coder] = coder
        key = (sources[c.source].id, c.start, c.end, c.code, coder.id)
        same = existing.get(key)
        if same is not None:
            same.memo = join_memos(same.memo, c.memo)
            continue
        row = CodingRow(
            source_id=sources[c.source].id,
            start=c.start,
            end=c.end,
            code=c.code,
            codebook_version_id=codebook_version_id,
            coder_id=coder.id,
            origin=c.origin,
            memo=c.memo,
        )
        if created_at is not None:
            row.created_at = created_at(c)
        session.add(row)
        existing[key] = row
        added[c.coder] = added.get(c.coder, 0) + 1
    return added


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
