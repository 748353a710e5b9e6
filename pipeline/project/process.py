"""Incremental processing of new interview files, one file per transaction.

The ``process_interviews`` flow (``flows/process.py``) calls these functions, one per task:

1. :func:`find_new_files` — transcript files in the inbox (or given paths) whose content hash is not
   yet recorded as processed;
2. :func:`parse_files` — read each one; a file that cannot be read becomes a :class:`FileFailure`;
3. :func:`quarantine` — move a failed file to ``inbox/failed/`` with a ``.error.txt`` saying why;
4. :func:`load_embedder`, then :func:`ingest_files` — the embedding model loaded; one transaction
   per file: the source and its segments;
5. :func:`embed_sources` — the new segments' vectors, in one batch (cached);
6. :func:`cold_start_suggester` / :func:`champion_model_row` — the model that suggests;
7. :func:`suggest_for_files` — one transaction per file: its suggestions and the
   :class:`~pipeline.store.schema.ProcessedFileRow` that marks it done.

A crash at any point is finished by the next run with nothing stored twice: a file is skipped only
once it is marked done; a file ingested but not marked is parsed again and found ``unchanged`` by
:func:`~pipeline.project.store_parsed` (same bytes, same name: no new source or segment), and
suggestions are unique per (segment, code, model version, kind) and skipped when present.

8. :func:`discover_if_due` — candidate open codes over the whole corpus, when files were added since
   the last discovery.

Nothing here imports prefect or mlflow.

One module, one concern: every step of ``process_interviews`` (find, parse, store, embed,
suggest, discover, quarantine) in the order the flow runs them, each one call for a flow task.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.domain import sha256_text
from pipeline.errors import ConfigError, InputError, QualflowError
from pipeline.project.core import Project
from pipeline.project.ingest import IngestReport, ParsedFile, collect_files, file_hash, parse_file
from pipeline.store.queries import require_codebook
from pipeline.store.schema import ModelVersionRow, ProcessedFileRow, SourceRow
from pipeline.text import counted

if TYPE_CHECKING:
    from models.base import BaseSuggester
    from pipeline.config import ProjectConfig
    from pipeline.embed.base import Embedder
    from pipeline.project.corpus import Corpus
    from pipeline.project.discover import DiscoverReport
    from pipeline.project.suggest import Ranking

COLD_START_MODEL = "qualflow-prototype"
DISCOVER_MARK = "discover_mark.json"

Vectors = dict[str, npt.NDArray[np.float32]]


# --------------------------------------------------------------------------- finding and reading


@dataclass(frozen=True)
class NewFile:
    """A transcript file not processed yet: its path and the SHA-256 of its bytes."""

    path: Path
    file_hash: str


@dataclass(frozen=True)
class FileFailure:
    """A file that could not be processed, and why (one line)."""

    path: Path
    file_hash: str
    reason: str


@dataclass
class ParseBatch:
    parsed: list[ParsedFile] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)


def find_new_files(project: Project, paths: Sequence[Path] | None = None) -> list[NewFile]:
    """Transcript files under ``paths`` (default: the project's ``inbox/``) not yet processed.

    A file is "processed" when a ``processed_files`` row with its content hash says ``done``; a file
    whose bytes appear twice in the batch is taken once. Files in ``failed/`` folders, hidden files and
    OS junk are ignored; a file of a type qualflow cannot read (``.pages``, ``.doc``), and a table that
    is no transcript (a codings CSV: no text column), is taken too, so that it fails like any
    unreadable file (moved to ``inbox/failed/`` with the reason) instead of lying in the inbox unseen.
    """
    skipped: list[Path] = []
    if paths:
        files = collect_files(paths, skipped)
    elif project.inbox.is_dir():
        files = collect_files([project.inbox], skipped)
    else:
        return []
    files += skipped
    with project.store.transaction() as session:
        done = set(
            session.scalars(select(ProcessedFileRow.file_hash).where(ProcessedFileRow.status == "done"))
        )
    out: list[NewFile] = []
    seen: set[str] = set()
    for f in files:
        digest = file_hash(f.read_bytes())
        if digest in done or digest in seen:
            continue
        seen.add(digest)
        out.append(NewFile(f, digest))
    return out


def check_ready(project: Project, paths: Sequence[Path] | None = None) -> list[NewFile]:
    """:func:`find_new_files`, or the error that stops the run before anything is stored: a path
    that does not exist, or new files and no codebook to suggest from. ``qualflow process`` calls
    it before any flow starts, and the flow's first step is this call, so both say the same."""
    files = find_new_files(project, paths)
    if files:
        with project.store.transaction() as session:
            require_codebook(session)
    return files


def parse_files(project: Project, files: Sequence[NewFile]) -> ParseBatch:
    """Read every file; one that cannot be read is reported as a failure and the others go on.

    A reader error (:class:`~pipeline.errors.QualflowError`) keeps its message; any other exception
    is reported with its type name, so a reader bug on an odd file is quarantined, not swallowed.
    Two files of the batch that would be the same source (same name stem) fail the second one.
    """
    return collect_parsed([parse_new_file(nf, project.config) for nf in files])


def parse_new_file(nf: NewFile, config: ProjectConfig) -> ParsedFile | FileFailure:
    """Read one file (no database: a Dask worker can run it); a file that cannot be read is a failure."""
    try:
        return parse_file(nf.path, config)
    except QualflowError as exc:
        return FileFailure(nf.path, nf.file_hash, str(exc))
    except Exception as exc:  # a reader bug on one file must not stop the batch
        return FileFailure(nf.path, nf.file_hash, f"{nf.path}: {type(exc).__name__}: {exc}")


def collect_parsed(results: Sequence[ParsedFile | FileFailure]) -> ParseBatch:
    """:func:`parse_new_file`'s results, in order, as a batch: of two files that would be the same
    source (same name stem) the second fails."""
    batch = ParseBatch()
    names: dict[str, Path] = {}
    for pf in results:
        if isinstance(pf, FileFailure):
            batch.failures.append(pf)
            continue
        if pf.name in names:
            batch.failures.append(
                FileFailure(
                    pf.path,
                    pf.file_hash,
                    f"{pf.path} and {names[pf.name]} would both be source {pf.name!r} in one batch; "
                    "rename one of them",
                )
            )
            continue
        names[pf.name] = pf.path
        batch.parsed.append(pf)
    return batch


def quarantine(project: Project, failure: FileFailure) -> Path:
    """Move a failed file to ``inbox/failed/`` and write ``<file>.error.txt`` beside it.

    A file outside the inbox (passed as a path) stays where it is; its ``.error.txt`` still goes to
    ``inbox/failed/``. The failure is recorded in ``processed_files`` (status ``failed``).

    Returns
    -------
    Path of the ``.error.txt`` file.
    """
    failed_dir = project.inbox / "failed"
    failed_dir.mkdir(parents=True, exist_ok=True)
    src = failure.path
    inside_inbox = src.resolve().is_relative_to(project.inbox.resolve())
    dest = _free_name(failed_dir / src.name) if inside_inbox else src
    error_path = failed_dir / f"{dest.name}.error.txt"
    when = datetime.now(UTC).isoformat(timespec="seconds")
    error_path.write_text(
        f"{failure.reason}\n\nfile: {src}\nsha256: {failure.file_hash}\nfailed at: {when}\n"
        "Fix the file (or remove it) and put it back in the inbox to try again.\n",
        encoding="utf-8",
    )
    if inside_inbox and src.exists():
        shutil.move(str(src), str(dest))
    with project.store.transaction() as session:
        row = session.scalar(select(ProcessedFileRow).where(ProcessedFileRow.file_hash == failure.file_hash))
        if row is None:
            session.add(
                ProcessedFileRow(
                    file_hash=failure.file_hash, file_name=str(src), status="failed", detail=failure.reason
                )
            )
        elif row.status != "done":
            row.status, row.detail, row.file_name = "failed", failure.reason, str(src)
    return error_path


def _was_in_inbox(path: str, error_file: str) -> bool:
    """Whether :func:`quarantine` moved the failed file ``path``: it was inside the inbox, the folder
    above the ``failed/`` folder its ``error_file`` was written to."""
    return Path(path).resolve().is_relative_to(Path(error_file).parent.parent.resolve())


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(1, 10_000):
        cand = path.with_name(f"{path.stem}.{i}{path.suffix}")
        if not cand.exists():
            return cand
    raise InputError(f"{path.parent}: too many failed copies of {path.name}; empty the folder")


# --------------------------------------------------------------------------- ingest, then vectors


@dataclass(frozen=True)
class IngestedFile:
    """A parsed file written to the store. ``status``: ``added``, ``new-version`` or ``unchanged``
    (its exact bytes were ingested before: by ``qualflow ingest``, or by a run that crashed)."""

    path: Path
    name: str
    file_hash: str
    status: Literal["added", "new-version", "unchanged"]
    note: str = ""  # a new version: what became of its codings (IngestReport.carried_note)
    # a speaker taken as the interviewer by guess, no speakers at all, or a new version that looks like
    # another interview (IngestReport.interviewer_notes, unlabelled_notes, unrelated_notes): logged
    warning: str = ""


def ingest_parsed(project: Project, pf: ParsedFile) -> IngestedFile:
    """Store one parsed file as a source with its segments (one transaction; nothing when unchanged)."""
    from pipeline.project.ingest import store_parsed

    with project.store.transaction() as session:
        report = IngestReport()
        row = store_parsed(session, pf, project.config, report)
    status: Literal["added", "new-version", "unchanged"]
    status = "unchanged" if row is None else ("new-version" if report.new_versions else "added")
    note = "".join(report.carried_note(name, old) for name, old, _ in report.new_versions)
    unrelated = report.unrelated_notes(
        "`qualflow ingest` the transcript of version {old} again (its codings come back with it), then "
        "rename the new file and put it in the inbox"
    )
    warning = "; ".join(
        report.interviewer_notes() + report.unlabelled_notes() + unrelated + report.reader_notes
    )
    return IngestedFile(pf.path, pf.name, pf.file_hash, status, note.removeprefix("; "), warning)


def ingest_files(project: Project, parsed: Sequence[ParsedFile]) -> list[IngestedFile]:
    """:func:`ingest_parsed` for every file, one transaction each.

    A file that parsed is not refused here for its content: what can fail now is the project's
    (an unknown ``language`` in qualflow.toml, the database), so the error stops the run instead of
    quarantining every file of the batch.
    """
    return [ingest_parsed(project, pf) for pf in parsed]


def load_embedder(project: Project, encoder: str | None = None) -> Embedder:
    """The project's embedder with its model loaded now.

    ``encoder``: the champion's own encoder (``sentence-transformers:<folder>`` of a fine-tuned
    model, see ``flows.tracking.RegisteredModel.encoder``) instead of ``[embedding] model``; either
    way sources in a language the model does not cover are routed (see
    :mod:`pipeline.project.embedding`).
    """
    from pipeline.project.embedding import project_embedder

    embedder = project_embedder(project, progress=False, base_spec=encoder)
    embedder.load()
    return embedder


def embed_sources(
    project: Project, embedder: Embedder, names: Sequence[str], *, context: bool = False
) -> Vectors:
    """Embed, in one batch, the suggestable segments of the current sources ``names`` and, with
    ``context`` (for a suggester that :meth:`~models.base.BaseSuggester.wants_context`), the text
    before each (the previous turn, :func:`~pipeline.project.corpus.context_texts`). A suggester that
    reads windows needs nothing more: they are composed from the segments' vectors
    (:func:`~pipeline.project.corpus.window_vectors`).

    Returns
    -------
    dict mapping segment text to its vector, ndarray of shape (dim,), float32.
    """
    return encode_texts(embedder, texts_to_embed(project, names, context=context))


def texts_to_embed(project: Project, names: Sequence[str], *, context: bool = False) -> list[str]:
    """The distinct texts :func:`embed_sources` embeds for the current sources ``names``, in order."""
    from pipeline.project.corpus import context_texts
    from pipeline.store.queries import load_segments

    if not names:
        return []
    wanted = set(names)
    with project.store.transaction() as session:
        rows = [(r, n) for r, n in load_segments(session, project.config) if n in wanted]
        every = (
            load_segments(session, project.config, include_interviewer=True, sources=sorted(wanted))
            if context
            else []
        )
        before = context_texts(every) if context else {}
    texts = list(dict.fromkeys([r.text for r, _ in rows] + [before.get(r.id, "") for r, _ in rows]))
    return [t for t in texts if t]


def encode_texts(embedder: Embedder, texts: Sequence[str]) -> Vectors:
    """``texts`` embedded in one batch, as {text: vector} (no database: a Dask worker can run it)."""
    if not texts:
        return {}
    X = embedder.encode(list(texts))
    return {t: X[i] for i, t in enumerate(texts)}


def split_evenly(items: Sequence[str], parts: int) -> list[list[str]]:
    """``items`` in at most ``parts`` contiguous, non-empty chunks of near-equal size, in order.

    >>> split_evenly(["a", "b", "c", "d", "e"], 2)
    [['a', 'b', 'c'], ['d', 'e']]
    >>> split_evenly(["a"], 3)
    [['a']]
    """
    n = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            out.append(list(items[start:end]))
        start = end
    return out


# --------------------------------------------------------------------------- the suggesting model


@dataclass(frozen=True)
class ModelChoice:
    """The model that suggests, and its ``model_versions`` row id (its label is ``name@version``)."""

    model: BaseSuggester
    model_row_id: int
    label: str
    base_dim: int | None = None
    """A champion trained before the project had sources in ``new_languages``: it reads the first
    ``base_dim`` columns of the routed vectors (the project's own model's block), and the segments of
    those languages get no suggestion from it (:func:`suggest_for_files`)."""
    new_languages: tuple[str, ...] = ()


def codebook_note(project: Project, choice: ModelChoice) -> str | None:
    """A line for the user when the suggesting model knows another set of codes than the current
    codebook (a champion trained before codes were added or removed), else ``None``: codes added since
    get no suggestion until a retrain, and removed ones are not queued (:func:`queue_suggestions`)."""
    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
    known = {str(c) for c in choice.model.classes_}
    every = {c.name for c in codebook.codes}
    added = [c.name for c in codebook.codes if c.is_codable and c.name not in known]
    gone = sorted(known - every)
    if not added and not gone:
        return None

    def listed(names: list[str]) -> str:
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    parts = []
    if added:
        parts.append(
            f"{counted(len(added), 'code')} added since ({listed(added)}) {'gets' if len(added) == 1 else 'get'} no suggestions"
        )
    if gone:
        parts.append(
            f"{counted(len(gone), 'code')} the codebook no longer has ({listed(gone)}) {'is' if len(gone) == 1 else 'are'} not queued"
        )
    return (
        f"{choice.label} was trained on another version of the codebook: {'; '.join(parts)}; "
        "retrain with `qualflow train` to suggest with the current codebook"
    )


def new_language_note(choice: ModelChoice) -> str:
    """The line for a run whose champion was trained before the project had sources in
    ``choice.new_languages``: those get no suggestion until a retrain (``--force``: the new model cannot
    be compared with the old one on the same vectors)."""
    from pipeline.embed.languages import language_name

    langs = ", ".join(language_name(lg) for lg in sorted(choice.new_languages))
    return (
        f"the champion {choice.label} was trained before the project had sources in {langs}: it suggests "
        f"for the other sources as before, and segments in {langs} get no suggestion until `qualflow train "
        "--force` trains and promotes a model on the new vectors"
    )


def cold_start_suggester(project: Project, embedder: Embedder) -> ModelChoice:
    """The zero-shot prototype suggester, used while no ``champion`` model is registered.

    Its prototypes are the embedded code descriptions alone (no coding is used), so it is a pure
    function of the codebook and the embedder: its version is a hash of both, and a re-run after a
    crash suggests with the same model version.
    """
    from pipeline.codebook import codebook_hash
    from pipeline.project.suggest import build_suggester, register_model_version

    with project.store.transaction() as session:
        cb_row, codebook = require_codebook(session)
        model = build_suggester("prototype", codebook, embedder)
        E = np.asarray(model.get_params()["code_embeddings"], dtype=np.float32)
        cast(Any, model).fit(E, None)  # rows only fix the dimension: Y=None is the cold start
        version = sha256_text(f"{codebook_hash(codebook)}|{embedder.fingerprint}")[:12]
        row = register_model_version(
            session,
            name=COLD_START_MODEL,
            suggester="prototype",
            params=model.get_params(),
            embedding=embedder.fingerprint,
            codebook_version_id=cb_row.id,
            version=version,
        )
        return ModelChoice(model, row.id, row.label)


def champion_model_row(
    project: Project,
    model: BaseSuggester,
    *,
    name: str,
    version: str,
    run_id: str | None,
    embedding: str,
    embedder: Embedder,
) -> ModelChoice:
    """The ``model_versions`` row of a registered champion (created if the registry has a version the
    project database does not know yet).

    A champion trained while every source was in its model's languages, now that the project has
    sources in others (routed to their own model or the n-gram fallback), suggests on its model's block
    of the vectors (:attr:`ModelChoice.base_dim`) and not for the new languages.

    Raises
    ------
    ConfigError
        The champion was trained on another embedding model than the project's ``[embedding]``.
    """
    from pipeline.project.suggest import register_model_version

    space: str = embedder.fingerprint
    base_dim: int | None = None
    new_languages: tuple[str, ...] = ()
    if embedding and embedding != embedder.fingerprint:
        from pipeline.embed.languages import LanguageRoutedEmbedder, why_embedding_changed

        if not (isinstance(embedder, LanguageRoutedEmbedder) and embedding == embedder.base.fingerprint):
            raise ConfigError(
                f"the champion {name}@{version} cannot suggest on this project's vectors: "
                f"{why_embedding_changed(embedding, embedder.fingerprint)}; run `qualflow train --force` to "
                "train and promote a new model"
            )
        # trained while every source was in its model's languages: it still suggests for those,
        # reading the model's own block of the routed vectors; the new languages wait for a retrain
        space, base_dim, new_languages = embedding, embedder.dims()[0], tuple(embedder.routes)
    with project.store.transaction() as session:
        cb_row, _ = require_codebook(session)
        row = register_model_version(
            session,
            name=name,
            suggester=type(model).__name__,
            params=model.get_params(),
            embedding=space,
            codebook_version_id=cb_row.id,
            version=version,
            mlflow_run_id=run_id,
        )
        return ModelChoice(model, row.id, row.label, base_dim=base_dim, new_languages=new_languages)


# --------------------------------------------------------------------------- suggesting for one file


@dataclass(frozen=True)
class FileOutcome:
    """What processing one file did (``status`` of :class:`IngestedFile`, or ``skipped`` when a
    retried task finds the file done already)."""

    path: Path
    name: str
    status: Literal["added", "new-version", "unchanged", "skipped"]
    segments: int = 0
    suggestions: int = 0  # put in the queue (pending): not those a human coding already covers
    note: str = ""  # a new version: its codings carried forward or left on the old one


def suggest_for_files(
    project: Project,
    files: Sequence[IngestedFile],
    vectors: Mapping[str, npt.NDArray[np.float32]],
    choice: ModelChoice,
    k: int,
    *,
    after_each: Callable[[int], None] | None = None,
    block_of: Callable[[str], int] | None = None,
) -> list[FileOutcome]:
    """Queue suggestions for the segments of ingested files and mark each file done.

    The model scores every segment of the batch at once; each file's suggestions and its
    ``processed_files`` row are then written in one transaction per file, in order, so a crash loses
    at most the file being written. A file already marked done (a retried task whose first attempt
    committed it) is ``skipped``.

    Parameters
    ----------
    files : sequence of IngestedFile
    vectors : mapping of segment text to ndarray of shape (dim,)
        From :func:`embed_sources`; every suggestable segment text of the files must be there (and,
        for a model that reads the previous turn, their context: ``embed_sources(..., context=True)``;
        a missing one counts as no context; windows are composed from the segments' vectors).
    choice : ModelChoice
        The model that suggests.
    k : int
        Suggestions per segment at most.
    after_each : callable, optional
        Called with n once the n-th file is written (the flow's crash test uses it).
    block_of : callable, optional
        Text -> its block of the vector space (the embedder's ``block_index`` when languages are
        routed): a language the model scores all alike gets no suggestion (:func:`rank_codes`).
    """
    from pipeline.project.corpus import load_corpus, window_vectors
    from pipeline.project.suggest import rank_codes

    hashes = [f.file_hash for f in files]
    with project.store.transaction() as session:
        done = set(
            session.scalars(
                select(ProcessedFileRow.file_hash).where(
                    ProcessedFileRow.file_hash.in_(hashes), ProcessedFileRow.status == "done"
                )
            )
        )
        todo = sorted({f.name for f in files if f.file_hash not in done})
        corpus = load_corpus(session, project, sources=todo) if todo else None
    rows_of: dict[str, list[int]] = {}
    ranking = None
    if corpus is not None and corpus.texts:
        for i, name in enumerate(corpus.source_names):
            rows_of.setdefault(name, []).append(i)
        missing = [i for i, t in enumerate(corpus.texts) if t not in vectors]
        if missing:
            first = corpus.texts[missing[0]]
            raise InputError(
                f"{corpus.source_names[missing[0]]}: {counted(len(missing), 'segment')} {'was' if len(missing) == 1 else 'were'} not embedded (first: "
                f"{first[:60]!r}); the segmentation settings changed during the run: run it again"
            )
        X = np.stack([vectors[t] for t in corpus.texts]).astype(np.float32)
        X_prev = None
        if choice.model.wants_context():
            zero = np.zeros(X.shape[1], dtype=np.float32)
            X_prev = np.stack([vectors.get(t, zero) for t in corpus.prev_texts]).astype(np.float32)
        blocks = None if block_of is None else [block_of(t) for t in corpus.texts]
        if choice.base_dim is not None:  # a champion from before the new languages: its model's block
            X = np.ascontiguousarray(X[:, : choice.base_dim])
            X_prev = None if X_prev is None else np.ascontiguousarray(X_prev[:, : choice.base_dim])
        X_window = window_vectors(X, corpus.positions) if choice.model.wants_window() else None
        ranking = rank_codes(
            choice.model,
            X,
            corpus.texts,
            k,
            X_prev=X_prev,
            prev_texts=corpus.prev_texts,
            prev2_texts=corpus.prev2_texts,
            X_window=X_window,
            groups=corpus.groups,
            blocks=None if choice.base_dim is not None else blocks,
        )
        if choice.base_dim is not None and blocks is not None:
            for i, b in enumerate(blocks):
                if b != 0:  # a language the champion never saw: no suggestion until a retrain
                    ranking.picks[i] = []
    out: list[FileOutcome] = []
    for f in files:
        if f.file_hash in done or corpus is None:
            out.append(FileOutcome(f.path, f.name, "skipped"))
            continue
        rows = rows_of.get(f.name, [])
        out.append(
            _queue_file(
                project,
                f,
                corpus.subset(rows),
                None if ranking is None else ranking.subset(rows),
                choice,
            )
        )
        if after_each is not None:
            after_each(len(out))
    return out


def _queue_file(
    project: Project, f: IngestedFile, corpus: Corpus, ranking: Ranking | None, choice: ModelChoice
) -> FileOutcome:
    """One file's suggestions and its ``processed_files`` row, in one transaction."""
    from pipeline.project.suggest import queue_suggestions

    with project.store.transaction() as session:
        prev = session.scalar(select(ProcessedFileRow).where(ProcessedFileRow.file_hash == f.file_hash))
        if prev is not None and prev.status == "done":  # done by a concurrent run meanwhile
            return FileOutcome(f.path, f.name, "skipped")
        n_sugg = 0
        if corpus.texts and ranking is not None:
            model_row = session.get(ModelVersionRow, choice.model_row_id)
            if model_row is None:
                raise ConfigError(f"model version id {choice.model_row_id} is not in the project database")
            cfg = project.config.suggester
            n_sugg = queue_suggestions(
                session,
                model=choice.model,
                model_row=model_row,
                corpus=corpus,
                ranking=ranking,
                merge=cfg.merge_passages,
                max_passage_segments=cfg.max_passage_segments,
                cover=project.config.review.policy != "independent",
            ).queued
        source_id = _current_source_id(session, f.name)
        detail = f"{f.status}; {len(corpus.texts)} segments; {n_sugg} suggestions by {choice.label}"
        if prev is None:
            session.add(
                ProcessedFileRow(
                    file_hash=f.file_hash,
                    file_name=str(f.path),
                    source_id=source_id,
                    status="done",
                    detail=detail,
                )
            )
        else:  # it failed before and now succeeds
            prev.status, prev.detail, prev.source_id, prev.file_name = "done", detail, source_id, str(f.path)
        return FileOutcome(f.path, f.name, f.status, len(corpus.texts), n_sugg, f.note)


def _current_source_id(session: Session, name: str) -> int | None:
    return session.scalar(select(SourceRow.id).where(SourceRow.name == name, SourceRow.is_current))


# --------------------------------------------------------------------------- discovery


def _discover_state(project: Project) -> tuple[int | None, int | None]:
    with project.store.transaction() as session:
        high = session.scalar(select(func.max(ProcessedFileRow.id)).where(ProcessedFileRow.status == "done"))
    mark_path = project.cache_dir / DISCOVER_MARK
    mark = None
    if mark_path.exists():
        mark = json.loads(mark_path.read_text(encoding="utf-8")).get("processed_high_water")
    return high, mark


def discover_due(project: Project) -> bool:
    """Whether files were processed since the last open-code discovery (see :func:`discover_if_due`)."""
    high, mark = _discover_state(project)
    return high is not None and high != mark


def discover_if_due(project: Project, embedder: Embedder, model: BaseSuggester) -> DiscoverReport | None:
    """Run open-code discovery when files were processed since the last discovery; else ``None``.

    The high-water mark (largest ``processed_files`` id covered) is kept in
    ``.qualflow/discover_mark.json`` and written after discovery commits; a crash in between only
    means discovery runs again, and it replaces its pending candidates, so there is still one copy.
    """
    from pipeline.project.discover import discover

    high, mark = _discover_state(project)
    if high is None or high == mark:
        return None
    report = discover(project, embedder=embedder, model=model)
    project.cache_dir.mkdir(parents=True, exist_ok=True)
    mark_path = project.cache_dir / DISCOVER_MARK
    tmp = mark_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"processed_high_water": high}), encoding="utf-8")
    tmp.replace(mark_path)
    return report


