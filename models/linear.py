"""Supervised suggester: logistic regression on embeddings (+ previous turn, + TF-IDF n-grams of the
segment and of the previous turn).

Multi-label (default): one binary classifier per code (one-vs-rest), class-balanced, rejected
segments weighted ``rejection_weight`` times an implicit negative. Out-of-fold decision values from a
cross-validation grouped by source (``groups=``) calibrate each code (Platt scaling) and choose its
threshold (best F1 out of fold). A code with fewer than ``min_positives`` positives is not learned:
its probability is 0 and the suggester abstains for it.

Exclusive (``exclusive=True``, e.g. AnnoMI): one multinomial classifier on the segments that carry a
code, calibrated by temperature scaling fitted on out-of-fold log-probabilities (one scalar, so the
argmax, hence every decision and κ, is unchanged; only the confidence is corrected). Rejections carry
no information in this mode (documented limitation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.base import BaseSuggester, sigmoid, softmax
from pipeline.errors import InputError


def best_f1_threshold(p: npt.NDArray[np.floating], y: npt.NDArray[np.bool_]) -> float:
    """The score threshold that maximises F1 of ``p >= t`` against ``y`` (ties: the highest t).

    >>> best_f1_threshold(np.array([0.9, 0.8, 0.3, 0.2]), np.array([True, True, False, True]))
    0.2
    """
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(np.float64)
    tp = np.cumsum(ys)
    k = np.arange(1, len(ps) + 1)
    f1 = 2 * tp / (k + ys.sum())
    # only cut between distinct scores
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1.0)
    return float(ps[int(np.argmax(f1))])


def fit_temperature(logp: npt.NDArray[np.floating], y: npt.NDArray[np.integer]) -> float:
    """Temperature ``T`` minimising the log-loss of ``softmax(logp / T)`` against labels ``y``.

    >>> lp = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]]))
    >>> T = fit_temperature(lp, np.array([0, 0, 1, 1]))  # overconfident: 1 of 4 wrong at 0.9
    >>> bool(T > 1)
    True
    """
    from scipy.optimize import minimize_scalar

    lp = np.asarray(logp, dtype=np.float64)
    idx = np.arange(len(y))

    def nll(log_t: float) -> float:
        z = lp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[idx, y] - np.log(np.exp(z).sum(axis=1))).mean())

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(res.x))


class LinearSuggester(BaseSuggester):
    """Calibrated logistic regression with per-code thresholds.

    Parameters
    ----------
    codes : list of str
    exclusive : bool, default False
        Mutually exclusive codebook (one multinomial model, argmax with abstention).
    C : float, default 1.0
        Inverse regularisation strength of the logistic regressions.
    class_weight : {"balanced", None}, default "balanced"
    rejection_weight : float, default 2.0
        Sample weight of a rejected (``-1``) segment as a negative (implicit negatives weigh 1).
    context_weight : float, default 1.0
        Scale of the previous-turn embedding when ``X_prev`` is passed (0: ignore ``X_prev``).
    context_tfidf_weight : float, default 0.0
        Scale of the TF-IDF word n-grams of the previous turn's text (``prev_texts=``, required in fit
        and predict when > 0); its own vocabulary, same n-gram range and ``min_df`` as ``tfidf``.
    tfidf : bool, default False
        Add TF-IDF word n-grams of ``texts`` (then ``texts=`` is required in fit and predict).
    context2_tfidf_weight : float, default 0.0
        The same for the turn before the previous one (``prev2_texts=``): in an interview, the
        participant's own previous answer; in a therapy session, the client's previous utterance.
    char_tfidf_weight : float, default 0.0
        Scale of TF-IDF character 2-5-grams (within words, at most 50,000) of ``texts`` (> 0 needs
        ``texts=``): spelling variants, negations and short utterances that word n-grams miss.
    tfidf_ngram_range : tuple of int, default (1, 2)
    tfidf_min_df : int, default 2
    tfidf_weight : float, default 1.0
        Scale of the (L2-normalised) TF-IDF block against the embedding block.
    n_splits : int, default 5
        Folds of the grouped cross-validation that calibrates and sets thresholds.
    min_positives : int, default 3
        Fewer positives than this: the code is not learned (abstains).
    min_confidence : float, default 0.0
        Exclusive mode: abstain when the best code's probability is below this.
    calibrate : bool, default True
        Calibrate out of fold (Platt per code; temperature in exclusive mode). ``False`` skips the
        inner cross-validation (5x faster fit): multi-label thresholds are then 0.5 on the raw
        probabilities, exclusive decisions are unchanged.
    sequence : bool, default False
        Exclusive mode: let ``fit`` decide, on its out-of-fold probabilities and the coders' codes,
        whether to decode each source's segments as a chain (:mod:`models.sequence`: one code tends
        to follow another) and how strongly; the choice is ``sequence_`` (``None``: plain argmax) and
        every setting's out-of-fold κ ``sequence_scores_``. Needs ``calibrate`` and ``groups`` in
        fit (rows of a source in reading order), and ``groups=`` in ``predict_proba`` to decode
        (without it each segment is scored alone).
    max_iter : int, default 2000
    random_state : int, RandomState or None
        Shuffles folds when ``groups`` is not given.
    """

    def __init__(
        self,
        codes: Sequence[str],
        exclusive: bool = False,
        C: float = 1.0,
        class_weight: str | None = "balanced",
        rejection_weight: float = 2.0,
        context_weight: float = 1.0,
        context_tfidf_weight: float = 0.0,
        context2_tfidf_weight: float = 0.0,
        tfidf: bool = False,
        char_tfidf_weight: float = 0.0,
        tfidf_ngram_range: tuple[int, int] = (1, 2),
        tfidf_min_df: int = 2,
        tfidf_weight: float = 1.0,
        n_splits: int = 5,
        min_positives: int = 3,
        min_confidence: float = 0.0,
        calibrate: bool = True,
        sequence: bool = False,
        max_iter: int = 2000,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.codes = codes
        self.exclusive = exclusive
        self.C = C
        self.class_weight = class_weight
        self.rejection_weight = rejection_weight
        self.context_weight = context_weight
        self.context_tfidf_weight = context_tfidf_weight
        self.context2_tfidf_weight = context2_tfidf_weight
        self.tfidf = tfidf
        self.char_tfidf_weight = char_tfidf_weight
        self.tfidf_ngram_range = tfidf_ngram_range
        self.tfidf_min_df = tfidf_min_df
        self.tfidf_weight = tfidf_weight
        self.n_splits = n_splits
        self.min_positives = min_positives
        self.min_confidence = min_confidence
        self.calibrate = calibrate
        self.sequence = sequence
        self.max_iter = max_iter
        self.random_state = random_state

    # --- features -----------------------------------------------------------------------------
    def wants_sequence(self) -> bool:
        """True once fitted with a decoding along each source (``sequence_``): pass ``groups=`` (the
        source of each row, rows of a source in reading order) to ``predict_proba``."""
        return getattr(self, "sequence_", None) is not None

    def wants_context(self) -> bool:
        """True: pass ``X_prev`` (and ``prev_texts`` / ``prev2_texts`` for the context TF-IDF) to fit
        and predict."""
        return bool(
            getattr(self, "context_weight", 1.0)
            or getattr(self, "context_tfidf_weight", 0.0)
            or getattr(self, "context2_tfidf_weight", 0.0)
        )

    def _features(
        self,
        X: npt.NDArray[np.float32],
        texts: Sequence[str] | None,
        X_prev: Any,
        fitting: bool,
        prev_texts: Sequence[str] | None = None,
        prev2_texts: Sequence[str] | None = None,
    ) -> Any:
        name = type(self).__name__
        # getattr: a model pickled before these parameters existed predicts as it was fitted
        ctx_tfidf = float(getattr(self, "context_tfidf_weight", 0.0))
        char_tfidf = float(getattr(self, "char_tfidf_weight", 0.0))
        ctx2_tfidf = float(getattr(self, "context2_tfidf_weight", 0.0))
        if fitting:
            self.uses_context_ = X_prev is not None and bool(self.context_weight)
        if self.uses_context_ and X_prev is None:
            raise InputError(
                f"{name}: fitted with X_prev (previous-turn context); pass X_prev= to predict too"
            )
        blocks: list[Any] = [X]
        if self.uses_context_:
            Xp = np.asarray(X_prev, dtype=np.float32)
            if Xp.shape != X.shape:
                raise InputError(f"{name}: X_prev must have the shape of X {X.shape}, got {Xp.shape}")
            blocks.append(self.context_weight * Xp)
        if not (self.tfidf or ctx_tfidf or char_tfidf or ctx2_tfidf):
            return np.hstack(blocks) if len(blocks) > 1 else X
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer

        from pipeline.text import cjk_lower

        def vectorizer() -> Any:
            # cjk_lower: Chinese and Japanese, written without spaces, in word-like tokens (a no-op
            # beside scikit-learn's lower-casing for every other script)
            return TfidfVectorizer(
                ngram_range=tuple(self.tfidf_ngram_range),
                min_df=self.tfidf_min_df,
                sublinear_tf=True,
                preprocessor=cjk_lower,
            )

        sparse: list[Any] = [sp.csr_matrix(np.hstack(blocks))]
        if self.tfidf:
            if texts is None:
                raise InputError(
                    f"{name}: tfidf=True needs texts= (one string per segment) in fit and predict"
                )
            if fitting:
                self.vectorizer_ = vectorizer()
                sparse.append(self.tfidf_weight * self.vectorizer_.fit_transform(list(texts)))
            else:
                sparse.append(self.tfidf_weight * self.vectorizer_.transform(list(texts)))
        if char_tfidf:
            if texts is None:
                raise InputError(f"{name}: char_tfidf_weight > 0 needs texts= in fit and predict")
            if fitting:
                self.char_vectorizer_ = TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True, max_features=50_000
                )
                sparse.append(char_tfidf * self.char_vectorizer_.fit_transform(list(texts)))
            else:
                sparse.append(char_tfidf * self.char_vectorizer_.transform(list(texts)))
        for key, weight, given in (
            ("prev_texts", ctx_tfidf, prev_texts),
            ("prev2_texts", ctx2_tfidf, prev2_texts),
        ):
            if not weight:
                continue
            if given is None:
                raise InputError(
                    f"{name}: a context TF-IDF weight > 0 needs {key}= (the text of the turn before, '' "
                    "when none) in fit and predict"
                )
            prev = [t or "" for t in given]
            attr = "context_vectorizer_" if key == "prev_texts" else "context2_vectorizer_"
            if fitting:
                try:
                    block = vectorizer().fit(prev)
                except ValueError:  # no term of these texts is seen min_df times
                    block = None
                setattr(self, attr, block)
            fitted = getattr(self, attr)
            if fitted is not None:
                sparse.append(weight * fitted.transform(prev))
        return sp.hstack(sparse, format="csr")

    def _folds(self, n: int, groups: Any, rng: np.random.RandomState) -> list[tuple[Any, Any]]:
        from sklearn.model_selection import GroupKFold, KFold

        if groups is None:
            k = max(2, min(self.n_splits, n))
            return list(KFold(k, shuffle=True, random_state=rng.randint(2**31 - 1)).split(np.zeros(n)))
        g = np.asarray(groups)
        k = min(self.n_splits, len(np.unique(g)))
        if k < 2:
            raise InputError(
                f"{type(self).__name__}: grouped cross-validation needs at least 2 sources, got {k}"
            )
        return list(GroupKFold(k).split(np.zeros(n), groups=g))

    def _lr(self, class_weight: str | None) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, class_weight=class_weight, max_iter=self.max_iter)

    # --- fit ----------------------------------------------------------------------------------
    def fit(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike,
        *,
        groups: Any = None,
        texts: Sequence[str] | None = None,
        X_prev: Any = None,
        prev_texts: Sequence[str] | None = None,
        prev2_texts: Sequence[str] | None = None,
    ) -> LinearSuggester:
        """Fit the classifiers, calibrate them and choose thresholds out of fold.

        Parameters
        ----------
        X : ndarray of shape (n_segments, dim)
        Y : ndarray of shape (n_segments, n_codes), int8 in {-1, 0, 1}
        groups : ndarray of shape (n_segments,), optional
            Source of each segment: folds never split a source. Without it, shuffled K-fold.
        texts : list of str, optional (required when ``tfidf``)
        X_prev : ndarray of shape (n_segments, dim), optional
            Previous-turn embeddings; if given here it is required in ``predict_proba`` too.
        prev_texts : list of str, optional (required when ``context_tfidf_weight``)
            The previous turn's text per segment (``""`` when none).
        prev2_texts : list of str, optional (required when ``context2_tfidf_weight``)
            The text of the turn before that.
        """
        from sklearn.utils import check_random_state

        Xa, Ya = self._check_fit_input(
            X, Y, groups=groups, texts=texts, X_prev=X_prev, prev_texts=prev_texts, prev2_texts=prev2_texts
        )
        rng = check_random_state(self.random_state)
        codes = list(self.codes)
        self.classes_ = np.array(codes)
        self.n_features_in_ = Xa.shape[1]
        F = self._features(Xa, texts, X_prev, fitting=True, prev_texts=prev_texts, prev2_texts=prev2_texts)
        self.n_positives_ = (Ya == 1).sum(axis=0).astype(np.int64)
        if self.exclusive:
            self._fit_exclusive(F, Ya, groups, rng)
        else:
            self._fit_multilabel(F, Ya, groups, rng)
        return self

    def _fit_multilabel(self, F: Any, Y: npt.NDArray[np.int8], groups: Any, rng: Any) -> None:
        n, m = Y.shape
        folds = self._folds(n, groups, rng)
        self.estimators_: list[Any] = [None] * m
        self.platt_ = np.zeros((m, 2))
        self.thresholds_ = np.ones(m)
        for c in range(m):
            y = Y[:, c] == 1
            if y.sum() < self.min_positives or y.all():
                continue
            w = np.where(Y[:, c] == -1, self.rejection_weight, 1.0)
            oof = np.full(n, np.nan)
            for tr, te in folds if self.calibrate else []:
                if y[tr].any() and not y[tr].all():
                    est = self._lr(self.class_weight).fit(F[tr], y[tr], sample_weight=w[tr])
                    oof[te] = est.decision_function(F[te])
            ok = ~np.isnan(oof)
            a, b = 1.0, 0.0
            if y[ok].any() and not y[ok].all():
                from sklearn.linear_model import LogisticRegression

                cal = LogisticRegression(C=1e4, max_iter=1000).fit(oof[ok, None], y[ok])
                a, b = float(cal.coef_[0, 0]), float(cal.intercept_[0])
                self.thresholds_[c] = max(best_f1_threshold(sigmoid(a * oof[ok] + b), y[ok]), 1e-6)
            else:
                a, b = 1.0, 0.0
                self.thresholds_[c] = 0.5
            self.platt_[c] = a, b
            self.estimators_[c] = self._lr(self.class_weight).fit(F, y, sample_weight=w)

    def _fit_exclusive(self, F: Any, Y: npt.NDArray[np.int8], groups: Any, rng: Any) -> None:

        m = Y.shape[1]
        rows = np.flatnonzero((Y == 1).any(axis=1))
        labels = (Y[rows] == 1).argmax(axis=1)
        present = np.unique(labels)
        self.thresholds_ = np.full(m, float(self.min_confidence))
        self.present_ = present
        self.temperature_ = 1.0
        self.sequence_: dict[str, Any] | None = None
        self.sequence_scores_: dict[str, float] = {}
        if len(present) < 2:
            raise InputError(
                f"{type(self).__name__}: exclusive mode needs segments of at least 2 different codes, "
                f"got {[str(self.classes_[i]) for i in present]}"
            )
        Fr = F[rows]
        if self.calibrate:
            g = None if groups is None else np.asarray(groups)[rows]
            oof = np.full((len(rows), len(present)), np.nan)
            for tr, te in self._folds(len(rows), g, rng):
                if len(np.unique(labels[tr])) == len(present):
                    est = self._lr(self.class_weight).fit(Fr[tr], labels[tr])
                    oof[te] = est.predict_log_proba(Fr[te])
            ok = ~np.isnan(oof).any(axis=1)
            if ok.any():
                pos = np.searchsorted(present, labels[ok])
                self.temperature_ = fit_temperature(oof[ok], pos)
                if getattr(self, "sequence", False) and g is not None:
                    from models.sequence import choose_decoding

                    self.sequence_, self.sequence_scores_ = choose_decoding(
                        softmax(oof[ok], self.temperature_), pos, g[ok], len(present)
                    )
        self.estimator_ = self._lr(self.class_weight).fit(Fr, labels)

    # --- predict ------------------------------------------------------------------------------
    def predict_proba(
        self,
        X: npt.ArrayLike,
        *,
        texts: Sequence[str] | None = None,
        X_prev: Any = None,
        prev_texts: Sequence[str] | None = None,
        prev2_texts: Sequence[str] | None = None,
        groups: Sequence[Any] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Calibrated probabilities, shape (n_segments, n_codes); 0 for codes not learned.

        ``groups``: the source of each row (rows of a source in reading order); with a decoding chosen
        in fit (``sequence_``), each row's probability given its whole source, else ignored."""
        Xa = self._check_predict_input(
            X, texts=texts, X_prev=X_prev, prev_texts=prev_texts, prev2_texts=prev2_texts, groups=groups
        )
        F = self._features(Xa, texts, X_prev, fitting=False, prev_texts=prev_texts, prev2_texts=prev2_texts)
        m = len(self.classes_)
        P = np.zeros((Xa.shape[0], m))
        if self.exclusive:
            logq = self.estimator_.predict_log_proba(F)
            Q = softmax(logq, self.temperature_)
            chosen = getattr(self, "sequence_", None)
            if chosen is not None and groups is not None and len(Q):
                from models.sequence import forward_backward

                Q = forward_backward(
                    Q, groups, chosen["T"], chosen["prior"], chosen["strength"], chosen["sharpness"]
                )
            P[:, self.present_] = Q
            return P
        for c, est in enumerate(self.estimators_):
            if est is not None:
                a, b = self.platt_[c]
                P[:, c] = sigmoid(a * est.decision_function(F) + b)
        return P
