"""The ``process_interviews`` flow: new files in the inbox -> suggestions in the coders' queue.

Each task is one call into :mod:`pipeline.project.process` (or :mod:`flows.tracking`); only I/O tasks
retry. Idempotent: a file is processed in one transaction and recorded by content hash, so a re-run
(after success or a crash) processes nothing twice. See docs/flows.md.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows import tracking
from flows.retries import io_task
from pipeline.project import process as processing
from pipeline.project.core import Project
from pipeline.project.ingest import ParsedFile
from pipeline.project.process import (
    FileFailure,
    IngestedFile,
    ModelChoice,
    NewFile,
    ParseBatch,
    ProcessReport,
    Vectors,
)

if TYPE_CHECKING:
    from pipeline.config import ProjectConfig
    from pipeline.embed.base import Embedder
    from pipeline.project.discover import DiscoverReport
    from pipeline.project.process import FileOutcome

#: Test-only hook (documented in docs/flows.md): after this many files are marked done the process
#: kills itself with SIGKILL, to test that a crashed run is finished by the next one.
CRASH_AFTER_ENV = "QUALFLOW_TEST_CRASH_AFTER"


@io_task("open-project")
def open_project(project_dir: str) -> Project:
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    return Project.open(Path(project_dir))


@io_task("find-new-files")
def find_new_files(project: Project, paths: list[str] | None) -> list[NewFile]:
    return processing.check_ready(project, [Path(p) for p in paths] if paths else None)


@task(name="parse-files", cache_policy=NO_CACHE)
def parse_files(project: Project, files: list[NewFile]) -> ParseBatch:
    return processing.parse_files(project, files)


@task(name="parse-file", cache_policy=NO_CACHE)
def parse_one(new_file: NewFile, config: ProjectConfig) -> ParsedFile | FileFailure:
    """One file read (no database): what a Dask worker runs for each new file."""
    return processing.parse_new_file(new_file, config)


@io_task("quarantine-failed-file")
def quarantine(project: Project, failure: FileFailure) -> Path:
    return processing.quarantine(project, failure)


@task(name="make-embedder", cache_policy=NO_CACHE)
def make_embedder(project: Project, encoder: str | None = None) -> Embedder:
    """The project's embedder (or ``encoder``, a champion's fine-tuned one); its model loads on first
    use (not at all when the cache has everything)."""
    from pipeline.project.embedding import project_embedder

    return project_embedder(project, progress=False, base_spec=encoder)


@task(name="load-embedder", cache_policy=NO_CACHE)
def load_embedder(project: Project, encoder: str | None = None) -> Embedder:
    """The project's embedder (or the champion's ``encoder``) with its model loaded now."""
    return processing.load_embedder(project, encoder)


@io_task("language-coverage")
def language_coverage(project: Project, files: list[IngestedFile]) -> list[str]:
    """Notes on the run's sources in a language the embedding model does not cover (logged once)."""
    from prefect import get_run_logger

    from pipeline.project.embedding import coverage_notes, project_languages

    names = {f.name for f in files}
    notes = coverage_notes(project, {n: lg for n, lg in project_languages(project).items() if n in names})
    for note in notes:
        get_run_logger().warning(note)
    return notes


@io_task("ingest-files")
def ingest_files(project: Project, parsed: list[ParsedFile]) -> list[IngestedFile]:
    from prefect import get_run_logger

    files = processing.ingest_files(project, parsed)
    for f in files:
        if f.warning:  # a guessed interviewer, no speakers, another interview's text: say so, and the fix
            get_run_logger().warning(f.warning)
    return files


@task(name="embed-segments", cache_policy=NO_CACHE)
def embed_segments(
    project: Project,
    embedder: Embedder,
    files: list[IngestedFile],
    context: bool = False,
) -> Vectors:
    return processing.embed_sources(project, embedder, [f.name for f in files], context=context)


@io_task("texts-to-embed")
def texts_to_embed(project: Project, files: list[IngestedFile], context: bool = False) -> list[str]:
    return processing.texts_to_embed(project, [f.name for f in files], context=context)


@task(name="embed-chunk", cache_policy=NO_CACHE)
def embed_chunk(embedder: Embedder, texts: list[str]) -> Vectors:
    """One chunk of texts embedded (no database but the embedding cache): what a Dask worker runs."""
    return processing.encode_texts(embedder, texts)


def _parse_on(runner: Any, config: ProjectConfig, files: list[NewFile]) -> ParseBatch:
    """``parse_files`` fanned out: one ``parse-file`` task per file on ``runner``, results in order."""
    futures = [runner.submit(parse_one, {"new_file": nf, "config": config}) for nf in files]
    return processing.collect_parsed([f.result() for f in futures])


def _embed_on(
    runner: Any,
    project: Project,
    embedder: Embedder,
    files: list[IngestedFile],
    context: bool,
) -> Vectors:
    """``embed_segments`` fanned out: the texts split in one chunk per Dask worker."""
    from flows.runners import worker_count

    texts = texts_to_embed(project, files, context)
    chunks = processing.split_evenly(texts, worker_count(runner, project.config.flows)) if texts else []
    futures = [runner.submit(embed_chunk, {"embedder": embedder, "texts": c}) for c in chunks]
    vectors: Vectors = {}
    for f in futures:
        vectors.update(f.result())
    return vectors


