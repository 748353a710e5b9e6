"""The agreement report: rows, warnings, disagreements and the JSON / CSV / HTML / terminal output."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pipeline.agreement import AgreementError
from pipeline.agreement_report import (
    POOLED,
    agreement_panel,
    render_terminal,
    to_csv,
    to_html,
    to_json,
)
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError

TEXT = "I trust her. <script>alert(1)</script> was odd. We never talk. Fine."


def _segments() -> list[Segment]:
    bounds = [(0, 12), (13, 47), (48, 62), (63, 68)]
    return [Segment("s1", i, a, b, TEXT[a:b]) for i, (a, b) in enumerate(bounds)]


def _codings(model: bool = False) -> list[Coding]:
    out = [
        Coding("s1", 0, 12, "trust", "sara"),
        Coding("s1", 0, 12, "trust", "omid"),
        Coding("s1", 13, 47, "doubt", "sara"),  # omid did not code segment 1
        Coding("s1", 48, 62, "distance", "sara"),
        Coding("s1", 48, 62, "distance", "omid"),
        Coding("s1", 63, 68, "trust", "omid"),
    ]
    if model:
        out += [
            Coding("s1", 0, 12, "trust", "model:linear@3"),
            Coding("s1", 13, 47, "doubt", "model:linear@3"),
        ]
    return out


CODES = ["trust", "doubt", "distance", "unused"]


def _report(**kw):  # type: ignore[no-untyped-def]
    args = dict(coders=["sara", "omid"], codes=CODES, n_boot=200, seed=0)
    args.update(kw)
    return agreement_panel(_codings("model:linear@3" in args["coders"]), _segments(), {"s1": TEXT}, **args)


def test_segment_report_rows_and_disagreements() -> None:
    rep = _report()
    assert rep.unit == "segment" and rep.coefficients == ("percent", "cohen", "krippendorff", "ac1")
    trust = rep.rows[0]
    assert trust.n_units == 4
    assert trust.estimates["percent"].value == pytest.approx(3 / 4)
    assert trust.prevalence == pytest.approx(3 / 8)
    unused = rep.rows[3]
    assert "cohen" not in unused.estimates and unused.estimates["percent"].value == 1.0
    assert any("'unused' was used by nobody" in w for w in rep.warnings)
    assert rep.pooled.code == POOLED and rep.pooled.n_units == 4
    assert [(d.start, d.codes) for d in rep.disagreements] == [
        (13, {"sara": ("doubt",), "omid": ()}),
        (63, {"sara": (), "omid": ("trust",)}),
    ]
    assert rep.disagreements[0].text == TEXT[13:47]
    assert rep.pairwise == {}


def test_model_coder_and_pairwise_for_three_coders() -> None:
    rep = _report(coders=["sara", "omid", "model:linear@3"])
    assert rep.coefficients[1] == "fleiss"
    assert set(rep.pairwise) == {("sara", "omid"), ("sara", "model:linear@3"), ("omid", "model:linear@3")}
    assert rep.pairwise[("sara", "model:linear@3")] is not None


def test_prevalence_paradox_warning() -> None:
    segs = [Segment("s", i, 10 * i, 10 * i + 5, "x" * 5) for i in range(20)]
    cods = [Coding("s", 0, 5, "rare", "a"), Coding("s", 10, 15, "rare", "b")]
    cods += [Coding("s", 10 * i, 10 * i + 5, "filler", c) for i in range(20) for c in "ab"]
    rep = agreement_panel(cods, segs, {"s": "x" * 200}, ["a", "b"], ["rare", "filler"], n_boot=0)
    assert any("prevalence paradox" in w and "'rare'" in w and "AC1" in w for w in rep.warnings)


def test_overlap_report_lists_unmatched() -> None:
    rep = _report(unit="overlap")
    assert rep.coefficients == ("percent", "brennan_prediger")
    assert rep.overlap is not None and rep.overlap.chance == 0.25
    assert rep.pooled.estimates["percent"].value == pytest.approx(2 / 4)
    assert [(d.start, d.codes) for d in rep.disagreements] == [
        (13, {"sara": ("doubt",), "omid": ()}),
        (63, {"omid": ("trust",), "sara": ()}),
    ]


def test_char_report() -> None:
    rep = _report(unit="char", n_boot=50)
    assert rep.unit == "char"
    assert rep.rows[0].n_units == 12 + 34 + 14 + 5
    assert [(d.start, d.end) for d in rep.disagreements] == [(13, 47), (63, 68)]
    assert any("not independent" in w for w in rep.warnings)


def test_degenerate_inputs_give_clear_messages() -> None:
    with pytest.raises(AgreementError, match=r"only one coder \('sara'\) selected"):
        _report(coders=["sara"])
    with pytest.raises(
        AgreementError, match=r"only one coder \('sara'\) coded any of these sources \('nima'"
    ):
        _report(coders=["sara", "nima"])
    segs = _segments() + [Segment("s2", 0, 0, 5, "hello")]
    cods = [Coding("s1", 0, 12, "trust", "a"), Coding("s2", 0, 5, "trust", "b")]
    with pytest.raises(AgreementError, match="share no units"):
        agreement_panel(cods, segs, {"s1": TEXT, "s2": "hello"}, ["a", "b"], ["trust"])
    with pytest.raises(AgreementError, match="share no units"):
        agreement_panel(cods, segs, {"s1": TEXT, "s2": "hello"}, ["a", "b"], ["trust"], unit="overlap")
    with pytest.raises(InputError, match="Unknown agreement unit 'word'; choose one of"):
        _report(unit="word")
    with pytest.raises(InputError, match="Cohen's kappa compares exactly two coders"):
        _report(coders=["sara", "omid", "model:linear@3"], coefficients=["cohen"])
    with pytest.raises(InputError, match="its text was not given"):
        agreement_panel(_codings(), _segments(), {}, ["sara", "omid"], CODES, n_boot=0)


def test_json_has_no_nan_and_round_trips() -> None:
    data = json.loads(to_json(_report()))
    assert data["unit"] == "segment"
    assert data["rows"][0]["coefficients"]["cohen"]["ci_low"] is not None
    assert data["rows"][3]["coefficients"].get("cohen") is None
    assert data["disagreements"][0]["codes"] == {"sara": ["doubt"], "omid": []}
    assert "NaN" not in to_json(_report())


def test_csv_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(_report()))))
    assert len(rows) == (len(CODES) + 1) * 4
    cohen_unused = [r for r in rows if r["code"] == "unused" and r["coefficient"] == "cohen"][0]
    assert cohen_unused["value"] == "" and "used by nobody" in cohen_unused["note"]
    assert [r["code"] for r in rows][-1] == POOLED
    assert "nan" not in to_csv(_report()).lower()


def test_html_self_contained_and_escaped() -> None:
    html = to_html(_report(coders=["sara", "omid", "model:linear@3"]))
    assert "http" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "data:image/png;base64," in html
    assert "Pairwise Cohen" in html and "Disagreements (" in html


def test_render_terminal() -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, record=True)
    render_terminal(_report(), console)
    out = console.export_text()
    assert "Cohen's kappa" in out and POOLED in out and "Disagreements: 2" in out
    assert "<script>" in out  # the text is shown as is in the terminal (rich markup escaped)
    assert "4 × 4 codes" in out  # the pooled n: segments, each once per code
    assert "n: the segments rated (pooled: each segment once per code)" in out


def test_terminal_disagreements_print_the_text_as_written() -> None:
    # a Persian word with a zero-width non-joiner: repr() would print it as \u200c
    text = "من کار می\u200cکنم.\nبعد"
    segs = [Segment("fa", 0, 0, len(text), text)]
    cods = [Coding("fa", 0, len(text), "trust", "sara"), Coding("fa", 0, len(text), "doubt", "omid")]
    rep = agreement_panel(cods, segs, {"fa": text}, ["sara", "omid"], ["trust", "doubt"], n_boot=0)
    from rich.console import Console

    console = Console(record=True, width=200)
    render_terminal(rep, console)
    out = console.export_text()
    assert "“من کار می\u200cکنم. بعد”" in out and "\\u200c" not in out


def test_the_chart_draws_the_most_applied_codes_when_there_are_many() -> None:
    from pipeline.agreement_report import chart_rows

    report = _report(n_boot=0)
    rows, note = chart_rows(report)
    assert [r.code for r in rows] == CODES and note == ""
    rows, note = chart_rows(report, limit=2)  # trust and distance are applied most
    assert [r.code for r in rows] == ["trust", "distance"]
    assert (
        note
        == "The chart shows the 2 most applied of the 4 codes and the pooled row; the table has every code."
    )
    page = to_html(report)
    assert "most applied" not in page and page.count("<tr") >= len(CODES) + 1
