"""Decoding an exclusive codebook along each source (models.sequence) and the linear suggester's use of
it: exact values on tiny chains, properties of the posteriors, the choice made on out-of-fold κ."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models import LinearSuggester, make_suggester
from models.base import side_inputs
from models.sequence import MIN_GAIN, choose_decoding, forward_backward, runs, transition_matrix
from pipeline.evaluate import grouped_cv_predictions, kappa_of_labels


def test_transition_matrix_counts_within_groups_only():
    # a: 0->0, 0->1 ; b: 1->1 ; the a|b border (1 -> 1) is not a transition
    T = transition_matrix([0, 0, 1, 1, 1], ["a", "a", "a", "b", "b"], 2)
    assert T.tolist() == [[2 / 4, 2 / 4], [1 / 3, 2 / 3]]


def test_runs_keep_the_given_order_of_interleaved_groups():
    assert [r.tolist() for r in runs([2, 1, 2, 2, 1])] == [[0, 2, 3], [1, 4]]


def test_independent_rows_give_back_the_probabilities():
    P = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    flat = np.full((2, 2), 0.5)  # transitions that say nothing
    out = forward_backward(P, ["s", "s", "s"], flat, np.array([0.5, 0.5]))
    np.testing.assert_allclose(out, P)
    # transition strength 0 makes any matrix flat
    sticky = np.array([[0.9, 0.1], [0.1, 0.9]])
    np.testing.assert_allclose(forward_backward(P, ["s"] * 3, sticky, np.array([0.5, 0.5]), strength=0.0), P)


def test_a_sticky_chain_flips_an_unsure_row_between_two_sure_ones_exactly():
    T = np.array([[0.9, 0.1], [0.1, 0.9]])
    P = np.array([[0.9, 0.1], [0.4, 0.6], [0.9, 0.1]])
    out = forward_backward(P, ["s"] * 3, T, np.array([0.5, 0.5]))
    # by hand: the middle row's posterior ∝ e * (sum_i f_i T_i.) * (sum_j T_.j e_j) with f, e as above
    left = np.array([0.9, 0.1]) @ T
    right = T @ np.array([0.9, 0.1])
    mid = np.array([0.4, 0.6]) * left * right
    np.testing.assert_allclose(out[1], mid / mid.sum())
    assert out.argmax(axis=1).tolist() == [0, 0, 0]
    # the same rows as two sources: no neighbour to lean on, nothing changes
    alone = forward_backward(P, ["a", "b", "c"], T, np.array([0.5, 0.5]))
    np.testing.assert_allclose(alone, P)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0.01, 1.0), st.floats(0.01, 1.0), st.floats(0.01, 1.0)),
        min_size=1,
        max_size=25,
    ),
    st.floats(0.0, 2.0),
    st.floats(0.5, 2.0),
)
def test_posteriors_are_distributions_and_groups_are_independent(rows, strength, sharpness):
    groups = [g for g, *_ in rows]
    P = np.array([p for _, *p in rows])
    P = P / P.sum(axis=1, keepdims=True)
    T = transition_matrix(P.argmax(axis=1), groups, 3)
    prior = P.mean(axis=0)
    out = forward_backward(P, groups, T, prior, strength, sharpness)
    assert out.shape == P.shape and np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    for r in runs(groups):  # decoding one source alone gives its rows the same posteriors
        np.testing.assert_allclose(
            forward_backward(P[r], [0] * len(r), T, prior, strength, sharpness), out[r], atol=1e-9
        )


def _persistent(n_sources=20, length=30, seed=0, noise=0.8):
    """Sources whose codes come in runs, and probabilities that see each row's code only dimly."""
    rng = np.random.RandomState(seed)
    labels, groups = [], []
    for s in range(n_sources):
        code = rng.randint(3)
        for _ in range(length):
            if rng.rand() < 0.1:
                code = rng.randint(3)
            labels.append(code)
            groups.append(f"s{s}")
    y = np.array(labels)
    P = rng.dirichlet(np.ones(3), size=len(y)) * noise
    P[np.arange(len(y)), y] += 1 - noise
    return P / P.sum(axis=1, keepdims=True), y, groups


