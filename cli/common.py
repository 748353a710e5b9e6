"""What every command shares: the typer app and its sub-apps, ``--project``, the console, opening the
project, and the one-line error exit."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.config import ProjectConfig
    from pipeline.project.core import Project
    from pipeline.project.ingest import IngestReport


app = typer.Typer(
    name="qualflow",
    help="Local-first machine help for coding interview transcripts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


# The sub-commands' groups; each *_commands module registers its commands on them.
codebook_app = typer.Typer(help="Import, export and show the codebook.", no_args_is_help=True)
codings_app = typer.Typer(
    help="Import and export codings (CSV: source,start,end,code,coder).", no_args_is_help=True
)
suggestions_app = typer.Typer(help="Show and export queued suggestions.", no_args_is_help=True)
export_app = typer.Typer(
    help="Export the project (REFI-QDA .qdpx for MAXQDA, NVivo, ATLAS.ti, QualCoder).", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import a project (REFI-QDA .qdpx from MAXQDA, NVivo, ATLAS.ti, QualCoder).", no_args_is_help=True
)
coders_app = typer.Typer(help="Manage the people who code (logins for the review app).", no_args_is_help=True)
ui_app = typer.Typer(help="Open the web UIs of the tools qualflow runs.", no_args_is_help=True)
models_app = typer.Typer(help="Embedding models and suggesters.", no_args_is_help=True)
for _group, _name in (
    (codebook_app, "codebook"),
    (codings_app, "codings"),
    (export_app, "export"),
    (import_app, "import"),
    (coders_app, "coders"),
    (ui_app, "ui"),
    (models_app, "models"),
    (suggestions_app, "suggestions"),
):
    app.add_typer(_group, name=_name)

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

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich would exit 1 itself; the reader went away (`qualflow evaluate | head`): let the
            # error through to cli.app.main, which stops quietly as for any other write
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")

    stream = sys.stderr if stderr else sys.stdout
    # a pipe or a log file gets wide tables instead of rich's 80-column default
    width = None if stream.isatty() else 160
    return _Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def open_project(project: Path | None) -> Project:
    from pipeline.config import resolve_project_dir
    from pipeline.project.core import Project

    chosen = project if project is not None else _state["project"]
    opened = Project.open(resolve_project_dir(chosen if isinstance(chosen, Path) else None))
    try:
        _check_cron(opened.config, opened.root)
    except Exception:
        opened.close()
        raise
    return opened


@app.callback()
def _main(
    project: ProjectOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["project"] = project
    _state["debug"] = debug


def fail(message: str) -> None:
    """One line on stderr and exit code 2."""
    console(stderr=True).print(f"error: {message}", markup=False, highlight=False)
    sys.exit(2)


def project_dir(project: Path | None) -> Path:
    from pipeline.config import load_config, resolve_project_dir

    chosen = project if project is not None else _state["project"]
    root = resolve_project_dir(chosen if isinstance(chosen, Path) else None)
    # a clear error when this is not a project, or its qualflow.toml has a bad value
    _check_cron(load_config(root), root)
    return root


def _check_cron(config: ProjectConfig, root: Path) -> None:
    """``[flows] retrain_cron`` checked with Prefect's own validator (:func:`flows.serve.check_retrain_cron`)
    when it is not the default; Prefect is then imported with its home inside the project, as the flow
    commands import it, so no ``~/.prefect`` is made in the user's home."""
    from flows.serve import check_retrain_cron
    from pipeline.config import CONFIG_NAME, FlowsConfig

    if config.flows.retrain_cron == FlowsConfig.retrain_cron:
        return
    from cli.flows_commands import prepare_environment

    prepare_environment(root)
    check_retrain_cron(config, str(root / CONFIG_NAME))


def note_unsegmented(project: Project) -> None:
    """A ``note:`` on stderr when current sources have no segments of the ``[segmentation]`` settings
    (changed in qualflow.toml after they were ingested): ``qualflow resegment`` makes them."""
    from pipeline.project.ingest import unsegmented_sources
    from pipeline.text import counted

    names = unsegmented_sources(project)
    if not names:
        return
    seg = project.config.segmentation
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
    console(stderr=True).print(
        f"note: {counted(len(names), 'source')} {'has' if len(names) == 1 else 'have'} no segments for the [segmentation] settings in qualflow.toml "
        f"(mode = {seg.mode!r}): {shown}; suggesting, agreement and evaluation leave "
        f"{'it' if len(names) == 1 else 'them'} out until `qualflow resegment` segments "
        f"{'it' if len(names) == 1 else 'them'}",
        markup=False,
    )


SHOW_LEFT = 10  # codings listed one per line when a new version leaves them on an older one


def print_new_versions(out: Console, report: IngestReport) -> None:
    """``int01: version 1 -> 2; 15 codings carried forward, 2 left on version 1 ...`` per new version,
    then the codings left behind, one a line (``qualflow ingest``, ``qualflow import qdpx``)."""
    for name, old, new in report.new_versions:
        out.print(f"  {name}: version {old} -> {new}{report.carried_note(name, old)}", markup=False)
        left = report.codings_left.get(name, [])
        for c in left[:SHOW_LEFT]:
            quote = c.text if len(c.text) <= 60 else c.text[:57] + "..."
            out.print(
                f"    left on v{c.version} {c.start}-{c.end} {c.code} ({c.coder}): {quote!r}", markup=False
            )
        if len(left) > SHOW_LEFT:
            out.print(f"    ... and {len(left) - SHOW_LEFT} more", markup=False)
