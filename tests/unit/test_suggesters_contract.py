"""One contract suite run over every registered suggester (and the keyword baseline)."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from models import SUGGESTERS, make_suggester
from models.keyword import KeywordSuggester
from pipeline.embed.base import HashingEmbedder
from pipeline.errors import InputError

CODES = ["resource-shortage", "phased-design", "stakeholder-pressure", "never-used"]
TEXTS = {
    0: [
        "we lack budget and staff",
        "no budget no staff left",
        "IT capacity and budget are short",
        "staff shortage and a small budget",
        "budget cuts took our staff",
    ],
    1: [
        "a pilot in two provinces first",
        "step by step rollout after the pilot",
        "we piloted it then rolled out",
        "pilot first then step by step",
        "a phased rollout with a pilot",
    ],
    2: [
        "parliament pressed the director",
        "pressure from parliament and the press",
        "the ministry pushed us hard",
        "parliament questioned the director",
        "pressure from the ministry and parliament",
    ],
}


@pytest.fixture(scope="module")
def data():
    emb = HashingEmbedder(dim=128)
    texts, labels = [], []
    for rep in range(2):
        for c, ts in TEXTS.items():
            for t in ts:
                texts.append(t if rep == 0 else t + " indeed")
                labels.append(c)
    X = emb.encode(texts)
    Y = np.zeros((len(texts), len(CODES)), dtype=np.int8)
    Y[np.arange(len(texts)), labels] = 1
    Y[0, 1] = -1  # a rejection
    groups = np.arange(len(texts)) % 6
    code_emb = emb.encode(
        [
            "budget staff shortage",
            "pilot step by step rollout",
            "pressure parliament ministry",
            "something else entirely",
        ]
    )
    return X, Y, groups, code_emb, texts


def build(name: str, code_emb: np.ndarray, exclusive: bool = False):
    if name == "keyword":
        return KeywordSuggester(
            CODES, {"resource-shortage": ["budget"], "phased-design": ["pilot"]}, exclusive=exclusive
        )
    cls = SUGGESTERS[name]
    params = {"codes": CODES, "exclusive": exclusive}
    if cls.uses_code_embeddings:
        params["code_embeddings"] = code_emb
    if "random_state" in inspect.signature(cls).parameters:
        params["random_state"] = 0
    if "context_tfidf_weight" in inspect.signature(cls).parameters:
        # these tests give no previous turns; the context path is tested in tests/project/test_context.py
        params.update(context_tfidf_weight=0.0, context2_tfidf_weight=0.0)
    return make_suggester(name, **params)


ALL = [*sorted(SUGGESTERS), "keyword"]


def fit(est, X, Y, groups, texts):
    return est.fit(X, Y, groups=groups, texts=texts)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("exclusive", [False, True])
def test_fit_returns_self_shapes_classes(name, exclusive, data):
    X, Y, groups, code_emb, texts = data
    Yx = np.where(Y == -1, 0, Y).astype(np.int8) if exclusive else Y
    est = build(name, code_emb, exclusive)
    assert fit(est, X, Yx, groups, texts) is est
    P = est.predict_proba(X, texts=texts)
    assert P.shape == (len(X), len(CODES))
    assert np.all((P >= 0) & (P <= 1 + 1e-9))
    assert list(est.classes_) == CODES
    assert est.thresholds_.shape == (len(CODES),)
    if exclusive:
        assert np.all(P.sum(axis=1) <= 1 + 1e-9)
        assert all(len(s) <= 1 for s in est.suggest(X, texts=texts))


@pytest.mark.parametrize("name", ALL)
def test_suggestions_respect_thresholds_and_k(name, data):
    X, Y, groups, code_emb, texts = data
    est = fit(build(name, code_emb), X, Y, groups, texts)
    P = est.predict_proba(X, texts=texts)
    # a suggester with `alternatives` gates the segment on its best code and then lists its top k
    gated = bool(getattr(est, "alternatives", False))
    for i, sugg in enumerate(est.suggest(X, k=2, texts=texts)):
        assert len(sugg) <= 2
        assert [s for _, s in sugg] == sorted((s for _, s in sugg), reverse=True)
        for j, (c, s) in enumerate(sugg):
            if not (gated and j > 0):
                assert s >= est.thresholds_[c]
            assert s == pytest.approx(P[i, c])
        if gated and P[i].max() >= est.thresholds_[P[i].argmax()]:
            assert len(sugg) == min(2, len(CODES))
    est.thresholds_ = np.full(len(CODES), 1.5)  # nothing can reach it: abstain everywhere
    assert all(s == [] for s in est.suggest(X, texts=texts))


@pytest.mark.parametrize("name", [n for n in ALL if n != "evidence"])
@pytest.mark.parametrize("exclusive", [False, True])
def test_the_queue_rule_is_the_threshold_unless_the_suggester_gates_per_source(name, exclusive, data):
    """What evaluate and the promotion gate score is ``suggest_from_proba(P, k, groups=sources)``, the
    queue's rule; for every suggester but evidence it is the codes at or above their thresholds, the k
    best (one when exclusive), the sources ignored."""
    from pipeline.labels import top_k_above_threshold

    X, Y, groups, code_emb, texts = data
    Yx = np.where(Y == -1, 0, Y).astype(np.int8) if exclusive else Y
    est = fit(build(name, code_emb, exclusive), X, Yx, groups, texts)
    P = est.predict_proba(X, texts=texts)
    expected = top_k_above_threshold(P, est.thresholds_, 1 if exclusive else 2)
    assert est.suggest_from_proba(P, 2, groups=groups.tolist()) == expected == est.suggest_from_proba(P, 2)


@pytest.mark.parametrize("name", sorted(SUGGESTERS))
def test_learns_the_obvious(name, data):
    X, Y, groups, code_emb, texts = data
    est = fit(build(name, code_emb), X, Y, groups, texts)
    top = est.predict_proba(X, texts=texts).argmax(axis=1)
    truth = np.where(Y == 1, 1, 0).argmax(axis=1)
    assert (top == truth).mean() >= 0.8


@pytest.mark.parametrize("name", ALL)
def test_get_params_clone_round_trip(name, data):
    _, _, _, code_emb, _ = data
    est = build(name, code_emb)
    params = est.get_params()
    twin = clone(est)
    assert type(twin) is type(est)
    assert twin.get_params().keys() == params.keys()
    for k, v in params.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(twin.get_params()[k], v)
        elif not hasattr(v, "get_params"):
            assert twin.get_params()[k] == v
    assert "classes_" not in twin.__dict__


@pytest.mark.parametrize("name", ALL)
def test_pickle_round_trip(name, data):
    X, Y, groups, code_emb, texts = data
    est = fit(build(name, code_emb), X, Y, groups, texts)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict_proba(X, texts=texts), est.predict_proba(X, texts=texts))


@pytest.mark.parametrize("name", ALL)
def test_clear_errors(name, data):
    X, Y, groups, code_emb, texts = data
    est = build(name, code_emb)
    with pytest.raises(InputError, match="not fitted"):
        est.predict_proba(X, texts=texts)
    with pytest.raises(InputError, match="non-empty 2-D"):
        est.fit(np.zeros((0, 128), dtype=np.float32), np.zeros((0, len(CODES)), dtype=np.int8))
    with pytest.raises(InputError, match=r"Y must have shape \(n_segments, n_codes\)"):
        est.fit(X, Y[:, :2])
    with pytest.raises(InputError, match=r"Y must have shape"):
        est.fit(X, Y[:-1])
    with pytest.raises(InputError, match="only 1 .*found \\[2\\]"):
        est.fit(X, np.where(Y == 1, 2, Y))
    with pytest.raises(InputError, match="texts has 3 rows but X has"):
        est.fit(X, Y, texts=texts[:3])
    fit(est, X, Y, groups, texts)
    with pytest.raises(InputError, match=r"X must have shape \(n_segments, 128\)"):
        est.predict_proba(X[:, :10], texts=texts)


@pytest.mark.parametrize("name", ALL)
def test_exclusive_rejects_multi_coded_rows(name, data):
    X, Y, groups, code_emb, texts = data
    Y2 = Y.copy()
    Y2[3, 2] = 1
    with pytest.raises(InputError, match="exclusive=True but 1 segment"):
        build(name, code_emb, exclusive=True).fit(X, Y2, texts=texts)


@pytest.mark.parametrize("name", sorted(SUGGESTERS))
def test_code_without_positives_is_not_suggested_by_supervised_parts(name, data):
    X, Y, groups, code_emb, texts = data
    est = fit(build(name, code_emb), X, Y, groups, texts)
    assert est.predict_proba(X).shape[1] == len(CODES)  # the never-used column exists and is finite
    assert np.isfinite(est.predict_proba(X)).all()


def test_unknown_suggester_names_the_choices():
    with pytest.raises(
        InputError, match=r"Unknown suggester 'lnear'; choose one of \['auto', 'blend', 'evidence'"
    ):
        make_suggester("lnear", codes=CODES)


def test_import_is_light():
    code = "import sys, models; print(sorted(m for m in ('sklearn', 'torch', 'prefect', 'mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
