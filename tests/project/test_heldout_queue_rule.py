"""The retrain flow's held-out evaluation (and so the promotion metric) scores the review queue's
decisions: :func:`pipeline.project.suggest.rank_codes` with each segment's source, so the evidence
suggester's per-source gate counts. A hand-made training set of two sources over fixed scores."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.domain import Code, Codebook
from pipeline.project.corpus import Corpus
from pipeline.project.retrain import TrainingSet, evaluate_on_heldout
from tests.unit.test_evaluate import P_TABLE, SOURCES, Y_TABLE, _Gated


def training_set() -> TrainingSet:
    n = len(SOURCES)
    corpus = Corpus(
        segment_ids=list(range(n)),
        source_ids=[1 if s == "x" else 2 for s in SOURCES],
        source_names=SOURCES.tolist(),
        texts=[f"segment {i}" for i in range(n)],
        spans=[(1 if s == "x" else 2, 10 * i, 10 * i + 9) for i, s in enumerate(SOURCES)],
        codes=["a", "b"],
        codebook=Codebook([Code("a"), Code("b")]),
        codebook_version_id=1,
        Y=Y_TABLE,
    )
    return TrainingSet(
        corpus=corpus,
        X=np.arange(n, dtype=np.float32)[:, None],
        train_idx=np.arange(3),
        eval_idx=np.arange(3, 6),  # source y: nothing in it reaches the threshold 0.5
        eval_sources=["y"],
        codebook_hash="h",
    )


def test_heldout_metrics_count_the_per_source_gate() -> None:
    ts = training_set()
    model = _Gated(["a", "b"]).fit(ts.X[ts.train_idx], Y_TABLE[ts.train_idx])
    ev = evaluate_on_heldout(model, ts, k=1)
    np.testing.assert_allclose(ev.P, P_TABLE[3:])
    # y's best ceil(0.5 * 3) = 2 segments are suggested below the threshold, as the queue does
    assert ev.picks == [[(1, 0.4)], [], [(0, 0.25)]]
    assert ev.metrics["coverage"] == pytest.approx(2 / 3)  # P >= 0.5 alone: 0
    assert ev.metrics["hit_at_k"] == 1.0 and ev.metrics["macro_f1"] == 1.0  # alone: 0 and 0


def test_heldout_picks_follow_the_codebook_columns() -> None:
    ts = training_set()
    # a model whose columns are in another order, with a code the codebook no longer has
    model = _Gated(["b", "gone", "a"])
    model.fit(ts.X, np.zeros((6, 3), dtype=np.int8))
    by_row = np.c_[P_TABLE[:, 1], np.zeros(6), P_TABLE[:, 0]]  # columns b, gone, a
    model.predict_proba = lambda X, **kw: by_row[np.asarray(X)[:, 0].astype(int)]
    ev = evaluate_on_heldout(model, ts, k=1)
    np.testing.assert_allclose(ev.P, P_TABLE[3:])
    assert ev.picks == [[(1, 0.4)], [], [(0, 0.25)]]
