"""A qualflow project: a folder with ``qualflow.toml``, its database and caches.

The operations here (ingest, codebook and codings import/export, summary) are what the CLI, the flows
and the review app call. Each one is a single database transaction: it writes everything or nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pipeline.config import (
    CONFIG_NAME,
    ProjectConfig,
    SegmentationConfig,
    dumps_config,
    load_config,
    resolve_sqlite_url,
)
from pipeline.domain import Code, Codebook, Coding, Segment, Source, Turn
from pipeline.errors import ConfigError, InputError, NotFoundError
from pipeline.store import Store
from pipeline.store.schema import (
    CodebookVersionRow,
    CodeRow,
    CoderRow,
    CodingRow,
    SegmentRow,
    SourceRow,
    TurnRow,
)

Progress = Callable[[str], None]


class Project:
    """An open project: its folder, its configuration and its store."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config
        self.store = Store(resolve_sqlite_url(config.database_url, root))

    @classmethod
    def open(cls, root: Path, *, migrate: bool = True) -> Project:
        project = cls(root, load_config(root))
        if migrate:
            project.store.migrate()
        return project

    @property
    def cache_dir(self) -> Path:
        return self.root / ".qualflow"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def close(self) -> None:
        self.store.dispose()


def init_project(root: Path, *, name: str | None = None, force: bool = False) -> Project:
    """Create ``root/qualflow.toml``, the database (migrated to the newest schema) and ``inbox/``."""
    root = root.resolve()
    cfg_path = root / CONFIG_NAME
    if cfg_path.exists() and not force:
        raise ConfigError(
            f"{cfg_path} already exists; this folder is a project already (use --force to reset)"
        )
    root.mkdir(parents=True, exist_ok=True)
    cfg = ProjectConfig(name=name or root.name)
    tmp = cfg_path.with_suffix(".toml.tmp")
    tmp.write_text(dumps_config(cfg), encoding="utf-8")
    tmp.replace(cfg_path)
    (root / "inbox").mkdir(exist_ok=True)
    (root / ".qualflow").mkdir(exist_ok=True)
    project = Project(root, cfg)
    project.store.migrate()
    return project


# --------------------------------------------------------------------------- helpers


def scheme_key(seg: SegmentationConfig) -> str:
    """The name under which segments of one segmentation setting are stored."""
    if seg.mode == "window":
        return f"window-{seg.window}-{seg.stride}"
    return seg.mode


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_name_for(path: Path) -> str:
    return path.stem


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
            )
            for c in row.codes
        ],
    )


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
            )
        )
    session.add(row)
    session.flush()
    return row, True


# --------------------------------------------------------------------------- ingest


