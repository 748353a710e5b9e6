"""EvidenceSuggester on a hand-made 2-D fixture: exact values, the coverage gate, the cold start."""

from __future__ import annotations

import numpy as np
import pytest

from models import EvidenceSuggester, default_suggester, make_suggester, resolve_suggester
from models.evidence import (
    FEATURE_NAMES,
    N_FEATURES,
    N_WINDOW_FEATURES,
    WINDOW_FEATURE_NAMES,
    source_share,
)
from pipeline.config import SuggesterConfig
from pipeline.domain import Code, Codebook
from pipeline.embed.base import HashingEmbedder
from pipeline.errors import InputError

CODES = ["a", "b", "c"]


def unit(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r)], dtype=np.float32)


PROTO = np.stack([unit(0), unit(90), unit(180)])


@pytest.fixture(scope="module")
def data():
    """6 sources, each with an ``a`` near 0°, a ``b`` near 90° and two uncoded segments; ``c`` has one
    example, at 300°, in source 5. Targets: near c's example, near a, near b, between a and b."""
    rows = []
    for s in range(6):
        rows += [(-10 + 4 * s, 0, s), (80 + 4 * s, 1, s), (40 + 3 * s, None, s), (130 + 20 * s, None, s)]
    rows.append((300, 2, 5))
    X = np.stack([unit(a) for a, _, _ in rows])
    Y = np.zeros((len(rows), len(CODES)), dtype=np.int8)
    for i, (_, c, _) in enumerate(rows):
        if c is not None:
            Y[i, c] = 1
    groups = np.array([s for *_, s in rows])
    T = np.stack([unit(a) for a in (298, 2, 88, 45)])
    return X, Y, groups, T


def picks(model, T):
    return [[(c, round(s, 3)) for c, s in row] for row in model.suggest(T)]


def test_a_codes_first_example_makes_its_segment_top1(data):
    X, Y, groups, T = data
    m = EvidenceSuggester(CODES, min_coverage=1.0).fit(X, Y, groups=groups)
    np.testing.assert_allclose(
        m.predict_proba(T),
        [[0.026, 0.0, 0.857], [0.642, 0.001, 0.049], [0.001, 0.642, 0.0], [0.218, 0.218, 0.0]],
        atol=2e-3,
    )
    # without that one example, c is never the top code
    Y0 = Y.copy()
    Y0[-1] = 0
    P0 = EvidenceSuggester(CODES, min_coverage=1.0).fit(X, Y0, groups=groups).predict_proba(T)
    assert P0[0].argmax() == 0 and P0[0, 2] == pytest.approx(0.0, abs=1e-3)


def test_coverage_gate_sets_one_threshold_for_every_code(data):
    X, Y, groups, T = data
    everyone = EvidenceSuggester(CODES, min_coverage=1.0).fit(X, Y, groups=groups)
    half = EvidenceSuggester(CODES, min_coverage=0.5).fit(X, Y, groups=groups)
    assert everyone.threshold_ == pytest.approx(0.0876, abs=2e-3)
    assert half.threshold_ == pytest.approx(0.7059, abs=2e-3)
    assert everyone.thresholds_.tolist() == [everyone.threshold_] * 3
    # a segment that passes lists its top 3 as alternatives; one that does not gets nothing
    assert picks(everyone, T) == [
        [(2, 0.857), (0, 0.026), (1, 0.0)],
        [(0, 0.642), (2, 0.049), (1, 0.001)],
        [(1, 0.642), (0, 0.001), (2, 0.0)],
        [(0, 0.218), (1, 0.218), (2, 0.0)],
    ]
    assert picks(half, T) == [[(2, 0.857), (0, 0.026), (1, 0.0)], [], [], []]
    only = EvidenceSuggester(CODES, min_coverage=1.0, alternatives=False).fit(X, Y, groups=groups)
    assert picks(only, T) == [[(2, 0.857)], [(0, 0.642)], [(1, 0.642)], [(0, 0.218), (1, 0.218)]]
    # the threshold is the out-of-fold curve's: at 1.0 every coded segment is covered
    curve = everyone.coverage_curve_
    assert set(curve) == {"threshold", "coverage", "precision", "suggested"}
    assert curve["coverage"][-1] == 1.0 and curve["threshold"][-1] == pytest.approx(everyone.threshold_)
    assert np.all(np.diff(curve["threshold"]) <= 0) and np.all(np.diff(curve["coverage"]) >= 0)


