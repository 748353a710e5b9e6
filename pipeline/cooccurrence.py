"""Code co-occurrence: counts within a segment or a window of segments, Jaccard and association
strength, drawn as a heatmap and as a network.

Units
-----
Co-occurrence means one coder applied both codes: units are per coder. Each coder's units are the
segments (or windows) of the sources that coder coded, so two coders labelling the same sentence
differently never make their codes co-occur, and two coders applying the same pair count twice (two
units). With ``window=1`` a unit is one segment. With ``window=w > 1`` a unit is every run of ``w``
consecutive segments of the same source (segments ``i .. i+w-1``, sliding by one); a source with
fewer than ``w`` segments forms one unit. A code is present in a unit when it is present in any of
its segments. Counts are numbers of units: ``C[i, j]`` units hold both codes ``i`` and ``j``, and the
diagonal ``C[i, i]`` is the number of units holding code ``i``.

Normalised measures
-------------------
* Jaccard: ``C[i, j] / (C[i, i] + C[j, j] - C[i, j])`` (1 on the diagonal of a used code).
* Association strength (van Eck & Waltman 2009, "How to normalize cooccurrence data", JASIST 60(8)):
  ``C[i, j] / (s_i s_j)``, scaled here by the number of units ``n`` so that
  ``A[i, j] = n C[i, j] / (s_i s_j)`` is observed over expected co-occurrence: 1 means the codes
  co-occur as often as chance would have them, above 1 more often. The diagonal is 0.
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.domain import Coding, Segment
from pipeline.errors import InputError

__all__ = [
    "CooccurrenceResult",
    "association_strength",
    "cooccurrence",
    "cooccurrence_counts",
    "jaccard",
    "plot_heatmap",
    "plot_network",
    "presence_matrix",
    "window_units",
]

BoolMatrix = npt.NDArray[np.bool_]
IntMatrix = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CooccurrenceResult:
    """Co-occurrence of ``codes`` over ``n_units`` units of ``window`` segments.

    ``counts``, ``jaccard`` and ``association`` are ndarrays of shape (n_codes, n_codes).
    """

    codes: list[str]
    window: int
    n_units: int
    counts: IntMatrix
    jaccard: FloatMatrix
    association: FloatMatrix


def presence_matrix(
    segments: Sequence[Segment], codings: Sequence[Coding], codes: Sequence[str]
) -> BoolMatrix:
    """Which code is present in which segment.

    A coding marks a segment when both are in the same source and their character ranges overlap
    (``coding.start < segment.end and coding.end > segment.start``). Codings of codes not in
    ``codes`` are ignored (pass all codebook names to keep everything).

    Returns
    -------
    ndarray of shape (n_segments, n_codes), bool
    """
    col = {c: j for j, c in enumerate(codes)}
    by_source: dict[str, list[tuple[int, Segment]]] = {}
    for i, s in enumerate(segments):
        by_source.setdefault(s.source, []).append((i, s))
    X = np.zeros((len(segments), len(codes)), dtype=bool)
    for c in codings:
        j = col.get(c.code)
        if j is None:
            continue
        for i, s in by_source.get(c.source, []):
            if c.start < s.end and c.end > s.start:
                X[i, j] = True
    return X


def window_units(sources: Sequence[str], window: int) -> list[list[int]]:
    """Row indices of each unit of ``window`` consecutive segments within one source.

    ``sources[i]`` is the source of row ``i``; rows of one source must be contiguous and in
    order (as segments are stored).

    >>> window_units(["a", "a", "a", "b"], 2)
    [[0, 1], [1, 2], [3]]
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InputError(f"co-occurrence window must be an integer >= 1, got {window!r}")
    runs: list[list[int]] = []
    for i, s in enumerate(sources):
        if runs and sources[runs[-1][0]] == s:
            runs[-1].append(i)
        else:
            runs.append([i])
    seen: set[str] = set()
    for r in runs:
        name = sources[r[0]]
        if name in seen:
            raise InputError(f"co-occurrence: segments of source '{name}' are not contiguous; sort them")
        seen.add(name)
    units: list[list[int]] = []
    for r in runs:
        if len(r) <= window:
            units.append(r)
        else:
            units.extend(r[k : k + window] for k in range(len(r) - window + 1))
    return units


