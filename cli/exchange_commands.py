"""Exchange with QDA tools beyond REFI-QDA: ``qualflow import qualcoder PROJECT.qda``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import ProjectOpt, console, import_app, open_project, print_new_versions
from pipeline.text import counted


@import_app.command("qualcoder")
def import_qualcoder_cmd(
    path: Annotated[
        Path, typer.Argument(help="A QualCoder project folder (NAME.qda) or the data.qda inside it.")
    ],
    project: ProjectOpt = None,
) -> None:
    """Import text sources, categories and codes, codings with their coders, and cases from QualCoder
    (the project file is only read)."""
    from pipeline.project.exchange import import_project_qualcoder

    r = import_project_qualcoder(open_project(project), path)
    console().print(
        f"imported from {r.origin}: {counted(len(r.sources), 'source')}, "
        f"{counted(r.codes, 'code')}, {counted(sum(r.codings.values()), 'coding')}"
        + "".join(f"; {k}: {v}" for k, v in sorted(r.codings.items())),
        markup=False,
    )
    print_new_versions(console(), r.versions)
    for item in r.skipped:
        console().print(f"  skipped: {item}", markup=False)
    if r.skipped_selections:
        console().print(
            f"  {counted(r.skipped_selections, 'coding')} on skipped sources {'was' if r.skipped_selections == 1 else 'were'} not imported"
        )
    for line in r.warnings:
        console().print(f"  warning: {line}", markup=False)
