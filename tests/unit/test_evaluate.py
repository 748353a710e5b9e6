"""Exact metric values on tiny hand-made fixtures; grouped CV never splits a source."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.evaluate import (
    decisions,
    evaluate_predictions,
    expected_calibration_error,
    grouped_cv_predictions,
    kappa_of_labels,
    model_coder_kappa,
)


def test_multilabel_metrics_exact():
    P = np.array([[0.9, 0.6, 0.1], [0.2, 0.7, 0.0], [0.1, 0.1, 0.1]])
    Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.int8)
    r = evaluate_predictions(P, np.array([0.5, 0.5, 0.5]), Y, k=3, codes=["a", "b", "c"])
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
    r = evaluate_predictions(P, T, Y, coder_matrices={"ann": coder}, exclusive=True)
    assert r["micro_f1"] == pytest.approx(3 / 4)
    assert r["hit_at_k"] == pytest.approx(3 / 4)
    assert r["kappa_vs_ann"] == pytest.approx(1.0)  # rows 0-2 agree exactly
    assert r["ece"] == pytest.approx(
        expected_calibration_error(np.array([0.7, 0.8, 0.6, 0.55]), np.array([1, 1, 0, 1]))
    )


def test_decisions_and_kappa_definitions():
    assert decisions(np.array([[0.4, 0.3]]), np.array([0.5, 0.5]), exclusive=True).tolist() == [[0, 0]]
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
        evaluate_predictions(np.zeros((2, 2)), np.zeros(2), np.zeros((3, 2)))


def test_operating_points_trade_coverage_for_precision() -> None:
    from pipeline.evaluate import operating_points

    # coded rows 0, 2, 3 (top-1 right: 0 and 3); row 1 is uncoded and scores 0.6
    P = np.array([[0.9, 0.1], [0.2, 0.6], [0.3, 0.4], [0.8, 0.1]])
    Y = np.array([[1, 0], [0, 0], [0, 1], [1, 0]])
    full, half = operating_points(P, Y, (1.0, 0.5))
    assert full == {"coverage": 1.0, "threshold": 0.4, "covered": 1.0, "precision": 0.75, "suggested": 1.0}
    # threshold 0.8: rows 0 and 3 reach it, both right; row 1's 0.6 does not
    assert half["threshold"] == pytest.approx(0.8) and half["precision"] == 1.0
    assert half["covered"] == pytest.approx(2 / 3) and half["suggested"] == 0.5
    assert operating_points(P, np.zeros_like(Y)) == []
