"""The shared-resampling panel gives the very bits of the one-coefficient-at-a-time computation.

``reference_bootstrap`` is qualflow's bootstrap as it was before ``group_estimates`` (a fresh index
matrix per call), kept verbatim as the reference: every interval must equal it exactly, not
approximately, for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

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


def _stack(rng: np.random.Generator, g: int, n: int, c: int, missing: float) -> np.ndarray:
    prevalence = rng.uniform(0.0, 0.4, size=(g, 1, 1))
    truth = rng.random((g, n, 1)) < prevalence
    flip = rng.random((g, n, c)) < 0.15
    P = (truth ^ flip).astype(np.int8)
    P[:, rng.random((n, c)) < missing] = -1  # a coder who did not see a unit misses it for every code
    P[0] = np.where(P[0] >= 0, 0, -1)  # a code nobody applied
    return P


CASES = [
    # (coders, units, n_boot, missing): two coders take the pattern path; three and four coders have
    # non-dyadic statistics (1/3, 1/6) and take the unit-by-unit path; 2,500 units x 1,000 resamples
    # are drawn in two chunks
    (2, 60, 200, 0.0),
    (2, 90, 300, 0.2),
    (3, 70, 200, 0.1),
    (4, 50, 100, 0.3),
    (2, 2_500, 1_000, 0.1),
    (3, 2_100, 1_000, 0.05),
]


@pytest.mark.parametrize(("c", "n", "n_boot", "missing"), CASES)
def test_group_estimates_equal_the_reference_bit_for_bit(c: int, n: int, n_boot: int, missing: float) -> None:
    rng = np.random.default_rng(100 * c + n)
    P = _stack(rng, 3 if n > 1000 else 5, n, c, missing)
    names = [x for x in COEFFICIENTS if x != "cohen" or c == 2]
    coders = [f"coder{j}" for j in range(c)]
    for seed in (0,) if n > 1000 else (0, 7):
        groups, pooled = group_estimates(names, P, n_categories=2, n_boot=n_boot, seed=seed, coders=coders)
        for i in range(P.shape[0]):
            ref = reference_estimates(names, P[i], n_categories=2, n_boot=n_boot, seed=seed, coders=coders)
            assert groups[i] == ref, (i, seed)  # dataclass equality: every float bit for bit
        assert pooled == reference_estimates(
            names, P, n_categories=2, n_boot=n_boot, seed=seed, coders=coders
        )


def test_group_estimates_without_n_categories_and_without_bootstrap() -> None:
    rng = np.random.default_rng(3)
    P = _stack(rng, 4, 40, 2, 0.1)
    for n_boot in (0, 50):
        groups, pooled = group_estimates(list(COEFFICIENTS), P, n_boot=n_boot, seed=1)
        for i in range(P.shape[0]):
            ref = reference_estimates(list(COEFFICIENTS), P[i], n_categories=None, n_boot=n_boot, seed=1)
            assert groups[i] == ref
        assert pooled == reference_estimates(list(COEFFICIENTS), P, n_categories=None, n_boot=n_boot, seed=1)


def test_two_coders_take_the_pattern_path_and_three_the_unit_path(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[bool] = []
    original = agreement._pattern_job

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        job = original(*args, **kwargs)
        made.append(job.counts is not None)  # resampling counts per pattern, not unit by unit
        return job

    monkeypatch.setattr(agreement, "_pattern_job", spy)
    rng = np.random.default_rng(2)
    group_estimates(["percent", "krippendorff"], _stack(rng, 3, 50, 2, 0.1), n_categories=2, n_boot=10)
    assert made and all(made)
    made.clear()
    # three coders: a unit where two of three agree scores 1/3, not a multiple of 2**-20; the code nobody
    # applied (group 0) has one pattern only, scoring 1
    group_estimates(["percent"], _stack(rng, 3, 50, 3, 0.0), n_categories=2, n_boot=10)
    assert made == [True, False, False]


@pytest.mark.parametrize("squeeze", ["rebuild per chunk", "no patterns"])
def test_memory_saving_paths_give_the_same_bits(monkeypatch: pytest.MonkeyPatch, squeeze: str) -> None:
    """Unit-by-unit statistics rebuilt from patterns for every chunk (beyond the memory budget), and
    groups without row patterns (bootstrapped one by one), give the reference numbers too."""
    if squeeze == "rebuild per chunk":
        monkeypatch.setattr(agreement, "_UNIT_STATS_BYTES", 0)
    else:
        monkeypatch.setattr(agreement, "_patterns", lambda R, k: None)
    rng = np.random.default_rng(21)
    P = _stack(rng, 3, 2_100, 3, 0.1)
    names = ["percent", "fleiss", "krippendorff"]
    groups, pooled = group_estimates(names, P, n_categories=2, n_boot=1_000, seed=3)
    for i in range(P.shape[0]):
        assert groups[i] == reference_estimates(names, P[i], n_categories=2, n_boot=1_000, seed=3)
    assert pooled == reference_estimates(names, P, n_categories=2, n_boot=1_000, seed=3)


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
