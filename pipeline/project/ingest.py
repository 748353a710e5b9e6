"""Transcripts into a project: parse each file (:mod:`pipeline.ingest`), store the source, its turns and
its segments in one transaction, apply participant metadata; re-segment after a setting changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from pipeline.config import (
    ProjectConfig,
    SegmentationConfig,
    scheme_key,
)
from pipeline.domain import Source
from pipeline.errors import InputError
from pipeline.ingest.roles import apply_role_overrides, guessed_interviewers
from pipeline.project.core import Progress, Project
from pipeline.store.mappers import source_from_row
from pipeline.store.queries import current_sources
from pipeline.store.schema import (
    AdjudicationRow,
    CoderRow,
    CodingRow,
    SegmentRow,
    SourceRow,
    TurnRow,
)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_name_for(path: Path) -> str:
    return path.stem


@dataclass
class ParsedFile:
    path: Path
    name: str
    file_hash: str
    source: Source
    notes: tuple[str, ...] = ()  # the reader's (ParsedTranscript.notes)


@dataclass(frozen=True)
class LeftCoding:
    """A coding whose text a new version changed: it stays on the version it was made on."""

    version: int
    start: int
    end: int
    code: str
    coder: str
    text: str


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    new_versions: list[tuple[str, int, int]] = field(default_factory=list)  # name, old, new
    codings_carried: dict[str, int] = field(default_factory=dict)  # moved to the new version
    codings_left_on_old: dict[str, int] = field(default_factory=dict)  # still on older versions
    codings_left: dict[str, list[LeftCoding]] = field(default_factory=dict)
    segments: int = 0
    # new versions whose text shares less than SHARED_BELOW with the version before: name -> share
    unrelated: dict[str, float] = field(default_factory=dict)
    # source -> speakers taken as the interviewer only because they ask the questions
    guessed_interviewers: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)  # files in the folders of types qualflow cannot read
    unlabelled: list[str] = field(default_factory=list)  # sources stored without any speaker
    unlabelled_tables: list[str] = field(default_factory=list)  # the same, read from a table (.csv, .xlsx)
    reader_notes: list[str] = field(default_factory=list)  # what a reader passed over in a stored file

    def unrelated_notes(self, undo: str) -> list[str]:
        """One line per new version that shares almost no text with the version before
        (runs of five words, :func:`pipeline.textdiff.shared_shingles`, under :data:`SHARED_BELOW`;
        recorded by :func:`store_parsed`): another interview with the same name, more likely than an
        edit. ``undo`` says how to put it right (``{old}``: the version before).

        >>> r = IngestReport(new_versions=[("int01", 1, 2)], codings_left_on_old={"int01": 35},
        ...                  unrelated={"int01": 0.03})
        >>> r.unrelated_notes("ingest version {old} again")[0]
        'int01: the new text shares only 3% with version 1 — a different interview with the same name? Its 35 codings stay on version 1, out of reports, agreement, export and training; if it is another interview, ingest version 1 again'
        """
        out = []
        for name, old, _new in self.new_versions:
            if name not in self.unrelated:
                continue
            head = (
                f"{name}: the new text shares only {self.unrelated[name]:.0%} with version {old} — a "
                "different interview with the same name?"
            )
            fix = undo.format(old=old)
            left = self.codings_left_on_old.get(name, 0)
            if left:
                stay = "stays" if left == 1 else "stay"
                out.append(
                    f"{head} Its {left} coding{'s' if left != 1 else ''} {stay} on version {old}, out of "
                    f"reports, agreement, export and training; if it is another interview, {fix}"
                )
            else:
                out.append(f"{head} If it is another interview, {fix}")
        return out

    def unlabelled_notes(self) -> list[str]:
        """One line naming the sources stored without any speaker label (and one for those read from
        a table without a speaker column): every paragraph or row, the interviewer's questions too, is a
        turn of unknown role, coded and suggested for.

        >>> print(IngestReport(unlabelled_tables=["t1"]).unlabelled_notes()[0][:75])
        t1: no speaker column found, so every row, the interviewer's questions too,
        """
        out = []
        for names, unit, fix in (
            (
                self.unlabelled,
                "speaker labels found, so every paragraph",
                "start each turn with a speaker label (Interviewer: or I:, Participant: or P:, or a name "
                "like Anna:; see docs/formats.md)",
            ),
            (
                self.unlabelled_tables,
                "speaker column found, so every row",
                "add a column of who speaks, headed speaker, name, interlocutor, participant, who or role "
                "(see docs/formats.md),",
            ),
        ):
            if not names:
                continue
            names = sorted(names)
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            it, them = ("it is an interview", "it") if len(names) == 1 else ("they are interviews", "them")
            out.append(
                f"{shown}: no {unit}, the interviewer's questions too, is text of unknown role that will be "
                f"coded and suggested for; if {it}, {fix} and ingest {them} again"
            )
        return out

    def interviewer_notes(self) -> list[str]:
        """One line per speaker label that was taken as the interviewer by the question rule (not by a
        known label, ``interviewer_names`` or a ``qualflow roles`` override), with the sources and
        how to change it: an essay's ``Question:`` label is the writer's own text."""
        import shlex

        by_label: dict[str, list[str]] = {}
        for name, speakers in sorted(self.guessed_interviewers.items()):
            for speaker in speakers:
                by_label.setdefault(speaker, []).append(name)
        out = []
        for label, names in sorted(by_label.items()):
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            out.append(
                f"{shown}: {label!r} read as the interviewer because it asks the questions (its turns are "
                f"not coded or suggested); if that is wrong: qualflow roles {shlex.quote(names[0])} "
                f"{shlex.quote(label + '=participant')} (for each source), or name the interviewers in "
                "interviewer_names in qualflow.toml for the sources ingested from now on"
            )
        return out

    def carried_note(self, name: str, old: int) -> str:
        """``"; 15 codings carried forward, 2 left on version 1 (see ...)"`` for a new version of
        ``name`` (its previous version ``old``), or ``""`` when it had no codings."""
        carried = self.codings_carried.get(name, 0)
        left = self.codings_left.get(name, [])
        if not carried and not left:
            return ""
        on = sorted({c.version for c in left}) or [old]
        where = f"version {on[0]}" if len(on) == 1 else "versions " + ", ".join(map(str, on))
        hint = " (see `qualflow sources --versions`)" if left else ""
        return f"; {carried} codings carried forward, {len(left)} left on {where}{hint}"


SHARED_BELOW = 0.2
"""A new version that shares less than this fraction of the longer text with the version before gets a
warning: another interview with the same name, more likely than an edit."""


OFFICE_LOCK_PREFIX = "~$"  # Word's owner file: ~$ + the document's name (shortened), junk bytes
OS_JUNK_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})  # Windows Explorer's own files
SHOW_SKIPPED = 10  # skipped files named in the note; the rest are counted


def collect_files(paths: Iterable[Path], skipped: list[Path] | None = None) -> list[Path]:
    """Transcript files named by ``paths``, folders searched recursively.

    In a folder, hidden files and folders (``.DS_Store``, ``.git``), ``failed/`` folders, Office lock
    files (``~$int01.docx``: Word writes one next to a transcript while it is open; it is not a
    document) and Windows' ``Thumbs.db``/``desktop.ini`` are ignored; files of other types
    (``.pages``, ``.doc``) and tables that are no transcript (a ``.csv``/``.tsv``/``.xlsx`` whose header
    has no text column: a codings or metadata CSV) are skipped and, when ``skipped`` is given, appended
    to it so the caller can say so (:func:`skipped_note`). A file named on its own is always read.
    """
    from pipeline.ingest import is_transcript

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if any(part.startswith(".") or part == "failed" for part in rel):
                    continue
                if f.name.startswith(OFFICE_LOCK_PREFIX) or f.name.lower() in OS_JUNK_NAMES:
                    continue
                if not f.is_file():
                    continue
                if is_transcript(f):
                    out.append(f)
                elif skipped is not None:
                    skipped.append(f)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def skipped_note(skipped: Sequence[Path]) -> str:
    """One line naming the files a folder held that qualflow did not read, and why, or ``""``.

    >>> skipped_note([Path("in/a.pages"), Path("in/b.doc"), Path("in/c.pages")])
    'skipped 3 files qualflow cannot read (.pages, .doc): in/a.pages, in/b.doc, in/c.pages; save them as .txt or .docx'
    >>> skipped_note([Path("in/codings.csv"), Path("in/x.doc")])  # doctest: +NORMALIZE_WHITESPACE
    'skipped 1 file qualflow cannot read (.doc): in/x.doc; save it as .txt or .docx; skipped 1 table that is
    not a transcript (no text column): in/codings.csv'
    """
    from pipeline.ingest import SUPPORTED_SUFFIXES

    tables = [f for f in skipped if f.suffix.lower() in SUPPORTED_SUFFIXES]
    others = [f for f in skipped if f.suffix.lower() not in SUPPORTED_SUFFIXES]
    notes: list[str] = []
    if others:
        kinds = ", ".join(dict.fromkeys(f.suffix.lower() or "no suffix" for f in others))
        them = "it" if len(others) == 1 else "them"
        notes.append(
            f"skipped {_counted_files(len(others))} qualflow cannot read ({kinds}): {_shown(others)}; "
            f"save {them} as .txt or .docx"
        )
    if tables:
        what = "1 table" if len(tables) == 1 else f"{len(tables)} tables"
        notes.append(
            f"skipped {what} that {'is' if len(tables) == 1 else 'are'} not a transcript "
            f"(no text column): {_shown(tables)}"
        )
    return "; ".join(notes)


def _counted_files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


def _shown(files: Sequence[Path]) -> str:
    shown = ", ".join(str(f) for f in files[:SHOW_SKIPPED])
    if len(files) > SHOW_SKIPPED:
        shown += f" and {len(files) - SHOW_SKIPPED} more"
    return shown


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
    turns = apply_role_overrides(turns, role_overrides)
    # decided on what the speakers said, not on the speaker labels ("Interviewer:" is English)
    said = " ".join(parsed.text[t.start : t.end] for t in turns)
    language = config.language if config.language != "auto" else detect_language(said or parsed.text)
    from pipeline.domain import sha256_text

    source = Source(
        name=source_name_for(path),
        text=parsed.text,
        turns=turns,
        format=parsed.format,
        language=language,
        content_hash=sha256_text(parsed.text),
    )
    return ParsedFile(
        path=path, name=source.name, file_hash=file_hash(data), source=source, notes=parsed.notes
    )


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
    overrides and place in the interview order, and the codings whose text it keeps
    (:func:`carry_codings`).
    """
    src = pf.source
    old = session.scalar(select(SourceRow).where(SourceRow.name == pf.name, SourceRow.is_current))
    if old is not None and (old.file_hash == pf.file_hash or old.text_hash == src.content_hash):
        report.unchanged.append(pf.name)
        return None
    report.reader_notes.extend(pf.notes)
    version = 1
    meta = dict(src.metadata)
    overrides: dict[str, str] = {}
    order: int | None = None
    if old is not None:
        old.is_current = False
        version = (
            session.scalar(select(func.max(SourceRow.version)).where(SourceRow.name == pf.name)) or 0
        ) + 1
        report.new_versions.append((pf.name, old.version, version))
        from pipeline.textdiff import shared_shingles

        share = shared_shingles(old.text, src.text)  # another interview under the same name?
        if share < SHARED_BELOW:
            report.unrelated[pf.name] = share
        meta = {**(old.meta or {}), **meta}
        overrides = dict(old.role_override or {})
        order = old.ingest_order
        session.flush()
    src.turns = apply_role_overrides(src.turns, overrides)
    guessed = [s for s in guessed_interviewers(src.turns, config.interviewer_names) if s not in overrides]
    if guessed:
        report.guessed_interviewers[pf.name] = guessed
    if not any(t.speaker for t in src.turns):
        from pipeline.ingest.tables import TABLE_SUFFIXES

        is_table = f".{src.format}" in TABLE_SUFFIXES
        (report.unlabelled_tables if is_table else report.unlabelled).append(pf.name)
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
    else:
        carry_codings(session, row, report)
    return row


