"""Agreement round by round: a chart of every closed round's coefficients with their intervals, a
table, and the codebook changes between rounds (an HTML fragment for the project report).

Input is the plain results :func:`pipeline.project.rounds.round_results` stores for each round; a
round whose agreement was not measured (``not_measured``: nobody coded anything to compare) shows the
reason instead of coefficients and has no point on the chart.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from pipeline.agreement import coefficient_label


def rounds_chart_png(rounds: Sequence[dict[str, Any]]) -> bytes:
    """PNG: each coefficient (pooled over codes) per round, with its bootstrap interval, on one chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(n for r in rounds for n in r.get("coefficients", {})))
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = list(range(len(rounds)))
    for k, name in enumerate(names):
        px, py, lo, hi = [], [], [], []
        for i, r in enumerate(rounds):
            e = r.get("coefficients", {}).get(name)
            if e is None:
                continue
            px.append(i + (k - (len(names) - 1) / 2) * 0.08)
            py.append(e["value"])
            lo.append(e["value"] - (e["ci_low"] if e.get("ci_low") is not None else e["value"]))
            hi.append((e["ci_high"] if e.get("ci_high") is not None else e["value"]) - e["value"])
        ax.errorbar(px, py, yerr=[lo, hi], fmt="o-", capsize=3, label=coefficient_label(name))
    ax.set_xticks(xs, [f"{r['round']}\n(codebook v{r.get('codebook_version', '?')})" for r in rounds])
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.05)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("agreement (pooled over codes), 95% interval")
    if names:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def adjudicated_units(n: int | None) -> str:
    """How many units a coder-vs-consensus figure is on.

    >>> adjudicated_units(1), adjudicated_units(4), adjudicated_units(None)
    ('1 adjudicated segment', '4 adjudicated segments', 'the adjudicated segments')
    """
    if n is None:
        return "the adjudicated segments"
    return f"{n} adjudicated segment{'' if n == 1 else 's'}"


def consensus_line(coder: str, coefs: dict[str, dict[str, Any]]) -> str:
    """``  ann vs consensus (on the 4 adjudicated segments): percent 0.500, cohen 0.333`` — a round's
    stored coder-vs-consensus agreement (``round close``, ``adjudicate`` on a closed round).

    >>> consensus_line("ann", {"percent": {"value": 0.5, "n_units": 1}})
    '  ann vs consensus (on 1 adjudicated segment): percent 0.500'
    """
    n = next((v.get("n_units") for v in coefs.values()), None)
    on = adjudicated_units(n) if n in (None, 1) else f"the {adjudicated_units(n)}"
    return f"  {coder} vs consensus (on {on}): " + ", ".join(
        f"{k} {v['value']:.3f}" for k, v in coefs.items()
    )


def _fmt(e: dict[str, Any] | None) -> str:
    if not e:
        return ""
    if e.get("ci_low") is None:
        return f"{e['value']:.3f}"
    return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def rounds_html(rounds: Sequence[dict[str, Any]]) -> str:
    """The fragment: heading, chart, one table row per round, codebook changes between rounds."""
    import jinja2

    if not rounds:
        return ""
    names = list(dict.fromkeys(n for r in rounds for n in r.get("coefficients", {})))
    png = base64.b64encode(rounds_chart_png(rounds)).decode("ascii")
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        rounds=rounds,
        names=names,
        labels={n: coefficient_label(n) for n in names},
        fmt=_fmt,
        units=adjudicated_units,
        png=png,
    )


_TEMPLATE = """<div class="rounds" id="rounds">
<h3>Agreement round by round</h3>
<img alt="agreement per round with 95% intervals" src="data:image/png;base64,{{ png }}">
<table><thead><tr><th>round</th><th>codebook</th><th>coders</th><th>segments</th>
{% for n in names %}<th>{{ labels[n] }}</th>{% else %}<th>agreement</th>{% endfor %}<th>decisions on suggestions</th><th>vs consensus</th>
<th>codebook changes since the previous round</th></tr></thead><tbody>
{% for r in rounds %}<tr><td>{{ r.round }}</td><td>v{{ r.codebook_version }}</td><td>{{ r.coders | join(", ") }}</td>
<td>{{ r.units }}</td>{% if r.not_measured %}<td colspan="{{ [names | length, 1] | max }}">n/a: {{ r.not_measured }}</td>
{% else %}{% for n in names %}<td>{{ fmt(r.coefficients.get(n)) }}</td>{% else %}<td></td>{% endfor %}{% endif %}
<td>{% if r.decisions %}{{ r.decisions.units }} suggestions; κ {{ fmt(r.decisions.coefficients.get("cohen")) }}{% endif %}</td>
<td>{% for c, co in (r.consensus or {}).items() %}{{ c }}: κ {{ fmt(co.get("cohen")) }} ({{ units((co.values() | first).n_units) }})<br>{% endfor %}</td>
<td>{% set ch = r.codebook_changes or {} %}{% for k, v in ch.items() if v %}{{ k }}: {{ v | join(", ") }}<br>{% endfor %}</td></tr>
{% endfor %}</tbody></table>
</div>
"""
