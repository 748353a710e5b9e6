"""What every command shares: the typer app and its sub-apps, ``--project``, the console, opening the
project, and the one-line error exit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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


suggestions_app = typer.Typer(help="Show and export queued suggestions.", no_args_is_help=True)


app.add_typer(suggestions_app, name="suggestions")


def fail(message: str) -> None:
    """One line on stderr and exit code 2."""
    console(stderr=True).print(f"error: {message}", markup=False, highlight=False)
    sys.exit(2)


def project_dir(project: Path | None) -> Path:
    from pipeline.config import load_config, resolve_project_dir

    chosen = project if project is not None else _state["project"]
    root = resolve_project_dir(chosen if isinstance(chosen, Path) else None)
    load_config(root)  # a clear error when this is not a project
    return root