def test_choose_decoding_turns_on_for_runs_and_off_for_alternation():
    P, y, groups = _persistent()
    chosen, scores = choose_decoding(P, y, groups, 3)
    assert chosen is not None and set(chosen) == {"strength", "sharpness", "T", "prior"}
    decoded = forward_backward(
        P, groups, chosen["T"], chosen["prior"], chosen["strength"], chosen["sharpness"]
    )
    assert kappa_of_labels(decoded.argmax(axis=1), y) >= scores["off"] + MIN_GAIN
    assert max(scores.values()) == kappa_of_labels(decoded.argmax(axis=1), y)
    # codes that alternate and probabilities that already see them: decoding cannot help, so off
    y2 = np.tile([0, 1, 2], 200)
    P2 = np.full((600, 3), 0.1)
    P2[np.arange(600), y2] = 0.8
    chosen2, scores2 = choose_decoding(P2, y2, ["a"] * 300 + ["b"] * 300, 3)
    assert chosen2 is None and scores2["off"] == 1.0
    # one row per source: nothing to decode
    assert choose_decoding(P[:5], y[:5], list("abcde"), 3)[0] is None


def _embedded(P):
    """Segment vectors from which a linear model reads about as much as ``P`` says."""
    rng = np.random.RandomState(1)
    return np.hstack([np.log(P), rng.normal(0, 0.3, (len(P), 5))]).astype(np.float32)


def test_linear_suggester_decodes_only_when_its_own_folds_say_so():
    P, y, groups = _persistent(n_sources=24, length=25)
    X = _embedded(P)
    Y = np.eye(3, dtype=np.int8)[y]
    codes = ["a", "b", "c"]
    m = LinearSuggester(codes, exclusive=True, sequence=True, random_state=0).fit(X, Y, groups=groups)
    assert m.wants_sequence() and m.sequence_ is not None
    # the chosen setting is the best of those tried, and beats scoring each segment alone by the margin
    label = f"strength {m.sequence_['strength']:g} sharpness {m.sequence_['sharpness']:g}"
    assert m.sequence_scores_[label] == max(m.sequence_scores_.values())
    assert m.sequence_scores_[label] >= m.sequence_scores_["off"] + MIN_GAIN
    alone = m.predict_proba(X)
    together = m.predict_proba(X, groups=groups)
    assert not np.allclose(alone, together)
    np.testing.assert_allclose(together.sum(axis=1), 1.0)
    assert kappa_of_labels(together.argmax(axis=1), y) > kappa_of_labels(alone.argmax(axis=1), y)
    # side_inputs passes the sources to it (and only once it is fitted)
    assert side_inputs(m, texts=None, groups=groups)["groups"] == groups
    fresh = LinearSuggester(codes, exclusive=True, sequence=True)
    assert "groups" not in side_inputs(fresh, texts=None, groups=groups)
    # the same data without the option, without calibration or without sources: no decoding
    for kw, fit_groups in (({}, groups), ({"sequence": True, "calibrate": False}, groups)):
        plain = LinearSuggester(codes, exclusive=True, random_state=0, **kw).fit(X, Y, groups=fit_groups)
        assert not plain.wants_sequence()
        assert "groups" not in side_inputs(plain, texts=None, groups=groups)
        np.testing.assert_allclose(plain.predict_proba(X, groups=groups), plain.predict_proba(X))
    nogroups = LinearSuggester(codes, exclusive=True, sequence=True, random_state=0).fit(X, Y)
    assert not nogroups.wants_sequence()
    # a pickled model keeps its choice; one pickled before the option existed predicts as before
    again = pickle.loads(pickle.dumps(m))
    np.testing.assert_allclose(again.predict_proba(X, groups=groups), together)
    old = pickle.loads(pickle.dumps(plain))
    for attr in ("sequence", "sequence_", "sequence_scores_"):
        old.__dict__.pop(attr, None)
    assert not old.wants_sequence()
    np.testing.assert_allclose(old.predict_proba(X, groups=groups), plain.predict_proba(X))


