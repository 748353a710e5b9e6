"""The shared-resampling panel gives the numbers of the one-coefficient-at-a-time computation.

``reference_bootstrap`` is qualflow's bootstrap as it was before ``group_estimates`` (a fresh index
matrix per call), kept verbatim as the reference. With two coders every per-unit statistic is a
multiple of 1/2, the sums per row pattern are exact, and every interval must equal the reference bit
for bit, for the same seed. With three or more coders a unit can score 1/3: the sums per row pattern
(units grouped by pattern, weighted by counts) equal the unit-by-unit sums up to floating-point
rounding, and every point estimate and interval bound must lie within ``TOLERANCE`` of the reference.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline.agreement as agreement
from pipeline.agreement import (
    COEFFICIENTS,
    AgreementError,
    Estimate,
    bootstrap,
    estimates,
    group_estimates,
)
from pipeline.agreement_report import agreement_panel
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError


def reference_bootstrap(spec, S, k, n_boot, seed):  # type: ignore[no-untyped-def]
    """The bootstrap before shared resampling (pipeline/agreement.py, commit ea096af)."""
    rng = np.random.default_rng(seed)
    n = S.shape[0]
    out = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b) * n)[:, None]
        w = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        out[start : start + b] = spec.value(w @ S, k)
    return out


def reference_estimates(names, R, *, n_categories, n_boot, seed, ci=0.95, coders=None):  # type: ignore[no-untyped-def]
    """``estimates`` with the reference bootstrap, one coefficient at a time."""
    m = agreement._matrix(R, n_categories, coders)
    defined: dict[str, Estimate] = {}
    undefined: dict[str, str] = {}
    for name in names:
        try:
            spec, st, n_units, n_coders = agreement._prepare(name, m)
            total = st.total()
            value = float(spec.value(total, m.k))
            if not np.isfinite(value):
                raise AgreementError(agreement._undefined_message(spec, total, m.k))
        except AgreementError as err:
            undefined[name] = str(err)
            continue
        if n_boot == 0:
            defined[name] = Estimate(name, value, None, None, n_units, n_coders, ci, 0)
            continue
        reps = reference_bootstrap(spec, st.rows(), m.k, n_boot, seed)
        finite = reps[np.isfinite(reps)]
        note = ""
        if finite.size < reps.size:
            note = f"{reps.size - finite.size} of {reps.size} resamples were undefined (0/0) and left out"
        if finite.size == 0:
            defined[name] = Estimate(name, value, None, None, n_units, n_coders, ci, n_boot, note)
            continue
        low, high = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2])
        defined[name] = Estimate(name, value, float(low), float(high), n_units, n_coders, ci, n_boot, note)
    return defined, undefined


TOLERANCE = 1e-9
"""Largest difference allowed between the pattern path and the unit-by-unit path (point and bounds)."""


def assert_close(got, ref, tol: float = TOLERANCE) -> float:  # type: ignore[no-untyped-def]
    """``(defined, undefined)`` results equal in everything but rounding: the same coefficients defined,
    the same reasons, unit and coder counts and notes; point estimates and interval bounds within
    ``tol``. Returns the largest difference."""
    (ok, why), (ref_ok, ref_why) = got, ref
    assert why == ref_why
    assert ok.keys() == ref_ok.keys()
    worst = 0.0
    for name, a in ok.items():
        b = ref_ok[name]
        assert (a.coefficient, a.n_units, a.n_coders, a.ci, a.n_boot, a.note) == (
            b.coefficient,
            b.n_units,
            b.n_coders,
            b.ci,
            b.n_boot,
            b.note,
        ), name
        for x, y in ((a.value, b.value), (a.ci_low, b.ci_low), (a.ci_high, b.ci_high)):
            assert (x is None) == (y is None), (name, x, y)
            if x is not None and y is not None:
                assert abs(x - y) <= tol, (name, x, y)
                worst = max(worst, abs(x - y))
    return worst


def _stack(rng: np.random.Generator, g: int, n: int, c: int, missing: float) -> np.ndarray:
    prevalence = rng.uniform(0.0, 0.4, size=(g, 1, 1))
    truth = rng.random((g, n, 1)) < prevalence
    flip = rng.random((g, n, c)) < 0.15
    P = (truth ^ flip).astype(np.int8)
    P[:, rng.random((n, c)) < missing] = -1  # a coder who did not see a unit misses it for every code
    P[0] = np.where(P[0] >= 0, 0, -1)  # a code nobody applied
    return P


CASES = [
    # (coders, units, n_boot, missing): every group takes the pattern path; with two coders its sums
    # are exact (bit for bit), with three, four and ten coders statistics such as 1/3 and 1/6 are not
    # (within TOLERANCE); 2,500 units x 1,000 resamples are drawn in two chunks
    (2, 60, 200, 0.0),
    (2, 90, 300, 0.2),
    (3, 70, 200, 0.1),
    (4, 50, 100, 0.3),
    (10, 80, 200, 0.2),
    (2, 2_500, 1_000, 0.1),
    (3, 2_100, 1_000, 0.05),
]


@pytest.mark.parametrize(("c", "n", "n_boot", "missing"), CASES)
def test_group_estimates_equal_the_reference(c: int, n: int, n_boot: int, missing: float) -> None:
    rng = np.random.default_rng(100 * c + n)
    P = _stack(rng, 3 if n > 1000 else 5, n, c, missing)
    names = [x for x in COEFFICIENTS if x != "cohen" or c == 2]
    coders = [f"coder{j}" for j in range(c)]
    for seed in (0,) if n > 1000 else (0, 7):
        refs = [
            reference_estimates(names, P[i], n_categories=2, n_boot=n_boot, seed=seed, coders=coders)
            for i in range(P.shape[0])
        ]
        ref_pooled = reference_estimates(names, P, n_categories=2, n_boot=n_boot, seed=seed, coders=coders)
        # as shipped, and with every group on the pattern path (however many units are off its most
        # common pattern: these noisy stacks have many)
        for off_share in (agreement._MAX_OFF_SHARE, 1.0):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(agreement, "_MAX_OFF_SHARE", off_share)
                groups, pooled = group_estimates(
                    names, P, n_categories=2, n_boot=n_boot, seed=seed, coders=coders
                )
            if c == 2:  # dataclass equality: every float bit for bit
                assert groups == refs and pooled == ref_pooled, seed
            else:
                for i in range(P.shape[0]):
                    assert_close(groups[i], refs[i])
                assert_close(pooled, ref_pooled)


@pytest.mark.parametrize(("c", "k"), [(3, 2), (4, 2), (10, 2), (3, 3), (4, 4)])
def test_pattern_path_equals_estimates_with_three_or_more_coders(
    monkeypatch: pytest.MonkeyPatch, c: int, k: int
) -> None:
    """Every coefficient defined for three or more coders, per group and pooled, point and interval:
    the sums per row pattern equal those of ``estimates()`` (unit by unit) within 1e-9, with coders
    missing on a third of the units (all codes) and on scattered single codings. These stacks are
    noisy, so every group is put on the pattern path (``_MAX_OFF_SHARE``), and checked to be there."""
    monkeypatch.setattr(agreement, "_MAX_OFF_SHARE", 1.0)
    made = _spy_paths(monkeypatch)
    rng = np.random.default_rng(1_000 * c + k)
    g, n = 4, 400
    truth = rng.integers(0, k, size=(g, n, 1))
    noisy = rng.random((g, n, c)) < 0.2
    P = np.where(noisy, rng.integers(0, k, size=(g, n, c)), truth).astype(np.int8)
    P[:, rng.random((n, c)) < 0.3] = -1  # a coder who did not see a unit's source
    P[rng.random((g, n, c)) < 0.05] = -1  # and single codings missing
    P[0] = np.where(P[0] >= 0, 0, -1)  # a code nobody applied: chance-corrected ones undefined
    names = [x for x in COEFFICIENTS if x != "cohen"]
    coders = [f"coder{j}" for j in range(c)]
    groups, pooled = group_estimates(names, P, n_categories=k, n_boot=300, seed=5, coders=coders)
    assert len(made) == 3 * len(names) + 3 and all(made)  # group 0: three coefficients are 0/0
    for i in range(g):
        got = groups[i]
        assert_close(got, estimates(names, P[i], n_categories=k, n_boot=300, seed=5, coders=coders))
        if i > 0:  # every coefficient defined, with an interval
            assert sorted(got[0]) == sorted(names) and all(e.ci_low is not None for e in got[0].values())
    assert sorted(groups[0][1]) == ["fleiss", "krippendorff", "scott"]
    assert_close(pooled, estimates(names, P, n_categories=k, n_boot=300, seed=5, coders=coders))


@st.composite
def _small_stacks(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    c = draw(st.integers(2, 6))
    k = draw(st.integers(2, 3))
    g = draw(st.integers(1, 4))
    n = draw(st.integers(2, 25))
    values = st.integers(-1, k - 1)
    flat = draw(st.lists(values, min_size=g * n * c, max_size=g * n * c))
    return np.array(flat, dtype=np.int8).reshape(g, n, c), k


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_small_stacks(), seed=st.integers(0, 2**16))
def test_group_estimates_equal_estimates_on_small_random_stacks(
    case: tuple[np.ndarray, int], seed: int
) -> None:
    """Property: on any small stack with missing values, every group and the pooled stack give
    ``estimates()``'s numbers within 1e-9 (bit for bit with two coders), or its very error: as shipped,
    and with every group on the pattern path however few of its units share its most common pattern."""
    P, k = case
    c = P.shape[2]
    names = [x for x in COEFFICIENTS if x != "cohen" or c == 2]
    try:
        ref_pooled = estimates(names, P, n_categories=k, n_boot=40, seed=seed)
    except AgreementError as err:
        with pytest.raises(AgreementError, match="^" + re.escape(str(err)) + "$"):
            group_estimates(names, P, n_categories=k, n_boot=40, seed=seed)
        return
    refs: list[tuple[dict[str, Estimate], dict[str, str]] | str] = []
    for i in range(P.shape[0]):
        try:
            refs.append(estimates(names, P[i], n_categories=k, n_boot=40, seed=seed))
        except AgreementError as err:
            refs.append(str(err))
    if any(isinstance(r, str) for r in refs):  # a group's own error: group_estimates raises the first
        first = next(r for r in refs if isinstance(r, str))
        with pytest.raises(AgreementError) as info:
            group_estimates(names, P, n_categories=k, n_boot=40, seed=seed)
        assert str(info.value) == first
        return
    for off_share in (agreement._MAX_OFF_SHARE, 1.0):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(agreement, "_MAX_OFF_SHARE", off_share)
            groups, pooled = group_estimates(names, P, n_categories=k, n_boot=40, seed=seed)
        if c == 2:
            assert groups == refs and pooled == ref_pooled
        for got, ref in zip(groups, refs, strict=True):
            assert not isinstance(ref, str)
            assert_close(got, ref)
        assert_close(pooled, ref_pooled)


def test_group_estimates_without_n_categories_and_without_bootstrap() -> None:
    rng = np.random.default_rng(3)
    P = _stack(rng, 4, 40, 2, 0.1)
    for n_boot in (0, 50):
        groups, pooled = group_estimates(list(COEFFICIENTS), P, n_boot=n_boot, seed=1)
        for i in range(P.shape[0]):
            ref = reference_estimates(list(COEFFICIENTS), P[i], n_categories=None, n_boot=n_boot, seed=1)
            assert groups[i] == ref
        assert pooled == reference_estimates(list(COEFFICIENTS), P, n_categories=None, n_boot=n_boot, seed=1)


def _spy_paths(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each job ``_pattern_job`` makes sums per pattern (True) or unit by unit (False)."""
    made: list[bool] = []
    original = agreement._pattern_job

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        job = original(*args, **kwargs)
        made.append(job.counts is not None)  # resampling counts per pattern, not unit by unit
        return job

    monkeypatch.setattr(agreement, "_pattern_job", spy)
    return made