@io_task("load-champion")
def load_champion(project: Project, registered_model: str) -> tracking.RegisteredModel | None:
    return tracking.load_alias(project, registered_model)


@io_task("choose-suggester")
def choose_suggester(
    project: Project, embedder: Embedder, champion: tracking.RegisteredModel | None
) -> ModelChoice:
    if champion is None:
        return processing.cold_start_suggester(project, embedder)
    return processing.champion_model_row(
        project,
        champion.model,
        name=champion.name,
        version=champion.version,
        run_id=champion.run_id,
        embedding=champion.embedding,
        embedder=embedder,
    )


@io_task("suggest-for-files")
def suggest_for_files(
    project: Project,
    files: list[IngestedFile],
    vectors: Vectors,
    choice: ModelChoice,
    k: int,
    block_of: Callable[[str], int] | None = None,
) -> list[FileOutcome]:
    return processing.suggest_for_files(
        project, files, vectors, choice, k, after_each=_crash_hook, block_of=block_of
    )


@io_task("discovery-due")
def discovery_due(project: Project) -> bool:
    return processing.discover_due(project)


@task(name="discover-open-codes", cache_policy=NO_CACHE)
def discover_open_codes(project: Project, embedder: Embedder, choice: ModelChoice) -> DiscoverReport | None:
    return processing.discover_if_due(project, embedder, choice.model)


def _crash_hook(n_stored: int) -> None:
    limit = os.environ.get(CRASH_AFTER_ENV)
    if limit and n_stored >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


@flow(name="process_interviews", log_prints=False)
def process_interviews(
    project_dir: str,
    paths: list[str] | None = None,
    top_k: int = 3,
    registered_model: str = tracking.DEFAULT_REGISTERED_MODEL,
    discover: bool = True,
) -> ProcessReport:
    """Ingest, segment, embed and suggest for every new transcript; quarantine files that fail.

    Parameters
    ----------
    project_dir : the project folder
    paths : files or folders to process (default: the project's ``inbox/``)
    top_k : suggestions per segment (``[suggester] top_k``)
    registered_model : MLflow registered model whose ``champion`` suggests (cold start: prototype)
    discover : also propose candidate open codes when files were added
    """
    from flows.runners import fan_out

    project = open_project(project_dir)
    files = find_new_files(project, paths)
    # [flows] task_runner = "dask": parsing and embedding run on Dask, started only when there is
    # something to do; the database is written here, in the flow's process, either way
    runner = fan_out(project.config.flows) if files else None
    with runner if runner is not None else nullcontext():
        batch = parse_files(project, files) if runner is None else _parse_on(runner, project.config, files)
        failed = [(f, quarantine(project, f)) for f in batch.failures]
        report = ProcessReport(failed=[(str(f.path), f.reason, str(err)) for f, err in failed])
        run_discovery = discover and (bool(batch.parsed) or discovery_due(project))
        if batch.parsed or run_discovery:
            # The champion is fetched from MLflow while the files are stored; the embedder comes after
            # both: it is the champion's own encoder when it has one (a fine-tuned model), and a source's
            # language decides which model embeds it. With no new file only discovery is due, and the
            # embedding cache may have everything: the model then loads on first use. All torch work
            # of the flow's process runs on this thread, one call after the other (see docs/flows.md);
            # with Dask the model loads in each Dask worker (the embedder is sent without it).
            champion = load_champion.submit(project, registered_model)
            ingested = ingest_files(project, batch.parsed)
            report.notes = language_coverage(project, ingested)
            champ = champion.result()
            encoder = None if champ is None else champ.encoder
            lazy = not batch.parsed or runner is not None
            embedder = (make_embedder if lazy else load_embedder)(project, encoder)
            choice = choose_suggester(project, embedder, champ)
            stale = processing.codebook_note(project, choice)
            if stale:
                report.notes.append(stale)
                get_run_logger().warning(stale)
            if choice.new_languages:
                late = processing.new_language_note(choice)
                report.notes.append(late)
                get_run_logger().warning(late)
            # a model that reads the previous turn (the question before an answer) needs its vectors
            # too (windows are composed from the segments' vectors); quote(): Prefect would
            # otherwise walk the thousands of vectors looking for futures
            context = choice.model.wants_context()
            if runner is None:
                vectors: Any = quote(embed_segments(project, embedder, ingested, context))
            else:
                vectors = quote(_embed_on(runner, project, embedder, ingested, context))
            report.model = choice.label
            block_of = getattr(embedder, "block_index", None)  # languages routed to other models
            report.processed = suggest_for_files(project, ingested, vectors, choice, top_k, block_of)
            if run_discovery:
                found = discover_open_codes(project, embedder, choice)
                report.candidates = None if found is None else found.candidates
    project.close()
    return report
