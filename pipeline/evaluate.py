"""Suggester quality against human codings: pure functions on arrays.

Conventions
-----------
P : ndarray (n_segments, n_codes), predicted probabilities.
picks : per segment, the codes the model suggests as ``(code_index, score)`` pairs, best first (empty:
    it abstains). These are the review queue's decisions: the model's own
    ``suggest_from_proba(P, k, groups=<each row's source>)`` (:func:`grouped_cv_suggestions` out of
    fold; :func:`pipeline.project.suggest.rank_codes` on held-out sources), so the per-source gate and
    the category rule of the evidence suggester count, and a segment gets at most ``k`` codes. For the
    other suggesters that is every code at or above its threshold, the ``k`` best of them; exclusive,
    the argmax when it reaches its threshold.
Y_true : ndarray (n_segments, n_codes), int8: 1 coded, 0 not coded, -1 rejected (counts as 0 here).

Every decision metric (F1, precision, recall, coverage, hit@k, κ) is computed from ``picks``; only the
calibration metrics (Brier, ECE) read ``P``. This module never re-derives decisions from thresholds:
the rule is the model's.

Cohen's κ of the model against a coder (``kappa_vs_<coder>``):

- ``exclusive=True`` (mutually exclusive codebook, e.g. AnnoMI): the usual single-label κ over the
  segments the coder coded (rows of the coder's matrix with a positive); the coder's label is its
  code, the model's label its decision, an abstention being one more category "none" (it counts as a
  disagreement).
- multi-label: κ on the presence/absence of each code, pooled over all (segment, code) cells.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError
from pipeline.labels import Suggestions


def grouped_cv_predictions(
    make_estimator: Callable[[], Any],
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    groups: npt.ArrayLike,
    n_splits: int = 5,
    *,
    return_thresholds: bool = False,
    **fit_kw: Any,
) -> Any:
    """Out-of-fold probabilities from a cross-validation that never splits a group (source).

    Parameters
    ----------
    make_estimator : callable returning a new unfitted suggester
    X : ndarray of shape (n_segments, dim)
    Y : ndarray of shape (n_segments, n_codes)
    groups : array-like of shape (n_segments,)
        Source of each segment; each fold's training part is passed to ``fit`` as ``groups=``.
    n_splits : int
        Number of folds (at most the number of groups).
    return_thresholds : bool
        Also return each row's fold thresholds, shape (n_segments, n_codes).
    **fit_kw
        Row-aligned side information (``texts=``, ``X_prev=``): sliced per fold and passed to both
        ``fit`` and ``predict_proba``.

    Returns
    -------
    P : ndarray of shape (n_segments, n_codes), or ``(P, T)`` when ``return_thresholds``.
    """
    P, T, _ = _cross_validate(make_estimator, X, Y, groups, n_splits, None, fit_kw)
    return (P, T) if return_thresholds else P


def grouped_cv_suggestions(
    make_estimator: Callable[[], Any],
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    groups: npt.ArrayLike,
    k: int,
    n_splits: int = 5,
    **fit_kw: Any,
) -> tuple[npt.NDArray[np.float64], Suggestions]:
    """:func:`grouped_cv_predictions`, and each held-out row's suggestions as the review queue makes
    them: the fold's model's ``suggest_from_proba(P_fold, k, groups=<the held-out rows' sources>)``
    (its thresholds, per-source gate and category rule; a held-out source is whole in its fold, as a
    new interview is in the queue).

    Returns
    -------
    ``(P, picks)``: out-of-fold probabilities (n_segments, n_codes) and, per row, its ``(code_index,
    score)`` suggestions, best first.
    """
    P, _, picks = _cross_validate(make_estimator, X, Y, groups, n_splits, k, fit_kw)
    assert picks is not None
    return P, picks


def _cross_validate(
    make_estimator: Callable[[], Any],
    X: npt.ArrayLike,
    Y: npt.ArrayLike,
    groups: npt.ArrayLike,
    n_splits: int,
    k: int | None,
    fit_kw: dict[str, Any],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], Suggestions | None]:
    """The grouped folds: out-of-fold ``P``, each row's fold thresholds, and (``k`` given) its fold
    model's suggestions."""
    from sklearn.model_selection import GroupKFold

    Xa = np.asarray(X)
    Ya = np.asarray(Y)
    g = np.asarray(groups)
    n = Xa.shape[0]
    if Ya.shape[0] != n or g.shape[0] != n:
        raise InputError(
            f"grouped_cv_predictions: X has {n} rows, Y {Ya.shape[0]}, groups {g.shape[0]}; they must match"
        )
    for key, value in fit_kw.items():
        if value is None or len(value) != n:
            raise InputError(f"grouped_cv_predictions: {key} must have one entry per segment ({n})")
    n_groups = len(np.unique(g))
    n_folds = min(n_splits, n_groups)
    if n_folds < 2:
        raise InputError(f"grouped_cv_predictions: need at least 2 sources to cross-validate, got {n_groups}")
    P = np.zeros(Ya.shape, dtype=np.float64)
    T = np.zeros(Ya.shape, dtype=np.float64)
    picks: list[list[tuple[int, float]]] | None = None if k is None else [[] for _ in range(n)]
    for tr, te in GroupKFold(n_folds).split(Xa, groups=g):
        est = make_estimator()
        est.fit(Xa[tr], Ya[tr], groups=g[tr], **{key: _take(v, tr) for key, v in fit_kw.items()})
        held_out = {key: _take(v, te) for key, v in fit_kw.items()}
        if getattr(est, "wants_sequence", lambda: False)():  # decodes each held-out source as a whole
            held_out["groups"] = list(g[te])
        P[te] = est.predict_proba(Xa[te], **held_out)
        T[te] = est.thresholds_
        if picks is not None:
            for i, row in zip(te, est.suggest_from_proba(P[te], k, groups=list(g[te])), strict=True):
                picks[i] = row
    return P, T, picks


def _take(value: Any, idx: npt.NDArray[np.intp]) -> Any:
    if isinstance(value, np.ndarray):
        return value[idx]
    return [value[i] for i in idx]


def suggested_matrix(picks: Suggestions, n_codes: int) -> npt.NDArray[np.int8]:
    """0/1 matrix of shape (n_segments, n_codes): 1 for every code a segment's ``picks`` suggest.

    >>> suggested_matrix([[(1, 0.9), (0, 0.4)], [], [(2, 0.3)]], 3).tolist()
    [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    """
    D = np.zeros((len(picks), n_codes), dtype=np.int8)
    for i, row in enumerate(picks):
        for c, _ in row:
            D[i, c] = 1
    return D


def labels_from_matrix(Y: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Single label per row of a one-hot matrix: the code index, or -1 for a row with no positive.

    >>> labels_from_matrix(np.array([[0, 1], [0, 0], [-1, 1]])).tolist()
    [1, -1, 1]
    """
    pos = np.asarray(Y) == 1
    return np.where(pos.any(axis=1), pos.argmax(axis=1), -1).astype(np.int64)


def expected_calibration_error(
    p: npt.NDArray[np.floating], y: npt.NDArray[np.floating], n_bins: int = 10
) -> float:
    """ECE: bin-size-weighted mean of |mean(p) - mean(y)| over ``n_bins`` equal-width bins.

    >>> expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 1, 0, 0]))
    0.1
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(p) == 0:
        return 0.0
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    sp = np.bincount(b, weights=p, minlength=n_bins)
    sy = np.bincount(b, weights=y, minlength=n_bins)
    nz = cnt > 0
    return round(float(np.abs(sp[nz] - sy[nz]).sum() / len(p)), 12)