def carry_codings(session: Session, new: SourceRow, report: IngestReport) -> None:
    """Move to the new version ``new`` every active coding of an older version of its source whose
    coded text ``new`` has unchanged, at its new offsets (:class:`pipeline.textdiff.SpanMap`).

    Older versions are tried newest first, so codings left behind by an earlier edit come back when
    the text does (a reverted file). A coding identical to one already carried (same span, code and
    coder) stays where it is. The others stay on their version and are listed in ``report``.
    Suggestions and decisions stay with the segments they were made on; the codings an accepted
    suggestion made are carried like any other.
    """
    from pipeline.textdiff import SpanMap

    carried = 0
    left: list[LeftCoding] = []
    taken: set[tuple[int, int, str, int]] = set()
    settled: set[tuple[int, int, int]] = set()  # (round, start, end) of adjudications moved already
    older = session.scalars(
        select(SourceRow)
        .where(SourceRow.name == new.name, SourceRow.id != new.id)
        .order_by(SourceRow.version.desc())
    ).all()
    for old in older:
        rows = session.execute(
            select(CodingRow, CoderRow.name)
            .join(CoderRow, CodingRow.coder_id == CoderRow.id)
            .where(CodingRow.source_id == old.id, CodingRow.active)
            .order_by(CodingRow.start, CodingRow.id)
        ).all()
        settlements = session.scalars(
            select(AdjudicationRow).where(AdjudicationRow.source_id == old.id)
        ).all()
        if not rows and not settlements:
            continue
        spans = SpanMap(old.text, new.text)
        # a lead's settlement of a round's unit follows the consensus codings it made to the new text
        for adj in settlements:
            moved = spans.map(adj.start, adj.end)
            if moved is not None and (adj.round_id, *moved) not in settled:
                settled.add((adj.round_id, *moved))
                adj.source_id, adj.start, adj.end = new.id, moved[0], moved[1]
        for coding, coder in rows:
            span = spans.map(coding.start, coding.end)
            if span is not None and (key := (*span, coding.code, coding.coder_id)) not in taken:
                taken.add(key)
                coding.source_id, coding.start, coding.end = new.id, span[0], span[1]
                carried += 1
                continue
            text = old.text[coding.start : coding.end]
            left.append(LeftCoding(old.version, coding.start, coding.end, coding.code, coder, text))
    if carried:
        report.codings_carried[new.name] = carried
    if left:
        report.codings_left_on_old[new.name] = len(left)
        report.codings_left[new.name] = sorted(left, key=lambda c: (c.version, c.start, c.end))


