"""The agreement report: per-code and pooled coefficients, warnings, and the disagreements to discuss.

:func:`agreement_panel` turns plain data (codings, segments, source texts) into an
:class:`AgreementReport`; :func:`to_json`, :func:`to_csv`, :func:`to_html` and
:func:`render_terminal` present it. Model coders are ordinary coder names (``"model:linear@3"``).
No value in a report is ever NaN: an undefined coefficient is left out of its row and explained in
the row's notes and in the warnings.

One module, one concern: the agreement panel (coefficients per code and pooled, pairwise κ,
disagreements) and its renderings (terminal, JSON, CSV, HTML), which must show the same numbers.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.agreement import (
    COEFFICIENTS,
    AgreementError,
    Estimate,
    OverlapResult,
    Units,
    char_units,
    coefficient_label,
    default_coded_sources,
    estimate,
    group_estimates,
    overlap_agreement,
    pairwise_cohen,
    segment_units,
)
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError
from pipeline.fileio import csv_writer

if TYPE_CHECKING:
    from rich.console import Console

Unit = Literal["segment", "overlap", "char"]
UNIT_DESCRIPTIONS: dict[str, str] = {
    "segment": "segments: each coder's set of codes on each segment (presence per code); a coding belongs "
    "to a segment when they overlap by at least half of the shorter of the two",
    "overlap": "coded spans, MAXQDA-style: codings of the same code match when they overlap by at least "
    "{threshold:.0%} of the longer span; kappa with Brennan-Prediger chance agreement (1 / number of codes)",
    "char": "characters, NVivo/QualCoder-style: presence of each code per character{uncoded}",
}
KAPPA_LIKE = ("cohen", "fleiss", "scott", "krippendorff")
PARADOX_KAPPA = 0.4
PARADOX_PERCENT = 0.8
POOLED = "(pooled)"


@dataclass(frozen=True)
class CodeRow:
    """Coefficients of one code (or of all codes pooled, ``code == "(pooled)"``).

    ``estimates`` holds only the coefficients that are defined; ``notes`` explains the others.
    ``prevalence`` is the share of (non-missing) ratings that apply the code.
    """

    code: str
    n_units: int
    prevalence: float | None
    estimates: dict[str, Estimate]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Disagreement:
    """A stretch of text on which the coders differ: ``codes[coder]`` are the codes each applied."""

    source: str
    start: int
    end: int
    text: str
    codes: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class AgreementReport:
    """Everything a report shows; see :func:`agreement_panel`."""

    unit: str
    unit_description: str
    coders: tuple[str, ...]
    codes: tuple[str, ...]
    coefficients: tuple[str, ...]
    rows: tuple[CodeRow, ...]
    pooled: CodeRow
    warnings: tuple[str, ...]
    disagreements: tuple[Disagreement, ...]
    pairwise: dict[tuple[str, str], float | None] = field(default_factory=dict)
    n_boot: int = 1000
    seed: int = 0
    ci: float = 0.95
    overlap: OverlapResult | None = None


def default_coefficients(unit: str, n_coders: int) -> tuple[str, ...]:
    """The coefficients a report shows unless told otherwise.

    Examples
    --------
    >>> default_coefficients("segment", 2)
    ('percent', 'cohen', 'krippendorff', 'ac1')
    >>> default_coefficients("segment", 3)
    ('percent', 'fleiss', 'krippendorff', 'ac1')
    >>> default_coefficients("overlap", 2)
    ('percent', 'brennan_prediger')
    """
    if unit == "overlap":
        return ("percent", "brennan_prediger")
    return ("percent", "cohen" if n_coders == 2 else "fleiss", "krippendorff", "ac1")


def _check_request(unit: str, coders: Sequence[str], coefficients: Sequence[str]) -> None:
    if unit not in UNIT_DESCRIPTIONS:
        raise InputError(f"Unknown agreement unit {unit!r}; choose one of {sorted(UNIT_DESCRIPTIONS)}")
    unknown = [c for c in coefficients if c not in COEFFICIENTS]
    if unknown:
        raise InputError(
            f"Unknown agreement coefficient {unknown[0]!r}; choose one of {sorted(COEFFICIENTS)}"
        )
    if unit == "overlap" and tuple(coefficients) != default_coefficients("overlap", 2):
        raise InputError(
            "the overlap unit reports MAXQDA's figures only (percent, brennan_prediger); "
            "use --unit segment or char for other coefficients"
        )
    if "cohen" in coefficients and len(coders) != 2:
        raise InputError(
            f"Cohen's kappa compares exactly two coders; {len(coders)} given: use fleiss or krippendorff "
            "(the report adds pairwise Cohen's kappa for more than two coders)"
        )
    if len(coders) < 2:
        who = f" ({', '.join(repr(c) for c in coders)})" if coders else ""
        raise AgreementError(f"only one coder{who} selected; agreement needs at least two")


def agreement_panel(
    codings: Sequence[Coding],
    segments: Sequence[Segment],
    source_texts: Mapping[str, str],
    coders: Sequence[str],
    codes: Sequence[str],
    unit: Unit = "segment",
    coefficients: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    threshold: float = 0.9,
    exclude_uncoded: bool = True,
    coded_sources: Mapping[str, set[str]] | None = None,
    progress: bool = False,
) -> AgreementReport:
    """Agreement of ``coders`` on ``codes``, per code and pooled, with the disagreements.

    Parameters
    ----------
    codings : sequence of Coding
        Codings of any coders and codes (model codings as coder ``"model:<name>@<version>"``).
    segments : sequence of Segment
        The segments (used by ``unit="segment"``).
    source_texts : mapping of str to str
        Text of every source (for the disagreement excerpts and the character units).
    coders : sequence of str
        Coders to compare (at least two).
    codes : sequence of str
        Codes to compare.
    unit : {"segment", "overlap", "char"}
        What a unit is (see :data:`UNIT_DESCRIPTIONS`).
    coefficients : sequence of str, optional
        Keys of :data:`pipeline.agreement.COEFFICIENTS`; default :func:`default_coefficients`.
    n_boot : int
        Bootstrap resamples for the confidence intervals (0: none).
    seed : int
        Bootstrap seed.
    ci : float
        Confidence level.
    threshold : float
        Overlap share for ``unit="overlap"``.
    exclude_uncoded : bool
        For ``unit="char"``: leave out characters nobody coded.
    coded_sources : mapping of str to set of str, optional
        Sources each coder has seen (default: sources where the coder has a coding).
    progress : bool
        Show progress bars (on stderr) when there are many codes
        (:data:`pipeline.agreement.PROGRESS_MIN_GROUPS`).

    Returns
    -------
    AgreementReport

    Raises
    ------
    InputError
        Unknown unit or coefficient, a coefficient that does not fit the coders, bad codings.
    AgreementError
        Fewer than two coders, or coders who share no unit.
    """
    chosen = tuple(coefficients) if coefficients is not None else default_coefficients(unit, len(coders))
    _check_request(unit, coders, chosen)
    seen = dict(coded_sources) if coded_sources is not None else default_coded_sources(codings, coders)
    active = [c for c in coders if seen.get(c)]
    if len(active) < 2:
        idle = [c for c in coders if c not in active]
        who = f"only one coder ({active[0]!r})" if active else "no coder"
        raise AgreementError(
            f"{who} coded any of these sources ({', '.join(repr(c) for c in idle)} coded nothing); "
            "agreement needs at least two"
        )
    if unit == "overlap":
        return _overlap_report(codings, source_texts, coders, codes, threshold, seen, n_boot, seed, ci)
    if unit == "segment":
        units = segment_units(codings, segments, coders, codes, seen)
        description = UNIT_DESCRIPTIONS["segment"]
    else:
        lengths = {name: len(text) for name, text in source_texts.items()}
        units = char_units(codings, lengths, coders, codes, seen, exclude_uncoded)
        description = UNIT_DESCRIPTIONS["char"].format(
            uncoded="; characters no coder coded are left out" if exclude_uncoded else ", all characters"
        )
    warnings: list[str] = []
    # every code's coefficients and the pooled ones at once: the resamples are shared (same numbers);
    # "only one coder" / "share no units" for the whole selection come first, as one clear error
    per_code, pooled_estimates = group_estimates(
        chosen, units.presence, n_categories=2, n_boot=n_boot, seed=seed, ci=ci, coders=coders,
        progress=progress,
    )  # fmt: skip
    rows = tuple(_code_row(code, units.presence[i], per_code[i], warnings) for i, code in enumerate(codes))
    pooled = _code_row(POOLED, units.presence, pooled_estimates, warnings)
    if unit == "char" and n_boot:
        warnings.append(
            "characters are not independent units: bootstrap intervals over characters are too narrow; "
            "read them as a lower bound on the uncertainty"
        )
    pairwise = pairwise_cohen(units.presence, coders, n_categories=2) if len(coders) > 2 else {}
    return AgreementReport(
        unit=unit,
        unit_description=description,
        coders=tuple(coders),
        codes=tuple(codes),
        coefficients=chosen,
        rows=rows,
        pooled=pooled,
        warnings=tuple(warnings),
        disagreements=_disagreements(units, source_texts),
        pairwise=pairwise,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
    )


def _code_row(
    code: str,
    R: np.ndarray,
    results: tuple[dict[str, Estimate], dict[str, str]],
    warnings: list[str],
) -> CodeRow:
    """The row of one code (or pooled) from its coefficients (:func:`pipeline.agreement.estimates`)."""
    rated = R[R >= 0]
    prevalence = float(rated.mean()) if rated.size else None
    rated_mask = (R >= 0).any(axis=0) if R.ndim == 3 else R >= 0  # (n_units, n_coders)
    n_units = int((rated_mask.sum(axis=1) >= 2).sum())
    notes: list[str] = []
    if code != POOLED and rated.size and rated.max() == 0:
        notes.append(f"code {code!r} was used by nobody: kappa is undefined (0/0); percent agreement is 100%")
    elif code != POOLED and rated.size and rated.min() == 1:
        notes.append(f"code {code!r} was applied to every unit by every coder: kappa is undefined (0/0)")
    defined, undefined = results
    if undefined and not notes:
        notes.extend(f"{coefficient_label(name)}: {why}" for name, why in undefined.items())
    for note in notes:
        warnings.append(note if note.startswith("code ") else f"code {code!r}: {note}")
    _paradox(code, R, defined, warnings)
    return CodeRow(code, n_units, prevalence, defined, tuple(notes))


def _paradox(code: str, R: np.ndarray, estimates: dict[str, Estimate], warnings: list[str]) -> None:
    """Warn when chance-corrected agreement is low although observed agreement is high."""
    percent = estimates.get("percent")
    if percent is None or percent.value < PARADOX_PERCENT:
        return
    low = [(n, e) for n, e in estimates.items() if n in KAPPA_LIKE and e.value < PARADOX_KAPPA]
    if not low:
        return
    ac1 = estimates.get("ac1") or estimate("ac1", R, n_categories=2, n_boot=0)
    name, est = low[0]
    where = "pooled over codes" if code == POOLED else f"code {code!r}"
    warnings.append(
        f"{where}: percent agreement is {percent.value:.0%} but {coefficient_label(name)} is {est.value:.2f} "
        f"- the prevalence paradox (a rare or near-universal code); Gwet's AC1 = {ac1.value:.2f} is robust to it"
    )


def _text(source_texts: Mapping[str, str], source: str, start: int, end: int) -> str:
    if source not in source_texts:
        raise InputError(f"source {source!r} has codings but its text was not given; pass it in source_texts")
    return source_texts[source][start:end]


def _disagreements(units: Units, source_texts: Mapping[str, str]) -> tuple[Disagreement, ...]:
    P = units.presence  # (n_codes, n_units, n_coders)
    seen = P[0] >= 0  # (n_units, n_coders)
    hi = np.where(P >= 0, P, -1).max(axis=2)
    lo = np.where(P >= 0, P, 2).min(axis=2)
    differ = ((hi != lo) & (hi >= 0)).any(axis=0) & (seen.sum(axis=1) >= 2)  # (n_units,)
    if units.unit == "char":  # merge runs of adjacent characters with the same pattern
        flat = P.transpose(1, 0, 2).reshape(P.shape[1], -1)
        cont = np.zeros(P.shape[1], dtype=bool)
        cont[1:] = (
            (flat[1:] == flat[:-1]).all(axis=1)
            & (units.source_index[1:] == units.source_index[:-1])
            & (units.starts[1:] == units.ends[:-1])
            & differ[1:]
            & differ[:-1]
        )
        first = np.flatnonzero(differ & ~cont)
        run_id = np.cumsum(differ & ~cont) - 1
        last = np.zeros(first.size, dtype=np.int64)
        np.maximum.at(last, run_id[differ], np.flatnonzero(differ))
        spans = list(zip(first.tolist(), (units.ends[last]).tolist(), strict=True))
    else:
        spans = [(int(u), int(units.ends[u])) for u in np.flatnonzero(differ)]
    out = []
    shown = np.array([u for u, _ in spans], dtype=np.int64)
    applied = P[:, shown, :].transpose(1, 2, 0) == 1  # (disagreement, coder, code): one gather, not per code
    names = np.array(units.codes, dtype=object)
    for d, (u, end) in enumerate(spans):  # one entry per disagreement shown to the coders
        source = units.sources[units.source_index[u]]
        start = int(units.starts[u])
        codes = {
            coder: tuple(names[applied[d, j]].tolist()) for j, coder in enumerate(units.coders) if seen[u, j]
        }
        out.append(Disagreement(source, start, end, _text(source_texts, source, start, end), codes))
    return tuple(out)


def _overlap_report(
    codings: Sequence[Coding],
    source_texts: Mapping[str, str],
    coders: Sequence[str],
    codes: Sequence[str],
    threshold: float,
    seen: Mapping[str, set[str]],
    n_boot: int,
    seed: int,
    ci: float,
) -> AgreementReport:
    res = overlap_agreement(codings, coders, codes, threshold, seen)
    warnings: list[str] = []

    def row(code: str, r: Any) -> CodeRow:
        n = r.matched + r.unmatched[0] + r.unmatched[1]
        ests: dict[str, Estimate] = {}
        notes: list[str] = []
        if r.percent is None:
            notes.append(f"code {code!r} was used by nobody: no codings to match")
        else:
            ests["percent"] = Estimate("percent", r.percent, None, None, n, 2, ci, 0)
            if r.kappa_bp is None:
                notes.append("kappa (Brennan-Prediger) needs at least two codes: chance agreement 1/1 = 1")
            else:
                ests["brennan_prediger"] = Estimate("brennan_prediger", r.kappa_bp, None, None, n, 2, ci, 0)
        warnings.extend(notes)
        return CodeRow(code, n, None, ests, tuple(notes))

    rows = tuple(row(code, r) for code, r in zip(codes, res.rows, strict=True))
    pooled = row(POOLED, res.total)
    by_source: dict[str, list[Coding]] = {}
    for c in codings:
        if c.coder in coders and c.code in codes:
            by_source.setdefault(c.source, []).append(c)
    dis = []
    for c in res.unmatched:  # what the coders discuss: the unmatched codings, with the other's codes
        other = coders[1] if c.coder == coders[0] else coders[0]
        theirs = sorted(
            {
                o.code
                for o in by_source.get(c.source, [])
                if o.coder == other and o.start < c.end and c.start < o.end
            }
        )
        dis.append(
            Disagreement(
                c.source, c.start, c.end, _text(source_texts, c.source, c.start, c.end),
                {c.coder: (c.code,), other: tuple(theirs)},
            )
        )  # fmt: skip
    return AgreementReport(
        unit="overlap",
        unit_description=UNIT_DESCRIPTIONS["overlap"].format(threshold=threshold),
        coders=tuple(coders),
        codes=tuple(codes),
        coefficients=default_coefficients("overlap", 2),
        rows=rows,
        pooled=pooled,
        warnings=tuple(warnings),
        disagreements=tuple(dis),
        n_boot=0,
        seed=seed,
        ci=ci,
        overlap=res,
    )


# ----------------------------------------------------------------------------------------------
# Presentation
# ----------------------------------------------------------------------------------------------


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    return {
        "value": e.value,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "n_units": e.n_units,
        "n_coders": e.n_coders,
        "note": e.note,
    }


def _row_dict(r: CodeRow) -> dict[str, Any]:
    return {
        "code": r.code,
        "n_units": r.n_units,
        "prevalence": r.prevalence,
        "coefficients": {name: _estimate_dict(e) for name, e in r.estimates.items()},
        "notes": list(r.notes),
    }


def to_dict(report: AgreementReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (no NaN anywhere)."""
    return {
        "unit": report.unit,
        "unit_description": report.unit_description,
        "coders": list(report.coders),
        "codes": list(report.codes),
        "coefficients": {name: coefficient_label(name) for name in report.coefficients},
        "confidence": {"level": report.ci, "bootstrap_resamples": report.n_boot, "seed": report.seed},
        "rows": [_row_dict(r) for r in report.rows],
        "pooled": _row_dict(report.pooled),
        "pairwise_cohen": [{"a": a, "b": b, "kappa": k} for (a, b), k in report.pairwise.items()],
        "warnings": list(report.warnings),
        "disagreements": [
            {
                "source": d.source,
                "start": d.start,
                "end": d.end,
                "text": d.text,
                "codes": {k: list(v) for k, v in d.codes.items()},
            }
            for d in report.disagreements
        ],
    }


