"""Commands that report: agreement, the project report, REFI-QDA exchange."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

from cli.common import (
    ProjectOpt,
    app,
    console,
    export_app,
    import_app,
    note_unsegmented,
    open_project,
    print_new_versions,
    project_dir,
)
from pipeline.text import counted


@app.command()
def agreement(
    coders: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated coders, e.g. sara,reza,model:local-evidence@1 (default: all people)."
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
        ignored = [
            flag
            for flag, given in (
                ("--coders", coders is not None),
                ("--unit", unit != "segment"),
                ("--codes", codes is not None),
                ("--format", fmt != "terminal"),
                ("--out", out is not None),
                ("--threshold", threshold != 0.9),
                ("--include-uncoded", include_uncoded),
            )
            if given
        ]
        if ignored:
            from pipeline.errors import InputError

            raise InputError(
                f"--log logs the panel of every coder and the champion on segments to MLflow, so "
                f"{', '.join(ignored)} would be ignored; run `qualflow agreement` without --log for that view "
                "(--n-boot and --seed apply to both)"
            )
        from cli.flows_commands import run_agreement

        for line in run_agreement(project_dir(project), n_boot=n_boot, seed=seed).lines():
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
    proj = open_project(project)
    if unit == "segment":
        note_unsegmented(proj)
    report = project_agreement(
        proj,
        coders=_split(coders),
        codes=_split(codes),
        unit=unit,
        n_boot=n_boot,
        seed=seed,
        threshold=threshold,
        exclude_uncoded=not include_uncoded,
        progress=True,
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
    path = write_project_report(proj, out or proj.root / "report", warn=_note)
    console().print(f"wrote {path}")


def _note(line: str) -> None:
    console(stderr=True).print(f"note: {line}", markup=False)


@export_app.command("qdpx")
def export_qdpx_cmd(
    path: Annotated[Path, typer.Argument(help="Output .qdpx file.")],
    project: ProjectOpt = None,
) -> None:
    """Export sources, codebook, codings and coders (model versions too) as a REFI-QDA project."""
    from pipeline.project.exchange import export_project_qdpx

    n_src, n_codes, n_codings = export_project_qdpx(open_project(project), path, warn=_note)
    console().print(
        f"wrote {path}: {counted(n_src, 'source')}, {counted(n_codes, 'code')}, {counted(n_codings, 'coding')}"
    )


@import_app.command("qdpx")
def import_qdpx_cmd(
    path: Annotated[Path, typer.Argument(help="A .qdpx written by MAXQDA, NVivo, ATLAS.ti or QualCoder.")],
    positions: Annotated[
        str,
        typer.Option(
            help="How the file counts selection positions: characters (the REFI-QDA standard; MAXQDA, "
            "ATLAS.ti, QualCoder), utf16 (UTF-16 code units, NVivo: an emoji counts as two), or auto "
            "(utf16 when the file says NVivo wrote it)."
        ),
    ] = "auto",
    project: ProjectOpt = None,
) -> None:
    """Import text sources, the codebook and codings with their coders from a REFI-QDA project.

    Into a project with a codebook, the imported codes are merged into it (same path or guid = same code).
    A source with the name of one the project has, but other text, becomes its new version (as ingest).
    """
    from typing import cast

    from pipeline.errors import InputError
    from pipeline.project.exchange import import_project_qdpx
    from pipeline.refi.qdpx import Positions

    if positions not in ("auto", "characters", "utf16"):
        raise InputError(f"--positions {positions!r} is not one of ['auto', 'characters', 'utf16']")
    r = import_project_qdpx(open_project(project), path, positions=cast(Positions, positions))
    out = console()
    out.print(
        f"imported from {r.origin or 'a REFI-QDA project'}: {counted(len(r.sources), 'source')}, "
        f"{counted(r.codes, 'code')}, {counted(sum(r.codings.values()), 'coding')}"
        + "".join(f"; {k}: {v}" for k, v in sorted(r.codings.items())),
        markup=False,
    )
    if r.codebook_version:
        how = "new codebook version" if r.codebook_created else "unchanged codebook version"
        added = f"{counted(r.codes_added, 'code')} added"
        out.print(f"  {how} {r.codebook_version} ({added})", markup=False)
    print_new_versions(out, r.versions)
    for item in r.skipped:
        out.print(f"  skipped: {item}", markup=False)
    if r.skipped_selections:
        out.print(
            f"  {counted(r.skipped_selections, 'coded selection')} listed above {'was' if r.skipped_selections == 1 else 'were'} not imported",
            markup=False,
        )
    for line in r.notices:
        out.print(f"  note: {line}", markup=False)
    for line in r.warnings:
        out.print(f"  warning: {line}", markup=False)
