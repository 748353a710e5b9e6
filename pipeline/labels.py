"""Human codings as labels of segments: which coding covers which segment, and the label matrix the suggesters learn from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    pass


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
