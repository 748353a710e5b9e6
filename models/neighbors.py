"""k nearest human-coded segments: what NVivo calls "autocode by existing pattern"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.base import BaseSuggester


class NeighborsSuggester(BaseSuggester):
    """Similarity-weighted vote of the ``n_neighbors`` most similar coded segments.

    The score of code ``c`` for a segment is ``sum_i w_i [y_ic = 1] / sum_i w_i r_ic`` over its
    neighbours ``i``, with ``w_i = exp(cos_i / temperature)`` and ``r_ic = rejection_weight`` when a
    coder rejected ``c`` for neighbour ``i`` (else 1): a rejection counts more against the code than
    a segment simply not coded with it. Only segments with at least one positive or rejected code are
    neighbours (uncoded segments say nothing).

    Parameters
    ----------
    codes : list of str
    exclusive : bool, default False
        Scores are renormalised to sum to 1 and only the argmax is suggested.
    n_neighbors : int, default 15
    temperature : float, default 0.05
    threshold : float, default 0.5
        Multi-label: suggest a code when at least this (weighted) share of neighbours has it.
        Exclusive: abstain when the best code's share is below ``min(threshold, 1 / n_codes)``.
    rejection_weight : float, default 2.0

    Side information ``groups``, ``texts`` and ``X_prev`` is accepted and ignored.
    """

    def __init__(
        self,
        codes: Sequence[str],
        exclusive: bool = False,
        n_neighbors: int = 15,
        temperature: float = 0.05,
        threshold: float = 0.5,
        rejection_weight: float = 2.0,
    ) -> None:
        self.codes = codes
        self.exclusive = exclusive
        self.n_neighbors = n_neighbors
        self.temperature = temperature
        self.threshold = threshold
        self.rejection_weight = rejection_weight

    def fit(
        self, X: npt.ArrayLike, Y: npt.ArrayLike, *, groups: Any = None, texts: Any = None, X_prev: Any = None
    ) -> NeighborsSuggester:
        """Keep the coded segments (rows of ``Y`` with any non-zero entry) as the neighbour pool."""
        Xa, Ya = self._check_fit_input(X, Y, groups=groups, texts=texts, X_prev=X_prev)
        keep = (Ya != 0).any(axis=1)
        self.X_ = np.ascontiguousarray(Xa[keep])
        self.Y_ = Ya[keep]
        self.classes_ = np.array(list(self.codes))
        self.n_features_in_ = Xa.shape[1]
        m = len(self.classes_)
        t = self.threshold if not self.exclusive else min(self.threshold, 1.0 / m)
        self.thresholds_ = np.full(m, t, dtype=np.float64)
        return self

    def predict_proba(
        self, X: npt.ArrayLike, *, texts: Any = None, X_prev: Any = None, batch_size: int = 2048
    ) -> npt.NDArray[np.float64]:
        """Neighbour vote shares, shape (n_segments, n_codes) (all zero with no coded segment)."""
        Xa = self._check_predict_input(X, texts=texts, X_prev=X_prev)
        n, m = Xa.shape[0], len(self.classes_)
        P = np.zeros((n, m))
        n_train = self.X_.shape[0]
        if n_train == 0:
            return P
        k = min(self.n_neighbors, n_train)
        pos = (self.Y_ == 1).astype(np.float64)
        den_w = np.where(self.Y_ == -1, self.rejection_weight, 1.0)
        for s in range(0, n, batch_size):
            S = Xa[s : s + batch_size] @ self.X_.T
            idx = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < n_train else np.argsort(-S, axis=1)
            sims = np.take_along_axis(S, idx, axis=1).astype(np.float64)
            w = np.exp((sims - sims.max(axis=1, keepdims=True)) / self.temperature)
            num = np.einsum("bk,bkm->bm", w, pos[idx])
            den = np.einsum("bk,bkm->bm", w, den_w[idx])
            P[s : s + batch_size] = num / den
        if self.exclusive:
            tot = P.sum(axis=1, keepdims=True)
            P = np.divide(P, tot, out=np.zeros_like(P), where=tot > 0)
        return P