def cooccurrence_counts(
    presence: npt.ArrayLike, *, sources: Sequence[str] | None = None, window: int = 1
) -> tuple[IntMatrix, int]:
    """Co-occurrence counts over units of ``window`` segments.

    Parameters
    ----------
    presence : array-like of shape (n_segments, n_codes), bool
    sources : sequence of str of length n_segments, optional
        Source of each row; required when ``window > 1`` (windows never cross sources).
    window : int
        Number of consecutive segments in a unit.

    Returns
    -------
    counts : ndarray of shape (n_codes, n_codes), int64
    n_units : int

    Examples
    --------
    >>> X = [[1, 1, 0], [0, 1, 1], [0, 0, 0]]
    >>> C, n = cooccurrence_counts(X)
    >>> C.tolist(), n
    ([[1, 1, 0], [1, 2, 1], [0, 1, 1]], 3)
    >>> cooccurrence_counts(X, sources=["s", "s", "s"], window=2)[0].tolist()
    [[1, 1, 1], [1, 2, 2], [1, 2, 2]]
    """
    X = np.asarray(presence, dtype=bool)
    if X.ndim != 2:
        raise InputError(f"co-occurrence: presence must be 2-D (n_segments, n_codes), got shape {X.shape}")
    if window > 1 or sources is not None:
        if sources is None:
            raise InputError("co-occurrence: a window > 1 needs the source of each segment")
        if len(sources) != X.shape[0]:
            raise InputError(
                f"co-occurrence: {len(sources)} source names for {X.shape[0]} segments; give one per segment"
            )
        units = window_units(sources, window)
        starts = np.array([idx[0] for idx in units], dtype=np.int64)
        lengths = np.array([len(idx) for idx in units], dtype=np.int64)  # consecutive rows each
        U = X[starts]
        for offset in range(1, int(lengths.max(initial=1))):  # loops over the window, not the units
            U = U | (X[np.minimum(starts + offset, X.shape[0] - 1)] & (offset < lengths)[:, None])
    else:
        U = X
    return _gram(U), int(U.shape[0])


def _gram(U: npt.NDArray[np.bool_]) -> IntMatrix:
    """``U.T @ U`` in integers, through BLAS: an int64 product has no BLAS (30 s at 300 codes and
    45,000 segments against 0.3 s). Every partial sum is an integer no larger than ``len(U)``, which
    float32 holds exactly below 2**24 and float64 below 2**53, so the counts are exact."""
    n = U.shape[0]
    if n >= 2**53:
        Ui = U.astype(np.int64)
        return Ui.T @ Ui
    F: npt.NDArray[np.floating[Any]] = U.astype(np.float32 if n < 2**24 else np.float64)
    return np.rint(F.T @ F).astype(np.int64)


def jaccard(counts: npt.ArrayLike) -> FloatMatrix:
    """Jaccard index ``C_ij / (C_ii + C_jj - C_ij)``; 0 where both codes are unused.

    >>> jaccard([[2, 1], [1, 3]]).round(3).tolist()
    [[1.0, 0.25], [0.25, 1.0]]
    """
    C = np.asarray(counts, dtype=np.float64)
    d = np.diag(C)
    denom = d[:, None] + d[None, :] - C
    with np.errstate(divide="ignore", invalid="ignore"):
        J = np.where(denom > 0, C / np.where(denom > 0, denom, 1.0), 0.0)
    return J


