"""Exact metric values on tiny hand-made fixtures; grouped CV never splits a source."""

from __future__ import annotations

import numpy as np
import pytest

from models.evidence import EvidenceSuggester
from pipeline.errors import InputError
from pipeline.evaluate import (
    evaluate_predictions,
    expected_calibration_error,
    grouped_cv_predictions,
    grouped_cv_suggestions,
    kappa_of_labels,
    model_coder_kappa,
    operating_points,
    suggested_matrix,
)
from pipeline.labels import top_k_above_threshold


def test_multilabel_metrics_exact():
    P = np.array([[0.9, 0.6, 0.1], [0.2, 0.7, 0.0], [0.1, 0.1, 0.1]])
    Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.int8)
    picks = top_k_above_threshold(P, np.array([0.5, 0.5, 0.5]), 3)  # the base suggesters' rule
    r = evaluate_predictions(P, picks, Y, k=3, codes=["a", "b", "c"])
    # decisions: row0 {a, b}, row1 {b}, row2 {} -> tp 2, fp 1, fn 1
    assert r["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert r["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
    assert r["coverage"] == pytest.approx(2 / 3)
    assert r["hit_at_k"] == pytest.approx(2 / 3)
    assert r["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    assert r["per_code"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert r["n_segments"] == 3


def test_exclusive_metrics_and_kappa_per_coder():
    P = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    T = np.array([0.5, 0.5])
    Y = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=np.int8)
    coder = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], dtype=np.int8)  # did not code row 3
    picks = top_k_above_threshold(P, T, 1)  # exclusive: the argmax when it reaches its threshold
    assert picks == [[(0, 0.7)], [(1, 0.8)], [(0, 0.6)], [(1, 0.55)]]
    r = evaluate_predictions(P, picks, Y, coder_matrices={"ann": coder}, exclusive=True)
    assert r["micro_f1"] == pytest.approx(3 / 4)
    assert r["hit_at_k"] == pytest.approx(3 / 4)
    assert r["kappa_vs_ann"] == pytest.approx(1.0)  # rows 0-2 agree exactly
    assert r["ece"] == pytest.approx(
        expected_calibration_error(np.array([0.7, 0.8, 0.6, 0.55]), np.array([1, 1, 0, 1]))
    )


def test_decisions_and_kappa_definitions():
    assert suggested_matrix([[]], 2).tolist() == [[0, 0]]
    D = np.array([[1, 0], [0, 0]])
    M = np.array([[1, 0], [0, 1]])
    # pooled cells: (1,0,0,0) vs (1,0,0,1) -> po 3/4, pe (1/4*2/4 + 3/4*2/4) = 1/2 -> κ 0.5
    assert model_coder_kappa(D, M, exclusive=False) == pytest.approx(0.5)
    assert kappa_of_labels([1, 1], [1, 1]) == 1.0
    with pytest.raises(InputError, match="differ in shape"):
        model_coder_kappa(D, M[:1], exclusive=False)


def test_ece_exact():
    assert expected_calibration_error(np.array([0.25, 0.25, 0.25, 0.25]), np.array([1, 0, 0, 0])) == 0.0
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([0, 1])) == 1.0


class _Spy:
    """Records the groups it was trained on; predicts the mean training label."""

    seen: list[tuple[set, set]] = []

    def fit(self, X, Y, *, groups=None, texts=None):
        self.train_groups = set(groups.tolist())
        self.mean = (Y == 1).mean(axis=0)
        self.thresholds_ = np.full(Y.shape[1], 0.5)
        assert len(texts) == len(X)
        return self

    def predict_proba(self, X, *, texts=None):
        _Spy.seen.append((self.train_groups, set(texts)))
        return np.tile(self.mean, (len(X), 1))


def test_grouped_cv_never_splits_a_source():
    n = 30
    X = np.zeros((n, 2), dtype=np.float32)
    Y = np.zeros((n, 2), dtype=np.int8)
    Y[::2, 0] = 1
    groups = np.repeat(np.arange(6), 5)
    texts = [f"g{g}" for g in groups]
    _Spy.seen.clear()
    P, T = grouped_cv_predictions(_Spy, X, Y, groups, n_splits=3, return_thresholds=True, texts=texts)
    assert P.shape == T.shape == (n, 2)
    assert len(_Spy.seen) == 3
    for train_groups, test_texts in _Spy.seen:
        assert not {f"g{g}" for g in train_groups} & test_texts


def test_grouped_cv_errors():
    X = np.zeros((4, 2))
    Y = np.zeros((4, 1), dtype=np.int8)
    with pytest.raises(InputError, match="need at least 2 sources"):
        grouped_cv_predictions(_Spy, X, Y, np.zeros(4))
    with pytest.raises(InputError, match="X has 4 rows, Y 3"):
        grouped_cv_predictions(_Spy, X, Y[:3], np.arange(4))
    with pytest.raises(InputError, match="texts must have one entry per segment"):
        grouped_cv_predictions(_Spy, X, Y, np.arange(4), texts=["a"])
    with pytest.raises(InputError, match="must have the same 2-D shape"):
        evaluate_predictions(np.zeros((2, 2)), [[], []], np.zeros((3, 2)))
    with pytest.raises(InputError, match="1 rows of suggestions for 2 segments"):
        evaluate_predictions(np.zeros((2, 2)), [[]], np.zeros((2, 2)))