def test_two_and_three_coders_take_the_pattern_path_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _spy_paths(monkeypatch)
    rng = np.random.default_rng(2)
    group_estimates(["percent", "krippendorff"], _stack(rng, 3, 50, 2, 0.1), n_categories=2, n_boot=10)
    assert made and all(made)
    made.clear()
    # three coders: a unit where two of three agree scores 1/3, not a multiple of 2**-20, and the sums
    # still go per pattern (equal to the unit-by-unit sums up to rounding) where most units share the
    # most common pattern (group 1: 39 of 50); a frequent code whose most common pattern holds 19 of 50
    # units (group 2) goes unit by unit, which costs no more there
    group_estimates(["percent"], _stack(rng, 3, 50, 3, 0.0), n_categories=2, n_boot=10)
    assert made == [True, True, False]


def test_inexact_groups_past_the_counts_budget_go_unit_by_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no memory left for resampling counts per pattern, a group whose sums per pattern are not
    exact goes unit by unit (the reference's very bits); exact groups (the code nobody applied, group
    0, scores 1 on its one pattern) keep the pattern path, which costs them nothing in bits."""
    monkeypatch.setattr(agreement, "_PATTERN_COUNTS_BYTES", 0)
    made = _spy_paths(monkeypatch)
    rng = np.random.default_rng(2)
    P = _stack(rng, 3, 50, 3, 0.0)
    groups, pooled = group_estimates(["percent"], P, n_categories=2, n_boot=50, seed=1)
    assert made == [True, False, False]
    for i in range(P.shape[0]):
        assert groups[i] == reference_estimates(["percent"], P[i], n_categories=2, n_boot=50, seed=1)
    assert_close(pooled, reference_estimates(["percent"], P, n_categories=2, n_boot=50, seed=1))


def test_inexact_groups_mostly_off_their_common_pattern_go_unit_by_unit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten noisy coders: thousands of patterns, the most common holds a fifth of the units, and counting
    draws per pattern would cost more than the unit-by-unit products, so such groups go unit by unit
    (the reference's very bits); the code nobody applied (group 0) scores exactly and keeps patterns."""
    made = _spy_paths(monkeypatch)
    rng = np.random.default_rng(4)
    P = _stack(rng, 3, 300, 10, 0.1)
    names = ["percent", "fleiss"]
    groups, pooled = group_estimates(names, P, n_categories=2, n_boot=100, seed=2)
    assert made == [True, False, False, False, False]  # group 0's Fleiss' kappa is 0/0: no job
    for i in range(P.shape[0]):
        assert groups[i] == reference_estimates(names, P[i], n_categories=2, n_boot=100, seed=2)
    assert_close(pooled, reference_estimates(names, P, n_categories=2, n_boot=100, seed=2))


