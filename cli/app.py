"""The ``qualflow`` command line (typer + rich).

Heavy libraries are imported inside the commands that use them, so ``qualflow --help`` answers at once.
Any :class:`~pipeline.errors.QualflowError` prints one line and exits with code 2 (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.domain import CandidateState
from pipeline.errors import QualflowError

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.project.core import Project

app = typer.Typer(
    name="qualflow",
    help="Local-first machine help for coding interview transcripts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
codebook_app = typer.Typer(help="Import, export and show the codebook.", no_args_is_help=True)
codings_app = typer.Typer(
    help="Import and export codings (CSV: source,start,end,code,coder).", no_args_is_help=True
)
app.add_typer(codebook_app, name="codebook")
app.add_typer(codings_app, name="codings")
export_app = typer.Typer(
    help="Export the project (REFI-QDA .qdpx for MAXQDA, NVivo, ATLAS.ti, QualCoder).", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import a project (REFI-QDA .qdpx from MAXQDA, NVivo, ATLAS.ti, QualCoder).", no_args_is_help=True
)
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
coders_app = typer.Typer(help="Manage the people who code (logins for the review app).", no_args_is_help=True)
ui_app = typer.Typer(help="Open the web UIs of the tools qualflow runs.", no_args_is_help=True)
app.add_typer(coders_app, name="coders")
app.add_typer(ui_app, name="ui")
models_app = typer.Typer(help="Embedding models and suggesters.", no_args_is_help=True)
app.add_typer(models_app, name="models")

_state: dict[str, object] = {"project": None, "debug": False}

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project folder (default: QUALFLOW_PROJECT, else the current folder).",
        show_default=False,
    ),
]


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # a pipe or a log file gets wide tables instead of rich's 80-column default
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def open_project(project: Path | None) -> Project:
    from pipeline.config import resolve_project_dir
    from pipeline.project.core import Project

    chosen = project if project is not None else _state["project"]
    return Project.open(resolve_project_dir(chosen if isinstance(chosen, Path) else None))


@app.callback()
def _main(
    project: ProjectOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["project"] = project
    _state["debug"] = debug


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new project (created if missing).")
    ] = Path("."),
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing qualflow.toml.")] = False,
) -> None:
    """Make a project: qualflow.toml, its database and an inbox/ for new interviews."""
    from pipeline.project.core import init_project

    project = init_project(directory, name=name, force=force)
    console().print(f"Created project [bold]{project.config.name}[/] in {project.root}")
    console().print(f"  settings  {project.root / 'qualflow.toml'}")
    console().print(f"  database  {project.store.url}")


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Transcript files or folders (.txt .md .docx .vtt .srt).")
    ],
    metadata: Annotated[
        Path | None, typer.Option(help="Participant metadata CSV: source,participant,group,date,order.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Read transcripts, find speaker turns and roles, segment them, and store them."""
    from rich.progress import Progress

    from pipeline.project.ingest import collect_files
    from pipeline.project.ingest import ingest as do_ingest

    proj = open_project(project)
    files = collect_files(paths)
    with Progress(console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading", total=len(files))

        def step(name: str) -> None:
            bar.update(task, advance=1, description=f"reading {name}")

        report = do_ingest(proj, paths, metadata_csv=metadata, progress=step)
    out = console()
    out.print(
        f"{len(report.added)} added, {len(report.new_versions)} new versions, "
        f"{len(report.unchanged)} unchanged; {report.segments} segments"
    )
    for name, old, new in report.new_versions:
        kept = report.codings_left_on_old.get(name, 0)
        note = f"; {kept} codings stay on version {old} (see `qualflow sources`)" if kept else ""
        out.print(f"  {name}: version {old} -> {new}{note}")


@app.command()
def sources(project: ProjectOpt = None) -> None:
    """List the sources with their turns, segments and codings."""
    from rich.table import Table

    from pipeline.project.summary import summary

    s = summary(open_project(project))
    table = Table("source", "v", "format", "lang", "turns", "interviewer", "segments", "codings", "chars")
    for r in s.sources:
        table.add_row(
            *(str(r[k]) for k in ("name", "version", "format", "language", "turns")),
            str(r["interviewer_turns"]),
            str(r["segments"]),
            str(r["codings"]),
            str(r["characters"]),
        )
    console().print(table)


@app.command()
def resegment(project: ProjectOpt = None) -> None:
    """Segment every current source with the [segmentation] settings it has no segments for yet.

    Run it after changing the segmentation mode in qualflow.toml; earlier segments are kept.
    """
    from pipeline.project.ingest import resegment as do_resegment

    n = do_resegment(open_project(project))
    console().print(f"{n} new segments", markup=False)


@app.command()
def roles(
    source: Annotated[str, typer.Argument(help="Source name.")],
    assignments: Annotated[
        list[str], typer.Argument(help="SPEAKER=interviewer|participant|unknown, one or more.")
    ],
    project: ProjectOpt = None,
) -> None:
    """Override who is the interviewer in one source (kept for its later versions)."""
    from pipeline.errors import InputError
    from pipeline.project.summary import set_roles

    overrides = {}
    for item in assignments:
        speaker, sep, role = item.rpartition("=")
        if not sep or not speaker:
            raise InputError(f"{item!r}: write SPEAKER=ROLE, e.g. Mina=participant")
        overrides[speaker] = role
    result = set_roles(open_project(project), source, overrides)
    console().print(f"{source}: " + ", ".join(f"{k} = {v}" for k, v in sorted(result.items())), markup=False)


@app.command()
def segments(
    source: Annotated[str, typer.Argument(help="Source name (the file name without suffix).")],
    all_speakers: Annotated[bool, typer.Option("--all", help="Include interviewer turns.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Show the segments of one source with their offsets."""
    from rich.table import Table
    from sqlalchemy import select

    from pipeline.config import scheme_key
    from pipeline.store.queries import get_source
    from pipeline.store.schema import SegmentRow

    proj = open_project(project)
    with proj.store.transaction() as session:
        src = get_source(session, source)
        q = select(SegmentRow).where(
            SegmentRow.source_id == src.id, SegmentRow.scheme == scheme_key(proj.config.segmentation)
        )
        rows = list(session.scalars(q.order_by(SegmentRow.idx)))
    table = Table("#", "start", "end", "speaker", "role", "text")
    for r in rows:
        if r.role == "interviewer" and not all_speakers:
            continue
        table.add_row(str(r.idx), str(r.start), str(r.end), r.speaker or "", r.role, r.text)
    console().print(table)


@app.command("summary")
def summary_cmd(project: ProjectOpt = None) -> None:
    """Print the project summary: sources, turns, segments, codes, codings per coder."""
    from pipeline.project.summary import summary

    print_summary(summary(open_project(project)))


def print_summary(s) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    out = console()
    table = Table("source", "format", "lang", "turns", "segments", "codings", title="Sources")
    for r in s.sources:
        table.add_row(
            str(r["name"]),
            str(r["format"]),
            str(r["language"]),
            str(r["turns"]),
            str(r["segments"]),
            str(r["codings"]),
        )
    out.print(table)
    out.print(
        f"{len(s.sources)} sources, {sum(int(r['turns']) for r in s.sources)} turns, "
        f"{sum(int(r['segments']) for r in s.sources)} segments; "
        f"{s.codes} codes ({s.codable_codes} codable) in codebook version {s.codebook_versions}"
    )
    for coder, n in s.codings_per_coder.items():
        out.print(f"  {coder}: {n} codings")


@codebook_app.command("import")
def codebook_import(
    path: Annotated[Path, typer.Argument(help="Codebook file: .yaml, .csv or REFI-QDA .qdc")],
    project: ProjectOpt = None,
) -> None:
    """Import a codebook as a new codebook version (a no-op if it is unchanged)."""
    from pipeline.project.codebooks import import_codebook

    row, created = import_codebook(open_project(project), path)
    what = "new codebook version" if created else "unchanged codebook version"
    console().print(f"{what} {row.id} ({len(row.codes)} codes, hash {row.hash[:12]})")


@codebook_app.command("export")
def codebook_export(
    path: Annotated[Path, typer.Argument(help="Output file: .yaml, .csv or .qdc")],
    project: ProjectOpt = None,
) -> None:
    """Export the current codebook."""
    from pipeline.project.codebooks import export_codebook

    cb = export_codebook(open_project(project), path)
    console().print(f"wrote {len(cb.codes)} codes to {path}")


@codebook_app.command("show")
def codebook_show(project: ProjectOpt = None) -> None:
    """Show the current codebook as a tree."""
    from rich.tree import Tree

    from pipeline.store.queries import require_codebook

    proj = open_project(project)
    with proj.store.transaction() as session:
        row, cb = require_codebook(session)
    root = Tree(f"[bold]{cb.name}[/] (version {row.id}, hash {row.hash[:12]})")
    nodes: dict[str | None, Tree] = {None: root}
    pending = list(cb.codes)
    while pending:
        rest = []
        for c in pending:
            if c.parent in nodes:
                dim = f" [{c.dimension}]" if c.dimension else ""
                label = c.name if c.is_codable else f"[italic]{c.name}[/]"
                nodes[c.name] = nodes[c.parent].add(f"{label}{dim}  {c.description[:70]}")
            else:
                rest.append(c)
        if len(rest) == len(pending):
            break
        pending = rest
    console().print(root)


@codings_app.command("import")
def codings_import(
    path: Annotated[Path, typer.Argument(help="CSV with columns source,start,end,code,coder")],
    project: ProjectOpt = None,
) -> None:
    """Import codings; every line is checked before anything is written."""
    from pipeline.project.codings import import_codings

    added = import_codings(open_project(project), path)
    total = sum(added.values())
    console().print(f"{total} codings imported" + "".join(f"; {k}: {v}" for k, v in sorted(added.items())))


@codings_app.command("export")
def codings_export(
    path: Annotated[Path, typer.Argument(help="Output CSV")],
    project: ProjectOpt = None,
) -> None:
    """Export every active coding on the current source versions."""
    from pipeline.project.codings import export_codings

    n = export_codings(open_project(project), path)
    console().print(f"wrote {n} codings to {path}")


suggestions_app = typer.Typer(help="Show and export queued suggestions.", no_args_is_help=True)
app.add_typer(suggestions_app, name="suggestions")


@app.command()
def embed(project: ProjectOpt = None) -> None:
    """Embed every current segment into the project's cache (a second run embeds nothing new)."""
    from pipeline.project.corpus import make_project_embedder
    from pipeline.store.queries import load_segments

    proj = open_project(project)
    with proj.store.transaction() as session:
        texts = [r.text for r, _ in load_segments(session, proj.config)]
    emb = make_project_embedder(proj)
    X = emb.encode(texts)
    console().print(
        f"{X.shape[0]} segments embedded with {emb.fingerprint} (dim {X.shape[1] if X.ndim == 2 else 0})"
    )


@app.command("suggest")
def suggest_cmd(
    suggester: Annotated[str | None, typer.Option(help="Suggester name (default: qualflow.toml).")] = None,
    sources: Annotated[str | None, typer.Option(help="Comma-separated source names (default: all).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Fit a suggester on the project's codings and queue its suggestions for review."""
    from pipeline.project.suggest import suggest

    names = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    r = suggest(open_project(project), suggester=suggester, sources=names)
    console().print(
        f"{r.model_label}: {r.suggestions} new suggestions on {r.segments} segments "
        f"({r.abstained} abstained, {r.skipped_existing} already queued)"
    )


@app.command("discover")
def discover_cmd(project: ProjectOpt = None) -> None:
    """Propose candidate open codes from segments no code explains."""
    from pipeline.project.discover import discover

    r = discover(open_project(project))
    console().print(
        f"{r.candidates} candidate open codes over {r.members} of {r.unexplained} unexplained segments"
    )
    show_candidates(project)


def show_candidates(project: Path | None) -> None:
    from rich.table import Table
    from sqlalchemy import select

    from pipeline.store.schema import CandidateRow

    proj = open_project(project)
    with proj.store.transaction() as session:
        rows = list(session.scalars(select(CandidateRow).where(CandidateRow.state == CandidateState.PENDING)))
        table = Table("id", "label", "keyphrases", "coherence", "looks like", title="Candidate open codes")
        for c in rows:
            kp = ", ".join(p for p, _ in c.keyphrases[:5])
            near = ", ".join(f"{n} ({s:.2f})" for n, s in c.nearest_codes[:2])
            table.add_row(str(c.id), c.label, kp, f"{c.coherence:.2f}", near)
    console().print(table)


@suggestions_app.command("show")
def suggestions_show(
    top: Annotated[int, typer.Option(help="How many to show.")] = 15,
    project: ProjectOpt = None,
) -> None:
    """Show the pending suggestions with the highest scores."""
    from rich.table import Table

    from pipeline.project.suggest import suggestion_rows

    proj = open_project(project)
    with proj.store.transaction() as session:
        rows = [r for r in suggestion_rows(session) if r["kind"] == "deductive"]
        texts = _source_texts(session)
    rows.sort(key=lambda r: -float(r["score"]))
    table = Table("source", "segment", "code", "score", "model", "text", title="Top suggestions")
    for r in rows[:top]:
        text = texts.get(str(r["source"]), "")[int(r["start"]) : int(r["end"])]
        table.add_row(
            str(r["source"]),
            str(r["segment"]),
            str(r["code"]),
            f"{float(r['score']):.2f}",
            str(r["model"]),
            text[:90],
        )
    console().print(table)


def _source_texts(session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from pipeline.store.schema import SourceRow

    return {src.name: src.text for src in session.scalars(select(SourceRow).where(SourceRow.is_current))}


@suggestions_app.command("export")
def suggestions_export(
    path: Annotated[Path, typer.Argument(help="Output CSV file.")],
    fmt: Annotated[str, typer.Option("--format", help="Only csv for now.")] = "csv",
    state: Annotated[str, typer.Option(help="pending, accepted, rejected, recoded or all.")] = "pending",
    project: ProjectOpt = None,
) -> None:
    """Export suggestions (source,segment,start,end,code,score,rank,model,kind)."""
    import csv
    import io

    from pipeline.errors import InputError
    from pipeline.fileio import write_atomic
    from pipeline.project.suggest import SUGGESTION_COLUMNS, suggestion_rows

    if fmt != "csv":
        raise InputError(f"--format {fmt!r} is not supported; use csv")
    states = ("pending", "accepted", "rejected", "recoded", "covered", "duplicate", "superseded", "all")
    if state not in states:
        raise InputError(f"--state {state!r} is not one of {list(states)}")
    proj = open_project(project)
    with proj.store.transaction() as session:
        rows = suggestion_rows(session, state=None if state == "all" else state)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SUGGESTION_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue().encode("utf-8"))
    console().print(f"wrote {len(rows)} suggestions to {path}")


@app.command()
def agreement(
    coders: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated coders, e.g. sara,reza,model:local-blend@1 (default: all people)."
        ),
    ] = None,
    unit: Annotated[
        str, typer.Option(help="segment, overlap (MAXQDA-style) or char (NVivo-style).")
    ] = "segment",
    codes: Annotated[
        str | None, typer.Option(help="Comma-separated codes (default: every codable code).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="terminal, json, csv or html.")] = "terminal",
    out: Annotated[
        Path | None, typer.Option(help="Write json/csv/html to this file (default: stdout).")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    threshold: Annotated[
        float, typer.Option(help="Overlap unit: share of the longer span that must overlap.")
    ] = 0.9,
    include_uncoded: Annotated[
        bool, typer.Option(help="Char unit: count characters no coder coded (inflates agreement).")
    ] = False,
    log: Annotated[
        bool,
        typer.Option(help="Run the agreement_report flow: all coders and the champion, logged to MLflow."),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Inter-coder agreement per code and pooled, with CIs and the disagreements to discuss."""
    if log:
        from cli.flows_commands import run_agreement

        for line in run_agreement(_project_dir(project)).lines():
            console().print(line, markup=False)
        return
    from pipeline.agreement_report import render_terminal, to_csv, to_html, to_json
    from pipeline.errors import InputError
    from pipeline.fileio import write_atomic
    from pipeline.project.agreement import project_agreement

    renderers = {"json": to_json, "csv": to_csv, "html": to_html}
    if fmt != "terminal" and fmt not in renderers:
        raise InputError(f"--format {fmt!r} is not one of ['terminal', 'json', 'csv', 'html']")
    if unit not in ("segment", "overlap", "char"):
        raise InputError(f"--unit {unit!r} is not one of ['segment', 'overlap', 'char']")
    report = project_agreement(
        open_project(project),
        coders=_split(coders),
        codes=_split(codes),
        unit=unit,
        n_boot=n_boot,
        seed=seed,
        threshold=threshold,
        exclude_uncoded=not include_uncoded,
    )
    if fmt == "terminal":
        render_terminal(report, console())
        return
    text = renderers[fmt](report)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text.encode("utf-8"))
        console().print(f"wrote {fmt} agreement report to {out}")


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="Output folder (default: <project>/report).")] = None,
    project: ProjectOpt = None,
) -> None:
    """Write the project report: one self-contained HTML file plus a CSV of every table."""
    from pipeline.project.report import write_project_report

    proj = open_project(project)
    path = write_project_report(proj, out or proj.root / "report")
    console().print(f"wrote {path}")


@export_app.command("qdpx")
def export_qdpx_cmd(
    path: Annotated[Path, typer.Argument(help="Output .qdpx file.")],
    project: ProjectOpt = None,
) -> None:
    """Export sources, codebook, codings and coders (model versions too) as a REFI-QDA project."""
    from pipeline.project.exchange import export_project_qdpx

    n_src, n_codes, n_codings = export_project_qdpx(open_project(project), path)
    console().print(f"wrote {path}: {n_src} sources, {n_codes} codes, {n_codings} codings")


@import_app.command("qdpx")
def import_qdpx_cmd(
    path: Annotated[Path, typer.Argument(help="A .qdpx written by MAXQDA, NVivo, ATLAS.ti or QualCoder.")],
    project: ProjectOpt = None,
) -> None:
    """Import text sources, the codebook and codings with their coders from a REFI-QDA project."""
    from pipeline.project.exchange import import_project_qdpx

    r = import_project_qdpx(open_project(project), path)
    console().print(
        f"imported from {r.origin or 'a REFI-QDA project'}: {len(r.sources)} sources, {r.codes} codes, "
        f"{sum(r.codings.values())} codings" + "".join(f"; {k}: {v}" for k, v in sorted(r.codings.items()))
    )
    for item in r.skipped:
        console().print(f"  skipped: {item}")


@app.command()
def evaluate(
    suggester: Annotated[str | None, typer.Option(help="Suggester name (default: qualflow.toml).")] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (grouped by source).")] = 5,
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
    project: ProjectOpt = None,
) -> None:
    """Grouped cross-validation of a suggester against the project's human codings."""
    import json

    from rich.table import Table

    from pipeline.errors import InputError
    from pipeline.project.evaluate import evaluate_project
    from pipeline.project.suggest import jsonable

    if fmt not in ("terminal", "json"):
        raise InputError(f"--format {fmt!r} is not one of ['terminal', 'json']")
    m = evaluate_project(open_project(project), suggester=suggester, folds=folds)
    if fmt == "json":
        sys.stdout.write(json.dumps(jsonable(m), indent=2) + "\n")
        return
    out = console()
    out.print(
        f"[bold]{m['suggester']}[/] on {m['n_segments']} segments of {m['n_sources']} coded sources "
        "(out-of-fold, folds grouped by source)"
    )
    summary = Table("metric", "value")
    for key in ("micro_f1", "macro_f1", "hit_at_k", "coverage", "brier", "ece"):
        if key in m and m[key] is not None:
            summary.add_row(key, f"{float(m[key]):.3f}")
    for key in sorted(k for k in m if k.startswith("kappa_vs_")):
        v = m[key]
        summary.add_row(
            f"Cohen's kappa vs {key.removeprefix('kappa_vs_')}", "-" if v is None else f"{float(v):.3f}"
        )
    out.print(summary)
    per = Table("code", "precision", "recall", "f1", "support", title="Per code")
    for code, r in m.get("per_code", {}).items():
        per.add_row(code, f"{r['precision']:.2f}", f"{r['recall']:.2f}", f"{r['f1']:.2f}", str(r["support"]))
    out.print(per)


def _project_dir(project: Path | None) -> Path:
    from pipeline.config import load_config, resolve_project_dir

    chosen = project if project is not None else _state["project"]
    root = resolve_project_dir(chosen if isinstance(chosen, Path) else None)
    load_config(root)  # a clear error when this is not a project
    return root


@app.command()
def process(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the project's inbox/).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Run the process_interviews flow once: ingest, segment, embed, suggest, discover (Prefect)."""
    from cli.flows_commands import run_process

    report = run_process(_project_dir(project), paths or None)
    for line in report.lines():
        console().print(line, markup=False)


@app.command()
def train(
    force: Annotated[
        bool, typer.Option(help="Promote the new model even if it does not beat the champion.")
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Run the retrain_suggester flow once: train, evaluate on held-out sources, log to MLflow, gate."""
    from cli.flows_commands import run_train

    report = run_train(_project_dir(project), force=force)
    for line in report.lines():
        console().print(line, markup=False)


@app.command()
def serve(
    start_server: Annotated[
        bool, typer.Option(help="Start a local Prefect server on 127.0.0.1 (stopped on exit).")
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Register the scheduled flows (process every N minutes, retrain nightly) and run them as they fall due."""
    from cli.flows_commands import run_serve

    run_serve(_project_dir(project), start_server=start_server)


@ui_app.command("mlflow")
def ui_mlflow(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    project: ProjectOpt = None,
) -> None:
    """Start the MLflow UI on 127.0.0.1 against the project's tracking store."""
    from cli.flows_commands import run_mlflow_ui

    raise typer.Exit(run_mlflow_ui(_project_dir(project), port))


@app.command()
def review(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: [review] host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: [review] port, 8000).")] = None,
    single_user: Annotated[
        str | None, typer.Option(help="No-login local mode as this coder (loopback only).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Start the coders' review app in the browser."""
    from cli.review_commands import run_review

    run_review(open_project(project), host=host, port=port, single_user=single_user)


@coders_app.command("add")
def coders_add_cmd(
    name: Annotated[str, typer.Argument(help="The coder's name (as in codings).")],
    role: Annotated[str, typer.Option(help="coder or lead (leads manage the codebook).")] = "coder",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Add a coder with a password (or change a coder's role and password)."""
    from cli.review_commands import coders_add

    console().print(
        coders_add(open_project(project), name, role, password_stdin=password_stdin), markup=False
    )


@models_app.command("list")
def models_list() -> None:
    """List the embedding backends and the suggesters qualflow knows."""
    from models import DEFAULT_SUGGESTER, SUGGESTERS
    from pipeline.embed.factory import EMBEDDER_ALIASES, EMBEDDER_BACKENDS

    out = console()
    out.print("Embedding backends ([embedding] model in qualflow.toml):", markup=False)
    for name in sorted(EMBEDDER_BACKENDS):
        out.print(f"  {name}", markup=False)
    for alias, target in sorted(EMBEDDER_ALIASES.items()):
        out.print(f"  {alias}  (= {target})", markup=False)
    out.print("Suggesters ([suggester] name):", markup=False)
    for name in sorted(SUGGESTERS):
        out.print(f"  {name}" + ("  (default)" if name == DEFAULT_SUGGESTER else ""), markup=False)


@models_app.command("export-onnx")
def models_export_onnx(
    model: Annotated[str, typer.Option(help="Model folder or packaged name to export.")] = "minilm",
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: the project's ONNX cache).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Export a sentence-transformers model to int8 ONNX (offline) for the `onnx:` backend."""
    from pipeline.embed.model_dir import resolve_model_dir
    from pipeline.embed.onnx import ensure_onnx_export, export_onnx

    proj = open_project(project)
    model_dir = resolve_model_dir(model, proj.root)
    path = (
        export_onnx(model_dir, out)
        if out is not None
        else ensure_onnx_export(model_dir, proj.cache_dir / "onnx")
    )
    console().print(
        f'ONNX model in {path}; use it with `model = "onnx:{model}"` under [embedding]', markup=False
    )


def main() -> None:
    """Console-script entry point: telemetry off, one-line errors with exit code 2."""
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    debug = "--debug" in sys.argv
    try:
        app(prog_name="qualflow")
    except QualflowError as exc:
        if debug:
            raise
        fail(str(exc))
    except OSError as exc:  # a file or folder that cannot be read or written
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        fail(f"{where}{exc.strerror or exc}; check the path and its permissions")
    except ImportError as exc:
        if debug:
            raise
        fail(f"{exc}; install the missing package (e.g. `pip install psycopg[binary]` for PostgreSQL)")
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if debug or not isinstance(exc, SQLAlchemyError):
            raise
        fail(
            f"database error: {str(exc).splitlines()[0]}; check database_url in qualflow.toml (--debug for details)"
        )


def fail(message: str) -> None:
    """One line on stderr and exit code 2."""
    console(stderr=True).print(f"error: {message}", markup=False, highlight=False)
    sys.exit(2)


if __name__ == "__main__":
    main()
