"""Commands on a project's contents: init, ingest, sources, roles, segments, summary, codebook, codings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ProjectOpt,
    app,
    codebook_app,
    codings_app,
    console,
    note_unsegmented,
    open_project,
    print_new_versions,
)
from pipeline.text import counted


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new project (created if missing).")
    ] = Path("."),
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder name).")] = None,
    force: Annotated[
        bool,
        typer.Option(help="Overwrite an existing qualflow.toml with the defaults (the database is kept)."),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The project database (default: sqlite:///qualflow.db in the folder), "
            "e.g. postgresql+psycopg://user@host/db for a team server."
        ),
    ] = None,
) -> None:
    """Make a project: qualflow.toml, its database and an inbox/ for new interviews."""
    from pipeline.config import CONFIG_NAME
    from pipeline.project.core import init_project

    existed = (directory / CONFIG_NAME).exists()
    project = init_project(directory, name=name, force=force, database_url=database_url)
    if existed:
        console().print(
            f"Rewrote the settings of project [bold]{project.config.name}[/] in {project.root} "
            "(its database and data are kept)"
        )
    else:
        console().print(f"Created project [bold]{project.config.name}[/] in {project.root}")
    console().print(f"  settings  {project.root / 'qualflow.toml'}")
    console().print(f"  database  {project.store.engine.url.render_as_string(hide_password=True)}")


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Transcript files or folders (.txt .md .docx .odt .rtf .pdf .vtt .srt .csv .tsv .xlsx)."
        ),
    ],
    metadata: Annotated[
        Path | None, typer.Option(help="Participant metadata CSV: source,participant,group,date,order.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Read transcripts, find speaker turns and roles, segment them, and store them."""
    from rich.progress import Progress

    from pipeline.project.ingest import collect_files, skipped_note
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
        f"{len(report.added)} added, {counted(len(report.new_versions), 'new version')}, "
        f"{len(report.unchanged)} unchanged; {counted(report.segments, 'segment')}"
    )
    if report.skipped:
        out.print(skipped_note(report.skipped), markup=False)
    print_new_versions(out, report)
    from pipeline.project.embedding import coverage_notes, project_languages

    fresh = set(report.added) | {name for name, _, _ in report.new_versions}
    for line in report.unrelated_notes(
        "`qualflow ingest` the transcript of version {old} again (its codings come back with it), then "
        "rename the new file and ingest it"
    ):
        out.print(f"warning: {line}", markup=False)
    for line in report.interviewer_notes() + report.unlabelled_notes() + report.reader_notes:
        out.print(f"note: {line}", markup=False)
    for line in coverage_notes(proj, {n: lg for n, lg in project_languages(proj).items() if n in fresh}):
        out.print(f"note: {line}", markup=False)


@app.command()
def split(
    table: Annotated[Path, typer.Argument(help="A .csv, .tsv or .xlsx table holding several interviews.")],
    by: Annotated[
        str | None, typer.Option(help="The column that names each row's interview, e.g. transcript_id.")
    ] = None,
    each_row: Annotated[
        bool,
        typer.Option("--each-row", help="One file per row instead (survey answers, one respondent a row)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the files (default: <table name>-by-<column|row> next to the table)."),
    ] = None,
) -> None:
    """Split a table of utterances into one .csv per interview (or per row), to ingest each as its own source."""
    from pipeline.errors import InputError
    from pipeline.ingest.tables import file_part, split_table

    if (by is None) == (not each_row):
        raise InputError("say how to split the table: --by COLUMN (one file per interview) or --each-row")
    folder = out if out is not None else table.with_name(f"{table.stem}-by-{file_part(by or 'row')}")
    written = split_table(table, by, folder)
    rows = sum(n for _, n in written)
    console().print(
        f"wrote {counted(len(written), 'file')} ({counted(rows, 'row')}) to {folder}; "
        f"ingest them with `qualflow ingest {folder}`",
        markup=False,
    )