@dataclass
class ParsedFile:
    path: Path
    name: str
    file_hash: str
    source: Source


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    new_versions: list[tuple[str, int, int]] = field(default_factory=list)  # name, old, new
    codings_left_on_old: dict[str, int] = field(default_factory=dict)
    segments: int = 0


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Transcript files named by ``paths`` (folders searched recursively, hidden and failed/ skipped)."""
    from pipeline.ingest import SUPPORTED_SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if any(part.startswith(".") or part == "failed" for part in rel):
                    continue
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES:
                    out.append(f)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def parse_file(
    path: Path, config: ProjectConfig, *, role_overrides: dict[str, str] | None = None
) -> ParsedFile:
    """Read one transcript file into a :class:`Source` (turns with roles, language)."""
    from pipeline.ingest import read_transcript
    from pipeline.ingest.roles import assign_roles
    from pipeline.text import detect_language

    data = path.read_bytes()
    parsed = read_transcript(path)
    turns = list(assign_roles(parsed.turns, parsed.text, config.interviewer_names or None))
    if role_overrides:
        turns = [
            Turn(t.speaker, t.start, t.end, role_overrides.get(t.speaker, t.role), t.timestamp)  # type: ignore[arg-type]
            for t in turns
        ]
    language = config.language if config.language != "auto" else detect_language(parsed.text)
    from pipeline.domain import sha256_text

    source = Source(
        name=source_name_for(path),
        text=parsed.text,
        turns=turns,
        format=parsed.format,
        language=language,
        content_hash=sha256_text(parsed.text),
    )
    return ParsedFile(path=path, name=source.name, file_hash=file_hash(data), source=source)


def add_segments(session: Session, row: SourceRow, source: Source, seg_cfg: SegmentationConfig) -> int:
    from pipeline.segment import segment_text

    segments = segment_text(
        source.text,
        source.turns,
        source=source.name,
        mode=seg_cfg.mode,
        window=seg_cfg.window,
        stride=seg_cfg.stride,
        language=source.language,
    )
    key = scheme_key(seg_cfg)
    if segments:  # one executemany: an interview has hundreds of segments
        session.execute(
            insert(SegmentRow),
            [
                {
                    "source_id": row.id,
                    "scheme": key,
                    "idx": s.index,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "turn_idx": s.turn_index,
                    "speaker": s.speaker,
                    "role": s.role,
                }
                for s in segments
            ],
        )
    return len(segments)


def store_parsed(
    session: Session, pf: ParsedFile, config: ProjectConfig, report: IngestReport
) -> SourceRow | None:
    """Write one parsed file (new source, new version, or nothing when unchanged).

    "Unchanged" compares with the *current* version: the same bytes, or the same decoded text (a
    re-save with other line endings or a BOM is not a new version). Re-ingesting an older file makes
    it the current version again, as a new version. A new version keeps the source's metadata, role
    overrides and place in the interview order.
    """
    src = pf.source
    old = session.scalar(select(SourceRow).where(SourceRow.name == pf.name, SourceRow.is_current))
    if old is not None and (old.file_hash == pf.file_hash or old.text_hash == src.content_hash):
        report.unchanged.append(pf.name)
        return None
    version = 1
    meta = dict(src.metadata)
    overrides: dict[str, str] = {}
    order: int | None = None
    if old is not None:
        old.is_current = False
        version = (
            session.scalar(select(func.max(SourceRow.version)).where(SourceRow.name == pf.name)) or 0
        ) + 1
        n_codings = session.scalar(
            select(func.count()).select_from(CodingRow).where(CodingRow.source_id == old.id, CodingRow.active)
        )
        report.new_versions.append((pf.name, old.version, version))
        if n_codings:
            report.codings_left_on_old[pf.name] = int(n_codings)
        meta = {**(old.meta or {}), **meta}
        overrides = dict(old.role_override or {})
        order = old.ingest_order
        session.flush()
    if overrides:
        src.turns = [
            Turn(t.speaker, t.start, t.end, overrides.get(t.speaker, t.role), t.timestamp)  # type: ignore[arg-type]
            for t in src.turns
        ]
    if order is None:
        order = (session.scalar(select(func.max(SourceRow.ingest_order))) or 0) + 1
    row = SourceRow(
        name=pf.name,
        version=version,
        is_current=True,
        file_name=pf.path.name,
        file_hash=pf.file_hash,
        text_hash=src.content_hash,
        format=src.format,
        language=src.language,
        text=src.text,
        meta=meta,
        role_override=overrides,
        ingest_order=order,
    )
    session.add(row)
    session.flush()
    if src.turns:  # one executemany, like the segments
        session.execute(
            insert(TurnRow),
            [
                {
                    "source_id": row.id,
                    "idx": i,
                    "speaker": t.speaker,
                    "role": t.role,
                    "start": t.start,
                    "end": t.end,
                    "timestamp": t.timestamp,
                }
                for i, t in enumerate(src.turns)
            ],
        )
        session.expire(row, ["turns"])  # loaded from the table when next read
    report.segments += add_segments(session, row, src, config.segmentation)
    if old is None:
        report.added.append(pf.name)
    return row


def ingest(
    project: Project,
    paths: Sequence[Path],
    *,
    metadata_csv: Path | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest transcript files (or folders) in one transaction; any bad file stops it before writing."""
    files = collect_files(paths)
    if not files:
        raise InputError(
            f"no transcript files found in {[str(p) for p in paths]} (looked for .txt .md .docx .vtt .srt)"
        )
    seen: dict[str, Path] = {}
    for f in files:
        name = source_name_for(f)
        if name in seen and seen[name] != f:
            raise InputError(f"{f} and {seen[name]} would both be source {name!r}; rename one of them")
        seen[name] = f
    metadata: dict[str, dict[str, str]] = {}
    if metadata_csv is not None:
        from pipeline.ingest.metadata import read_metadata_csv

        metadata = read_metadata_csv(metadata_csv)
    parsed = []
    for f in files:
        if progress:
            progress(f.name)
        pf = parse_file(f, project.config)
        pf.source.metadata.update(metadata.get(pf.name, {}))
        parsed.append(pf)
    report = IngestReport()
    with project.store.transaction() as session:
        for pf in parsed:
            store_parsed(session, pf, project.config, report)
        if metadata:
            apply_metadata(session, metadata, origin=str(metadata_csv))
    return report