def test_target_precision_picks_the_lowest_threshold_that_reaches_it(data):
    X, Y, groups, _ = data
    m = EvidenceSuggester(CODES, target_precision=0.8).fit(X, Y, groups=groups)
    c = m.coverage_curve_
    ok = c["precision"] >= 0.8
    assert ok.any()
    assert m.threshold_ == pytest.approx(c["threshold"][np.flatnonzero(ok)[-1]])
    unreachable = EvidenceSuggester(CODES, target_precision=1.0).fit(X, Y, groups=groups)
    assert unreachable.threshold_ >= m.threshold_


def test_cold_start_softmax_is_not_all_ones(data):
    X, Y, groups, T = data
    m = EvidenceSuggester(CODES, PROTO).fit(X, np.zeros_like(Y), groups=groups)
    assert m.cold_start_ and m.notes_[0].startswith("no coded segment")
    assert m.temperature_ == pytest.approx(0.6608, abs=1e-3)
    P = m.predict_proba(T)
    np.testing.assert_allclose(
        P,
        [[0.73, 0.094, 0.176], [0.781, 0.181, 0.038], [0.161, 0.694, 0.145], [0.472, 0.472, 0.056]],
        atol=2e-3,
    )
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert P.max() < 0.8
    # the same coverage gate, over the fitted segments' top-1 scores
    assert m.threshold_ == pytest.approx(0.4937, abs=2e-3)
    assert [len(r) for r in m.suggest(T)] == [3, 3, 3, 0]


def test_a_rejection_counts_as_a_negative(data):
    X, Y, groups, T = data
    i = 2  # an uncoded segment of source 0 at 40°, between a and b
    Yr, Yp = Y.copy(), Y.copy()
    Yr[i, 0], Yp[i, 0] = -1, 1
    P = EvidenceSuggester(CODES).fit(X, Y, groups=groups).predict_proba(T)
    Pr = EvidenceSuggester(CODES).fit(X, Yr, groups=groups).predict_proba(T)
    Pp = EvidenceSuggester(CODES).fit(X, Yp, groups=groups).predict_proba(T)
    np.testing.assert_allclose(Pr, P)  # -1 is a negative like 0 ...
    assert Pp[3, 0] > P[3, 0] + 0.05  # ... not a positive


def test_features_have_the_documented_layout(data):
    X, Y, groups, T = data
    m = EvidenceSuggester(CODES, PROTO, parents={"a": "cat", "b": "cat", "c": None}).fit(X, Y, groups=groups)
    F = m._features(m.base_, T)
    # one level of categories: the hierarchy features would repeat the sibling ones, so they are left out
    assert not m.uses_ancestors_ and F.shape == (4, 3, 14) and len(FEATURE_NAMES) == N_FEATURES == 22
    near, sib = F[..., 0], F[..., 7]
    np.testing.assert_allclose(sib[:, 0], np.maximum(near[:, 0], near[:, 1]), rtol=1e-6)  # siblings a, b
    np.testing.assert_allclose(sib[:, 2], near[:, 2])  # c has no parent
    np.testing.assert_allclose(F[..., 8], near - near.max(axis=1, keepdims=True))
    assert F[0, 2, 6] == 1 and F[0, 2, 5] == pytest.approx(np.log(2))  # c: one example


def test_one_source_folds_over_segments_and_says_so(data):
    X, Y, _, T = data
    m = EvidenceSuggester(CODES).fit(X, Y, groups=np.zeros(len(X)))
    assert any(n.startswith("one source") for n in m.notes_)
    assert m.predict_proba(T)[0].argmax() == 2


def test_exclusive_rows_sum_to_one(data):
    X, Y, groups, T = data
    m = EvidenceSuggester(CODES, PROTO, exclusive=True).fit(X, Y, groups=groups)
    np.testing.assert_allclose(m.predict_proba(T).sum(axis=1), 1.0)
    assert all(len(r) <= 1 for r in m.suggest(T))


