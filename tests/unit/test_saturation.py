"""Saturation (Guest, Namey & Chen 2020) on hand-built corpora with known first appearances."""

from __future__ import annotations

import re

import pytest

from pipeline.domain import Coding
from pipeline.errors import InputError
from pipeline.saturation import (
    assess_saturation,
    order_interviews,
    plot_saturation,
    saturation_from_code_sets,
)

# Codes found in each interview, in order of collection.
#   i1 {a,b,c}  new a,b,c   -> 3   cumulative 3
#   i2 {b,d}    new d       -> 1   cumulative 4
#   i3 {e}      new e       -> 1   cumulative 5
#   i4 {a}      nothing new -> 0   cumulative 5   base = i1..i4: {a,b,c,d,e} = 5 codes
#   i5 {f}      new f       -> 1   cumulative 6
#   i6 {}                   -> 0   cumulative 6
#   i7 {}                   -> 0   cumulative 6
#   i8 {g}      new g       -> 1   cumulative 7
CORPUS = [
    ("i1", {"a", "b", "c"}),
    ("i2", {"b", "d"}),
    ("i3", {"e"}),
    ("i4", {"a"}),
    ("i5", {"f"}),
    ("i6", set()),
    ("i7", set()),
    ("i8", {"g"}),
]


def test_default_rule_exact_curve_and_point() -> None:
    r = saturation_from_code_sets(CORPUS)
    assert r.new_codes == [3, 1, 1, 0, 1, 0, 0, 1]
    assert r.cumulative == [3, 4, 5, 5, 6, 6, 6, 7]
    assert r.new_code_names[0] == ["a", "b", "c"]
    assert r.base_codes == 5
    # base 4, run 2, threshold 5%:
    #   run i5-i6: 1 new / 5 = 20%  > 5%
    #   run i6-i7: 0 new / 5 = 0%  <= 5%  -> reached; point = last interview before the run = 5
    assert [(x.start, x.end, x.new_codes, x.ratio, x.meets_threshold) for x in r.runs] == [
        (5, 6, 1, 0.2, False),
        (6, 7, 0, 0.0, True),
    ]
    assert r.reached is True
    assert r.point == 5
    assert r.point_name == "i5"
    assert r.confirming_run is not None and r.confirming_run.interviews == ("i6", "i7")
    assert r.statement == (
        "Saturation reached at 5 interviews (base 4, run 2, new-information threshold ≤5%): "
        "interviews 6–7 added 0 new codes, 0.0% of the 5 base codes."
    )


def test_threshold_is_inclusive_and_parameters_configurable() -> None:
    # base 2 = {a,b,c,d} (4 codes), run 3, threshold 25%:
    #   run i3-i5: e, -, f = 2 / 4 = 50%  > 25%
    #   run i4-i6: -, f, - = 1 / 4 = 25% <= 25% -> reached at 3
    r = saturation_from_code_sets(CORPUS, base_size=2, run_length=3, threshold=0.25)
    assert r.base_codes == 4
    assert [(x.start, x.end, x.ratio) for x in r.runs] == [(3, 5, 0.5), (4, 6, 0.25)]
    assert (r.reached, r.point, r.point_name) == (True, 3, "i3")
    # threshold 20% with the defaults: the first run (1/5 = 20%) already meets it -> point 4
    r = saturation_from_code_sets(CORPUS, threshold=0.2)
    assert (r.reached, r.point, len(r.runs)) == (True, 4, 1)


def test_not_reached() -> None:
    # base 4, run 3: i5-i7 = 1/5, i6-i8 = 1/5; no run at or under 5%
    r = saturation_from_code_sets(CORPUS, run_length=3)
    assert [x.ratio for x in r.runs] == [0.2, 0.2]
    assert (r.reached, r.point, r.point_name) == (False, None, None)
    assert r.statement.startswith("Saturation not reached in 8 interviews (base 4, run 3")
    assert "20.0% (interviews 5–7)" in r.statement


def test_zero_threshold_variant() -> None:
    r = saturation_from_code_sets(CORPUS, threshold=0.0)
    assert (r.reached, r.point) == (True, 5)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([], "no codings yet"),
        ([("i1", set()), ("i2", set())], "no codings yet"),
        ([("i1", {"a"}), ("i2", {"b"})], "2 interviews, the rule needs at least 6"),
        (
            [(f"i{k}", set()) for k in range(4)] + [("i5", {"a"}), ("i6", set())],
            "first 4 interviews hold no code",
        ),
    ],
)
def test_cannot_assess(sets: list[tuple[str, set[str]]], message: str) -> None:
    r = saturation_from_code_sets(sets)
    assert not r.reached and r.point is None and r.runs == []
    assert re.search(message, r.statement), r.statement


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_size": 0}, "base_size must be an integer >= 1, got 0"),
        ({"run_length": 1.5}, "run_length must be an integer >= 1"),
        ({"threshold": 5}, "write 5% as 0.05"),
        ({"threshold": -0.1}, "threshold is a proportion"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        saturation_from_code_sets(CORPUS, **kwargs)  # type: ignore[arg-type]


def test_duplicate_interviews_rejected() -> None:
    with pytest.raises(InputError, match=r"repeated: \['i1'\]"):
        saturation_from_code_sets([("i1", {"a"}), ("i1", {"b"})])


def _codings() -> list[Coding]:
    out = []
    for name, codes in CORPUS:
        for k, code in enumerate(sorted(codes)):
            out.append(Coding(name, 10 * k, 10 * k + 5, code, "ana"))
    # accepted suggestions: only in i1 and i5
    out.append(Coding("i1", 0, 5, "a", "ana", origin="model-accepted"))
    out.append(Coding("i5", 0, 5, "z", "ana", origin="model-accepted"))
    return out


def test_assess_from_codings_separates_origins() -> None:
    order = [n for n, _ in CORPUS]
    human = assess_saturation(_codings(), order, origins={"human", "imported"})
    assert human.new_codes == [3, 1, 1, 0, 1, 0, 0, 1] and human.point == 5
    accepted = assess_saturation(_codings(), order, origins={"model-accepted"})
    assert accepted.new_codes == [1, 0, 0, 0, 1, 0, 0, 0]
    # base {a} = 1 code; run i5-i6 adds z: 100%; run i6-i7: 0% -> reached at 5
    assert [x.ratio for x in accepted.runs] == [1.0, 0.0] and accepted.point == 5


def test_unknown_source_named() -> None:
    with pytest.raises(InputError, match="source 'i9', which is not in the interview order"):
        assess_saturation([Coding("i9", 0, 1, "a", "ana")], ["i1", "i2"])


def test_order_interviews() -> None:
    meta = {"x": {"date": "2024-03-02"}, "y": {"date": "2024-01-15"}, "z": {"date": "2024-02-01"}}
    assert order_interviews(["x", "y", "z"], meta) == ["y", "z", "x"]
    assert order_interviews(
        ["x", "y"], {"x": {"order": "10", "date": "2020-01-01"}, "y": {"order": "2"}}
    ) == [
        "y",
        "x",
    ]
    # a source without the key (e.g. an interview added later) follows the others
    assert order_interviews(["y", "x"], {"x": {"order": "1"}}) == ["x", "y"]
    with pytest.raises(InputError, match="source 'x' has date='March 2'; it must be a date YYYY-MM-DD"):
        order_interviews(["x"], {"x": {"date": "March 2"}})


def test_plot_is_png() -> None:
    png = plot_saturation({"human coding": saturation_from_code_sets(CORPUS)})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