@pytest.mark.parametrize("squeeze", ["rebuild per chunk", "no patterns"])
def test_memory_saving_paths_give_the_reference_numbers(
    monkeypatch: pytest.MonkeyPatch, squeeze: str
) -> None:
    """Unit-by-unit statistics rebuilt from patterns for every chunk (beyond both memory budgets), and
    groups without row patterns (bootstrapped one by one), give the reference numbers too: the very
    bits per group; the pooled stack within TOLERANCE when it is built from the groups' patterns."""
    if squeeze == "rebuild per chunk":
        monkeypatch.setattr(agreement, "_PATTERN_COUNTS_BYTES", 0)
        monkeypatch.setattr(agreement, "_UNIT_STATS_BYTES", 0)
    else:
        monkeypatch.setattr(agreement, "_patterns", lambda R, k: None)
    rng = np.random.default_rng(21)
    P = _stack(rng, 3, 2_100, 3, 0.1)
    names = ["percent", "fleiss", "krippendorff"]
    groups, pooled = group_estimates(names, P, n_categories=2, n_boot=1_000, seed=3)
    for i in range(P.shape[0]):
        assert groups[i] == reference_estimates(names, P[i], n_categories=2, n_boot=1_000, seed=3)
    ref_pooled = reference_estimates(names, P, n_categories=2, n_boot=1_000, seed=3)
    if squeeze == "no patterns":
        assert pooled == ref_pooled
    else:
        assert_close(pooled, ref_pooled)


