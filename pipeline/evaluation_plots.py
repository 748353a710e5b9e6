"""Pictures of a model's held-out evaluation (confusion matrix, reliability diagram), drawn with matplotlib when asked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    pass


def confusion_counts(D: npt.NDArray[np.integer], Y: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
    """Multi-label confusion: ``C[i, j]`` counts segments humans coded ``i`` that the model gave ``j``
    (``D``: the model's 0/1 suggestions, :func:`pipeline.evaluate.suggested_matrix`); the last
    row/column is "none" (no human code / no suggestion).

    Returns
    -------
    ndarray of shape (n_codes + 1, n_codes + 1)

    >>> confusion_counts(np.array([[1, 0], [0, 0]]), np.array([[1, 0], [0, 1]])).tolist()
    [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    """
    D = np.asarray(D) == 1
    truth = np.asarray(Y) == 1
    m = truth.shape[1]
    C = np.zeros((m + 1, m + 1), dtype=np.int64)
    for t, d in zip(truth, D, strict=True):
        rows = np.flatnonzero(t).tolist() or [m]
        cols = np.flatnonzero(d).tolist() or [m]
        for i in rows:
            for j in cols:
                C[i, j] += 1
    return C


def _confusion_png(path: Path, C: npt.NDArray[np.int64], codes: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [*codes, "(none)"]
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(C, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("model suggested")
    ax.set_ylabel("humans coded")
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            if C[i, j]:
                ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _reliability_png(
    path: Path, P: npt.NDArray[np.floating], truth: npt.NDArray[np.int8], n_bins: int = 10
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, y = np.asarray(P).ravel(), np.asarray(truth).ravel()
    b = np.minimum((p * n_bins).astype(int), n_bins - 1) if len(p) else np.zeros(0, dtype=int)
    cnt = np.bincount(b, minlength=n_bins)
    nz = cnt > 0
    mean_p = np.bincount(b, weights=p, minlength=n_bins)[nz] / cnt[nz]
    mean_y = np.bincount(b, weights=y, minlength=n_bins)[nz] / cnt[nz]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot(mean_p, mean_y, marker="o")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("share coded by humans")
    ax.set_title("Reliability (held-out sources)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