def ingest(
    project: Project,
    paths: Sequence[Path],
    *,
    metadata_csv: Path | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest transcript files (or folders) in one transaction; any bad file stops it before writing."""
    from pipeline.ingest import READERS

    skipped: list[Path] = []
    files = collect_files(paths, skipped)
    if not files:
        also = f"; {skipped_note(skipped)}" if skipped else ""
        raise InputError(
            f"no transcript files found in {[str(p) for p in paths]} (looked for {' '.join(READERS)}){also}"
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
    failed: list[InputError] = []
    for f in files:
        if progress:
            progress(f.name)
        try:
            pf = parse_file(f, project.config)
        except InputError as exc:  # read on: every bad file is named at once, and nothing is stored
            failed.append(exc)
            continue
        pf.source.metadata.update(metadata.get(pf.name, {}))
        parsed.append(pf)
    if failed:
        raise batch_error(failed)
    report = IngestReport(skipped=skipped)
    with project.store.transaction() as session:
        for pf in parsed:
            store_parsed(session, pf, project.config, report)
        if metadata:
            apply_metadata(session, metadata, origin=str(metadata_csv))
    return report


RECODE_HINT = "re-save them as UTF-8 (Save As in the editor, or iconv -f WINDOWS-1252 -t UTF-8)"


def batch_error(failed: Sequence[InputError]) -> InputError:
    """One error for every file of a batch that could not be read: a single file's own message, or
    one line with the count that names the files, the undecodable ones (often a folder of Windows
    files) together under one fix.

    >>> from pipeline.ingest.decode import UndecodableError
    >>> def bad(name):
    ...     err = UndecodableError(f"{name}: not UTF-8 ..."); err.path, err.detail = name, "byte 0x93 at offset 3"
    ...     return err
    >>> print(batch_error([bad("a.txt"), bad("b.txt")]))  # doctest: +NORMALIZE_WHITESPACE
    2 files are not UTF-8 or UTF-16 text, so nothing was ingested: a.txt (byte 0x93 at offset 3), b.txt
    (byte 0x93 at offset 3); re-save them as UTF-8 (Save As in the editor, or iconv -f WINDOWS-1252 -t UTF-8)
    """
    from pipeline.ingest.decode import UndecodableError

    if len(failed) == 1:
        return failed[0]
    undecodable = [e for e in failed if isinstance(e, UndecodableError)]
    others = [str(e) for e in failed if not isinstance(e, UndecodableError)]
    listed = ", ".join(f"{e.path} ({e.detail})" for e in undecodable)
    if not others:
        return InputError(
            f"{len(failed)} files are not UTF-8 or UTF-16 text, so nothing was ingested: {listed}; {RECODE_HINT}"
        )
    if len(undecodable) == 1:
        others.insert(0, str(undecodable[0]))
    elif undecodable:
        others.insert(0, f"{len(undecodable)} are not UTF-8 or UTF-16 text: {listed}; {RECODE_HINT}")
    return InputError(f"{len(failed)} files cannot be read, so nothing was ingested: " + "; ".join(others))


def apply_metadata(session: Session, metadata: dict[str, dict[str, str]], *, origin: str) -> None:
    rows = {r.name: r for r in current_sources(session)}
    unknown = sorted(set(metadata) - set(rows))
    if unknown:
        raise InputError(
            f"{origin}: unknown source(s) {unknown}; ingest them first or fix the `source` column"
        )
    for name, meta in metadata.items():
        rows[name].meta = {**(rows[name].meta or {}), **meta}


def unsegmented_sources(project: Project) -> list[str]:
    """The current sources with no segment of the configured ``[segmentation]`` scheme, by name: the
    settings were changed after they were ingested, so suggesting, agreement and evaluation do not see
    them until :func:`resegment` (``qualflow resegment``) makes their segments."""
    key = scheme_key(project.config.segmentation)
    with project.store.transaction() as session:
        segmented = set(
            session.scalars(select(SegmentRow.source_id).where(SegmentRow.scheme == key).distinct())
        )
        return sorted(row.name for row in current_sources(session) if row.id not in segmented)


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
