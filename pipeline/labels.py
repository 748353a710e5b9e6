"""Human codings as labels of segments: which coding covers which segment, and the label matrix the suggesters learn from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    pass

Suggestions = list[list[tuple[int, float]]]
"""Per segment, ``(code_index, score)`` pairs, best first."""


def coding_covers(seg_start: int, seg_end: int, c_start: int, c_end: int) -> bool:
    """A coding labels a segment when their overlap is at least half of the shorter of the two.

    >>> coding_covers(0, 10, 2, 6), coding_covers(0, 10, 8, 30), coding_covers(0, 10, 4, 30)
    (True, False, True)
    """
    overlap = min(seg_end, c_end) - max(seg_start, c_start)
    if overlap <= 0:
        return False
    return overlap * 2 >= min(seg_end - seg_start, c_end - c_start)


def label_matrix(
    segments: Sequence[tuple[int, int, int]],
    codings: Sequence[tuple[int, int, int, str]],
    rejections: Sequence[tuple[int, str]],
    codes: Sequence[str],
) -> npt.NDArray[np.int8]:
    """Training labels for segments.

    Parameters
    ----------
    segments : sequence of (segment_key, start, end); ``segment_key`` identifies the source version
        (codings are matched within the same key).
    codings : sequence of (segment_key, start, end, code)
    rejections : sequence of (row index into ``segments``, code): explicit negatives
    codes : the column order

    Returns
    -------
    Y : ndarray of shape (n_segments, n_codes), int8: 1 coded, 0 not coded, -1 rejected (and not coded).

    >>> label_matrix([(1, 0, 10), (1, 10, 20)], [(1, 0, 9, "a")], [(1, "b")], ["a", "b"]).tolist()
    [[1, 0], [0, -1]]
    """
    col = {c: i for i, c in enumerate(codes)}
    Y = np.zeros((len(segments), len(codes)), dtype=np.int8)
    by_key: dict[int, list[tuple[int, int, int, str]]] = {}
    for c in codings:
        by_key.setdefault(c[0], []).append(c)
    for i, (key, s, e) in enumerate(segments):
        for _, cs, ce, code in by_key.get(key, ()):
            if code in col and coding_covers(s, e, cs, ce):
                Y[i, col[code]] = 1
    for i, code in rejections:
        if code in col and Y[i, col[code]] == 0:
            Y[i, col[code]] = -1
    return Y


def top_k_above_threshold(
    P: npt.NDArray[np.floating], thresholds: npt.NDArray[np.floating], k: int = 3
) -> Suggestions:
    """Per row, the at most ``k`` best codes whose score reaches that code's threshold.

    Parameters
    ----------
    P : ndarray of shape (n_segments, n_codes)
        Scores (calibrated probabilities).
    thresholds : ndarray of shape (n_codes,) or (n_segments, n_codes)
        A code is suggested only when ``P >= thresholds``; below it the suggester abstains.
    k : int
        Maximum number of suggestions per segment.

    Returns
    -------
    list of n_segments lists of ``(code_index, score)``, sorted by score descending (ties: lower
    code index first).

    >>> P = np.array([[0.9, 0.2, 0.6], [0.1, 0.1, 0.1]])
    >>> top_k_above_threshold(P, np.array([0.5, 0.5, 0.5]), k=2)
    [[(0, 0.9), (2, 0.6)], []]
    """
    P = np.asarray(P, dtype=np.float64)
    n, m = P.shape
    if n == 0 or m == 0 or k <= 0:
        return [[] for _ in range(n)]
    kk = min(k, m)
    masked = np.where(P >= thresholds, P, -np.inf)
    if kk < m:
        idx = np.argpartition(-masked, kk - 1, axis=1)[:, :kk]
    else:
        idx = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(masked, idx, axis=1)
    # sort the k candidates: score descending, then code index ascending
    order = np.lexsort((idx, -vals), axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    keep = np.isfinite(vals)
    idx_l = idx.tolist()
    val_l = vals.tolist()
    keep_l = keep.tolist()
    return [
        [(i, v) for i, v, ok in zip(ir, vr, kr, strict=True) if ok]
        for ir, vr, kr in zip(idx_l, val_l, keep_l, strict=True)
    ]
