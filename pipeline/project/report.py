"""`qualflow report`: gather a project's data from the store and write the HTML report and CSVs."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from pipeline.domain import Coding
from pipeline.errors import QualflowError
from pipeline.project.codebooks import split_by_codebook
from pipeline.project.core import Progress, Project
from pipeline.store.mappers import coding_from_row, segment_from_row, source_from_row
from pipeline.store.queries import current_sources, load_segments, require_codebook
from pipeline.store.schema import AdjudicationRow, CoderRow, CodingRow, ModelVersionRow, SourceRow

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)
_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.S | re.I)


def agreement_fragment(project: Project) -> tuple[str | None, str | None, str]:
    """The agreement panel of every human coder as an HTML fragment and CSV, or why there is none."""
    from pipeline.agreement_report import to_csv, to_html
    from pipeline.project.agreement import project_agreement

    try:
        # as `qualflow agreement`: the same intervals in both
        report = project_agreement(project, n_boot=1000, progress=True)
    except QualflowError as exc:
        return None, None, str(exc)
    page = to_html(report)
    m = _BODY.search(page)
    styles = "".join(_STYLE.findall(page))
    body = m.group(1) if m else page
    body = re.sub(
        r"<h1[^>]*>.*?</h1>", "", body, count=1, flags=re.S | re.I
    )  # the report has its own heading
    scope = (
        '<p class="agreement-scope">Agreement to date on every active coding of the current interview '
        "versions by the coders listed (made by hand, imported, or accepted from the suggestion queue, "
        "in the interviews each coder coded by hand), including codings made after a round closed; consensus codings from adjudication are not in it. "
        "Agreement measured round by round, on each round's own codings, is shown above when rounds were "
        "closed.</p>"
    )
    return styles + scope + body, to_csv(report), ""


def rounds_fragment(project: Project) -> str:
    """Agreement round by round (chart, table, codebook changes) as an HTML fragment; empty without
    closed rounds."""
    from pipeline.project.rounds import closed_rounds
    from pipeline.rounds_report import rounds_html

    return rounds_html(closed_rounds(project))


def model_runs(project: Project) -> list[dict[str, object]]:
    with project.store.transaction() as session:
        rows = list(session.scalars(select(ModelVersionRow).order_by(ModelVersionRow.id)))
        out: list[dict[str, object]] = []
        for r in rows:
            metrics = {
                k: v
                for k, v in (r.metrics or {}).items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            out.append(
                {
                    "run_id": r.mlflow_run_id or "-",
                    "suggester": r.suggester,
                    "version": r.label,
                    "metrics": metrics,
                    # set by the retrain flow's gate (a `suggest` or prototype version: never)
                    "promoted": (r.metrics or {}).get("promoted") is True,
                }
            )
    return out


def analysis_codings(session: Session) -> tuple[list[Coding], int]:
    """The active codings of the current sources the report analyses, and how many it replaced.

    Where a lead adjudicated a unit, the consensus codings of the settlement replace the coders'
    codings it settled (``AdjudicationRow.settled_coding_ids``) within the unit: an adjudicated
    passage counts once, with the codes the lead chose (none for a code overruled). A settled coding
    that reaches beyond the unit (a long passage of which one segment was adjudicated) keeps the
    parts outside it (:func:`outside`).
    """
    from collections import defaultdict

    settled: dict[int, list[tuple[int, int]]] = defaultdict(list)  # coding id -> units that settled it
    for ids, start, end in session.execute(
        select(AdjudicationRow.settled_coding_ids, AdjudicationRow.start, AdjudicationRow.end)
    ):
        for i in ids or ():
            settled[int(i)].append((int(start), int(end)))
    q = (
        select(CodingRow, SourceRow.name, CoderRow.name)
        .join(SourceRow, CodingRow.source_id == SourceRow.id)
        .join(CoderRow, CodingRow.coder_id == CoderRow.id)
        .where(CodingRow.active, SourceRow.is_current)
        .order_by(SourceRow.ingest_order, CodingRow.start, CodingRow.id)
    )
    kept: list[Coding] = []
    replaced = 0
    for c, sname, cname in session.execute(q):
        coding = coding_from_row(c, sname, cname)
        if c.id in settled:
            replaced += 1
            kept += [replace(coding, start=a, end=b) for a, b in outside(c.start, c.end, settled[c.id])]
        else:
            kept.append(coding)
    return kept, replaced


def outside(start: int, end: int, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` that none of ``units`` covers.

    >>> outside(43, 236, [(100, 128)]), outside(100, 128, [(100, 128)]), outside(0, 10, [(5, 20), (0, 2)])
    ([(43, 100), (128, 236)], [], [(2, 5)])
    """
    parts = [(start, end)]
    for a, b in units:
        parts = [p for lo, hi in parts for p in ((lo, min(hi, a)), (max(lo, b), hi)) if p[0] < p[1]]
    return parts


def old_version_note(session: Session) -> str | None:
    """A note on the active codings an edit left on older versions of sources (not in the report)."""
    n, m = session.execute(
        select(func.count(CodingRow.id), func.count(distinct(SourceRow.name)))
        .join(SourceRow, CodingRow.source_id == SourceRow.id)
        .where(CodingRow.active, SourceRow.is_current.is_(False))
    ).one()
    if not n:
        return None
    return (
        f"{n} coding{'s' if n != 1 else ''} on older versions of {m} source{'s' if m != 1 else ''} "
        f"{'are' if n != 1 else 'is'} not counted (qualflow sources --versions)"
    )


def write_project_report(project: Project, out_dir: Path, *, warn: Progress | None = None) -> Path:
    """Write ``report.html`` and the CSV tables for ``project`` into ``out_dir``.

    Codings whose code the current codebook no longer has are left out; ``warn`` gets one line saying
    how many and which codes (see :func:`pipeline.project.codebooks.split_by_codebook`), and one on
    the codings left on older versions of re-ingested sources (:func:`old_version_note`); the report
    prints both notes too. Adjudicated units count with their consensus codings
    (:func:`analysis_codings`).
    """
    from pipeline.project.embedding import coverage_notes
    from pipeline.report import ReportBundle, summarise_corpus, write_report
    from pipeline.saturation import order_interviews

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
        sources = [source_from_row(r) for r in current_sources(session)]
        segments = [segment_from_row(r, name) for r, name in load_segments(session, project.config)]
        loaded, replaced = analysis_codings(session)
        codings, left_out = split_by_codebook(codebook, loaded)
        on_old = old_version_note(session)
    notes = [n for n in (left_out, on_old) if n]
    if warn is not None:
        for n in notes:
            warn(n)
    order = order_interviews([s.name for s in sources], {s.name: s.metadata for s in sources})
    agreement_html, agreement_csv, why = agreement_fragment(project)
    per_round = rounds_fragment(project)
    if per_round:
        agreement_html = per_round + (agreement_html or "")
    bundle = ReportBundle(
        project=project.config.name,
        sources=summarise_corpus(sources, segments, codings),
        codebook=codebook,
        codings=codings,
        segments=segments,
        source_texts={s.name: s.text for s in sources},
        source_order=order,
        agreement_html=agreement_html,
        agreement_csv=agreement_csv,
        agreement_note=why if agreement_html is None else "",
        model_runs=model_runs(project),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        language_notes=coverage_notes(project),
        coding_notes=notes,
        settled_codings=replaced,
    )
    return write_report(bundle, out_dir)