# --------------------------------------------------------------------------- the run's report


@dataclass
class ProcessReport:
    """What a ``process_interviews`` run did: files processed and files that failed (with why)."""

    model: str = ""
    processed: list[FileOutcome] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # path, reason, error file
    candidates: int | None = None  # None: discovery not run (nothing new)
    notes: list[str] = field(default_factory=list)  # e.g. sources in a language the model does not cover

    @property
    def suggestions(self) -> int:
        return sum(o.suggestions for o in self.processed)

    def lines(self) -> list[str]:
        """The report as lines for a terminal."""
        if not self.processed and not self.failed:
            return ["nothing new to process"]
        out = [
            f"{counted(len(self.processed), 'file')} processed, {counted(self.suggestions, 'suggestion')} queued"
            + (f" by {self.model}" if self.model else "")
        ]
        out += [
            f"  {o.name}: {o.status}, {o.segments} segments, {o.suggestions} suggestions"
            + (f"; {o.note}" if o.note else "")
            for o in self.processed
        ]
        out += [f"note: {n}" for n in self.notes]
        if self.candidates is not None:
            out.append(f"{counted(self.candidates, 'candidate open code')} proposed")
        if self.failed:
            moved = [_was_in_inbox(path, err) for path, _, err in self.failed]
            if all(moved):
                out.append(
                    f"{counted(len(self.failed), 'file')} failed and {'was' if len(self.failed) == 1 else 'were'} moved to inbox/failed/:"
                )
            else:  # a file given as a path outside the inbox stays where it is (quarantine)
                out.append(
                    "1 file failed; it stays where it is:"
                    if len(self.failed) == 1
                    else f"{len(self.failed)} files failed; those from the inbox were moved to inbox/failed/, "
                    "the others stay where they are:"
                )
            out += [
                f"  {reason} (see {err})" + ("" if was_moved else "; left in place")
                for (_, reason, err), was_moved in zip(self.failed, moved, strict=True)
            ]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "processed": [
                {
                    "path": str(o.path),
                    "name": o.name,
                    "status": o.status,
                    "segments": o.segments,
                    "suggestions": o.suggestions,
                    "codings": o.note,
                }
                for o in self.processed
            ],
            "failed": [{"path": p, "reason": r, "error_file": e} for p, r, e in self.failed],
            "candidates": self.candidates,
            "notes": list(self.notes),
        }
