"""`qualflow report`: gather a project's data from the store and write the HTML report and CSVs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from pipeline.errors import QualflowError
from pipeline.project.codebooks import split_by_codebook
from pipeline.project.core import Progress, Project
from pipeline.store.mappers import segment_from_row, source_from_row
from pipeline.store.queries import current_sources, load_codings, load_segments, require_codebook
from pipeline.store.schema import ModelVersionRow

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
    return styles + body, to_csv(report), ""


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


def write_project_report(project: Project, out_dir: Path, *, warn: Progress | None = None) -> Path:
    """Write ``report.html`` and the CSV tables for ``project`` into ``out_dir``.

    Codings whose code the current codebook no longer has are left out; ``warn`` gets one line saying
    how many and which codes (see :func:`pipeline.project.codebooks.split_by_codebook`).
    """
    from pipeline.project.embedding import coverage_notes
    from pipeline.report import ReportBundle, summarise_corpus, write_report
    from pipeline.saturation import order_interviews

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
        sources = [source_from_row(r) for r in current_sources(session)]
        segments = [segment_from_row(r, name) for r, name in load_segments(session, project.config)]
        codings, left_out = split_by_codebook(codebook, load_codings(session))
    if left_out and warn is not None:
        warn(left_out)
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
    )
    return write_report(bundle, out_dir)