def test_bad_settings_are_one_clear_error(data):
    X, Y, groups, _ = data
    with pytest.raises(InputError, match="min_coverage must be in"):
        EvidenceSuggester(CODES, min_coverage=0.0).fit(X, Y, groups=groups)
    with pytest.raises(InputError, match="code_embeddings has shape"):
        EvidenceSuggester(CODES, PROTO[:2]).fit(X, Y, groups=groups)


def test_default_is_evidence_for_multi_label_and_linear_for_exclusive():
    assert default_suggester() == "evidence" and default_suggester(exclusive=True) == "linear"
    assert SuggesterConfig().name == "auto"
    assert resolve_suggester("auto", {"exclusive": True}) == "linear"
    assert type(make_suggester("auto", codes=CODES)).__name__ == "EvidenceSuggester"
    assert type(make_suggester("auto", codes=CODES, exclusive=True)).__name__ == "LinearSuggester"
    assert type(make_suggester("blend", codes=CODES)).__name__ == "BlendSuggester"  # still selectable


def test_make_suggester_passes_hierarchy_and_operating_point():
    book = Codebook(
        [
            Code("feelings", is_codable=False),
            Code("awe", parent="feelings"),
            Code("humor", "Jokes and laughter.", parent="feelings"),
            Code("visuals"),
        ]
    )
    m = make_suggester("evidence", codebook=book, embedder=HashingEmbedder(dim=32), min_coverage=0.8)
    assert m.codes == ["awe", "humor", "visuals"]
    # every code's parent, the uncodable category's too (its own parent is the codes' theme)
    assert m.parents == {"feelings": None, "awe": "feelings", "humor": "feelings", "visuals": None}
    assert m.code_embeddings.shape == (3, 32) and m.min_coverage == 0.8
    # an operating-point setting is dropped for a suggester that has none
    assert "min_coverage" not in make_suggester("linear", codes=CODES, min_coverage=0.8).get_params()


def test_config_operating_point_travels_in_params():
    assert SuggesterConfig().params == {}
    cfg = SuggesterConfig(min_coverage=0.8, target_precision=0.5)
    assert cfg.params == {"min_coverage": 0.8, "target_precision": 0.5}
    assert SuggesterConfig(min_coverage=0.8, params={"min_coverage": 0.7}).params == {"min_coverage": 0.7}


# --- windows (passage context) ------------------------------------------------------------------


def test_windows_add_five_features_and_are_needed_to_predict(data):
    X, Y, groups, T = data
    # each segment's window: the segment itself rotated by 10 degrees (any vectors of the same shape)
    W = np.stack([unit(np.degrees(np.arctan2(x[1], x[0])) + 10) for x in X])
    TW = np.stack([unit(np.degrees(np.arctan2(t[1], t[0])) + 10) for t in T])
    m = EvidenceSuggester(CODES, PROTO).fit(X, Y, groups=groups, X_window=W)
    assert m.uses_window_ and m.wants_window()
    F = m._features(m.base_, T, TW)
    # flat codebook: 14 features without the hierarchy ones, then the 5 window features
    assert F.shape == (4, 3, 14 + N_WINDOW_FEATURES) and len(WINDOW_FEATURE_NAMES) == 5
    np.testing.assert_allclose(F[..., :14], m._features(m.base_, T))  # the 14 are unchanged
    # c's one example is at 300 deg, its window at 310; the first target's window at 308
    assert F[0, 2, 14] == pytest.approx(np.cos(np.deg2rad(2)), abs=1e-6)
    np.testing.assert_allclose(F[..., 15], TW @ PROTO.T, rtol=1e-6)
    np.testing.assert_allclose(F[..., 17], F[..., 14] - F[..., 14].max(axis=1, keepdims=True))
    assert m.predict_proba(T, X_window=TW).shape == (4, 3)
    with pytest.raises(InputError, match="pass X_window"):
        m.predict_proba(T)
    with pytest.raises(InputError, match="X_window must have the shape"):
        EvidenceSuggester(CODES).fit(X, Y, groups=groups, X_window=W[:, :1])


