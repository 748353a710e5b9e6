"""Coding rounds: ``qualflow round start|close|list``, ``qualflow assign``, ``qualflow adjudicate``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ProjectOpt, app, console, open_project, project_dir

round_app = typer.Typer(
    help="Coding rounds: assignments under one codebook version, and their agreement.", no_args_is_help=True
)
app.add_typer(round_app, name="round")


@round_app.command("start")
def round_start(
    name: Annotated[str, typer.Argument(help="The round's name, e.g. R1.")], project: ProjectOpt = None
) -> None:
    """Open a round under the newest codebook version."""
    from pipeline.project.rounds import start_round

    p = open_project(project)
    try:
        info = start_round(p, name)
    finally:
        p.close()
    console().print(f"round {info.name} opened under codebook version {info.codebook_version}", markup=False)


@round_app.command("close")
def round_close(
    name: Annotated[str | None, typer.Argument(help="The round (default: the open one).")] = None,
    model: Annotated[bool, typer.Option(help="Add the champion model as a coder when there is one.")] = True,
    n_boot: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals (as `qualflow agreement`).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed (as `qualflow agreement`).")] = 0,
    project: ProjectOpt = None,
) -> None:
    """Close a round: its agreement panel, one MLflow run, kept for the report's round-by-round chart."""
    from cli.flows_commands import run_round_close

    run = run_round_close(project_dir(project), name, with_model=model, n_boot=n_boot, seed=seed)
    for line in run.lines():
        console().print(line, markup=False)


@round_app.command("list")
def round_list(project: ProjectOpt = None) -> None:
    """Every round: state, codebook version, assignments."""
    from pipeline.project.rounds import list_rounds

    p = open_project(project)
    try:
        infos = list_rounds(p)
    finally:
        p.close()
    if not infos:
        console().print("no rounds yet; `qualflow round start R1`", markup=False)
    for info in infos:
        console().print(f"{info.name}: {info.state}, codebook version {info.codebook_version}", markup=False)
        for coder, sources in info.assignments.items():
            console().print(f"  {coder}: {', '.join(sources)}", markup=False)


@app.command()
def assign(
    coder: Annotated[list[str], typer.Option("--coder", help="A coder to assign (repeat for several).")],
    source: Annotated[
        list[str] | None, typer.Option("--source", help="A source to assign (repeat; default: every source).")
    ] = None,
    sample: Annotated[
        float | None, typer.Option(help="Assign a seeded random share of each source's segments, e.g. 0.2.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    round_name: Annotated[
        str | None, typer.Option("--round", help="The round (default: the open one).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Assign interviews (or a sample of their segments) to coders in an open round."""
    from pipeline.project.rounds import assign as do_assign

    p = open_project(project)
    try:
        info = do_assign(p, coder, sources=source or (), sample=sample, seed=seed, round_name=round_name)
    finally:
        p.close()
    console().print(f"round {info.name}:", markup=False)
    for name, sources in info.assignments.items():
        console().print(f"  {name}: {', '.join(sources)}", markup=False)


@app.command()
def adjudicate(
    lead: Annotated[str, typer.Option(help="The lead who settles.")],
    source: Annotated[str, typer.Option(help="The unit's source.")],
    start: Annotated[int, typer.Option(help="The unit's start offset.")],
    end: Annotated[int, typer.Option(help="The unit's end offset.")],
    choice: Annotated[str, typer.Option(help="A coder's name, 'both' or 'neither'.")],
    memo: Annotated[str | None, typer.Option(help="Why.")] = None,
    round_name: Annotated[
        str | None, typer.Option("--round", help="The round (default: the open one; a closed one by name).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Settle one disagreement of a round as the coder 'consensus' (the review app's /adjudicate does the same)."""
    from pipeline.project.adjudication import adjudicate as settle

    p = open_project(project)
    try:
        r = settle(
            p, lead, source=source, start=start, end=end, choice=choice, memo=memo, round_name=round_name
        )
    finally:
        p.close()
    console().print(
        f"adjudication {r['id']}: consensus {r['codes'] or '(no code)'}; settled codings {r['settled_coding_ids']}, "
        f"decisions {r['settled_decision_ids']}",
        markup=False,
    )
    if r.get("round_closed"):  # the stored round results (report, `round list`) follow the settlement
        from pipeline.rounds_report import consensus_line

        console().print(
            f"round {r['round']} is closed: its stored coder-vs-consensus agreement is updated", markup=False
        )
        for coder, coefs in (r.get("consensus") or {}).items():
            console().print(consensus_line(coder, coefs), markup=False)
