"""The project report: one self-contained HTML file plus a CSV of every table.

``build_report(bundle)`` returns ``(html, {csv_name: csv_text})``; ``write_report(bundle, out_dir)``
writes ``report.html`` and the CSVs next to it, each atomically. The HTML has no external reference:
CSS is inline, plots are base64 PNG data URIs (matplotlib, Agg backend), all text is escaped by
Jinja2's autoescape, and ``://`` inside text is written as ``&#58;//`` so even a URL quoted in a
transcript is text, not a reference.

Which codings feed which section: the bundle's codings are the coders' codings and the consensus
codings of adjudication, where a lead's settlement of a unit replaces the coders' codings it settled
(the caller leaves those out: :func:`pipeline.project.report.analysis_codings`), so an adjudicated
passage counts once. The coder ``consensus`` is not a person: the corpus table and the coder count
list people only, and the consensus codings are counted apart. Saturation runs separately on human
codings (origins ``human``, ``imported`` and ``consensus``) and on accepted suggestions (origin
``model-accepted``, when there are any); the codebook counts, co-occurrence and the paradigm model use
all codings (accepted suggestions are human-confirmed). Co-occurrence counts units per coder (the
consensus is one coder of the units it settled): two codes co-occur where one coder applied both.

One module, one concern: the project report (tables and one self-contained HTML page); its
template and its no-external-resource check belong with it.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt

from pipeline.domain import Codebook, Coding, Segment, Source
from pipeline.errors import InputError
from pipeline.fileio import csv_writer, write_atomic
from pipeline.paradigm import CategorySuggestion, DimensionSuggestion

__all__ = ["ReportBundle", "SourceSummary", "build_report", "summarise_corpus", "write_report"]

HUMAN_ORIGINS = frozenset({"human", "imported", "consensus"})
CONSENSUS_CODER = "consensus"  # pipeline.project.rounds.CONSENSUS: the lead's adjudications
ACCEPTED_ORIGINS = frozenset({"model-accepted"})


@dataclass(frozen=True)
class SourceSummary:
    """One row of the corpus table."""

    name: str
    turns: int
    segments: int
    words: int
    coders: tuple[str, ...]


@dataclass
class ReportBundle:
    """Everything the report shows, as plain data (the caller loads it from the project store).

    Attributes
    ----------
    project : str
        Project name (the report title).
    sources : list of SourceSummary
        Corpus table rows (see :func:`summarise_corpus`).
    codebook, codings, segments
        The project's codebook, the codings to analyse and all segments. ``codings`` are the coders'
        codings and the consensus codings (coder ``consensus``) of adjudication, without the coders'
        codings a settlement replaced (see the module docstring).
    source_texts : mapping of source name -> text
        For exemplar quotes.
    source_order : list of str
        Interviews in order of collection (see :func:`pipeline.saturation.order_interviews`).
    agreement_html, agreement_csv : str or None
        The agreement panel, pre-rendered (a self-contained HTML fragment, already escaped) and its
        table; ``None`` when fewer than two coders have coded the same material.
    agreement_note : str
        Why there is no agreement panel (shown in its place when ``agreement_html`` is ``None``).
    model_runs : list of dict, optional
        One dict per run: ``run_id``, ``suggester``, ``version``, ``metrics`` (dict of name ->
        number), ``promoted`` (bool); other keys become extra columns.
    base_size, run_length, threshold
        Saturation parameters (Guest et al. 2020).
    window : int
        Co-occurrence window in segments.
    coding_vectors : mapping of Coding -> ndarray of shape (dim,), optional
        Embeddings of coded texts, for choosing exemplar quotes nearest each code's centroid.
    category_suggestions, dimension_suggestions
        Optional suggestions for the lead researcher (from :mod:`pipeline.paradigm`).
    generated_at : str, optional
        Timestamp to print (the caller supplies it, keeping the output deterministic).
    coding_notes : list of str
        Codings the report leaves out and why (removed codes, older versions of sources), one line
        each, shown under the corpus table.
    settled_codings : int
        Coders' codings an adjudication settled, left out of ``codings`` (its consensus codings
        replace them).
    language_notes : list of str
        One line per language the embedding model does not cover (what qualflow did about it), shown
        under the corpus table (:func:`pipeline.project.embedding.coverage_notes`).
    """

    project: str
    sources: list[SourceSummary]
    codebook: Codebook
    codings: list[Coding]
    segments: list[Segment]
    source_texts: Mapping[str, str]
    source_order: list[str]
    agreement_html: str | None = None
    agreement_csv: str | None = None
    agreement_note: str = ""
    model_runs: list[dict[str, Any]] | None = None
    base_size: int = 4
    run_length: int = 2
    threshold: float = 0.05
    window: int = 1
    coding_vectors: Mapping[Coding, npt.ArrayLike] | None = None
    category_suggestions: list[CategorySuggestion] = field(default_factory=list)
    dimension_suggestions: list[DimensionSuggestion] = field(default_factory=list)
    generated_at: str | None = None
    language_notes: list[str] = field(default_factory=list)
    coding_notes: list[str] = field(default_factory=list)
    settled_codings: int = 0


def summarise_corpus(
    sources: Sequence[Source], segments: Sequence[Segment], codings: Sequence[Coding]
) -> list[SourceSummary]:
    """Corpus table rows: turns, segments, words (whitespace-separated) and coders per source.

    Coders are people: the coder ``consensus`` (adjudication) is not listed."""
    n_seg: dict[str, int] = {}
    for s in segments:
        n_seg[s.source] = n_seg.get(s.source, 0) + 1
    coders: dict[str, set[str]] = {}
    for c in codings:
        if c.coder != CONSENSUS_CODER:
            coders.setdefault(c.source, set()).add(c.coder)
    return [
        SourceSummary(
            name=s.name,
            turns=len(s.turns),
            segments=n_seg.get(s.name, 0),
            words=len(s.text.split()),
            coders=tuple(sorted(coders.get(s.name, set()))),
        )
        for s in sources
    ]


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv_writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return "" if v is None else str(v)


_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _check_fragment(html: str) -> None:
    """Refuse an agreement panel whose markup refers to another site (text may mention any URL)."""
    from pipeline.html_refs import external_references

    bad = external_references(html)[:3]
    if bad:
        raise InputError(
            f"report: the agreement panel contains external references {bad}; it must be self-contained "
            f"(embed images as data URIs, no links to other sites)"
        )


def _finalize(value: Any) -> Any:
    from markupsafe import Markup, escape

    if isinstance(value, str) and not isinstance(value, Markup) and "://" in value:
        return Markup(str(escape(value)).replace("://", "&#58;//"))
    return value


def build_report(bundle: ReportBundle) -> tuple[str, dict[str, str]]:
    """Render the report.

    Returns
    -------
    html : str
        One self-contained HTML document.
    csvs : dict of file name -> CSV text
        Every table of the report.

    Raises
    ------
    InputError
        A coding names an unknown code or source, or the agreement fragment is not self-contained.
    """
    import jinja2
    from markupsafe import Markup

    from pipeline.cooccurrence import cooccurrence, plot_heatmap, plot_network
    from pipeline.paradigm import DIMENSION_LABELS, UNASSIGNED, build_paradigm, plot_paradigm
    from pipeline.saturation import SaturationResult, assess_saturation, plot_saturation

    b = bundle
    names = set(b.codebook.names())
    for c in b.codings:
        if c.code not in names:
            raise InputError(
                f"report: coding at {c.source}:{c.start}-{c.end} uses code '{c.code}', which is not in the "
                f"codebook"
            )
    if b.agreement_html is not None:
        _check_fragment(b.agreement_html)
    csvs: dict[str, str] = {}

    # corpus
    corpus_rows = [[s.name, s.turns, s.segments, s.words, "; ".join(s.coders)] for s in b.sources]
    csvs["corpus.csv"] = _csv(["source", "turns", "segments", "words", "coders"], corpus_rows)
    totals = {
        "sources": len(b.sources),
        "turns": sum(s.turns for s in b.sources),
        "segments": sum(s.segments for s in b.sources),
        "words": sum(s.words for s in b.sources),
        "coders": len({c for s in b.sources for c in s.coders}),
        "codings": sum(1 for c in b.codings if c.coder != CONSENSUS_CODER),
    }
    n_consensus = len(b.codings) - totals["codings"]

    # codebook
    uses: dict[str, int] = {}
    for c in b.codings:
        uses[c.code] = uses.get(c.code, 0) + 1
    depth: dict[str, int] = {}
    for code in b.codebook.codes:
        d, p, seen = 0, code.parent, {code.name}
        while p is not None and p not in seen:
            seen.add(p)
            d += 1
            pc = b.codebook.get(p)
            p = pc.parent if pc is not None else None
        depth[code.name] = d
    codebook_rows = [
        [
            code.name,
            code.parent or "",
            code.dimension or "",
            code.description,
            "yes" if code.is_codable else "no",
            uses.get(code.name, 0),
        ]
        for code in b.codebook.codes
    ]
    csvs["codebook.csv"] = _csv(
        ["code", "parent", "dimension", "description", "codable", "codings"], codebook_rows
    )
    codebook_view = [
        {
            "row": r,
            "depth": depth[code.name],
            "color": code.color if _COLOUR.fullmatch(code.color or "") else "",
        }
        for r, code in zip(codebook_rows, b.codebook.codes, strict=True)
    ]

    # saturation
    def _sat(origins: frozenset[str]) -> SaturationResult:
        # only interviews someone coded count: an uncoded interview adds no codes because nobody
        # has read it yet, not because the study is saturated
        coded = {c.source for c in b.codings if c.origin in origins}
        return assess_saturation(
            b.codings,
            [s for s in b.source_order if s in coded],
            origins=origins,
            base_size=b.base_size,
            run_length=b.run_length,
            threshold=b.threshold,
        )

    sat = {"human coding": _sat(HUMAN_ORIGINS)}
    if any(c.origin in ACCEPTED_ORIGINS for c in b.codings):
        sat["accepted suggestions"] = _sat(ACCEPTED_ORIGINS)
    sat_views = []
    for label, res in sat.items():
        slug = "human" if label == "human coding" else "accepted"
        rows = [
            [i + 1, name, res.new_codes[i], res.cumulative[i], "; ".join(res.new_code_names[i])]
            for i, name in enumerate(res.interviews)
        ]
        csvs[f"saturation_{slug}.csv"] = _csv(
            ["position", "interview", "new_codes", "cumulative", "codes"], rows
        )
        run_rows = [
            [
                r.start,
                r.end,
                " ".join(r.interviews),
                r.new_codes,
                res.base_codes,
                f"{r.ratio:.4f}",
                "yes" if r.meets_threshold else "no",
            ]
            for r in res.runs
        ]
        csvs[f"saturation_runs_{slug}.csv"] = _csv(
            ["run_start", "run_end", "interviews", "new_codes", "base_codes", "ratio", "meets_threshold"],
            run_rows,
        )
        sat_views.append({"label": label, "result": res, "rows": rows, "runs": run_rows, "slug": slug})
    sat_png = _data_uri(plot_saturation(sat)) if b.source_order else None

    # co-occurrence
    used = [c.name for c in b.codebook.codes if c.is_codable and uses.get(c.name, 0) > 0]
    co = cooccurrence(b.segments, b.codings, used, window=b.window, partial_coders={CONSENSUS_CODER})
    for key, M, fmt in (
        ("counts", co.counts, "{:d}"),
        ("jaccard", co.jaccard, "{:.4f}"),
        ("association", co.association, "{:.4f}"),
    ):
        rows = [
            [used[i], *[fmt.format(int(v) if key == "counts" else float(v)) for v in M[i]]]
            for i in range(len(used))
        ]
        csvs[f"cooccurrence_{key}.csv"] = _csv(["code", *used], rows)
    heat_png = net_png = None
    linked = [i for i in range(len(used)) if co.counts[i].sum() > co.counts[i, i]]
    if len(used) >= 2:
        if len(linked) >= 2:
            heat_png = _data_uri(
                plot_heatmap(
                    co.counts[linked][:, linked],
                    [used[i] for i in linked],
                    title="Codes in the same unit (counts)",
                )
            )
        net_png = _data_uri(
            plot_network(co.counts, used, sizes=[float(co.counts[i, i]) for i in range(len(used))])
        )
    pairs = sorted(
        (
            (used[i], used[j], int(co.counts[i, j]), float(co.jaccard[i, j]), float(co.association[i, j]))
            for i in range(len(used))
            for j in range(i + 1, len(used))
            if co.counts[i, j] > 0
        ),
        key=lambda t: (-t[2], -t[3], t[0], t[1]),
    )[:10]

    # paradigm
    model = build_paradigm(b.codebook, b.codings, b.source_texts, coding_vectors=b.coding_vectors)
    paradigm_png = _data_uri(plot_paradigm(model))
    par_rows = []
    quote_rows = []
    for e in model.all_entries():
        par_rows.append(
            [
                e.dimension,
                e.code,
                e.parent or "",
                "inherited" if e.inherited else "own",
                e.frequency,
                e.interviews,
            ]
        )
        for k, q in enumerate(e.exemplars, 1):
            quote_rows.append([e.code, k, q.source, q.start, q.end, q.text])
    csvs["paradigm.csv"] = _csv(
        ["dimension", "code", "parent", "dimension_from", "codings", "interviews"], par_rows
    )
    csvs["exemplar_quotes.csv"] = _csv(["code", "rank", "source", "start", "end", "text"], quote_rows)
    paradigm_view = [
        {"label": DIMENSION_LABELS[d], "entries": model.entries[d]}
        for d in (*("causal", "phenomenon", "context", "intervening", "strategy", "consequence"), UNASSIGNED)
        if model.entries[d]
    ]
    if b.category_suggestions:
        csvs["suggested_categories.csv"] = _csv(
            ["anchor", "members", "cohesion"],
            [[s.anchor, "; ".join(s.members), f"{s.cohesion:.4f}"] for s in b.category_suggestions],
        )
    if b.dimension_suggestions:
        csvs["suggested_dimensions.csv"] = _csv(
            ["code", "dimension", "similarity", "runner_up", "runner_up_similarity"],
            [
                [
                    s.code,
                    s.dimension,
                    f"{s.similarity:.4f}",
                    s.runner_up or "",
                    "" if s.runner_up_similarity is None else f"{s.runner_up_similarity:.4f}",
                ]
                for s in b.dimension_suggestions
            ],
        )

    # agreement
    if b.agreement_csv is not None:
        csvs["agreement.csv"] = b.agreement_csv

    # model runs
    runs_header: list[str] = []
    runs_rows: list[list[str]] = []
    if b.model_runs:
        base_cols = ["run_id", "suggester", "version", "metrics", "promoted"]
        extra = [k for r in b.model_runs for k in r if k not in base_cols]
        runs_header = base_cols + list(dict.fromkeys(extra))
        runs_rows = [[_fmt(r.get(k)) for k in runs_header] for r in b.model_runs]
        metric_names = list(dict.fromkeys(m for r in b.model_runs for m in (r.get("metrics") or {})))
        csv_header = [k for k in runs_header if k != "metrics"] + [f"metric.{m}" for m in metric_names]
        csv_rows = [
            [
                _fmt(r.get(k)) if k != "promoted" else str(bool(r.get(k))).lower()
                for k in runs_header
                if k != "metrics"
            ]
            + [str((r.get("metrics") or {}).get(m, "")) for m in metric_names]
            for r in b.model_runs
        ]
        csvs["model_runs.csv"] = _csv(csv_header, csv_rows)

    env = jinja2.Environment(autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined)
    html = env.from_string(_TEMPLATE).render(
        b=b,
        totals=totals,
        codebook_view=codebook_view,
        sat_views=sat_views,
        sat_png=sat_png,
        co=co,
        used=used,
        pairs=pairs,
        heat_png=heat_png,
        net_png=net_png,
        paradigm_png=paradigm_png,
        paradigm_view=paradigm_view,
        n_consensus=n_consensus,
        agreement=Markup(b.agreement_html) if b.agreement_html is not None else None,
        agreement_note=b.agreement_note,
        runs_header=runs_header,
        runs_rows=runs_rows,
        csv_names=sorted(csvs),
        threshold_pct=f"{b.threshold * 100:g}",
    )
    return html, csvs


def write_report(bundle: ReportBundle, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``report.html`` and every table as CSV into ``out_dir`` (created if missing).

    Each file is written to a temporary file in ``out_dir`` and renamed into place.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html, csvs = build_report(bundle)
    for name, text in csvs.items():
        write_atomic(out / name, text.encode("utf-8"))
    target = out / "report.html"
    write_atomic(target, html.encode("utf-8"))
    return target


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ b.project }} — qualflow report</title>
<style>
:root { --ink:#1d1d1f; --muted:#5f6368; --rule:#e3e3e0; --accent:#1f5f8b; --bg:#fcfcfa; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 16px/1.55 Charter, "Bitstream Charter", "Sitka Text", Cambria, Georgia, serif; }
main { max-width: 1060px; margin: 0 auto; padding: 2.2rem 1.6rem 4rem; }
h1, h2, h3, nav, table, .meta, figcaption, .pill {
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 2rem; margin: 0 0 .2rem; letter-spacing: -.01em; }
h2 { font-size: 1.35rem; margin: 2.6rem 0 .8rem; padding-bottom: .3rem; border-bottom: 2px solid var(--rule); }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; color: #333; }
.meta { color: var(--muted); font-size: .9rem; margin: 0 0 1.4rem; }
nav { background:#fff; border:1px solid var(--rule); border-radius:8px; padding:.8rem 1.2rem; font-size:.92rem; }
nav ol { margin:.3rem 0 0; padding-left:1.3rem; columns: 2; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; font-size: .86rem; margin: .5rem 0 1rem; background:#fff; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: #f3f3f0; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 1.4rem; background:#fff; border:1px solid var(--rule); border-radius:8px; padding: .8rem; }
figure img { display:block; max-width:100%; height:auto; margin:0 auto; }
figcaption { color: var(--muted); font-size: .85rem; margin-top: .4rem; }
.grid2 { display:grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.statement { background:#fff; border-left: 4px solid var(--accent); padding:.6rem 1rem; margin:.6rem 0; }
.statement.no { border-left-color: #b5541c; }
.totals { display:flex; flex-wrap:wrap; gap:.6rem; margin:.5rem 0 1rem; }
.pill { background:#fff; border:1px solid var(--rule); border-radius:999px; padding:.25rem .8rem; font-size:.85rem; }
.pill b { font-size: 1rem; }
blockquote { margin:.3rem 0 .5rem; padding:.2rem .8rem; border-left: 3px solid var(--rule); color:#333; font-size:.95rem; }
blockquote cite { display:block; color: var(--muted); font-size:.8rem; font-style: normal; }
.swatch { display:inline-block; width:.8em; height:.8em; border-radius:2px; margin-right:.35em; vertical-align:-.05em; }
.muted { color: var(--muted); }
details { margin: .4rem 0; }
@media print { nav { display:none; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
@media (max-width: 760px) { .grid2 { grid-template-columns: 1fr; } nav ol { columns: 1; } }
</style>
</head>
<body>
<main>
<h1>{{ b.project }}</h1>
<p class="meta">qualflow report{% if b.generated_at %} · generated {{ b.generated_at }}{% endif %}
 · {{ totals.sources }} interviews · {{ totals.codings }} codings by {{ totals.coders }} coder{% if totals.coders != 1 %}s{% endif %}{% if n_consensus %}, {{ n_consensus }} consensus coding{% if n_consensus != 1 %}s{% endif %} from adjudication{% endif %}</p>

<nav aria-label="Contents"><strong>Contents</strong>
<ol>
<li><a href="#corpus">Corpus</a></li>
<li><a href="#codebook">Codebook</a></li>
<li><a href="#saturation">Saturation</a></li>
<li><a href="#agreement">Inter-coder agreement</a></li>
<li><a href="#cooccurrence">Co-occurrence</a></li>
<li><a href="#paradigm">Paradigm model</a></li>
<li><a href="#models">Model runs</a></li>
<li><a href="#tables">Tables as CSV</a></li>
</ol></nav>

<section id="corpus">
<h2>Corpus</h2>
<div class="totals">
{% for k in ["sources", "turns", "segments", "words", "coders", "codings"] %}<span class="pill"><b>{{ "{:,}".format(totals[k]) }}</b> {{ k }}</span>
{% endfor %}{% if n_consensus %}<span class="pill"><b>{{ "{:,}".format(n_consensus) }}</b> consensus codings</span>
{% endif %}</div>
{% if n_consensus or b.settled_codings %}<p class="consensus-note">Coders are people and the codings count theirs; the
{{ n_consensus }} consensus coding{% if n_consensus != 1 %}s{% endif %} from adjudication are counted apart. Where the lead adjudicated a unit,
its consensus codings replace the {{ b.settled_codings }} coders' coding{% if b.settled_codings != 1 %}s{% endif %} the settlement settled:
an adjudicated passage counts once, with the codes the lead chose, in the code counts, saturation, co-occurrence and the paradigm model.</p>
{% endif %}<table>
<thead><tr><th>Interview</th><th class="num">Turns</th><th class="num">Segments</th><th class="num">Words</th><th>Coders</th></tr></thead>
<tbody>
{% for s in b.sources %}<tr><td>{{ s.name }}</td><td class="num">{{ s.turns }}</td><td class="num">{{ s.segments }}</td><td class="num">{{ "{:,}".format(s.words) }}</td><td>{{ s.coders|join(", ") }}</td></tr>
{% else %}<tr><td colspan="5" class="muted">No interviews yet.</td></tr>
{% endfor %}</tbody></table>
{% for note in b.coding_notes %}<p class="coding-note">{{ note[:1]|upper }}{{ note[1:] }}.</p>
{% endfor %}{% for note in b.language_notes %}<p class="language-note">Language: {{ note }}</p>
{% endfor %}</section>

<section id="codebook">
<h2>Codebook</h2>
<p class="muted">{{ b.codebook.name }} · {{ b.codebook.codes|length }} codes</p>
<table>
<thead><tr><th>Code</th><th>Dimension</th><th>Description</th><th class="num">Codings</th></tr></thead>
<tbody>
{% for v in codebook_view %}<tr>
<td style="padding-left: {{ 0.6 + 1.3 * v.depth }}rem">{% if v.color %}<span class="swatch" style="background: {{ v.color }}"></span>{% endif %}{{ v.row[0] }}{% if v.row[4] == "no" %} <span class="muted">(category)</span>{% endif %}</td>
<td>{{ v.row[2] }}</td><td>{{ v.row[3] }}</td><td class="num">{{ v.row[5] }}</td></tr>
{% endfor %}</tbody></table>
</section>

<section id="saturation">
<h2>Saturation</h2>
<p>Assessed with the method of Guest, Namey &amp; Chen (2020): the unique codes of the first
{{ b.base_size }} interviews form the base; a run of {{ b.run_length }} consecutive interviews moves forward one
interview at a time; saturation is reached at the first run whose new codes are at most {{ threshold_pct }}% of the
base, and reported at the last interview before that run.</p>
{% for v in sat_views %}
<div class="statement{% if not v.result.reached %} no{% endif %}"><strong>{{ v.label|capitalize }}:</strong> {{ v.result.statement }}</div>
{% endfor %}
{% if sat_png %}<figure><img src="{{ sat_png }}" alt="New codes per interview and cumulative number of distinct codes">
<figcaption>New codes per interview (top) and distinct codes so far (bottom), interviews in order of collection; the shaded band is the base.</figcaption></figure>{% endif %}
{% for v in sat_views %}
<details><summary>{{ v.label|capitalize }}: per interview and per run</summary>
<table><thead><tr><th class="num">#</th><th>Interview</th><th class="num">New codes</th><th class="num">Cumulative</th><th>New codes</th></tr></thead><tbody>
{% for r in v.rows %}<tr><td class="num">{{ r[0] }}</td><td>{{ r[1] }}</td><td class="num">{{ r[2] }}</td><td class="num">{{ r[3] }}</td><td>{{ r[4] }}</td></tr>
{% endfor %}</tbody></table>
{% if v.runs %}<table><thead><tr><th>Run</th><th>Interviews</th><th class="num">New codes</th><th class="num">Base codes</th><th class="num">New information</th><th>≤ threshold</th></tr></thead><tbody>
{% for r in v.runs %}<tr><td>{{ r[0] }}–{{ r[1] }}</td><td>{{ r[2] }}</td><td class="num">{{ r[3] }}</td><td class="num">{{ r[4] }}</td><td class="num">{{ "%.1f"|format(r[5]|float * 100) }}%</td><td>{{ r[6] }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
</details>
{% endfor %}
</section>

<section id="agreement">
<h2>Inter-coder agreement</h2>
{% if agreement is not none %}{{ agreement }}{% elif agreement_note %}<p class="muted">No agreement panel: {{ agreement_note }}</p>{% else %}<p class="muted">No two coders yet: agreement needs at least two coders (a model counts as one) on the same interviews.</p>{% endif %}
</section>

<section id="cooccurrence">
<h2>Co-occurrence</h2>
<p>Two codes co-occur when one coder applied both within {% if co.window == 1 %}the same segment{% else %}a window of {{ co.window }} consecutive segments of one interview{% endif %}:
a unit is one coder's {% if co.window == 1 %}segment{% else %}window{% endif %} in an interview that coder coded ({{ co.n_units }} units), so codes two
coders gave the same passage do not co-occur, and a pair two coders both applied counts twice. The consensus of adjudication
counts as one coder of the units it settled, in place of the coders' settled codings. Jaccard and association strength (van Eck &amp; Waltman 2009; observed over expected, 1 = chance) are in the CSV files.</p>
{% if net_png %}
{% if heat_png %}<figure><img src="{{ heat_png }}" alt="Code co-occurrence heatmap" style="max-width: 820px"><figcaption>Number of units in which both codes occur (codes that co-occur with at least one other).</figcaption></figure>{% endif %}
<figure><img src="{{ net_png }}" alt="Code co-occurrence network" style="max-width: 640px"><figcaption>Codes as nodes (size: units coded), edges as thick as the co-occurrence count.</figcaption></figure>
{% if pairs %}<h3>Most frequent pairs</h3>
<table><thead><tr><th>Code</th><th>Code</th><th class="num">Units</th><th class="num">Jaccard</th><th class="num">Association</th></tr></thead><tbody>
{% for p in pairs %}<tr><td>{{ p[0] }}</td><td>{{ p[1] }}</td><td class="num">{{ p[2] }}</td><td class="num">{{ "%.2f"|format(p[3]) }}</td><td class="num">{{ "%.2f"|format(p[4]) }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% else %}<p class="muted">Fewer than two codes are in use yet.</p>{% endif %}
</section>

<section id="paradigm">
<h2>Paradigm model</h2>
<p>Axial coding after Strauss &amp; Corbin: each code sits in its own paradigm dimension or that of its nearest ancestor.
Counts are coded passages of the code and its sub-codes (a passage coded by two coders counts once) and the number of interviews they come from.
Exemplar quotes come first from consensus codings and passages two coders coded alike; codings an adjudication settled are not quoted.</p>
<figure><img src="{{ paradigm_png }}" alt="Paradigm model diagram"><figcaption>Causal conditions lead to the phenomenon, which
action/interaction strategies address under the given context and intervening conditions; the strategies have consequences.</figcaption></figure>
{% for d in paradigm_view %}
<h3>{{ d.label }}</h3>
<table><thead><tr><th style="width:28%">Code</th><th class="num">Passages</th><th class="num">Interviews</th><th>Exemplar quotes</th></tr></thead><tbody>
{% for e in d.entries %}<tr><td>{{ e.code }}{% if e.parent %}<br><span class="muted">in {{ e.parent }}</span>{% endif %}</td><td class="num">{{ e.frequency }}</td><td class="num">{{ e.interviews }}</td>
<td>{% for q in e.exemplars %}<blockquote>“{{ q.text|truncate(420) }}”<cite>{{ q.source }}, characters {{ q.start }}–{{ q.end }}</cite></blockquote>{% else %}<span class="muted">no coding yet</span>{% endfor %}</td></tr>
{% endfor %}</tbody></table>
{% endfor %}
{% if b.category_suggestions or b.dimension_suggestions %}
<h3>Suggestions for review</h3>
<p class="muted">Proposals only: nothing has been changed in the codebook.</p>
{% if b.category_suggestions %}<table><thead><tr><th>Possible category (around)</th><th>Codes without a parent</th><th class="num">Cohesion</th></tr></thead><tbody>
{% for s in b.category_suggestions %}<tr><td>{{ s.anchor }}</td><td>{{ s.members|join(", ") }}</td><td class="num">{{ "%.2f"|format(s.cohesion) }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% if b.dimension_suggestions %}<table><thead><tr><th>Code without a dimension</th><th>Suggested dimension</th><th class="num">Similarity</th><th>Runner-up</th></tr></thead><tbody>
{% for s in b.dimension_suggestions %}<tr><td>{{ s.code }}</td><td>{{ s.dimension }}</td><td class="num">{{ "%.2f"|format(s.similarity) }}</td><td>{{ s.runner_up or "" }}</td></tr>
{% endfor %}</tbody></table>{% endif %}
{% endif %}
</section>

<section id="models">
<h2>Model runs</h2>
{% if runs_rows %}<table><thead><tr>{% for h in runs_header %}<th>{{ h|replace("_", " ") }}</th>{% endfor %}</tr></thead><tbody>
{% for r in runs_rows %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% else %}<p class="muted">No model runs recorded yet.</p>{% endif %}
</section>

<section id="tables">
<h2>Tables as CSV</h2>
<p>Every table of this report is written next to it as a CSV file:</p>
<ul>{% for n in csv_names %}<li><a href="{{ n }}">{{ n }}</a></li>{% endfor %}</ul>
</section>
</main>
</body>
</html>
"""