def apply_metadata(session: Session, metadata: dict[str, dict[str, str]], *, origin: str) -> None:
    rows = {r.name: r for r in current_sources(session)}
    unknown = sorted(set(metadata) - set(rows))
    if unknown:
        raise InputError(
            f"{origin}: unknown source(s) {unknown}; ingest them first or fix the `source` column"
        )
    for name, meta in metadata.items():
        rows[name].meta = {**(rows[name].meta or {}), **meta}


# --------------------------------------------------------------------------- codebook and codings


def import_codebook(project: Project, path: Path) -> tuple[CodebookVersionRow, bool]:
    from pipeline.codebook import read_codebook

    codebook = read_codebook(path)
    with project.store.transaction() as session:
        return store_codebook(session, codebook, note=f"imported from {path.name}")


def export_codebook(project: Project, path: Path) -> Codebook:
    from pipeline.codebook import write_codebook

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
    write_codebook(codebook, path)
    return codebook


def import_codings(project: Project, path: Path) -> dict[str, int]:
    """Import a codings CSV; returns codings added per coder. Everything is checked before writing."""
    from pipeline.codings_csv import read_codings_csv

    with project.store.transaction() as session:
        cb_row, codebook = require_codebook(session)
        rows = {r.name: r for r in current_sources(session)}
        codings = read_codings_csv(path, codebook, {n: r.text for n, r in rows.items()})
        return add_codings(session, codings, rows, cb_row.id)


def add_codings(
    session: Session,
    codings: Sequence[Coding],
    sources: dict[str, SourceRow],
    codebook_version_id: int,
    *,
    created_at: Callable[[Coding], datetime] | None = None,
) -> dict[str, int]:
    """Store ``codings`` (already validated) on ``sources`` by name; an identical active coding by the
    same coder is not stored twice. Returns the codings added per coder."""
    added: dict[str, int] = {}
    coders: dict[str, CoderRow] = {}
    existing = {
        (c.source_id, c.start, c.end, c.code, c.coder_id)
        for c in session.scalars(select(CodingRow).where(CodingRow.active))
    }
    for c in codings:
        coder = coders.get(c.coder) or get_or_create_coder(session, c.coder)
        coders[c.coder] = coder
        key = (sources[c.source].id, c.start, c.end, c.code, coder.id)
        if key in existing:
            continue
        existing.add(key)
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
        added[c.coder] = added.get(c.coder, 0) + 1
    return added


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
    return [
        Coding(
            source=sname,
            start=c.start,
            end=c.end,
            code=c.code,
            coder=cname,
            origin=c.origin,
            created_at=c.created_at.isoformat(timespec="seconds") if c.created_at else None,
            memo=c.memo,
        )
        for c, sname, cname in session.execute(q)
    ]


def export_codings(project: Project, path: Path) -> int:
    from pipeline.codings_csv import write_codings_csv

    with project.store.transaction() as session:
        codings = load_codings(session)
    write_codings_csv(codings, path)
    return len(codings)


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


def resegment(project: Project) -> int:
    """Make segments of the configured scheme for every current source that lacks them."""
    n = 0
    key = scheme_key(project.config.segmentation)
    with project.store.transaction() as session:
        for row in current_sources(session):
            has = session.scalar(
                select(func.count())
                .select_from(SegmentRow)
                .where(SegmentRow.source_id == row.id, SegmentRow.scheme == key)
            )
            if not has:
                n += add_segments(session, row, source_from_row(row), project.config.segmentation)
    return n


@dataclass
class Summary:
    sources: list[dict[str, object]]
    codes: int
    codable_codes: int
    codebook_versions: int
    codings_per_coder: dict[str, int]


def summary(project: Project) -> Summary:
    key = scheme_key(project.config.segmentation)
    with project.store.transaction() as session:
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


VALID_ROLES = ("interviewer", "participant", "unknown")


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