def kappa_of_labels(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cohen's κ of two label sequences: :func:`pipeline.agreement.cohen_kappa`, with the evaluation's
    convention where it is undefined: NaN when there are no labels, 1.0 when both sequences use one
    and the same single label (``pipeline.agreement`` raises there: chance agreement is 1).

    >>> kappa_of_labels([0, 1, 1, 0], [0, 1, 0, 0])
    0.5
    >>> kappa_of_labels([2, 2], [2, 2])
    1.0
    """
    from pipeline.agreement import cohen_kappa

    a, b = np.asarray(a, dtype=np.int64).ravel(), np.asarray(b, dtype=np.int64).ravel()
    if len(a) == 0:
        return float("nan")
    labels, codes = np.unique(np.r_[a, b], return_inverse=True)
    if len(labels) == 1:
        return 1.0
    R = codes.reshape(2, -1).T
    return cohen_kappa(R, n_categories=len(labels))


def evaluate_predictions(
    P: npt.ArrayLike,
    picks: Suggestions,
    Y_true: npt.ArrayLike,
    k: int = 3,
    coder_matrices: Mapping[str, npt.ArrayLike] | None = None,
    *,
    codes: Sequence[str] | None = None,
    exclusive: bool = False,
) -> dict[str, Any]:
    """Quality of the suggestions ``picks`` (and the probabilities ``P``) against the human codes ``Y_true``.

    Parameters
    ----------
    P : ndarray of shape (n_segments, n_codes)
    picks : per segment, the suggested ``(code_index, score)`` pairs, best first (the queue's
        decisions, see the module docstring)
    Y_true : ndarray of shape (n_segments, n_codes), int8 in {-1, 0, 1}
    k : int
        Suggestions per segment counted by ``hit_at_k`` (the first ``k`` picks).
    coder_matrices : mapping of coder name to ndarray (n_segments, n_codes), optional
        Each coder's own codes, for ``kappa_vs_<coder>`` (see the module docstring); a row of -2: a
        segment the coder has not coded, left out of their κ (no key when every row is -2).
    codes : list of str, optional
        Code names for ``per_code`` (default ``"0"``, ``"1"``, ...).
    exclusive : bool
        Mutually exclusive codebook (single-label κ; ECE of the top code).

    Returns
    -------
    dict with ``micro_f1``, ``macro_f1`` (over codes with support > 0), ``hit_at_k`` (share of
    segments with a human code that have one among their first k suggestions), ``coverage`` (share of
    segments with any suggestion), ``brier`` (mean squared error of ``P`` over all cells), ``ece``
    (multi-label: over all cells; exclusive: of the top code's probability against its correctness),
    ``per_code`` {code: {precision, recall, f1, support}}, ``n_segments`` and one
    ``kappa_vs_<coder>`` per coder.
    """
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    Pa = np.asarray(P, dtype=np.float64)
    Yt = np.asarray(Y_true)
    if Pa.ndim != 2 or Pa.shape != Yt.shape:
        raise InputError(
            f"evaluate_predictions: P {Pa.shape} and Y_true {Yt.shape} must have the same 2-D shape"
        )
    n, m = Pa.shape
    if len(picks) != n:
        raise InputError(f"evaluate_predictions: {len(picks)} rows of suggestions for {n} segments")
    names = [str(i) for i in range(m)] if codes is None else list(codes)
    if len(names) != m:
        raise InputError(f"evaluate_predictions: {len(names)} code names for {m} columns")
    truth = (Yt == 1).astype(np.int8)
    D = suggested_matrix(picks, m)
    support = truth.sum(axis=0)
    has = support > 0
    prec, rec, f1, _ = precision_recall_fscore_support(truth, D, average=None, zero_division=0)
    out: dict[str, Any] = {
        "n_segments": n,
        "micro_f1": float(f1_score(truth, D, average="micro", zero_division=0)),
        "macro_f1": float(np.mean(f1[has])) if has.any() else 0.0,
        "coverage": float(D.any(axis=1).mean()) if n else 0.0,
        "brier": float(np.mean((Pa - truth) ** 2)) if n else 0.0,
    }
    coded = np.flatnonzero(truth.any(axis=1))
    hits = [any(truth[i, c] for c, _ in picks[i][:k]) for i in coded]
    out["hit_at_k"] = float(np.mean(hits)) if hits else 0.0
    if exclusive:
        best = Pa.argmax(axis=1)
        correct = truth[np.arange(n), best]
        out["ece"] = expected_calibration_error(Pa[np.arange(n), best][coded], correct[coded])
    else:
        out["ece"] = expected_calibration_error(Pa, truth)
    out["per_code"] = {
        names[c]: {
            "precision": float(prec[c]),
            "recall": float(rec[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
        }
        for c in range(m)
    }
    for coder, M in (coder_matrices or {}).items():
        M = np.asarray(M)
        if (M != -2).all(axis=1).any():  # a coder who coded none of these segments is not compared
            out[f"kappa_vs_{coder}"] = model_coder_kappa(D, M, exclusive)
    return out


def model_coder_kappa(D: npt.NDArray[np.integer], M: npt.NDArray[np.integer], exclusive: bool) -> float:
    """Cohen's κ of model decisions ``D`` against a coder's matrix ``M`` (both (n_segments, n_codes)).

    >>> D = np.array([[1, 0], [0, 1], [0, 0], [1, 0]])
    >>> M = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    >>> round(model_coder_kappa(D, M, exclusive=True), 4)  # rows 0-2 coded; row 2: model abstained
    0.5
    """
    if D.shape != M.shape:
        raise InputError(f"model_coder_kappa: decisions {D.shape} and coder matrix {M.shape} differ in shape")
    seen = (M != -2).all(axis=1)  # -2: a segment the coder has not coded (another coder's source)
    D, M = D[seen], M[seen]
    if exclusive:
        rows = (M == 1).any(axis=1)
        return kappa_of_labels(labels_from_matrix(D)[rows], labels_from_matrix(M)[rows])
    return kappa_of_labels((D == 1).ravel().astype(int), (M == 1).ravel().astype(int))


def coverage_curve(
    P: npt.NDArray[np.floating],
    positive: npt.NDArray[np.bool_],
    coded: npt.NDArray[np.bool_],
    n_points: int = 101,
) -> dict[str, npt.NDArray[np.float64]]:
    """Precision and coverage of top-1 suggestions as the common threshold falls.

    Thresholds are the quantiles of the coded segments' top-1 scores (descending). ``coverage``: share
    of coded segments whose top-1 score reaches the threshold; ``precision``: among all segments that
    reach it, share whose top-1 code is a positive; ``suggested``: share of all segments that reach it.

    >>> P = np.array([[0.9, 0.1], [0.2, 0.6], [0.3, 0.4]])
    >>> pos = np.array([[True, False], [False, False], [False, True]])
    >>> c = coverage_curve(P, pos, pos.any(axis=1), n_points=3)
    >>> [c["threshold"].round(2).tolist(), c["coverage"].tolist(), c["precision"].round(2).tolist()]
    [[0.9, 0.65, 0.4], [0.5, 0.5, 1.0], [1.0, 1.0, 0.67]]
    """
    top = P.max(axis=1)
    right = positive[np.arange(len(P)), P.argmax(axis=1)] if len(P) else np.zeros(0, bool)
    base = top[coded] if coded.any() else top
    if not len(base):
        empty = np.zeros(0)
        return {"threshold": empty, "coverage": empty, "precision": empty, "suggested": empty}
    t = np.quantile(base, np.linspace(1.0, 0.0, n_points))
    reach = top[None, :] >= t[:, None]
    n_reach = reach.sum(axis=1)
    return {
        "threshold": t,
        "coverage": (reach[:, coded].sum(axis=1) / max(int(coded.sum()), 1)).astype(np.float64),
        "precision": np.where(
            n_reach > 0, (reach & right[None, :]).sum(axis=1) / np.maximum(n_reach, 1), 0.0
        ),
        "suggested": n_reach / len(top),
    }


OPERATING_COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7, 0.5)


def operating_points(
    P: npt.ArrayLike,
    Y_true: npt.ArrayLike,
    coverages: Sequence[float] = OPERATING_COVERAGES,
    *,
    picks: Suggestions | None = None,
) -> list[dict[str, Any]]:
    """The precision-coverage trade-off of top-1 suggestions (out-of-fold ``P``).

    With ``picks`` (the queue's suggestions, see the module docstring), the first row is the default
    operating point, what the queue suggests today: ``default`` true, ``threshold`` ``None`` (each
    fold's model applies its own threshold, per-source gate and category rule), ``covered`` the share
    of coded segments with a suggestion, ``precision`` the share of suggested segments whose first
    code is one a coder gave, ``suggested`` the share of all segments with a suggestion; ``coverage``
    repeats ``covered``.

    The other rows (``default`` false) sweep **one common threshold on the raw top-1 score alone**,
    without the per-source gate or the category rule: for each coverage ``c``, the threshold that
    gives a suggestion to a share ``c`` of the coded segments, the top-1 precision among all segments
    that reach it and the share of all segments suggested: how far raising or lowering the score
    threshold (``[suggester] min_coverage`` or ``target_precision``) moves precision, read off one
    table. With the evidence suggester's per-source gate on, the queue also suggests each source's
    best segments below the threshold, so its default row covers at least as much as the threshold
    alone would.

    >>> P = np.array([[0.9, 0.1], [0.2, 0.6], [0.3, 0.4], [0.8, 0.1]])
    >>> Y = np.array([[1, 0], [0, 0], [0, 1], [1, 0]])
    >>> [(p["coverage"], round(p["precision"], 2)) for p in operating_points(P, Y, (1.0, 0.5))]
    [(1.0, 0.75), (0.5, 1.0)]
    >>> row = operating_points(P, Y, (), picks=[[(0, 0.9)], [], [(1, 0.4)], []])[0]
    >>> row["default"], round(row["covered"], 2), row["precision"], row["suggested"]
    (True, 0.67, 1.0, 0.5)
    """
    Pa = np.asarray(P, dtype=np.float64)
    positive = np.asarray(Y_true) == 1
    coded = positive.any(axis=1)
    if not coded.any():
        return []
    out: list[dict[str, Any]] = []
    if picks is not None:
        reach = np.array([bool(row) for row in picks], dtype=bool)
        right = np.array([bool(row) and bool(positive[i, row[0][0]]) for i, row in enumerate(picks)])
        point = _top1_point(reach, right, coded)
        out.append({"coverage": point["covered"], "threshold": None, **point, "default": True})
    top = Pa.max(axis=1)
    right = positive[np.arange(len(Pa)), Pa.argmax(axis=1)]
    for c in coverages:
        t = float(np.quantile(top[coded], 1.0 - c))
        point = _top1_point(top >= t, right, coded)
        out.append({"coverage": float(c), "threshold": t, **point, "default": False})
    return out


def _top1_point(
    reach: npt.NDArray[np.bool_], right: npt.NDArray[np.bool_], coded: npt.NDArray[np.bool_]
) -> dict[str, float]:
    """One operating point: of the segments that get a suggestion (``reach``), the share of the coded
    ones (``covered``), the share whose first code is right (``precision``), the share of all."""
    return {
        "covered": float(reach[coded].mean()),
        "precision": float((reach & right).sum() / max(int(reach.sum()), 1)),
        "suggested": float(reach.mean()),
    }