@app.command()
def sources(
    versions: Annotated[
        bool,
        typer.Option(
            "--versions", "--all", help="Also list older versions (with the codings an edit left on them)."
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """List the sources with their turns, segments and codings."""
    from rich.table import Table

    from pipeline.project.summary import summary

    s = summary(open_project(project), versions=versions)
    table = Table("source", "v", "format", "lang", "turns", "interviewer", "segments", "codings", "chars")
    for r in s.sources:
        table.add_row(
            str(r["name"]),
            f"{r['version']}" if r["current"] else f"{r['version']} (old)",
            *(str(r[k]) for k in ("format", "language", "turns")),
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

    from pipeline.config import scheme_key
    from pipeline.store.queries import source_segments

    proj = open_project(project)
    with proj.store.transaction() as session:
        rows = source_segments(session, source, scheme_key(proj.config.segmentation))
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

    proj = open_project(project)
    print_summary(summary(proj))
    note_unsegmented(proj)


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
        f"{counted(len(s.sources), 'source')}, {counted(sum(int(r['turns']) for r in s.sources), 'turn')}, "
        f"{counted(sum(int(r['segments']) for r in s.sources), 'segment')}; "
        f"{counted(s.codes, 'code')} ({s.codable_codes} codable) in codebook version {s.codebook_versions}"
    )
    for coder, n in s.codings_per_coder.items():
        out.print(f"  {coder}: {counted(n, 'coding')}")


@codebook_app.command("import")
def codebook_import(
    path: Annotated[Path, typer.Argument(help="Codebook file: .yaml, .csv or REFI-QDA .qdc")],
    allow_removed: Annotated[
        bool,
        typer.Option(
            "--allow-removed",
            help="Accept a version that leaves out codes codings still use; those codings stay stored but are "
            "left out of the report and export until a codebook has their codes again.",
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Import a codebook as a new codebook version (a no-op if it is unchanged)."""
    from pipeline.project.codebooks import import_codebook

    r = import_codebook(open_project(project), path, allow_removed=allow_removed)
    what = "new codebook version" if r.created else "unchanged codebook version"
    out = console()
    out.print(f"{what} {r.version} ({counted(r.codes, 'code')}, hash {r.hash[:12]})", markup=False)
    if r.renamed:
        pairs = ", ".join(f"'{o}' -> '{n}'" for o, n in sorted(r.renamed.items()))
        follow = "follows" if r.moved == 1 else "follow"
        out.print(f"  renamed {pairs}: {counted(r.moved, 'coding')} {follow}", markup=False)
    if r.suggestions_moved or r.suggestions_superseded:
        also = (
            f" ({r.suggestions_superseded} superseded: "
            f"{'its' if r.suggestions_superseded == 1 else 'their'} new code had a suggestion there already)"
            if r.suggestions_superseded
            else ""
        )
        follow = "follows" if r.suggestions_moved == 1 else "follow"
        out.print(
            f"  {counted(r.suggestions_moved, 'pending suggestion')} {follow} renamed codes{also}",
            markup=False,
        )
    if r.left_out:
        n = sum(r.left_out.values())
        codes = ", ".join(f"'{k}' ({v})" for k, v in sorted(r.left_out.items()))
        out.print(
            f"  {counted(n, 'coding')} {'uses' if n == 1 else 'use'} removed "
            f"{'code' if len(r.left_out) == 1 else 'codes'} {codes}: kept, but left out of the report and export",
            markup=False,
        )


@codebook_app.command("export")
def codebook_export(
    path: Annotated[Path, typer.Argument(help="Output file: .yaml, .csv or .qdc")],
    project: ProjectOpt = None,
) -> None:
    """Export the current codebook."""
    from pipeline.project.codebooks import export_codebook

    cb = export_codebook(open_project(project), path)
    console().print(f"wrote {counted(len(cb.codes), 'code')} to {path}")


@codebook_app.command("show")
def codebook_show(project: ProjectOpt = None) -> None:
    """Show the current codebook as a tree; categories (codable: false, not applied to text) are marked."""
    from rich.markup import escape
    from rich.tree import Tree

    from pipeline.store.queries import require_codebook

    proj = open_project(project)
    with proj.store.transaction() as session:
        row, cb = require_codebook(session)
    root = Tree(f"[bold]{escape(cb.name)}[/] (version {row.id}, hash {row.hash[:12]})")
    nodes: dict[str | None, Tree] = {None: root}
    pending = list(cb.codes)
    while pending:
        rest = []
        for c in pending:
            if c.parent in nodes:
                # names, dimensions and descriptions are text, not markup ("[emotion]" was swallowed)
                dim = escape(f" [{c.dimension}]") if c.dimension else ""
                label = escape(c.name) if c.is_codable else f"[italic]{escape(c.name)}[/] (category)"
                nodes[c.name] = nodes[c.parent].add(f"{label}{dim}  {escape(c.description[:70])}")
            else:
                rest.append(c)
        if len(rest) == len(pending):
            break
        pending = rest
    console().print(root)


@codings_app.command("import")
def codings_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV with columns source,start,end,code,coder (optional: created_at, origin, memo)"
        ),
    ],
    project: ProjectOpt = None,
) -> None:
    """Import codings; every line is checked before anything is written."""
    from pipeline.project.codings import import_codings_counted, interviewer_note

    proj = open_project(project)
    added, skipped = import_codings_counted(proj, path)
    total = sum(added.values())
    same = f" ({skipped} already stored or repeated in the file, not stored twice)" if skipped else ""
    out = console()
    out.print(
        f"{counted(total, 'coding')} imported{same}"
        + "".join(f"; {k}: {v}" for k, v in sorted(added.items()))
    )
    note = interviewer_note(proj) if total else None
    if note:
        out.print(f"note: {note}", markup=False)


@codings_app.command("import-table")
def codings_import_table(
    tables: Annotated[
        list[Path],
        typer.Argument(help="The .csv/.tsv/.xlsx utterance tables ingested as sources, or folders of them."),
    ],
    code_column: Annotated[
        str, typer.Option(help="The column holding each row's code, e.g. main_therapist_behaviour.")
    ],
    coder: Annotated[str | None, typer.Option(help="Who coded the tables (one coder for every row).")] = None,
    coder_column: Annotated[
        str | None, typer.Option(help="Or the column naming each row's coder, e.g. annotator_id.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Import codings from a column of utterance tables: each row's code on the turn it was ingested as.

    Several codes in one cell are separated by ';'; an empty cell, n/a, na, none, null, nan or - is no
    code. Every row of every table is checked before anything is written."""
    from pipeline.project.codings import interviewer_note
    from pipeline.project.table_codings import import_table_codings

    proj = open_project(project)
    added, same = import_table_codings(
        proj, tables, code_column=code_column, coder=coder, coder_column=coder_column
    )
    total = sum(added.values())
    again = f" ({same} already stored, not stored twice)" if same else ""
    out = console()
    out.print(
        f"{counted(total, 'coding')} imported{again}"
        + "".join(f"; {k}: {v}" for k, v in sorted(added.items())),
        markup=False,
    )
    note = interviewer_note(proj) if total else None
    if note:
        out.print(f"note: {note}", markup=False)


@codings_app.command("export")
def codings_export(
    path: Annotated[Path, typer.Argument(help="Output CSV")],
    project: ProjectOpt = None,
) -> None:
    """Export every active coding on the current source versions."""
    from pipeline.project.codings import export_codings

    n = export_codings(open_project(project), path)
    console().print(f"wrote {counted(n, 'coding')} to {path}")