def test_code_nobody_applied_is_constant_and_kappa_undefined() -> None:
    P = np.zeros((2, 30, 2), dtype=np.int8)
    P[1, :5, 0] = 1
    groups, _ = group_estimates(["percent", "cohen"], P, n_categories=2, n_boot=100, seed=0)
    ok, why = groups[0]
    assert (ok["percent"].value, ok["percent"].ci_low, ok["percent"].ci_high) == (1.0, 1.0, 1.0)
    assert "undefined" in why["cohen"]


def test_bootstrap_and_estimates_still_equal_the_reference() -> None:
    rng = np.random.default_rng(11)
    P = _stack(rng, 1, 3_000, 3, 0.1)[0]
    P[:5] = [1, 1, 0]
    m = agreement._matrix(P, 2, None)
    for name in ("percent", "fleiss", "krippendorff", "ac1"):
        spec, st, _, _ = agreement._prepare(name, m)
        expected = reference_bootstrap(spec, st.rows(), 2, 800, 5)
        np.testing.assert_array_equal(bootstrap(name, P, n_categories=2, n_boot=800, seed=5), expected)
    names = ["percent", "fleiss", "krippendorff", "ac1"]
    assert estimates(names, P, n_categories=2, n_boot=300, seed=2) == reference_estimates(
        names, P, n_categories=2, n_boot=300, seed=2
    )