def to_json(report: AgreementReport) -> str:
    """JSON text of :func:`to_dict` (strict: ``allow_nan=False``)."""
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False, allow_nan=False)


CSV_COLUMNS = (
    "unit",
    "code",
    "coefficient",
    "value",
    "ci_low",
    "ci_high",
    "n_units",
    "n_coders",
    "prevalence",
    "note",
)


def to_csv(report: AgreementReport) -> str:
    """One line per code and coefficient (pooled rows have code ``(pooled)``); undefined ones say why."""
    buf = io.StringIO()
    w = csv_writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in (*report.rows, report.pooled):
        prev = "" if r.prevalence is None else f"{r.prevalence:.6g}"
        for name in report.coefficients:
            e = r.estimates.get(name)
            if e is None:
                w.writerow([report.unit, r.code, name, "", "", "", r.n_units, "", prev, "; ".join(r.notes)])
                continue
            w.writerow(
                [
                    report.unit, r.code, name, f"{e.value:.6g}",
                    "" if e.ci_low is None else f"{e.ci_low:.6g}",
                    "" if e.ci_high is None else f"{e.ci_high:.6g}",
                    e.n_units, e.n_coders, prev, e.note,
                ]
            )  # fmt: skip
    return buf.getvalue()


def _fmt(e: Estimate | None) -> str:
    if e is None:
        return "undefined"
    if e.ci_low is None or e.ci_high is None:
        return f"{e.value:.3f}"
    return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


