"""Agreement coefficients against reference implementations, unitizing on hand-made codings.

irrCAC and krippendorff are GPL-3.0: they are used here only, as test references, never by qualflow.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.agreement import (
    COEFFICIENTS,
    MISSING,
    AgreementError,
    bootstrap,
    brennan_prediger,
    char_agreement,
    char_units,
    cohen_kappa,
    estimate,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    mean_pairwise_cohen,
    overlap_agreement,
    pairwise_cohen,
    percent_agreement,
    ratings_from_counts,
    scott_pi,
    segment_units,
)
from pipeline.domain import Coding, Segment
from pipeline.errors import InputError

SEEDS = [0, 1, 2, 3, 4]


def _random_matrix(seed: int, n: int = 60, coders: int = 4, k: int = 3, missing: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, size=n)
    R = np.where(rng.random((n, coders)) < 0.6, truth[:, None], rng.integers(0, k, size=(n, coders)))
    R[rng.random((n, coders)) < missing] = MISSING
    return R


def _irr(R: np.ndarray, k: int):  # type: ignore[no-untyped-def]
    from irrCAC.raw import CAC

    df = pd.DataFrame(np.where(R >= 0, R, np.nan).astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # irrCAC's own pandas SettingWithCopyWarning
        return CAC(df, categories=[float(c) for c in range(k)], digits=12)


# ---------------------------------------------------------------- references on random data


@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_matches_reference_with_missing(seed: int) -> None:
    import krippendorff

    R = _random_matrix(seed)
    data = np.where(R >= 0, R, np.nan).T.astype(float)
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert krippendorff_alpha(R) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_matches_irrcac_with_missing(seed: int) -> None:
    R = _random_matrix(seed)
    ref = _irr(R, 3).krippendorff()["est"]["coefficient_value"]
    assert krippendorff_alpha(R) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_matches_irrcac_with_missing(seed: int) -> None:
    R = _random_matrix(seed)
    ref = _irr(R, 3).fleiss()["est"]
    assert fleiss_kappa(R) == pytest.approx(ref["coefficient_value"], abs=1e-9)
    assert percent_agreement(R) == pytest.approx(ref["pa"], abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_matches_statsmodels_on_complete_data(seed: int) -> None:
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    R = _random_matrix(seed, coders=5, k=4, missing=0.0)
    table, _ = aggregate_raters(R, n_cat=4)
    ref = sm_fleiss(table, method="fleiss")
    assert fleiss_kappa(R) == pytest.approx(ref, abs=1e-12)
    assert scott_pi(R) == pytest.approx(ref, abs=1e-12)  # Fleiss generalises Scott on complete data


@pytest.mark.parametrize("seed", SEEDS)
def test_ac1_and_bp_match_irrcac_with_missing(seed: int) -> None:
    R = _random_matrix(seed)
    cac = _irr(R, 3)
    assert gwet_ac1(R, 3) == pytest.approx(cac.gwet()["est"]["coefficient_value"], abs=1e-9)
    assert brennan_prediger(R, 3) == pytest.approx(cac.bp()["est"]["coefficient_value"], abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_matches_sklearn_dropping_missing(seed: int) -> None:
    from sklearn.metrics import cohen_kappa_score

    R = _random_matrix(seed, coders=2)
    both = (R >= 0).all(axis=1)
    ref = cohen_kappa_score(R[both, 0], R[both, 1])
    assert cohen_kappa(R) == pytest.approx(ref, abs=1e-12)
    assert estimate("cohen", R, n_boot=0).n_units == int(both.sum())


@pytest.mark.parametrize("seed", SEEDS)
def test_scott_two_coders_by_hand(seed: int) -> None:
    R = _random_matrix(seed, coders=2, missing=0.0)
    po = (R[:, 0] == R[:, 1]).mean()
    p = np.bincount(R.ravel(), minlength=3) / R.size
    pe = (p**2).sum()
    assert scott_pi(R) == pytest.approx((po - pe) / (1 - pe), abs=1e-12)


def test_pooled_equals_summed_tables() -> None:
    rng = np.random.default_rng(7)
    R3 = rng.integers(0, 2, size=(3, 40, 2))
    # pooled kappa: one 2x2 table summed over codes
    assert cohen_kappa(R3) == pytest.approx(cohen_kappa(R3.reshape(-1, 2)), abs=1e-12)
    assert krippendorff_alpha(R3) == pytest.approx(krippendorff_alpha(R3.reshape(-1, 2)), abs=1e-12)


# ---------------------------------------------------------------- published examples, edge cases


def test_krippendorff_2011_example_with_missing() -> None:
    m = MISSING
    R = np.array(
        [[0, 0, m, 0], [1, 1, 2, 1], [2, 2, 2, 2], [2, 2, 2, 2], [1, 1, 1, 1], [0, 1, 2, 3],
         [3, 3, 3, 3], [0, 0, 1, 0], [1, 1, 1, 1], [m, 4, 4, 4], [m, m, 0, 0], [m, 2, m, m]]
    )  # fmt: skip
    assert round(krippendorff_alpha(R), 3) == 0.743
    assert estimate("krippendorff", R, n_boot=0).n_units == 11  # the last unit has one value


def test_fleiss_wikipedia_example() -> None:
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    R = ratings_from_counts(counts)
    assert R.shape == (10, 14)
    assert fleiss_kappa(R) == pytest.approx(0.2099, abs=1e-4)


def test_perfect_agreement_several_categories_is_one() -> None:
    R = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2]])
    for name in COEFFICIENTS:
        if name == "cohen":
            assert estimate(name, R[:, :2], n_boot=0).value == 1.0
        else:
            assert estimate(name, R, n_boot=0).value == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["cohen", "fleiss", "scott", "krippendorff"])
def test_one_category_is_undefined_not_nan(name: str) -> None:
    R = np.zeros((5, 2), dtype=int)
    with pytest.raises(AgreementError, match="undefined.*one category.*observed agreement 100%"):
        estimate(name, R, n_categories=2)


def test_one_category_references_agree_it_is_undefined() -> None:
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    with pytest.warns(Warning):
        assert np.isnan(cohen_kappa_score([0, 0, 0], [0, 0, 0]))
    with np.errstate(all="ignore"):
        assert np.isnan(sm_fleiss(np.array([[2, 0], [2, 0]])))
    with pytest.raises(ValueError):
        krippendorff.alpha(reliability_data=[[0, 0, 0], [0, 0, 0]], level_of_measurement="nominal")


def test_one_category_ac1_bp_percent_stay_defined() -> None:
    R = np.zeros((5, 3), dtype=int)
    assert percent_agreement(R) == 1.0
    assert gwet_ac1(R, 2) == 1.0
    assert brennan_prediger(R, 2) == 1.0
    assert _irr(R, 2).gwet()["est"]["coefficient_value"] == pytest.approx(1.0)


def test_all_missing_and_single_coder_messages() -> None:
    with pytest.raises(AgreementError, match="no coder coded any"):
        estimate("krippendorff", np.full((4, 2), MISSING))
    with pytest.raises(AgreementError, match=r"only one coder \('sara'\) coded these units"):
        estimate("fleiss", [[0, -1], [1, -1]], coders=["sara", "omid"])
    with pytest.raises(AgreementError, match=r"only one coder \('sara'\) in the data"):
        estimate("percent", [[0], [1]], coders=["sara"])
    with pytest.raises(AgreementError, match="coders 'a', 'b' share no units"):
        estimate("cohen", [[0, -1], [-1, 1]], coders=["a", "b"])
    with pytest.raises(AgreementError, match="needs exactly two coders"):
        cohen_kappa([[0, 0, 1]])
    with pytest.raises(AgreementError, match="at least two possible categories"):
        gwet_ac1([[0, 0]], n_categories=1)


def test_bad_input_messages() -> None:
    with pytest.raises(InputError, match="Unknown agreement coefficient 'kapa'; choose one of"):
        estimate("kapa", [[0, 0]])
    with pytest.raises(InputError, match="use 0..n_categories-1, and -1 for missing"):
        percent_agreement([[0, -3]])
    with pytest.raises(InputError, match="integer category indices"):
        percent_agreement([[0.5, 1.0]])
    with pytest.raises(InputError, match="shape"):
        percent_agreement([0, 1])
    with pytest.raises(InputError, match="n_categories=2 but the matrix holds category index 2"):
        percent_agreement([[2, 2]], n_categories=2)
    with pytest.raises(InputError, match="ci must be in"):
        estimate("percent", [[0, 0]], ci=95)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_seeded_and_brackets_value() -> None:
    R = _random_matrix(3, n=200)
    a = estimate("krippendorff", R, n_boot=300, seed=5)
    b = estimate("krippendorff", R, n_boot=300, seed=5)
    assert a == b
    assert a.ci_low is not None and a.ci_high is not None
    assert a.ci_low < a.value < a.ci_high
    assert a.n_boot == 300 and a.n_coders == 4


def test_bootstrap_replicates_are_resampled_units() -> None:
    """Replicate 0 equals the coefficient on the rows that replicate drew."""
    R = _random_matrix(4, n=50, missing=0.0)
    reps = bootstrap("fleiss", R, n_boot=3, seed=11)
    rng = np.random.default_rng(11)
    idx = rng.integers(0, 50, size=(3, 50))
    for i in range(3):
        assert reps[i] == pytest.approx(fleiss_kappa(R[idx[i]]), abs=1e-12)


def test_bootstrap_notes_undefined_resamples() -> None:
    R = np.array([[0, 0]] * 30 + [[1, 1]])
    est = estimate("cohen", R, n_boot=200, seed=0)
    assert est.value == 1.0
    assert "undefined" in est.note


# ---------------------------------------------------------------- pairwise


def test_pairwise_cohen_and_mean() -> None:
    R = _random_matrix(1, coders=3, missing=0.0)
    from sklearn.metrics import cohen_kappa_score

    pw = pairwise_cohen(R, ["a", "b", "c"])
    assert set(pw) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert pw[("a", "c")] == pytest.approx(cohen_kappa_score(R[:, 0], R[:, 2]), abs=1e-12)
    vals = [v for v in pw.values() if v is not None]
    assert mean_pairwise_cohen(R, ["a", "b", "c"]) == pytest.approx(np.mean(vals))


# ---------------------------------------------------------------- unitizing


def _segments() -> list[Segment]:
    return [
        Segment("s1", 0, 0, 10, "a" * 10),
        Segment("s1", 1, 10, 20, "b" * 10),
        Segment("s1", 2, 20, 30, "c" * 10),
        Segment("s2", 0, 0, 10, "d" * 10),
    ]


def test_segment_units_rule_and_missing() -> None:
    codings = [
        Coding("s1", 2, 8, "trust", "a"),  # inside segment 0
        Coding("s1", 5, 25, "trust", "b"),  # half of seg 0, all of seg 1, half of seg 2
        Coding("s1", 19, 21, "doubt", "a"),  # 1 char in seg 1 and seg 2: half of the coding each
        Coding("s1", 29, 30, "doubt", "b"),  # the last char of seg 2 (whole coding inside)
        Coding("s2", 0, 10, "doubt", "a"),  # only 'a' has seen s2
    ]
    u = segment_units(codings, _segments(), ["a", "b"], ["trust", "doubt"])
    assert u.presence.shape == (2, 4, 2)
    assert u.presence[0].tolist() == [[1, 1], [0, 1], [0, 1], [0, -1]]
    assert u.presence[1].tolist() == [[0, 0], [1, 0], [1, 1], [1, -1]]
    assert u.sources == ("s1", "s2")
    assert u.starts.tolist() == [0, 10, 20, 0]


def test_segment_units_coded_sources_override_and_errors() -> None:
    codings = [Coding("s1", 0, 10, "trust", "a")]
    u = segment_units(
        codings, _segments(), ["a", "b"], ["trust"], coded_sources={"a": {"s1"}, "b": {"s1", "s2"}}
    )
    assert u.presence[0, :, 1].tolist() == [0, 0, 0, 0]
    assert u.presence[0, 3, 0] == MISSING
    with pytest.raises(InputError, match=r"span \[5, 5\)"):
        segment_units([Coding("s1", 5, 5, "trust", "a")], _segments(), ["a"], ["trust"])
    bad = [Segment("s", 0, 0, 10, "x" * 10), Segment("s", 1, 10, 10, "")]
    with pytest.raises(InputError, match=r"segment at \[10, 10\) of 's' is empty"):
        segment_units(codings, bad, ["a", "b"], ["trust"])
    with pytest.raises(InputError, match="coders are listed twice: 'a'"):
        segment_units(codings, _segments(), ["a", "a"], ["trust"])


def test_segment_units_code_nobody_used_gives_clear_message() -> None:
    codings = [Coding("s1", 0, 10, "trust", "a"), Coding("s1", 0, 10, "trust", "b")]
    u = segment_units(codings, _segments(), ["a", "b"], ["trust", "doubt"])
    with pytest.raises(AgreementError, match="undefined"):
        cohen_kappa(u.presence[1], n_categories=2)
    assert percent_agreement(u.presence[1]) == 1.0


def test_char_units_and_agreement_exact() -> None:
    codings = [
        Coding("s", 0, 4, "trust", "a"),
        Coding("s", 2, 6, "trust", "b"),
        Coding("s", 8, 10, "doubt", "a"),
    ]
    u = char_units(codings, {"s": 20}, ["a", "b"], ["trust", "doubt"])
    assert u.presence.shape == (2, 8, 2)  # chars 0-5 and 8-9 are coded by someone
    assert u.starts.tolist() == [0, 1, 2, 3, 4, 5, 8, 9]
    res = char_agreement(codings, {"s": 20}, ["a", "b"], ["trust", "doubt"])
    assert res["trust"]["percent"] == pytest.approx(4 / 8)  # agree on 2,3 (both) and 8,9 (neither)
    res_all = char_agreement(codings, {"s": 20}, ["a", "b"], ["trust", "doubt"], exclude_uncoded=False)
    assert res_all["trust"]["percent"] == pytest.approx(16 / 20)
    # kappa by hand on the 8 kept characters for 'trust': a = 11110000, b = 00111100
    from sklearn.metrics import cohen_kappa_score

    ref = cohen_kappa_score([1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0])
    assert res["trust"]["kappa"] == pytest.approx(ref)
    with pytest.raises(InputError, match="past the end of the source"):
        char_units([Coding("s", 0, 30, "trust", "a")], {"s": 20}, ["a", "b"], ["trust"])


def test_char_units_missing_source() -> None:
    codings = [
        Coding("s", 0, 4, "trust", "a"),
        Coding("t", 0, 2, "trust", "a"),
        Coding("s", 0, 2, "trust", "b"),
    ]
    u = char_units(codings, {"s": 5, "t": 3}, ["a", "b"], ["trust"], exclude_uncoded=False)
    assert u.presence[0, 5:, 1].tolist() == [MISSING] * 3


def test_overlap_agreement_maxqda_rule() -> None:
    codings = [
        Coding("s", 0, 100, "trust", "a"),
        Coding("s", 5, 100, "trust", "b"),  # overlap 95 of longer 100: match at 0.9
        Coding("s", 200, 300, "trust", "a"),
        Coding("s", 200, 280, "trust", "b"),  # 80%: no match at 0.9, match at 0.8
        Coding("s", 400, 420, "doubt", "a"),
        Coding("t", 0, 10, "doubt", "a"),  # 'b' never saw t: ignored
    ]
    res = overlap_agreement(codings, ["a", "b"], ["trust", "doubt"])
    assert res.chance == 0.5
    trust, doubt = res.rows
    assert (trust.matched, trust.unmatched) == (1, (1, 1))
    assert trust.percent == pytest.approx(1 / 3)
    assert (doubt.matched, doubt.unmatched, doubt.percent) == (0, (1, 0), 0.0)
    assert res.total.percent == pytest.approx(1 / 4)
    assert res.total.kappa_bp == pytest.approx((0.25 - 0.5) / 0.5)
    assert [(c.start, c.coder) for c in res.unmatched] == [(200, "b"), (200, "a"), (400, "a")]
    res8 = overlap_agreement(codings, ["a", "b"], ["trust", "doubt"], threshold=0.8)
    assert res8.rows[0].matched == 2 and res8.rows[0].percent == 1.0


def test_overlap_agreement_errors_and_unused_code() -> None:
    codings = [Coding("s", 0, 10, "trust", "a"), Coding("s", 0, 10, "trust", "b")]
    res = overlap_agreement(codings, ["a", "b"], ["trust", "doubt"])
    assert res.rows[1].percent is None and res.rows[1].kappa_bp is None
    with pytest.raises(InputError, match="exactly two coders"):
        overlap_agreement(codings, ["a", "b", "c"], ["trust"])
    with pytest.raises(InputError, match="threshold must be in"):
        overlap_agreement(codings, ["a", "b"], ["trust"], threshold=90)
    with pytest.raises(AgreementError, match="share no units"):
        overlap_agreement(
            [Coding("s", 0, 10, "trust", "a"), Coding("t", 0, 10, "trust", "b")], ["a", "b"], ["trust"]
        )


# ---------------------------------------------------------------- AnnoMI (real data, skipped when absent)


def _annomi_path() -> Path | None:
    from tests.conftest import shared_dir

    base = shared_dir()
    p = base / "data" / "annomi" / "AnnoMI-full_multiannotated_subset.csv" if base else None
    return p if p is not None and p.exists() else None


@pytest.mark.annomi
def test_annomi_human_ceiling() -> None:
    path = _annomi_path()
    if path is None:
        pytest.skip("AnnoMI data not found under ../shared/data/annomi")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.agreement_annomi import annomi_agreement

    got = annomi_agreement(path)
    assert {k: tuple(round(x, 3) for x in v) for k, v in got.items()} == {
        "main_therapist_behaviour": (0.737, 0.737, 0.737),
        "client_talk_type": (0.467, 0.467, 0.470),
    }


def test_segment_units_cut_overlapping_windows_into_disjoint_pieces() -> None:
    # windows of a "window" segmentation: [0, 30) and [20, 50) overlap on [20, 30); [60, 70) stands
    # alone after a gap no window covers
    windows = [
        Segment("s", 0, 0, 30, "x" * 30),
        Segment("s", 1, 20, 50, "y" * 30),
        Segment("s", 2, 60, 70, "z" * 10),
    ]
    codings = [
        Coding("s", 0, 18, "trust", "a"),  # the first piece only
        Coding("s", 0, 30, "trust", "b"),  # the first two pieces
        Coding("s", 21, 29, "trust", "a"),  # inside the shared piece
        Coding("s", 60, 70, "trust", "b"),
    ]
    u = segment_units(codings, windows, ["a", "b"], ["trust"])
    assert list(zip(u.starts.tolist(), u.ends.tolist(), strict=True)) == [
        (0, 20),
        (20, 30),
        (30, 50),
        (60, 70),
    ]
    assert u.presence[0].tolist() == [[1, 1], [1, 1], [0, 0], [0, 1]]