def test_wants_window_until_fitted_without_and_old_pickles_still_predict(data):
    X, Y, groups, T = data
    m = EvidenceSuggester(CODES)
    assert m.wants_window()  # unfitted: the pipeline should pass the windows
    m.fit(X, Y, groups=groups)
    assert not m.wants_window() and not m.uses_window_
    P = m.predict_proba(T, X_window=T)  # ignored: fitted without windows
    # a model pickled before windows and per-source coverage existed has neither attribute
    del m.uses_window_, m.source_share_
    np.testing.assert_allclose(m.predict_proba(T), P)
    assert not m.wants_window()
    assert m.suggest_from_proba(P, groups=["s"] * 4) == m.suggest_from_proba(P)
    cold = EvidenceSuggester(CODES, PROTO).fit(X, np.zeros_like(Y), groups=groups, X_window=X)
    assert not cold.wants_window()  # the cold start reads X alone: no window to embed


def test_side_inputs_pass_windows_only_to_a_model_that_wants_them(data):
    from models.base import side_inputs

    X, Y, groups, T = data
    assert "X_window" in side_inputs(EvidenceSuggester(CODES), texts=["a"], X_window=T)
    fitted = EvidenceSuggester(CODES).fit(X, Y, groups=groups)
    assert "X_window" not in side_inputs(fitted, texts=["a"], X_window=T)
    assert "X_window" not in side_inputs(make_suggester("linear", codes=CODES), texts=["a"], X_window=T)


# --- coverage per source ------------------------------------------------------------------------


def test_source_share_is_the_rank_quantile_of_coded_segments():
    top = np.array([0.9, 0.1, 0.5, 0.2, 0.8, 0.7])
    coded = np.array([True, False, True, False, False, True])
    g = np.array(["a", "a", "a", "a", "b", "b"])
    # coded ranks within their source: 0.9 is 1st of 4 (0.25), 0.5 2nd of 4 (0.5), 0.7 2nd of 2 (1.0)
    assert source_share(top, coded, g, 1.0) == 1.0
    assert source_share(top, coded, g, 0.6) == 1.0
    assert source_share(top, coded, g, 0.5) == 0.5
    assert source_share(top, coded, g, 0.3) == 0.5
    assert source_share(top, np.zeros(6, bool), g, 0.9) is None
    # ties count as reached: two equal scores are both 2nd of 2
    assert source_share(np.array([0.4, 0.4]), np.array([True, False]), np.array(["a", "a"]), 1.0) == 1.0


def test_each_source_gets_its_share_of_suggestions_below_the_threshold():
    m = EvidenceSuggester(["a", "b"])
    m.threshold_, m.thresholds_, m.source_share_ = 0.5, np.array([0.5, 0.5]), 0.5
    # source x scores high, source y (a new interview whose scores sit lower) never reaches 0.5
    P = np.array([[0.9, 0.1], [0.6, 0.7], [0.2, 0.1], [0.3, 0.4], [0.1, 0.2], [0.25, 0.05]])
    groups = ["x", "x", "x", "y", "y", "y"]
    plain = m.suggest_from_proba(P, k=2)
    assert [bool(r) for r in plain] == [True, True, False, False, False, False]
    gated = m.suggest_from_proba(P, k=2, groups=groups)
    # y: ceil(0.5 * 3) = 2 best segments (0.4 and 0.25) get their top 2; x keeps its two above 0.5
    assert gated == [
        [(0, 0.9), (1, 0.1)],
        [(1, 0.7), (0, 0.6)],
        [],
        [(1, 0.4), (0, 0.3)],
        [],
        [(0, 0.25), (1, 0.05)],
    ]
    m.alternatives = False  # only codes that reach the threshold, or the best one for a gated segment
    assert m.suggest_from_proba(P, k=2, groups=groups) == [
        [(0, 0.9)],
        [(1, 0.7), (0, 0.6)],
        [],
        [(1, 0.4)],
        [],
        [(0, 0.25)],
    ]


