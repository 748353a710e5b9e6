"""What a project holds (sources, segments, codings, suggestions), and the speaker roles a lead may override."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from sqlalchemy import func, select

from pipeline.config import scheme_key
from pipeline.domain import Role
from pipeline.errors import InputError
from pipeline.project.core import Project
from pipeline.store.queries import current_sources, get_source, latest_codebook
from pipeline.store.schema import (
    CodebookVersionRow,
    CoderRow,
    CodingRow,
    SegmentRow,
    SourceRow,
)


@dataclass
class Summary:
    sources: list[dict[str, object]]
    codes: int
    codable_codes: int
    codebook_versions: int
    codings_per_coder: dict[str, int]


def summary(project: Project, *, versions: bool = False) -> Summary:
    """Counts per current source; with ``versions``, one row per version of every source (older
    versions hold the codings a new version's edit changed, see :func:`pipeline.project.ingest.carry_codings`)."""
    key = scheme_key(project.config.segmentation)
    with project.store.transaction() as session:
        if versions:
            rows = list(
                session.scalars(
                    select(SourceRow).order_by(SourceRow.ingest_order, SourceRow.name, SourceRow.version)
                )
            )
        else:
            rows = current_sources(session)
        seg_counts = dict(
            session.execute(
                select(SegmentRow.source_id, func.count())
                .where(SegmentRow.scheme == key)
                .group_by(SegmentRow.source_id)
            ).all()
        )
        coding_counts = dict(
            session.execute(
                select(CodingRow.source_id, func.count())
                .where(CodingRow.active)
                .group_by(CodingRow.source_id)
            ).all()
        )
        sources = [
            {
                "name": r.name,
                "version": r.version,
                "current": r.is_current,
                "format": r.format,
                "language": r.language,
                "turns": len(r.turns),
                "interviewer_turns": sum(t.role == "interviewer" for t in r.turns),
                "segments": int(seg_counts.get(r.id, 0)),
                "codings": int(coding_counts.get(r.id, 0)),
                "characters": len(r.text),
            }
            for r in rows
        ]
        found = latest_codebook(session)
        n_versions = session.scalar(select(func.count()).select_from(CodebookVersionRow)) or 0
        per_coder = dict(
            session.execute(
                select(CoderRow.name, func.count())
                .join(CodingRow, CodingRow.coder_id == CoderRow.id)
                .join(SourceRow, CodingRow.source_id == SourceRow.id)
                .where(CodingRow.active, SourceRow.is_current)
                .group_by(CoderRow.name)
                .order_by(CoderRow.name)
            ).all()
        )
    codes = found[1].codes if found else []
    return Summary(
        sources=sources,
        codes=len(codes),
        codable_codes=sum(c.is_codable for c in codes),
        codebook_versions=int(n_versions),
        codings_per_coder={k: int(v) for k, v in per_coder.items()},
    )


VALID_ROLES: tuple[str, ...] = get_args(Role)


def set_roles(project: Project, source: str, overrides: dict[str, str]) -> dict[str, str]:
    """Override speaker roles of one source (kept for its later versions); re-marks turns and segments."""
    bad = {k: v for k, v in overrides.items() if v not in VALID_ROLES}
    if bad:
        raise InputError(
            f"roles {bad} are not one of {list(VALID_ROLES)}; write SPEAKER=interviewer|participant"
        )
    with project.store.transaction() as session:
        row = get_source(session, source)
        speakers = {t.speaker for t in row.turns}
        unknown = sorted(set(overrides) - speakers)
        if unknown:
            raise InputError(
                f"source {source!r} has no speaker(s) {unknown}; its speakers are {sorted(speakers)}"
            )
        row.role_override = {**(row.role_override or {}), **overrides}
        for t in row.turns:
            if t.speaker in overrides:
                t.role = overrides[t.speaker]
        for seg in session.scalars(select(SegmentRow).where(SegmentRow.source_id == row.id)):
            if seg.speaker in overrides:
                seg.role = overrides[seg.speaker]
        return dict(row.role_override)