def test_group_estimates_errors_as_estimates() -> None:
    with pytest.raises(InputError, match="stack"):
        group_estimates(["percent"], [[0, 1], [1, 1]])
    with pytest.raises(InputError, match="Unknown agreement coefficient"):
        group_estimates(["kappa"], np.zeros((1, 3, 2), dtype=np.int8))
    only_one = np.full((2, 4, 2), -1, dtype=np.int8)
    only_one[:, :, 0] = 0
    with pytest.raises(AgreementError, match="only one coder"):
        group_estimates(["percent"], only_one, n_categories=2)
    groups, pooled = group_estimates(["cohen", "percent"], np.zeros((2, 4, 3), dtype=np.int8), n_boot=0)
    assert "exactly two coders" in groups[0][1]["cohen"] and "exactly two coders" in pooled[1]["cohen"]


def test_agreement_panel_rows_equal_the_reference() -> None:
    rng = np.random.default_rng(8)
    segments = [Segment("s", i, 10 * i, 10 * i + 10, "x" * 10) for i in range(60)]
    codes = ["a", "b", "c", "unused"]
    codings = [
        Coding("s", 10 * i, 10 * i + 10, code, coder)
        for i in range(60)
        for code in codes[:3]
        for coder in ("ana", "ben")
        if rng.random() < 0.3
    ]
    text = {"s": "x" * 600}
    report = agreement_panel(codings, segments, text, ["ana", "ben"], codes, n_boot=200, seed=4)
    from pipeline.agreement import segment_units

    P = segment_units(codings, segments, ["ana", "ben"], codes).presence
    chosen = report.coefficients
    for i, row in enumerate(report.rows):
        assert (
            row.estimates
            == reference_estimates(chosen, P[i], n_categories=2, n_boot=200, seed=4, coders=["ana", "ben"])[0]
        )
    assert (
        report.pooled.estimates
        == reference_estimates(chosen, P, n_categories=2, n_boot=200, seed=4, coders=["ana", "ben"])[0]
    )
    assert any("used by nobody" in w for w in report.warnings)
