"""REFI-QDA project exchange for a qualflow project (`qualflow export qdpx`, `qualflow import qdpx`).

Export writes the current sources, codebook, every active coding, and the coders (people and model
versions) as users, each with the REFI guid a project file gave it (``coders.guid``), or one derived
from its name when none did, so the tool a project came from finds its own users in the file again.
Model provenance — which model version suggested an accepted coding, with what score, and who accepted
it — goes into the selection's description, since REFI has no field for it, on a line
``[qualflow] provenance: ...`` that a qualflow import drops again (the coding keeps its origin
``model-accepted`` and its own memo, nothing more).
Import reads a ``.qdpx`` from MAXQDA, NVivo, ATLAS.ti or QualCoder into a project, in one transaction;
into a project that has a codebook already, the imported codes are merged into it (a new version with
the codes it lacked; a code with the same path or guid is the same code and keeps the project's
definition), so every existing coding keeps its code. A source whose name the project has, with other
text, becomes a new version of it, and the project's codings carry forward as ``qualflow ingest``
carries them (with the same lines, and a warning when the two texts share almost nothing).
Coders are matched by name; each keeps the guid the file gives its user, unless it has another one
already (the one kept, said in a warning) or the guid is another coder's (not kept, said too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.domain import Codebook, Coding, Source, SuggestionState, Turn, sha256_text
from pipeline.errors import InputError
from pipeline.project.codebooks import merge_codebooks, split_by_codebook, store_codebook_version
from pipeline.project.codings import add_codings
from pipeline.project.core import Progress, Project
from pipeline.project.ingest import IngestReport, ParsedFile, store_parsed
from pipeline.refi.qdpx import PROVENANCE_MARK, Positions, QdpxProject, unknown_user_warning
from pipeline.store.mappers import coding_from_row, source_from_row
from pipeline.store.queries import current_sources, get_or_create_coder, latest_codebook, require_codebook
from pipeline.store.schema import CoderRow, CodingRow, ModelVersionRow, SourceRow, SuggestionRow, utcnow


def export_project_qdpx(
    project: Project, path: Path, *, warn: Progress | None = None
) -> tuple[int, int, int]:
    """Write ``path``; returns (sources, codes, codings) written.

    Codings whose code the current codebook no longer has are left out; ``warn`` gets one line saying
    how many and which codes. Each coder is written with its stored guid (``coders.guid``), else one
    derived from its name; a stored guid that cannot be written (another coder's too) is replaced by a
    derived one and ``warn`` gets one line naming the coders.
    """
    from pipeline.refi.qdpx import export_qdpx, export_user_guids

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
        rows = current_sources(session)
        sources = [source_from_row(r) for r in rows]
        q = (
            select(CodingRow, SourceRow.name, CoderRow.name, SuggestionRow, ModelVersionRow)
            .join(SourceRow, CodingRow.source_id == SourceRow.id)
            .join(CoderRow, CodingRow.coder_id == CoderRow.id)
            .outerjoin(SuggestionRow, CodingRow.suggestion_id == SuggestionRow.id)
            .outerjoin(ModelVersionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
            .where(CodingRow.active, SourceRow.is_current)
            .order_by(SourceRow.ingest_order, CodingRow.start, CodingRow.id)
        )
        codings = []
        for c, sname, cname, sug, mv in session.execute(q):
            memo = c.memo
            if (
                sug is not None
                and mv is not None
                and sug.state == SuggestionState.ACCEPTED
                and c.code == sug.code
            ):
                # a marked line the import recognises and drops (it restores origin, not a memo)
                prov = f"{PROVENANCE_MARK}suggested by model {mv.label} (score {sug.score:.3f}); accepted by {cname}"
                memo = f"{memo}\n{prov}" if memo else prov
            codings.append(coding_from_row(c, sname, cname, memo=memo))
        codings, left_out = split_by_codebook(codebook, codings)
        coders = list(session.scalars(select(CoderRow).order_by(CoderRow.id)))
        users = [r.name for r in coders]
        user_guids, not_kept = export_user_guids(users, {r.name: r.guid for r in coders if r.guid})
    if left_out and warn is not None:
        warn(left_out)
    if not_kept and warn is not None:
        warn(
            "coders written with a guid derived from their name instead of the one a project file gave "
            "them (the tool that wrote that file will see them as new users): "
            + "; ".join(f"'{u}': {why}" for u, why in not_kept.items())
        )
    export_qdpx(
        path,
        sources=sources,
        codebook=codebook,
        codings=codings,
        users=users,
        project_name=project.config.name,
        user_guids=user_guids,
    )
    return len(sources), len(codebook.codes), len(codings)


@dataclass
class ImportReport:
    origin: str
    sources: list[str] = field(default_factory=list)
    codes: int = 0
    codings: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    skipped_selections: int = 0  # coded selections on sources qualflow cannot hold (audio, images, PDF)
    codes_added: int = 0  # codes the project's codebook gained (all of them in a project without one)
    codebook_version: int = 0  # the codebook version the codings were stored under
    codebook_created: bool = False  # whether the import made a new codebook version
    warnings: list[str] = field(default_factory=list)  # one line each (codings of uncodable codes, ...)
    notices: list[str] = field(default_factory=list)  # one line each (how positions were counted)
    # sources that became a new version, and what became of the project's codings of them (as ingest's)
    versions: IngestReport = field(default_factory=IngestReport)


def import_project_qdpx(project: Project, path: Path, *, positions: Positions = "auto") -> ImportReport:
    """Import sources, codebook and codings of a ``.qdpx``; nothing is written if anything is wrong.

    ``positions``: how the file counts selection positions (:func:`pipeline.refi.qdpx.import_qdpx`);
    ``auto`` reads an NVivo file in UTF-16 code units.
    """
    from pipeline.refi.qdpx import import_qdpx

    return _store_imported(project, import_qdpx(path, positions=positions), path)


def import_project_qualcoder(project: Project, path: Path) -> ImportReport:
    """Import a QualCoder project (folder ``NAME.qda`` or its ``data.qda``, read-only): text sources,
    categories and codes, text codings with their coders and memos, cases and attributes; nothing is
    written if anything is wrong."""
    from pipeline.qualcoder import read_qualcoder

    return _store_imported(project, read_qualcoder(path), path)


def _store_imported(project: Project, qp: QdpxProject, path: Path) -> ImportReport:
    from pipeline.ingest.plain import parse_plain_text
    from pipeline.ingest.roles import assign_roles
    from pipeline.text import detect_language

    report = ImportReport(
        origin=qp.origin,
        skipped=list(qp.skipped),
        codes=len(qp.codebook.codes),
        skipped_selections=qp.skipped_selections,
        notices=list(qp.notices),
    )
    parsed: list[ParsedFile] = []
    for src in qp.sources:
        if not src.text.strip():
            raise InputError(f"{path}: source {src.name!r} has no text; remove it from the project and retry")
        # a Markdown source qualflow exported reads as Markdown again (a heading is not a turn)
        pt = parse_plain_text(src.text, "md" if src.format == "md" else "txt")
        turns = list(assign_roles(pt.turns, src.text, project.config.interviewer_names or None))
        said = " ".join(src.text[t.start : t.end] for t in turns)
        lang = (
            project.config.language
            if project.config.language != "auto"
            else detect_language(said or src.text)
        )
        source = Source(
            name=src.name,
            text=src.text,
            turns=[Turn(t.speaker, t.start, t.end, t.role, t.timestamp) for t in turns],
            format=src.format,
            language=lang,
            content_hash=sha256_text(src.text),
            metadata=dict(src.metadata),
        )
        parsed.append(
            ParsedFile(
                path=Path(f"{src.name}.txt"), name=src.name, file_hash=sha256_text(src.text), source=source
            )
        )
    names = [p.name for p in parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: several sources are named {dupes}; rename them in the QDA tool first")
    with project.store.transaction() as session:
        ing = report.versions
        for pf in parsed:
            store_parsed(session, pf, project.config, ing)
        report.warnings.extend(
            ing.unrelated_notes(
                "`qualflow ingest` the transcript of version {old} again (its codings come back with it), "
                "rename the source in the QDA tool and import the file again"
            )
        )
        # the project's codebook gains the codes it lacks; codes with the same path (or guid) are one code
        current = latest_codebook(session)
        codebook, key_of = qp.codebook, {c.name: c.name for c in qp.codebook.codes}
        if current is not None:
            codebook, key_of = merge_codebooks(current[1], qp.codebook, str(path))
            report.codes_added = len(codebook.codes) - len(current[1].codes)
        else:
            report.codes_added = len(codebook.codes)
        if codebook.codes:
            stored = store_codebook_version(
                session, codebook, origin=str(path), note=f"imported from {path.name} ({qp.origin})"
            )
            report.codebook_version, report.codebook_created = stored.version, stored.created
        by_name = {r.name: r for r in session.scalars(select(SourceRow).where(SourceRow.is_current))}
        for user in qp.users:
            get_or_create_coder(session, user, kind="model" if user.startswith("model:") else "human")
        report.warnings.extend(_keep_user_guids(session, qp.user_guids))
        codings = [replace(c, code=key_of[c.code]) for c in qp.codings]
        # other tools' codings arrive with origin "imported"; qualflow's own keep theirs
        added: list[Coding] = []
        report.codings = add_codings(
            session,
            codings,
            by_name,
            report.codebook_version,
            created_at=lambda c: _parse_time(c.created_at),
            stored=added,
        )
        # about the codings added (a re-import adds none, and has nothing to say of them)
        report.warnings.extend(_uncodable_warnings(codebook, added))
        report.warnings.extend(unknown_user_warning(qp.unknown_users, added))
        report.sources = ing.added + [n for n, _, _ in ing.new_versions] + ing.unchanged
    return report


def _keep_user_guids(session: Session, user_guids: dict[str, str]) -> list[str]:
    """Store on each coder of ``user_guids`` (name -> guid the file gives that user) its guid, when the
    coder has none yet and no other coder has it (stored, or derived from its name as an export derives
    it); one line about the coders that have another guid already (theirs kept) and one about the guids
    another coder has (not kept): an export writes those coders with their own guid, not the file's."""
    from pipeline.refi.qdc import normalize_guid, stable_guid

    if not user_guids:
        return []
    coders = list(session.scalars(select(CoderRow)))
    carried = {normalize_guid(c.guid or stable_guid("user", c.name)): c.name for c in coders}
    by_name = {c.name: c for c in coders}
    others: list[str] = []  # a coder with another guid already
    taken: list[str] = []  # a guid another coder has
    for name, guid in user_guids.items():
        row = by_name.get(name)
        if row is None:
            continue
        if row.guid is not None:
            if normalize_guid(row.guid) != normalize_guid(guid):
                others.append(f"'{name}' (file: {guid}; kept: {row.guid})")
            continue
        holder = carried.get(normalize_guid(guid))
        if holder is not None and holder != name:
            taken.append(f"'{name}' (file: {guid}, which is coder '{holder}''s)")
            continue
        row.guid = guid
        carried[normalize_guid(guid)] = name
    lines: list[str] = []
    if others:
        lines.append(
            "coders with another REFI guid in the project than their user has in the file keep the "
            "project's (an export writes that one; the tool that wrote the file will see a new user): "
            + "; ".join(others)
        )
    if taken:
        lines.append(
            "users whose guid in the file is another coder's in the project, their coder keeping a guid of "
            "its own (an export writes that one; the tool that wrote the file will see a new user): "
            + "; ".join(taken)
        )
    return lines


def _uncodable_warnings(codebook: Codebook, codings: Sequence[Coding]) -> list[str]:
    """One line per code the (merged) codebook marks not codable that the imported codings use.

    The tool's project file codes a code it declares ``isCodable="false"`` (or the project's own
    codebook has that code as a category): the codings are the tool's record of the work, so they are
    imported as they are, and said so — a codings CSV with such a line is refused instead (a file to fix).
    """
    from pipeline.codebook import display_name

    uncodable = {c.name: c for c in codebook.codes if not c.is_codable}
    counts: dict[str, int] = {}
    for c in codings:
        if c.code in uncodable:
            counts[c.code] = counts.get(c.code, 0) + 1
    return [
        f"{n} coding{'s' if n != 1 else ''} of '{display_name(uncodable[key], codebook)}', which the codebook "
        'marks not codable (a category; REFI-QDA isCodable="false"), imported as they are: agreement, '
        "rounds and training count only codable codes; to count them, make the code codable "
        "(`codable: true`) and `qualflow codebook import` the codebook again"
        for key, n in counts.items()
    ]


def _parse_time(value: str | None) -> datetime:
    if not value:
        return utcnow()
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