def test_source_floor_keeps_the_per_source_gate_off_low_scores():
    m = EvidenceSuggester(["a", "b"], source_floor=0.3)
    m.threshold_, m.thresholds_, m.source_share_ = 0.5, np.array([0.5, 0.5]), 0.5
    P = np.array([[0.9, 0.1], [0.6, 0.7], [0.2, 0.1], [0.3, 0.4], [0.1, 0.2], [0.25, 0.05], [0.2, 0.1]])
    groups = ["x", "x", "x", "y", "y", "y", "one"]
    # y's two best are 0.4 (kept: at least 0.3) and 0.25 (below the floor: not added); the one-segment
    # source's only segment scores 0.2: without a floor it would always be suggested
    assert [bool(r) for r in m.suggest_from_proba(P, k=2, groups=groups)] == [
        True, True, False, True, False, False, False
    ]  # fmt: skip
    m.source_floor = 0.0  # the default: no floor
    assert [bool(r) for r in m.suggest_from_proba(P, k=2, groups=groups)] == [
        True, True, False, True, False, True, True
    ]  # fmt: skip
    m.source_floor = 0.95  # a floor above the threshold leaves the threshold's own suggestions alone
    assert [bool(r) for r in m.suggest_from_proba(P, k=2, groups=groups)] == [
        True, True, False, False, False, False, False
    ]  # fmt: skip
    del m.source_floor  # a model pickled before the setting: no floor
    assert sum(bool(r) for r in m.suggest_from_proba(P, k=2, groups=groups)) == 5
    assert m.get_params()["source_floor"] == 0.0  # what the flows log and record for such a champion


def test_source_floor_is_validated_and_travels_from_the_config(data):
    X, Y, groups, _ = data
    with pytest.raises(InputError, match=r"source_floor must be in \[0, 1\]"):
        EvidenceSuggester(CODES, source_floor=1.5).fit(X, Y, groups=groups)
    assert SuggesterConfig(source_floor=0.2).params == {"source_floor": 0.2}
    assert make_suggester("evidence", codes=CODES, source_floor=0.2).source_floor == 0.2
    assert "source_floor" not in make_suggester("linear", codes=CODES, source_floor=0.2).get_params()


def test_fit_sets_source_share_unless_a_precision_target_is_set(data):
    X, Y, groups, _ = data
    m = EvidenceSuggester(CODES, min_coverage=1.0).fit(X, Y, groups=groups)
    assert m.source_share_ == 1.0  # some coded segment is the last of its source out of fold
    assert EvidenceSuggester(CODES, min_coverage=0.5).fit(X, Y, groups=groups).source_share_ == 0.5
    assert EvidenceSuggester(CODES, target_precision=0.8).fit(X, Y, groups=groups).source_share_ is None
    assert EvidenceSuggester(CODES).fit(X, Y).source_share_ is None  # no sources: no per-source gate


# --- the hierarchy: themes and categories -------------------------------------------------------

# 2 themes x 2 categories x 3 codes, 1-2 examples each (angles in degrees); the uncodable categories
# and themes are only parents. One example of d1 (tech/data) sits at 77 degrees, inside "people".
HIER_EXAMPLES = {
    "s1": [64, 10], "s2": [60], "s3": [56, 20],  # people / staff
    "p1": [30], "p2": [40, 45], "p3": [50],  # people / partners
    "t1": [120], "t2": [130, 135], "t3": [140],  # tech / tools
    "d1": [77, 160], "d2": [170], "d3": [150, 175],  # tech / data
}  # fmt: skip
HIER_CODES = list(HIER_EXAMPLES)
HIER_PARENTS: dict[str, str | None] = {
    c: {"s": "staff", "p": "partners", "t": "tools", "d": "data"}[c[0]] for c in HIER_CODES
}
HIER_PARENTS |= {
    "staff": "people",
    "partners": "people",
    "tools": "tech",
    "data": "tech",
    "people": None,
    "tech": None,
}


def hier_data():
    rows = [(a, HIER_CODES.index(c)) for c in HIER_CODES for a in HIER_EXAMPLES[c]]
    X = np.stack([unit(a) for a, _ in rows] + [unit(a) for a in (85, 95, 100, 180)])  # + 4 uncoded
    Y = np.zeros((len(X), len(HIER_CODES)), dtype=np.int8)
    for i, (_, c) in enumerate(rows):
        Y[i, c] = 1
    return X, Y, np.arange(len(X)) % 4


