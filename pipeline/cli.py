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

from pipeline.errors import QualflowError

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.project import Project

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

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def open_project(project: Path | None) -> Project:
    from pipeline.config import resolve_project_dir
    from pipeline.project import Project

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
    from pipeline.project import init_project

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

    from pipeline.project import collect_files
    from pipeline.project import ingest as do_ingest

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

    from pipeline.project import summary

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
def segments(
    source: Annotated[str, typer.Argument(help="Source name (the file name without suffix).")],
    all_speakers: Annotated[bool, typer.Option("--all", help="Include interviewer turns.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Show the segments of one source with their offsets."""
    from rich.table import Table
    from sqlalchemy import select

    from pipeline.project import get_source, scheme_key
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
    from pipeline.project import summary

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
    from pipeline.project import import_codebook

    row, created = import_codebook(open_project(project), path)
    what = "new codebook version" if created else "unchanged codebook version"
    console().print(f"{what} {row.id} ({len(row.codes)} codes, hash {row.hash[:12]})")


@codebook_app.command("export")
def codebook_export(
    path: Annotated[Path, typer.Argument(help="Output file: .yaml, .csv or .qdc")],
    project: ProjectOpt = None,
) -> None:
    """Export the current codebook."""
    from pipeline.project import export_codebook

    cb = export_codebook(open_project(project), path)
    console().print(f"wrote {len(cb.codes)} codes to {path}")


@codebook_app.command("show")
def codebook_show(project: ProjectOpt = None) -> None:
    """Show the current codebook as a tree."""
    from rich.tree import Tree

    from pipeline.project import require_codebook

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
    from pipeline.project import import_codings

    added = import_codings(open_project(project), path)
    total = sum(added.values())
    console().print(f"{total} codings imported" + "".join(f"; {k}: {v}" for k, v in sorted(added.items())))


@codings_app.command("export")
def codings_export(
    path: Annotated[Path, typer.Argument(help="Output CSV")],
    project: ProjectOpt = None,
) -> None:
    """Export every active coding on the current source versions."""
    from pipeline.project import export_codings

    n = export_codings(open_project(project), path)
    console().print(f"wrote {n} codings to {path}")


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
        console(stderr=True).print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