def test_operating_points_trade_coverage_for_precision() -> None:
    # coded rows 0, 2, 3 (top-1 right: 0 and 3); row 1 is uncoded and scores 0.6
    P = np.array([[0.9, 0.1], [0.2, 0.6], [0.3, 0.4], [0.8, 0.1]])
    Y = np.array([[1, 0], [0, 0], [0, 1], [1, 0]])
    full, half = operating_points(P, Y, (1.0, 0.5))
    assert full == {
        "coverage": 1.0,
        "threshold": 0.4,
        "covered": 1.0,
        "precision": 0.75,
        "suggested": 1.0,
        "default": False,
    }
    # threshold 0.8: rows 0 and 3 reach it, both right; row 1's 0.6 does not
    assert half["threshold"] == pytest.approx(0.8) and half["precision"] == 1.0
    assert half["covered"] == pytest.approx(2 / 3) and half["suggested"] == 0.5
    assert operating_points(P, np.zeros_like(Y)) == []


# --- the queue's rule: evaluate scores what the review queue suggests --------------------------

# two sources of three segments; source y (a new interview) scores low: nothing in it reaches 0.5
P_TABLE = np.array([[0.9, 0.1], [0.6, 0.7], [0.2, 0.1], [0.3, 0.4], [0.1, 0.2], [0.25, 0.05]])
Y_TABLE = np.array([[1, 0], [0, 1], [0, 0], [0, 1], [0, 0], [1, 0]], dtype=np.int8)
SOURCES = np.array(["x", "x", "x", "y", "y", "y"])


class _Gated(EvidenceSuggester):
    """The evidence suggester's own ``suggest_from_proba`` over fixed scores: row ``i`` of X is ``[i]``
    and scores ``P_TABLE[i]``; threshold 0.5, each source's best half passes (``source_share_``)."""

    def fit(self, X, Y, *, groups=None, texts=None, X_prev=None, X_window=None):
        self.classes_ = np.array(self.codes)
        self.threshold_, self.thresholds_ = 0.5, np.full(len(self.codes), 0.5)
        self.source_share_, self.parent_children_ = 0.5, []
        return self

    def predict_proba(self, X, *, texts=None, X_prev=None, X_window=None):
        return P_TABLE[np.asarray(X)[:, 0].astype(int)]


def test_evaluate_counts_what_the_per_source_gate_adds_below_the_threshold() -> None:
    X = np.arange(6, dtype=np.float32)[:, None]
    P, picks = grouped_cv_suggestions(lambda: _Gated(["a", "b"]), X, Y_TABLE, SOURCES, k=1, n_splits=2)
    np.testing.assert_allclose(P, P_TABLE)
    # y's best ceil(0.5 * 3) = 2 segments (0.4 and 0.25) are suggested below the threshold, as in the
    # queue; x's two above 0.5 pass anyway
    assert picks == [[(0, 0.9)], [(1, 0.7)], [], [(1, 0.4)], [], [(0, 0.25)]]
    r = evaluate_predictions(P, picks, Y_TABLE, k=1, codes=["a", "b"])
    assert r["coverage"] == pytest.approx(4 / 6)  # P >= 0.5 alone: rows 0 and 1, 2 / 6
    assert r["hit_at_k"] == 1.0  # P >= 0.5 alone: 2 / 4 coded rows
    assert r["per_code"]["a"]["recall"] == 1.0 and r["per_code"]["b"]["recall"] == 1.0  # alone: 1/2 each
    assert r["micro_f1"] == 1.0
    # without sources there is no per-source gate: the threshold alone
    alone = _Gated(["a", "b"]).fit(X, Y_TABLE).suggest_from_proba(P_TABLE, 1)
    assert evaluate_predictions(P_TABLE, alone, Y_TABLE, k=1)["coverage"] == pytest.approx(2 / 6)
    # the default operating point is the queue's; the swept rows are the threshold alone
    default, full = operating_points(P, Y_TABLE, (1.0,), picks=picks)
    assert default == {
        "coverage": 1.0,
        "threshold": None,
        "covered": 1.0,
        "precision": 1.0,
        "suggested": pytest.approx(4 / 6),
        "default": True,
    }
    assert (
        full["default"] is False and full["threshold"] == 0.25 and full["suggested"] == pytest.approx(4 / 6)
    )


def test_evaluate_counts_a_category_the_category_rule_suggests() -> None:
    # "cat" is codable with children x and y; the coder coded the category on row 0
    m = EvidenceSuggester(["cat", "x", "y", "z"], parents={"cat": None, "x": "cat", "y": "cat", "z": None})
    m.parent_children_ = m._parent_children(list(m.codes))
    m.threshold_, m.thresholds_ = 0.5, np.full(4, 0.5)
    P = np.array([[0.05, 0.32, 0.28, 0.35], [0.05, 0.6, 0.2, 0.1]])
    Y = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.int8)
    picks = m.suggest_from_proba(P, 1)
    assert [[(c, round(s, 2)) for c, s in row] for row in picks] == [[(0, 0.6)], [(1, 0.6)]]
    r = evaluate_predictions(P, picks, Y, k=1, codes=m.codes)
    assert r["coverage"] == 1.0 and r["hit_at_k"] == 1.0  # P >= 0.5 alone: 1/2 and 1/2
    assert r["per_code"]["cat"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    (default,) = operating_points(P, Y, (), picks=picks)
    assert default["precision"] == 1.0 and default["covered"] == 1.0