CHART_MAX_CODES = 40
"""The chart draws at most this many codes (the most applied) and the pooled row; the table has all."""


def chart_rows(report: AgreementReport, limit: int = CHART_MAX_CODES) -> tuple[list[CodeRow], str]:
    """The code rows the chart draws, in the table's order, and a line saying what it leaves out: with
    more than ``limit`` codes, the ``limit`` applied most often (prevalence × units), so a 300-code
    panel is a readable figure rather than a 140-inch one."""
    rows = list(report.rows)
    if len(rows) <= limit:
        return rows, ""

    def applied(r: CodeRow) -> float:
        return (r.prevalence or 0.0) * r.n_units

    keep = {id(r) for r in sorted(rows, key=applied, reverse=True)[:limit]}
    return (
        [r for r in rows if id(r) in keep],
        f"The chart shows the {limit} most applied of the {len(rows)} codes and the pooled row; the "
        "table has every code.",
    )


def _chart_png(report: AgreementReport) -> str:
    """Base64 PNG: per-code estimates with their confidence intervals, one marker per coefficient
    (the codes of :func:`chart_rows`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (*chart_rows(report)[0], report.pooled)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    names = list(report.coefficients)
    for k, name in enumerate(names):
        ys, xs, lo, hi = [], [], [], []
        for i, r in enumerate(rows):
            e = r.estimates.get(name)
            if e is None:
                continue
            ys.append(len(rows) - 1 - i + (k - (len(names) - 1) / 2) * 0.15)
            xs.append(e.value)
            lo.append(e.value - (e.ci_low if e.ci_low is not None else e.value))
            hi.append((e.ci_high if e.ci_high is not None else e.value) - e.value)
        ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", capsize=3, label=coefficient_label(name))
    ax.set_yticks(range(len(rows)), [r.code for r in reversed(rows)])
    ax.axvline(0, color="grey", linewidth=0.5)
    ax.set_xlim(min(-0.1, ax.get_xlim()[0]), 1.05)
    ax.set_xlabel(f"estimate with {report.ci:.0%} bootstrap interval" if report.n_boot else "estimate")
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qualflow agreement report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
tr.pooled { font-weight: bold; }
.warn { background: #fff4d6; padding: 0.5em; border-left: 4px solid #e0a000; margin: 0.3em 0; }
.text { white-space: pre-wrap; }
</style></head><body>
<h1>Inter-coder agreement</h1>
<p><b>Coders:</b> {{ r.coders | join(", ") }}<br><b>Unit:</b> {{ r.unit }} &mdash; {{ r.unit_description }}<br>
{% if r.n_boot %}<b>Intervals:</b> {{ "%.0f" | format(100 * r.ci) }}% percentile bootstrap, {{ r.n_boot }} resamples
of units, seed {{ r.seed }}{% endif %}</p>
{% for w in r.warnings %}<div class="warn">{{ w }}</div>{% endfor %}
<h2>Per code</h2>
<p class="columns">Each code is judged as present or absent in every {{ r.unit }} by every coder.
<b>n</b>: the {{ r.unit }}s at least two coders rated; in the pooled row, those {{ r.unit }}s judged once per code,
so the pooled coefficients rest on n &times; {{ r.codes | length }} codes decisions.
<b>prevalence</b>: the share of the ratings (one per coder and {{ r.unit }}) that apply the code; pooled: over all codes.
Then one column per coefficient ({{ labels.values() | join(", ") }}) with {% if r.n_boot %}its {{ "%.0f" | format(100 * r.ci) }}% interval{% else %}no interval{% endif %},
each computed over present/absent per code, and pooled over every code and {{ r.unit }} together.</p>
<table><thead><tr><th>code</th><th>n</th><th>prevalence</th>
{% for c in r.coefficients %}<th>{{ labels[c] }}</th>{% endfor %}<th>notes</th></tr></thead><tbody>
{% for row in rows %}<tr{% if row.code == pooled %} class="pooled"{% endif %}><td>{{ row.code }}</td>
<td>{{ row.n_units }}{% if row.code == pooled %} {{ r.unit }}s &times; {{ r.codes | length }} codes{% endif %}</td><td>{{ "" if row.prevalence is none else "%.1f%%" | format(100 * row.prevalence) }}</td>
{% for c in r.coefficients %}<td>{{ fmt(row.estimates.get(c)) }}</td>{% endfor %}
<td>{{ row.notes | join("; ") }}</td></tr>
{% endfor %}</tbody></table>
<img alt="per-code estimates with confidence intervals" src="data:image/png;base64,{{ chart }}">
{% if chart_note %}<p>{{ chart_note }}</p>{% endif %}
{% if r.pairwise %}<h2>Pairwise Cohen's kappa (pooled over codes)</h2>
<table><thead><tr><th></th>{% for b in r.coders %}<th>{{ b }}</th>{% endfor %}</tr></thead><tbody>
{% for a in r.coders %}<tr><th>{{ a }}</th>{% for b in r.coders %}<td>{{ pair(a, b) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endif %}
<h2>Disagreements ({{ r.disagreements | length }})</h2>
<table><thead><tr><th>source</th><th>span</th><th>text</th>{% for c in r.coders %}<th>{{ c }}</th>{% endfor %}
</tr></thead><tbody>
{% for d in r.disagreements %}<tr><td>{{ d.source }}</td><td>{{ d.start }}&ndash;{{ d.end }}</td>
<td class="text">{{ d.text }}</td>{% for c in r.coders %}<td>{% if c in d.codes %}{{ d.codes[c] | join(", ") or "(none)" }}{% else %}(not coded){% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
</body></html>
"""


