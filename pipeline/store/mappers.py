"""Rows of the project database to the library's domain objects (and back): the one place a column meets a dataclass field."""

from __future__ import annotations

from pipeline.domain import Code, Codebook, Coding, Segment, Source, Turn
from pipeline.store.schema import (
    CodebookVersionRow,
    CodingRow,
    SegmentRow,
    SourceRow,
)


def source_from_row(row: SourceRow) -> Source:
    return Source(
        name=row.name,
        text=row.text,
        turns=[Turn(t.speaker, t.start, t.end, t.role, t.timestamp) for t in row.turns],  # type: ignore[arg-type]
        format=row.format,
        language=row.language,
        content_hash=row.text_hash,
        version=row.version,
        metadata=dict(row.meta or {}),
    )


def segment_from_row(row: SegmentRow, source_name: str) -> Segment:
    return Segment(
        source=source_name,
        index=row.idx,
        start=row.start,
        end=row.end,
        text=row.text,
        turn_index=row.turn_idx,
        speaker=row.speaker,
        role=row.role,  # type: ignore[arg-type]
    )


def codebook_from_row(row: CodebookVersionRow) -> Codebook:
    return Codebook(
        name=row.name,
        codes=[
            Code(
                name=c.name,
                description=c.description,
                inclusion=c.inclusion,
                exclusion=c.exclusion,
                examples=list(c.examples or []),
                parent=c.parent,
                dimension=c.dimension,
                color=c.color,
                guid=c.guid,
                is_codable=c.is_codable,
                given_name=c.given_name,
            )
            for c in row.codes
        ],
    )


def coding_from_row(row: CodingRow, source: str, coder: str, *, memo: str | None = None) -> Coding:
    """A stored coding as a :class:`Coding` of ``source`` by ``coder`` (``memo`` overrides the row's)."""
    return Coding(
        source=source,
        start=row.start,
        end=row.end,
        code=row.code,
        coder=coder,
        origin=row.origin,
        created_at=row.created_at.isoformat(timespec="seconds") if row.created_at else None,
        memo=row.memo if memo is None else memo,
    )