def association_strength(counts: npt.ArrayLike, n_units: int) -> FloatMatrix:
    """Association strength ``n C_ij / (s_i s_j)`` with ``s_i = C_ii`` (observed / expected).

    Zero on the diagonal and for unused codes.

    >>> association_strength([[2, 1], [1, 2]], 4).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    C = np.asarray(counts, dtype=np.float64)
    s = np.diag(C)
    expected = np.outer(s, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        A = np.where(expected > 0, n_units * C / np.where(expected > 0, expected, 1.0), 0.0)
    np.fill_diagonal(A, 0.0)
    return A


def cooccurrence(
    segments: Sequence[Segment],
    codings: Sequence[Coding],
    codes: Sequence[str],
    *,
    window: int = 1,
    partial_coders: Collection[str] = (),
) -> CooccurrenceResult:
    """Counts, Jaccard and association strength of ``codes`` over each coder's units.

    Segments are grouped by source in order of ``segment.index`` before windows are formed. Each
    coder (``coding.coder``) contributes the units of the sources they have a coding in; the counts
    and ``n_units`` are sums over coders (see the module docstring). A coder in ``partial_coders``
    (the consensus of adjudication, which codes only the units it settled) contributes only the units
    that hold a segment one of their codings overlaps.

    >>> from pipeline.domain import Coding, Segment
    >>> segs = [Segment("i1", 0, 0, 10, "x" * 10)]
    >>> cods = [Coding("i1", 0, 10, "cost", "ann"), Coding("i1", 0, 10, "trust", "ben")]
    >>> r = cooccurrence(segs, cods, ["cost", "trust"])
    >>> r.counts.tolist(), r.n_units
    ([[1, 0], [0, 1]], 2)
    """
    order = sorted(range(len(segments)), key=lambda i: (segments[i].source, segments[i].index))
    segs = [segments[i] for i in order]
    by_coder: dict[str, list[Coding]] = {}
    for c in codings:
        by_coder.setdefault(c.coder, []).append(c)
    C = np.zeros((len(codes), len(codes)), dtype=np.int64)
    n = 0
    for coder in sorted(by_coder):
        mine = by_coder[coder]
        coded = {c.source for c in mine}
        own = [s for s in segs if s.source in coded]
        X = presence_matrix(own, mine, codes)
        if coder in partial_coders:
            touched = presence_matrix(own, [replace(c, code="") for c in mine], [""])[:, 0]
            units = [u for u in window_units([s.source for s in own], window) if touched[u].any()]
            U = np.zeros((len(units), len(codes)), dtype=bool)
            for k, u in enumerate(units):
                U[k] = X[u].any(axis=0)
            Ck, nk = _gram(U), len(units)
        else:
            Ck, nk = cooccurrence_counts(X, sources=[s.source for s in own], window=window)
        C += Ck
        n += nk
    if not by_coder:
        window_units([], window)  # still refuse a bad window
    return CooccurrenceResult(
        codes=list(codes),
        window=window,
        n_units=n,
        counts=C,
        jaccard=jaccard(C),
        association=association_strength(C, n),
    )


def _png(fig: object, dpi: int) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def plot_heatmap(
    matrix: npt.ArrayLike,
    labels: Sequence[str],
    *,
    title: str = "Code co-occurrence",
    value_label: str = "count",
    annotate: bool = True,
    show_diagonal: bool = False,
    dpi: int = 150,
) -> bytes:
    """A code-by-code heatmap as a PNG (the diagonal is blanked unless ``show_diagonal``).

    Parameters
    ----------
    matrix : array-like of shape (n_codes, n_codes)
    labels : sequence of str, length n_codes
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    M = np.array(matrix, dtype=np.float64)
    n = len(labels)
    if M.shape != (n, n):
        raise InputError(f"heatmap: matrix shape {M.shape} does not match {n} labels")
    if not show_diagonal:
        np.fill_diagonal(M, 0.0)
    side = min(max(3.5, 0.36 * n + 2.6), 12.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(M, cmap="Blues", vmin=0)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    fontsize = 9 if n <= 25 else 7
    ax.set_xticklabels(labels, rotation=50, ha="right", fontsize=fontsize)
    ax.set_yticklabels(labels, fontsize=fontsize)
    if annotate and n <= 20:
        vmax = float(M.max()) if M.size else 0.0
        for i in range(n):
            for j in range(n):
                v = M[i, j]
                if v == 0:
                    continue
                text = f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
                colour = "white" if vmax and v > 0.6 * vmax else "#222222"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(value_label)
    ax.set_title(title, fontsize=11, loc="left")
    fig.tight_layout()
    return _png(fig, dpi)


def plot_network(
    weights: npt.ArrayLike,
    labels: Sequence[str],
    *,
    sizes: Sequence[float] | None = None,
    min_weight: float = 1.0,
    title: str = "Code co-occurrence network",
    dpi: int = 150,
) -> bytes:
    """Codes on a circle, joined by edges as thick as their weight, as a PNG (matplotlib only).

    Parameters
    ----------
    weights : array-like of shape (n_codes, n_codes)
        Symmetric edge weights (e.g. counts); the diagonal is ignored; edges below ``min_weight``
        are not drawn.
    labels : sequence of str, length n_codes
    sizes : sequence of float, optional
        Node sizes (e.g. how often each code is used); equal when omitted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W = np.asarray(weights, dtype=np.float64)
    n = len(labels)
    if W.shape != (n, n):
        raise InputError(f"network: weights shape {W.shape} does not match {n} labels")
    angles = [math.pi / 2 - 2 * math.pi * k / max(n, 1) for k in range(n)]
    xy = np.array([(math.cos(a), math.sin(a)) for a in angles]).reshape(n, 2)
    fig, ax = plt.subplots(figsize=(7, 7))
    wmax = max(float(W[~np.eye(n, dtype=bool)].max()) if n > 1 else 0.0, 1e-9)
    for i in range(n):
        for j in range(i + 1, n):
            w = W[i, j]
            if w < min_weight or w <= 0:
                continue
            ax.plot(
                [xy[i, 0], xy[j, 0]],
                [xy[i, 1], xy[j, 1]],
                color="#1f5f8b",
                alpha=0.25 + 0.6 * w / wmax,
                lw=0.8 + 5.0 * w / wmax,
                zorder=1,
                solid_capstyle="round",
            )
    s = np.asarray(sizes if sizes is not None else [1.0] * n, dtype=np.float64)
    smax = float(s.max()) if s.size and s.max() > 0 else 1.0
    ax.scatter(xy[:, 0], xy[:, 1], s=120 + 900 * s / smax, color="#f2a65a", edgecolor="#7a4a1a", zorder=2)
    for label, a in zip(labels, angles, strict=True):  # labels along the radius never overlap
        right = math.cos(a) >= -1e-9
        deg = math.degrees(a) if right else math.degrees(a) + 180.0
        ax.text(
            1.12 * math.cos(a),
            1.12 * math.sin(a),
            label,
            ha="left" if right else "right",
            va="center",
            rotation=deg,
            rotation_mode="anchor",
            fontsize=9.5,
            zorder=3,
        )
    longest = max((len(x) for x in labels), default=0)
    lim = 1.25 + 0.055 * longest
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=11, loc="left")
    fig.tight_layout()
    return _png(fig, dpi)
