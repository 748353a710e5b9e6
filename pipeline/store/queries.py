"""The queries everyone shares (the CLI, the flows, the review app, the project layer): current sources,
coders, the newest codebook, codings and segments. Each takes an open :class:`~sqlalchemy.orm.Session`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from pipeline.config import (
    ProjectConfig,
    scheme_key,
)
from pipeline.domain import CandidateState, Codebook, Coding
from pipeline.errors import NotFoundError
from pipeline.store.mappers import codebook_from_row, coding_from_row
from pipeline.store.schema import (
    CandidateRow,
    CodebookVersionRow,
    CodeRow,
    CoderRow,
    CodingRow,
    SegmentRow,
    SourceRow,
)


def get_or_create_coder(session: Session, name: str, *, kind: str = "human", role: str = "coder") -> CoderRow:
    row = session.scalar(select(CoderRow).where(CoderRow.name == name))
    if row is None:
        row = CoderRow(name=name, kind=kind, role=role)
        session.add(row)
        session.flush()
    return row


def current_sources(session: Session) -> list[SourceRow]:
    return list(
        session.scalars(select(SourceRow).where(SourceRow.is_current).order_by(SourceRow.ingest_order))
    )


def get_source(session: Session, name: str) -> SourceRow:
    row = session.scalar(select(SourceRow).where(SourceRow.name == name, SourceRow.is_current))
    if row is None:
        names = [r.name for r in current_sources(session)]
        raise NotFoundError(f"no source named {name!r}; the project has {names[:20]}")
    return row


def latest_codebook(session: Session) -> tuple[CodebookVersionRow, Codebook] | None:
    row = session.scalar(select(CodebookVersionRow).order_by(CodebookVersionRow.id.desc()).limit(1))
    if row is None:
        return None
    return row, codebook_from_row(row)


def require_codebook(session: Session) -> tuple[CodebookVersionRow, Codebook]:
    found = latest_codebook(session)
    if found is None:
        raise NotFoundError("the project has no codebook yet; run `qualflow codebook import FILE` first")
    return found


def store_codebook(
    session: Session, codebook: Codebook, *, note: str = ""
) -> tuple[CodebookVersionRow, bool]:
    """Store ``codebook`` as a new version unless one with the same content hash exists.

    Returns the version row and whether it was created.
    """
    from pipeline.codebook import codebook_hash

    digest = codebook_hash(codebook)
    existing = session.scalar(select(CodebookVersionRow).where(CodebookVersionRow.hash == digest))
    if existing is not None:
        latest = session.scalar(select(func.max(CodebookVersionRow.id)))
        if existing.id == latest:
            return existing, False
        # re-activating an older codebook: store it again as the newest version
        existing.hash = hashlib.sha256(f"{digest}-superseded-{existing.id}".encode()).hexdigest()
        session.flush()
    row = CodebookVersionRow(hash=digest, name=codebook.name, note=note)
    for i, c in enumerate(codebook.codes):
        row.codes.append(
            CodeRow(
                position=i,
                name=c.name,
                parent=c.parent,
                description=c.description,
                inclusion=c.inclusion,
                exclusion=c.exclusion,
                examples=list(c.examples),
                dimension=c.dimension,
                color=c.color,
                guid=c.guid,
                is_codable=c.is_codable,
                given_name=c.given_name,
            )
        )
    session.add(row)
    session.flush()
    return row, True


def load_codings(session: Session, *, current_only: bool = True) -> list[Coding]:
    q = (
        select(CodingRow, SourceRow.name, CoderRow.name)
        .join(SourceRow, CodingRow.source_id == SourceRow.id)
        .join(CoderRow, CodingRow.coder_id == CoderRow.id)
        .where(CodingRow.active)
        .order_by(SourceRow.ingest_order, CodingRow.start, CodingRow.id)
    )
    if current_only:
        q = q.where(SourceRow.is_current)
    return [coding_from_row(c, sname, cname) for c, sname, cname in session.execute(q)]


def coded_by_hand() -> ColumnElement[bool]:
    """The condition on ``codings`` of a coding made by hand: in the review app, imported or read from a
    codings file, not through the suggestion queue (no suggestion, and not an accepted suggestion that
    a project file or codings file brought back without its suggestion)."""
    return and_(CodingRow.suggestion_id.is_(None), CodingRow.origin != "model-accepted")


def hand_coded_sources(session: Session, codes: Sequence[str] | None = None) -> dict[str, set[str]]:
    """Coder name -> the current sources the coder coded by hand (:func:`coded_by_hand`), with a coding
    of one of ``codes`` when given (the current codebook's codable codes: codings of a removed code do
    not make a coder a coder of the interview).

    A coder who only accepted or recoded a suggestion in an interview has not coded that interview:
    agreement and evaluation compare them only where they coded it by hand, so the rest of it is not
    read as "the coder saw nothing there".
    """
    q = (
        select(CoderRow.name, SourceRow.name)
        .join(CodingRow, CodingRow.coder_id == CoderRow.id)
        .join(SourceRow, CodingRow.source_id == SourceRow.id)
        .where(CodingRow.active, coded_by_hand(), SourceRow.is_current)
        .distinct()
    )
    if codes is not None:
        q = q.where(CodingRow.code.in_(list(codes)))
    out: dict[str, set[str]] = {}
    for coder, source in session.execute(q):
        out.setdefault(coder, set()).add(source)
    return out


def code_uses(session: Session) -> dict[str, int]:
    """Code -> its active codings on the current sources (what the report and the export show)."""
    q = (
        select(CodingRow.code, func.count())
        .join(SourceRow, CodingRow.source_id == SourceRow.id)
        .where(CodingRow.active, SourceRow.is_current)
        .group_by(CodingRow.code)
    )
    return {code: int(n) for code, n in session.execute(q)}


def load_segments(
    session: Session,
    config: ProjectConfig,
    *,
    include_interviewer: bool | None = None,
    sources: Sequence[str] | None = None,
) -> list[tuple[SegmentRow, str]]:
    """Current sources' segments of the configured scheme (interviewer turns skipped by default)."""
    incl = config.segmentation.include_interviewer if include_interviewer is None else include_interviewer
    q = (
        select(SegmentRow, SourceRow.name)
        .join(SourceRow, SegmentRow.source_id == SourceRow.id)
        .where(SourceRow.is_current, SegmentRow.scheme == scheme_key(config.segmentation))
        .order_by(SourceRow.ingest_order, SegmentRow.idx)
    )
    if sources is not None:
        q = q.where(SourceRow.name.in_(list(sources)))
    if not incl:
        q = q.where(SegmentRow.role != "interviewer")
    return [(row, name) for row, name in session.execute(q)]


def current_source_texts(session: Session) -> dict[str, str]:
    """Name -> text of every current source."""
    return {src.name: src.text for src in session.scalars(select(SourceRow).where(SourceRow.is_current))}


def source_segments(session: Session, source: str, scheme: str) -> list[SegmentRow]:
    """The segments of source ``source`` under segmentation scheme ``scheme``, in order."""
    src = get_source(session, source)
    q = select(SegmentRow).where(SegmentRow.source_id == src.id, SegmentRow.scheme == scheme)
    return list(session.scalars(q.order_by(SegmentRow.idx)))


def pending_candidates(session: Session) -> list[CandidateRow]:
    """Candidate open codes still waiting for a lead's decision."""
    return list(session.scalars(select(CandidateRow).where(CandidateRow.state == CandidateState.PENDING)))