def test_theme_evidence_outvotes_a_single_example_of_another_theme():
    X, Y, groups = hier_data()
    m = EvidenceSuggester(HIER_CODES, parents=HIER_PARENTS).fit(X, Y, groups=groups)
    assert m.uses_ancestors_
    T = unit(71)[None, :]  # nearest example: d1's at 77 (6 deg); people's nearest: s1's at 64 (7 deg)
    F = m._features(m.base_, T)[0]
    assert F.shape == (12, N_FEATURES)
    cos = lambda *deg: float(np.mean(np.cos(np.deg2rad(deg))))  # noqa: E731
    s1, d1, p1 = (HIER_CODES.index(c) for c in ("s1", "d1", "p1"))
    # nearest over the theme's subtree: "tech" wins, as its single nearest example does
    assert F[d1, 14] == pytest.approx(cos(6)) and F[s1, 14] == pytest.approx(cos(7))
    assert F[p1, 14] == pytest.approx(cos(7))  # p1's own nearest is 21 deg away; its theme's is 7
    # category: staff's nearest is s1's (7 deg), partners' p3's (21 deg)
    assert F[s1, 15] == pytest.approx(cos(7)) and F[p1, 15] == pytest.approx(cos(21))
    # the 3 nearest examples of the theme: people 64, 60, 56; tech 77, 120, 130
    assert F[s1, 16] == pytest.approx(cos(7, 11, 15)) and F[d1, 16] == pytest.approx(cos(6, 49, 59))
    # and of the category: staff 64, 60, 56; partners 50, 45, 40; data 77, 150, 160
    assert F[p1, 17] == pytest.approx(cos(21, 26, 31)) and F[d1, 17] == pytest.approx(cos(6, 79, 89))
    np.testing.assert_allclose(F[:, 18:], F[:, 14:18] - F[:, 14:18].max(axis=0), rtol=1e-6, atol=1e-7)
    assert F[s1, 20] == 0.0 and F[d1, 20] < -0.1  # theme top-3 relative: people is the segment's theme


def test_hierarchy_features_are_off_for_old_pickles_and_flat_codebooks():
    X, Y, groups = hier_data()
    T = np.stack([unit(71), unit(140)])
    m = EvidenceSuggester(HIER_CODES, parents=HIER_PARENTS).fit(X, Y, groups=groups)
    flat = EvidenceSuggester(HIER_CODES).fit(X, Y, groups=groups)
    assert not flat.uses_ancestors_ and flat._features(flat.base_, T).shape == (2, 12, 14)
    # a model pickled before the hierarchy features has no uses_ancestors_ and a 14-feature stacker
    del flat.uses_ancestors_
    assert flat.predict_proba(T).shape == (2, 12)
    assert m.predict_proba(T).shape == (2, 12) and m._features(m.base_, T).shape == (2, 12, 22)


def test_a_codable_category_is_suggested_when_none_of_its_codes_is_confident():
    # "cat" is codable with children x and y; z is top-level. Threshold 0.5 for every code.
    m = EvidenceSuggester(["cat", "x", "y", "z"], parents={"cat": None, "x": "cat", "y": "cat", "z": None})
    m.parent_children_ = m._parent_children(list(m.codes))
    assert [(p, c.tolist()) for p, c in m.parent_children_] == [(0, [1, 2])]
    m.threshold_, m.thresholds_ = 0.5, np.full(4, 0.5)
    P = np.array(
        [
            [0.05, 0.32, 0.28, 0.35],  # x and y unsure, together 0.6 > z's 0.35: the category leads
            [0.05, 0.6, 0.2, 0.1],  # x is confident: no lift
            [0.05, 0.1, 0.1, 0.4],  # x + y = 0.2 < z's 0.4: no lift (and nothing passes)
        ]
    )
    assert [[(c, round(s, 2)) for c, s in row] for row in m.suggest_from_proba(P)] == [
        [(0, 0.6), (3, 0.35), (1, 0.32)],
        [(1, 0.6), (2, 0.2), (3, 0.1)],
        [],
    ]
    assert P[0, 0] == 0.05  # the scores passed in are not changed
    del m.parent_children_  # a model pickled before the rule: plain top-k
    assert m.suggest_from_proba(P)[0] == []
    # an uncodable category is not a column: nothing to lift
    assert EvidenceSuggester(["x", "y"], parents={"x": "cat", "y": "cat"})._parent_children(["x", "y"]) == []


# --- memory: the evidence is scored, scaled and stacked a block of segments at a time -------------