def to_html(report: AgreementReport) -> str:
    """A self-contained HTML page: tables, an embedded PNG chart, the disagreements (all text escaped)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(HTML_TEMPLATE)

    def pair(a: str, b: str) -> str:
        if a == b:
            return ""
        k = report.pairwise.get((a, b), report.pairwise.get((b, a)))
        return "undefined" if k is None else f"{k:.3f}"

    return template.render(
        r=report,
        rows=(*report.rows, report.pooled),
        pooled=POOLED,
        labels={c: coefficient_label(c) for c in report.coefficients},
        fmt=_fmt,
        pair=pair,
        chart=_chart_png(report),
        chart_note=chart_rows(report)[1],
    )


def render_terminal(report: AgreementReport, console: Console, max_disagreements: int = 20) -> None:
    """Print the report with rich tables: per code, pooled, pairwise, warnings, disagreements."""
    from rich.markup import escape
    from rich.table import Table

    console.print(f"[bold]Inter-coder agreement[/bold] of {escape(', '.join(report.coders))}")
    console.print(f"Unit: [bold]{report.unit}[/bold] - {escape(report.unit_description)}")
    if report.n_boot:
        console.print(
            f"Intervals: {report.ci:.0%} percentile bootstrap, {report.n_boot} resamples, seed {report.seed}"
        )
    table = Table(show_lines=False)
    table.add_column("code")
    table.add_column("n", justify="right")
    table.add_column("prevalence", justify="right")
    for c in report.coefficients:
        table.add_column(coefficient_label(c), justify="right")
    for r in (*report.rows, report.pooled):
        prev = "" if r.prevalence is None else f"{r.prevalence:.1%}"
        style = "bold" if r.code == POOLED else None
        table.add_row(
            escape(r.code),
            str(r.n_units) if r.code != POOLED else f"{r.n_units} × {len(report.codes)} codes",
            prev,
            *(_fmt(r.estimates.get(c)) for c in report.coefficients),
            style=style,
        )
    console.print(table)
    console.print(
        f"n: the {report.unit}s rated (pooled: each {report.unit} once per code); prevalence: the share of "
        "the ratings that apply the code"
    )
    if report.pairwise:
        pt = Table(title="Pairwise Cohen's kappa (pooled over codes)")
        pt.add_column("coder")
        for b in report.coders:
            pt.add_column(escape(b), justify="right")
        for a in report.coders:
            cells = []
            for b in report.coders:
                k = report.pairwise.get((a, b), report.pairwise.get((b, a)))
                cells.append("" if a == b else ("undefined" if k is None else f"{k:.3f}"))
            pt.add_row(escape(a), *cells)
        console.print(pt)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    n = len(report.disagreements)
    console.print(f"\n[bold]Disagreements[/bold]: {n}")
    for d in report.disagreements[:max_disagreements]:
        who = "; ".join(f"{c}: {', '.join(v) or '(none)'}" for c, v in d.codes.items())
        flat = " ".join(d.text.split())  # one line; not repr(), which escapes a Persian ZWNJ as \u200c
        excerpt = flat if len(flat) <= 120 else flat[:117] + "..."
        console.print(f"  {escape(d.source)} [{d.start}-{d.end}] “{escape(excerpt)}”  ->  {escape(who)}")
    if n > max_disagreements:
        console.print(f"  ... and {n - max_disagreements} more (see --format html or json)")
