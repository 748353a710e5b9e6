"""Commands on suggestions: embed, suggest, discover, candidates, the queue (show/export), evaluate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

from cli.common import ProjectOpt, app, console, note_unsegmented, open_project, suggestions_app
from pipeline.text import counted


@app.command()
def embed(project: ProjectOpt = None) -> None:
    """Embed every current segment into the project's cache (a second run embeds nothing new). The
    windows the default suggester reads are composed from these vectors: nothing more to embed."""
    from pipeline.project.embedding import project_embedder
    from pipeline.store.queries import load_segments

    proj = open_project(project)
    with proj.store.transaction() as session:
        texts = [r.text for r, _ in load_segments(session, proj.config)]
    emb = project_embedder(proj)
    X = emb.encode(texts)
    console().print(
        f"{X.shape[0]} segments embedded with {emb.fingerprint} (dim {X.shape[1] if X.ndim == 2 else 0})"
    )


@app.command("suggest")
def suggest_cmd(
    suggester: Annotated[str | None, typer.Option(help="Suggester name (default: qualflow.toml).")] = None,
    sources: Annotated[str | None, typer.Option(help="Comma-separated source names (default: all).")] = None,
    fine_tune: Annotated[
        bool | None,
        typer.Option(
            "--fine-tune/--no-fine-tune",
            help="Fine-tune the encoder on the labelled segments first, within [suggester] "
            "fine_tune_minutes; reused while the codings stay the same (default: [suggester] fine_tune).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Fit a new model version even when nothing it depends on changed since the last "
            "`suggest` (codebook, codings and decisions, segments, embedding model, settings, versions).",
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Fit a suggester on the project's codings and queue its suggestions for review (a no-op when
    nothing changed since the last run)."""
    from pipeline.project.embedding import coverage_notes, project_languages
    from pipeline.project.suggest import suggest

    names = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    proj = open_project(project)
    langs = {n: lg for n, lg in project_languages(proj).items() if names is None or n in names}
    for line in coverage_notes(proj, langs):
        console(stderr=True).print(f"note: {line}", markup=False)
    note_unsegmented(proj)
    r = suggest(proj, suggester=suggester, sources=names, fine_tune=fine_tune, force=force)
    if r.encoder is not None:
        console().print(r.encoder.line(), markup=False)
    console().print(r.line(), markup=False)


@app.command("discover")
def discover_cmd(project: ProjectOpt = None) -> None:
    """Propose candidate open codes: what the codebook does not account for, ranked for a lead's review."""
    from pipeline.project.discover import discover

    proj = open_project(project)
    r = discover(proj)
    console().print(
        f"{r.candidates} candidate open codes ({r.continued} continued, {r.new} new, {r.dropped} dropped) "
        f"over {r.segments} of the {r.unexplained} segments looked at"
    )
    if not r.candidates:
        d = proj.config.discover
        console().print(
            f"no group of at least {d.min_cluster_size} similar segments (of {d.min_words} words or more) "
            f"spanning {d.min_sources} sources or more was found; with few interviews lower [discover] "
            "min_sources or min_cluster_size in qualflow.toml (docs/discovery.md)",
            markup=False,
        )
        return
    show_candidates(project)


def show_candidates(project: Path | None) -> None:
    from rich.table import Table

    from pipeline.store.queries import pending_candidates

    proj = open_project(project)
    with proj.store.transaction() as session:
        rows = sorted(
            pending_candidates(session), key=lambda c: (float((c.reasons or {}).get("rank", 1e9)), c.id)
        )
        table = Table(
            "rank",
            "id",
            "label",
            "keyphrases",
            "coherence",
            "sources",
            "novelty",
            "proposed as",
            title="Candidate open codes (in the order the review app shows them)",
        )
        for c in rows:
            why = c.reasons or {}
            kp = ", ".join(p for p, _ in c.keyphrases[:5])
            place = str(why.get("placement") or "")
            table.add_row(
                str(why.get("rank", "")),
                str(c.id),
                c.label,
                kp,
                f"{c.coherence:.2f}",
                f"{float(why.get('sources', 0)):.1f}",
                f"{float(why.get('novelty', 0)):.2f}",
                place,
            )
    console().print(table)


@suggestions_app.command("show")
def suggestions_show(
    top: Annotated[int, typer.Option(help="How many to show.")] = 15,
    project: ProjectOpt = None,
) -> None:
    """Show the pending suggestions with the highest scores."""
    from rich.table import Table

    from pipeline.project.suggest import suggestion_rows
    from pipeline.store.queries import current_source_texts

    proj = open_project(project)
    with proj.store.transaction() as session:
        rows = [r for r in suggestion_rows(session) if r["kind"] == "deductive"]
        texts = current_source_texts(session)
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


@suggestions_app.command("export")
def suggestions_export(
    path: Annotated[Path, typer.Argument(help="Output CSV file.")],
    fmt: Annotated[str, typer.Option("--format", help="Only csv for now.")] = "csv",
    state: Annotated[
        str,
        typer.Option(
            help="pending (in the queue), accepted, rejected, recoded, covered (a code a human had already "
            "given the segment: kept for agreement, never queued), duplicate (decided by a coder for "
            "another model version), superseded (replaced by a newer suggestion) or all."
        ),
    ] = "pending",
    project: ProjectOpt = None,
) -> None:
    """Export suggestions (source,segment,start,end,code,score,rank,model,kind,state,decided_by,decided_at)."""
    from pipeline.errors import InputError
    from pipeline.project.suggest import export_suggestions

    if fmt != "csv":
        raise InputError(f"--format {fmt!r} is not supported; use csv")
    n = export_suggestions(open_project(project), path, state=state)
    console().print(f"wrote {counted(n, 'suggestion')} to {path}")


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
    proj = open_project(project)
    note_unsegmented(proj)
    m = evaluate_project(proj, suggester=suggester, folds=folds)
    if fmt == "json":
        sys.stdout.write(json.dumps(jsonable(m), indent=2) + "\n")
        return
    out = console()
    name, resolved = str(m["suggester"]), str(m["resolved_suggester"])
    shown = name if resolved == name else f"{name} (= {resolved})"
    out.print(
        f"[bold]{shown}[/] on {counted(m['n_segments'], 'segment')} of {counted(m['n_sources'], 'coded source')} "
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
    points = m.get("operating_points") or []
    if points:
        curve = Table(
            "coded segments covered",
            "threshold",
            "top-1 precision",
            "all segments suggested",
            title="Precision-coverage (top-1, out of fold): the queue's default, then one common score "
            "threshold alone (no per-source gate): what \\[suggester] min_coverage would give",
        )
        for p in points:
            curve.add_row(
                f"{p['coverage']:.2f}",
                "default (the queue)" if p.get("default") else f"{p['threshold']:.3f}",
                f"{p['precision']:.2f}",
                f"{p['suggested']:.2f}",
            )
        out.print(curve)
    per = Table("code", "precision", "recall", "f1", "support", title="Per code")
    for code, r in m.get("per_code", {}).items():
        per.add_row(code, f"{r['precision']:.2f}", f"{r['recall']:.2f}", f"{r['f1']:.2f}", str(r["support"]))
    out.print(per)