def test_fit_standard_scaler_matches_sklearn_bit_for_bit():
    from sklearn.preprocessing import StandardScaler

    from models.evidence import fit_standard_scaler

    rng = np.random.default_rng(3)
    for n, f, block in [(2, 3, 1), (500, 19, 7), (4099, 27, 1000), (300, 5, 10_000)]:
        F = (rng.standard_normal((n, f)) * rng.uniform(0.01, 3, f) + rng.uniform(-1, 1, f)).astype(np.float32)
        F[:, 0] = 0.25  # a constant column: scale 1
        want, got = StandardScaler().fit(F), fit_standard_scaler(F, block)
        assert vars(got).keys() == vars(want).keys()
        for key, value in vars(want).items():
            assert type(vars(got)[key]) is type(value), key
            assert np.array_equal(vars(got)[key], value), key
        assert np.array_equal(got.transform(F), want.transform(F))


def test_fit_standard_scaler_leaves_nan_to_sklearn():
    from sklearn.preprocessing import StandardScaler

    from models.evidence import fit_standard_scaler

    F = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]], dtype=np.float32)
    want, got = StandardScaler().fit(F), fit_standard_scaler(F, 1)
    assert np.array_equal(got.var_, want.var_) and np.array_equal(got.n_samples_seen_, want.n_samples_seen_)


class _WholeArrayEvidence(EvidenceSuggester):
    """The fit before blocks: every fold's evidence at once, and the scaler and regression in a pipeline."""

    def _fit_stacker(self, X, Y, groups, W=None):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        n, m = Y.shape
        f = self._n_base_features() + (N_WINDOW_FEATURES if W is not None else 0)
        F = np.zeros((n, m, f), dtype=np.float32)
        for train, test in self._folds(n, groups):
            if W is None:
                F[test] = self._features(self._base(X[train], Y[train]), X[test])
            else:
                F[test] = self._features(self._base(X[train], Y[train], W[train]), X[test], W[test])
        self.stacker_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))
        self.stacker_.fit(F.reshape(-1, f), (Y == 1).reshape(-1))
        return self._stack(F)


@pytest.mark.parametrize("window", [False, True])
def test_blocked_fit_is_bit_identical_to_the_whole_array_fit(monkeypatch, window):
    import models.evidence as evidence

    rng = np.random.default_rng(11)
    codes = [f"c{i}" for i in range(12)]
    parents = {
        c: (f"t{i % 2}" if i < 4 else f"c{i % 4}") for i, c in enumerate(codes)
    }  # themes > codes > codes
    n, dim = 170, 16
    X = rng.standard_normal((n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = np.zeros((n, len(codes)), dtype=np.int8)
    for i in rng.choice(n, 60, replace=False):
        Y[i, rng.integers(len(codes))] = 1
    groups = np.repeat(np.arange(10), 17)
    W = (X + np.roll(X, 1, axis=0)).astype(np.float32) if window else None
    proto = rng.standard_normal((len(codes), dim)).astype(np.float32)
    kw = dict(code_embeddings=proto, parents=parents, min_coverage=0.8)
    want = _WholeArrayEvidence(codes, **kw).fit(X, Y, groups=groups, X_window=W)
    monkeypatch.setattr(evidence, "_CHUNK", 4)  # the scaler sums and scales blocks of 4 segments, a last of 2
    got = EvidenceSuggester(codes, **kw).fit(X, Y, groups=groups, X_window=W)
    assert got.uses_ancestors_ and got.uses_window_ == window
    assert got.threshold_ == want.threshold_ and got.source_share_ == want.source_share_
    for key in ("threshold", "coverage", "precision", "suggested"):
        assert np.array_equal(got.coverage_curve_[key], want.coverage_curve_[key])
    g_scaler, g_lr = (step for _, step in got.stacker_.steps)
    w_scaler, w_lr = (step for _, step in want.stacker_.steps)
    assert np.array_equal(g_scaler.mean_, w_scaler.mean_) and np.array_equal(g_scaler.scale_, w_scaler.scale_)
    assert np.array_equal(g_lr.coef_, w_lr.coef_) and np.array_equal(g_lr.intercept_, w_lr.intercept_)
    T = rng.standard_normal((9, dim)).astype(np.float32)
    Tw = T if window else None
    assert np.array_equal(got.predict_proba(T, X_window=Tw), want.predict_proba(T, X_window=Tw))
