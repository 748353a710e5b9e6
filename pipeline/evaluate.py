"""Suggester quality against human codings: pure functions on arrays.

Conventions
-----------
P : ndarray (n_segments, n_codes), predicted probabilities.
thresholds : ndarray (n_codes,) or (n_segments, n_codes) (per-fold thresholds from
    :func:`grouped_cv_predictions`); a code is suggested when ``P >= thresholds``.
Y_true : ndarray (n_segments, n_codes), int8: 1 coded, 0 not coded, -1 rejected (counts as 0 here).

Decisions: multi-label, every code at or above its threshold; ``exclusive``, the argmax when it is at
or above its threshold, otherwise the model abstains (no code).

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
    k = min(n_splits, n_groups)
    if k < 2:
        raise InputError(f"grouped_cv_predictions: need at least 2 sources to cross-validate, got {n_groups}")
    P = np.zeros(Ya.shape, dtype=np.float64)
    T = np.zeros(Ya.shape, dtype=np.float64)
    for tr, te in GroupKFold(k).split(Xa, groups=g):
        est = make_estimator()
        est.fit(Xa[tr], Ya[tr], groups=g[tr], **{key: _take(v, tr) for key, v in fit_kw.items()})
        P[te] = est.predict_proba(Xa[te], **{key: _take(v, te) for key, v in fit_kw.items()})
        T[te] = est.thresholds_
    return (P, T) if return_thresholds else P


def _take(value: Any, idx: npt.NDArray[np.intp]) -> Any:
    if isinstance(value, np.ndarray):
        return value[idx]
    return [value[i] for i in idx]


def decisions(
    P: npt.NDArray[np.floating], thresholds: npt.NDArray[np.floating], exclusive: bool = False
) -> npt.NDArray[np.int8]:
    """0/1 decision matrix of shape (n_segments, n_codes) (one-hot or empty rows when exclusive).

    >>> decisions(np.array([[0.6, 0.4], [0.3, 0.2]]), np.array([0.5, 0.5]), exclusive=True).tolist()
    [[1, 0], [0, 0]]
    """
    P = np.asarray(P)
    above = P >= thresholds
    if not exclusive:
        return above.astype(np.int8)
    best = P.argmax(axis=1)
    D = np.zeros(P.shape, dtype=np.int8)
    ok = above[np.arange(len(best)), best]
    D[np.flatnonzero(ok), best[ok]] = 1
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
    thresholds: npt.ArrayLike,
    Y_true: npt.ArrayLike,
    k: int = 3,
    coder_matrices: Mapping[str, npt.ArrayLike] | None = None,
    *,
    codes: Sequence[str] | None = None,
    exclusive: bool = False,
) -> dict[str, Any]:
    """Quality of probabilities ``P`` against the human codes ``Y_true``.

    Parameters
    ----------
    P : ndarray of shape (n_segments, n_codes)
    thresholds : ndarray of shape (n_codes,) or (n_segments, n_codes)
    Y_true : ndarray of shape (n_segments, n_codes), int8 in {-1, 0, 1}
    k : int
        Suggestions per segment for ``hit_at_k`` (``exclusive``: one).
    coder_matrices : mapping of coder name to ndarray (n_segments, n_codes), optional
        Each coder's own codes, for ``kappa_vs_<coder>`` (see the module docstring).
    codes : list of str, optional
        Code names for ``per_code`` (default ``"0"``, ``"1"``, ...).
    exclusive : bool
        Mutually exclusive codebook (argmax decisions, single-label κ).

    Returns
    -------
    dict with ``micro_f1``, ``macro_f1`` (over codes with support > 0), ``hit_at_k`` (share of
    segments with a human code that have one among their top-k suggestions above threshold),
    ``coverage`` (share of segments with any suggestion), ``brier`` (mean squared error over all
    cells), ``ece`` (multi-label: over all cells; exclusive: of the top code's probability against
    its correctness), ``per_code`` {code: {precision, recall, f1, support}}, ``n_segments`` and one
    ``kappa_vs_<coder>`` per coder.
    """
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    from pipeline.labels import top_k_above_threshold

    Pa = np.asarray(P, dtype=np.float64)
    Yt = np.asarray(Y_true)
    Ta = np.asarray(thresholds, dtype=np.float64)
    if Pa.ndim != 2 or Pa.shape != Yt.shape:
        raise InputError(
            f"evaluate_predictions: P {Pa.shape} and Y_true {Yt.shape} must have the same 2-D shape"
        )
    n, m = Pa.shape
    names = [str(i) for i in range(m)] if codes is None else list(codes)
    if len(names) != m:
        raise InputError(f"evaluate_predictions: {len(names)} code names for {m} columns")
    truth = (Yt == 1).astype(np.int8)
    D = decisions(Pa, Ta, exclusive)
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
    sugg = top_k_above_threshold(Pa, Ta, 1 if exclusive else k)
    coded = np.flatnonzero(truth.any(axis=1))
    hits = [any(truth[i, c] for c, _ in sugg[i]) for i in coded]
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
        out[f"kappa_vs_{coder}"] = model_coder_kappa(D, np.asarray(M), exclusive)
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
    P: npt.ArrayLike, Y_true: npt.ArrayLike, coverages: Sequence[float] = OPERATING_COVERAGES
) -> list[dict[str, float]]:
    """The precision-coverage trade-off of top-1 suggestions at chosen coverages (out-of-fold ``P``).

    For each coverage ``c``: the common threshold that gives a suggestion to a share ``c`` of the coded
    segments, the top-1 precision among all segments that reach it (its first code is one a coder
    gave) and the share of all segments suggested. What ``[suggester] min_coverage`` or
    ``target_precision`` would buy, read off one table.

    >>> P = np.array([[0.9, 0.1], [0.2, 0.6], [0.3, 0.4], [0.8, 0.1]])
    >>> Y = np.array([[1, 0], [0, 0], [0, 1], [1, 0]])
    >>> [(p["coverage"], round(p["precision"], 2)) for p in operating_points(P, Y, (1.0, 0.5))]
    [(1.0, 0.75), (0.5, 1.0)]
    """
    Pa = np.asarray(P, dtype=np.float64)
    positive = np.asarray(Y_true) == 1
    coded = positive.any(axis=1)
    if not coded.any():
        return []
    top = Pa.max(axis=1)
    right = positive[np.arange(len(Pa)), Pa.argmax(axis=1)]
    out = []
    for c in coverages:
        t = float(np.quantile(top[coded], 1.0 - c))
        reach = top >= t
        out.append(
            {
                "coverage": float(c),
                "threshold": t,
                "covered": float(reach[coded].mean()),
                "precision": float((reach & right).sum() / max(int(reach.sum()), 1)),
                "suggested": float(reach.mean()),
            }
        )
    return out