def test_the_exclusive_default_decides_and_grouped_cv_decodes_each_held_out_source():
    P, y, groups = _persistent(n_sources=24, length=25)
    X = _embedded(P)
    Y = np.eye(3, dtype=np.int8)[y]
    m = make_suggester("auto", codes=["a", "b", "c"], exclusive=True, random_state=0)
    assert m.sequence is True
    fitted = []

    def make():
        est = LinearSuggester(["a", "b", "c"], exclusive=True, sequence=True, random_state=0)
        fitted.append(est)
        return est

    oof = grouped_cv_predictions(make, X, Y, np.array(groups), n_splits=4)
    assert all(est.wants_sequence() for est in fitted)
    # each fold's held-out rows were decoded together: the same as decoding them by hand
    from sklearn.model_selection import GroupKFold

    for est, (_, te) in zip(fitted, GroupKFold(4).split(X, groups=np.array(groups)), strict=True):
        np.testing.assert_allclose(oof[te], est.predict_proba(X[te], groups=[groups[i] for i in te]))


def test_the_choice_is_described_and_recorded_for_mlflow_and_the_train_report():
    from flows.retrain import RetrainReport
    from models.sequence import describe, record
    from pipeline.gate import GateDecision

    P, y, groups = _persistent(n_sources=24, length=25)
    X, Y = _embedded(P), np.eye(3, dtype=np.int8)[y]
    on = LinearSuggester(["a", "b", "c"], exclusive=True, sequence=True, random_state=0).fit(
        X, Y, groups=groups
    )
    label = f"strength {on.sequence_['strength']:g} sharpness {on.sequence_['sharpness']:g}"
    line = describe(on)
    assert line == (
        f"codes along each source: decoded ({label}: out-of-fold κ {on.sequence_scores_[label]:.3f} "
        f"against {on.sequence_scores_['off']:.3f} scoring each segment alone)"
    )
    params, metrics = record(on)
    assert params == {"sequence.decoding": label}
    assert metrics == {f"sequence.oof_kappa.{k}": v for k, v in on.sequence_scores_.items()}
    assert set(metrics) == {
        "sequence.oof_kappa.off",
        "sequence.oof_kappa.strength 0.5 sharpness 1",
        "sequence.oof_kappa.strength 1 sharpness 1",
        "sequence.oof_kappa.strength 0.5 sharpness 1.5",
        "sequence.oof_kappa.strength 1 sharpness 1.5",
    }
    # no choice made (multi-label, or the option off): nothing to say or log
    plain = LinearSuggester(["a", "b", "c"], exclusive=True, random_state=0).fit(X, Y, groups=groups)
    assert describe(plain) is None and record(plain) == ({}, {})
    decision = GateDecision(True, "macro_f1", 0.5, None, 0.0, False, "no champion yet")
    report = RetrainReport("m", "1", "r", "e", "sqlite:///x", decision, decoding=line)
    assert report.lines()[1] == line  # after the "trained ... evaluated on ..." line
    assert RetrainReport("m", "1", "r", "e", "u", decision).lines()[1].startswith("macro_f1")
    # the fine-tune's verdict follows decoding; a hint comes last, after the MLflow line
    from pipeline.project.retrain import fine_tune_hint

    hint = fine_tune_hint(True, False, 600)
    lines = RetrainReport(
        "m", "1", "r", "e", "u", decision, decoding=line, fine_tune="kept", hint=hint
    ).lines()
    assert lines[1:3] == [line, "kept"] and lines[-1] == hint and lines[-2].startswith("MLflow: run r")


def test_rank_codes_gives_the_model_each_source_whole():
    from pipeline.project.suggest import rank_codes

    P, y, groups = _persistent(n_sources=24, length=25)
    X, Y = _embedded(P), np.eye(3, dtype=np.int8)[y]
    m = LinearSuggester(["a", "b", "c"], exclusive=True, sequence=True, random_state=0).fit(
        X, Y, groups=groups
    )
    texts = [""] * len(X)
    ranked = rank_codes(m, X, texts, 1, groups=groups)
    np.testing.assert_allclose(ranked.P, m.predict_proba(X, groups=groups))
    assert not np.allclose(rank_codes(m, X, texts, 1).P, ranked.P)  # without sources: each segment alone
