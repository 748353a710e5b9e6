"""Codes along a source: hidden-Markov decoding of an exclusive codebook's probabilities.

In a conversation one code tends to follow another (a client who argues for the status quo goes on
arguing for it for a few turns; a question is followed by an answer), which a classifier that reads
one segment (and the turn before it) cannot see. :func:`forward_backward` treats each source's
segments, in reading order, as a hidden-Markov chain: the classifier's probabilities divided by its
average probability are the emissions, a transition matrix counted from the coders' codings links
neighbours, and each segment gets its posterior marginal -- its probability given the whole source.

Whether that helps depends on the codebook (it does for a stance that persists, not for a speech act
that alternates), so :func:`choose_decoding` decides on the coders' own codings: out-of-fold
probabilities are decoded under a few settings and the one with the best Cohen's κ against the codes
wins, "off" when none beats plain argmax by :data:`MIN_GAIN`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

GRID: tuple[tuple[float, float], ...] = ((0.5, 1.0), (1.0, 1.0), (0.5, 1.5), (1.0, 1.5))
"""(transition strength, emission sharpness) settings tried by :func:`choose_decoding`."""

MIN_GAIN = 0.005
"""Decoding is used only when it raises out-of-fold κ by at least this much over plain argmax."""


def runs(groups: Sequence[Any] | npt.NDArray[Any]) -> list[npt.NDArray[np.intp]]:
    """Row indices of each group, in the order given (rows of one source in reading order).

    >>> [r.tolist() for r in runs(["a", "b", "a", "c"])]
    [[0, 2], [1], [3]]
    """
    g = np.asarray(groups, dtype=object)
    order: dict[Any, list[int]] = {}
    for i, key in enumerate(g.tolist()):
        order.setdefault(key, []).append(i)
    return [np.asarray(rows, dtype=np.intp) for rows in order.values()]


def transition_matrix(
    labels: npt.ArrayLike, groups: Sequence[Any] | npt.NDArray[Any], n_codes: int
) -> npt.NDArray[np.float64]:
    """Row-stochastic transitions between consecutive labelled rows of each group (add-one smoothed).

    >>> transition_matrix([0, 0, 0, 1, 1], ["a", "a", "a", "a", "b"], 2).round(2).tolist()
    [[0.6, 0.4], [0.5, 0.5]]
    """
    y = np.asarray(labels, dtype=np.intp)
    T = np.ones((n_codes, n_codes))
    for rows in runs(groups):
        if len(rows) > 1:
            np.add.at(T, (y[rows[:-1]], y[rows[1:]]), 1.0)
    return np.asarray(T / T.sum(axis=1, keepdims=True), dtype=np.float64)


def forward_backward(
    P: npt.ArrayLike,
    groups: Sequence[Any] | npt.NDArray[Any],
    T: npt.NDArray[np.float64],
    prior: npt.NDArray[np.float64],
    strength: float = 1.0,
    sharpness: float = 1.0,
) -> npt.NDArray[np.float64]:
    """Posterior marginals of each row given its whole group (rows of a group in reading order).

    ``P`` (n_rows, n_codes): the classifier's probabilities; emissions are ``P ** sharpness / prior``
    (``prior``: the classifier's average probability per code), transitions ``T ** strength``
    renormalised (0: independent rows, plain ``P`` reweighted). Returns an array of P's shape whose
    rows sum to 1.

    >>> T = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> P = np.array([[0.9, 0.1], [0.45, 0.55], [0.9, 0.1]])
    >>> forward_backward(P, ["s", "s", "s"], T, np.array([0.5, 0.5])).argmax(axis=1).tolist()
    [0, 0, 0]
    """
    Pa = np.clip(np.asarray(P, dtype=np.float64), 1e-9, 1.0)
    out = np.zeros_like(Pa)
    Ts = np.power(T, strength)
    Ts = Ts / Ts.sum(axis=1, keepdims=True)
    start = np.asarray(prior, dtype=np.float64)
    start = start / start.sum()
    for rows in runs(groups):
        E = Pa[rows] ** sharpness / start
        E = E / E.sum(axis=1, keepdims=True)
        n, k = E.shape
        fwd = np.empty((n, k))
        bwd = np.ones((n, k))
        fwd[0] = start * E[0]
        fwd[0] /= fwd[0].sum()
        for j in range(1, n):
            f = (fwd[j - 1] @ Ts) * E[j]
            fwd[j] = f / f.sum()
        for j in range(n - 2, -1, -1):
            b = Ts @ (E[j + 1] * bwd[j + 1])
            bwd[j] = b / b.sum()
        post = fwd * bwd
        out[rows] = post / post.sum(axis=1, keepdims=True)
    return out


def choose_decoding(
    P_oof: npt.ArrayLike,
    labels: npt.ArrayLike,
    groups: Sequence[Any] | npt.NDArray[Any],
    n_codes: int,
) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """The decoding setting with the best out-of-fold κ, or ``None`` (plain argmax).

    ``P_oof`` (n_rows, n_codes): out-of-fold probabilities of the labelled rows, ``labels`` their
    codes (column indices), ``groups`` their sources (rows of a source in reading order). Returns the
    chosen setting (``strength``, ``sharpness``, the transition matrix ``T`` and ``prior``) and every
    setting's κ (``"off"`` included), for the record.
    """
    from pipeline.evaluate import kappa_of_labels

    Pa = np.asarray(P_oof, dtype=np.float64)
    y = np.asarray(labels, dtype=np.intp)
    scores = {"off": float(kappa_of_labels(Pa.argmax(axis=1), y))}
    if len(np.unique(y)) < 2 or all(len(r) < 2 for r in runs(groups)):
        return None, scores
    T = transition_matrix(y, groups, n_codes)
    prior = np.clip(Pa.mean(axis=0), 1e-9, None)
    best: dict[str, Any] | None = None
    best_k = scores["off"] + MIN_GAIN - 1e-12  # a later setting must beat an earlier one outright
    for strength, sharpness in GRID:
        k = float(
            kappa_of_labels(forward_backward(Pa, groups, T, prior, strength, sharpness).argmax(axis=1), y)
        )
        scores[f"strength {strength:g} sharpness {sharpness:g}"] = k
        if k > best_k:
            best_k = k
            best = {"strength": strength, "sharpness": sharpness, "T": T, "prior": prior}
    return best, scores


def setting_label(chosen: dict[str, Any] | None) -> str:
    """``"off"`` or ``"strength S sharpness E"``: a key of :func:`choose_decoding`'s scores.

    >>> setting_label(None), setting_label({"strength": 1.0, "sharpness": 1.5})
    ('off', 'strength 1 sharpness 1.5')
    """
    return "off" if chosen is None else f"strength {chosen['strength']:g} sharpness {chosen['sharpness']:g}"


def describe(model: Any) -> str | None:
    """One line on what a fitted suggester decided about decoding along each source, ``None`` when it
    did not decide (not an exclusive linear suggester with ``sequence``, or no out-of-fold scores).

    >>> class M: sequence_ = None; sequence_scores_ = {"off": 0.5, "strength 1 sharpness 1": 0.49}
    >>> describe(M())
    'codes along each source: off (out-of-fold κ 0.500 scoring each segment alone; 0.490 at best decoded)'
    """
    scores = getattr(model, "sequence_scores_", None) or {}
    if not scores:
        return None
    chosen = getattr(model, "sequence_", None)
    off = scores["off"]
    if chosen is None:
        tried = [v for k, v in scores.items() if k != "off"]
        rest = f"; {max(tried):.3f} at best decoded" if tried else "; too few segments in a row to decode"
        return f"codes along each source: off (out-of-fold κ {off:.3f} scoring each segment alone{rest})"
    label = setting_label(chosen)
    return (
        f"codes along each source: decoded ({label}: out-of-fold κ {scores[label]:.3f} against {off:.3f} "
        "scoring each segment alone)"
    )


def record(model: Any) -> tuple[dict[str, str], dict[str, float]]:
    """MLflow params (``sequence.decoding``) and metrics (``sequence.oof_kappa.<setting>``) of a fitted
    suggester's decoding choice; empty when it made none."""
    scores = getattr(model, "sequence_scores_", None) or {}
    if not scores:
        return {}, {}
    params = {"sequence.decoding": setting_label(getattr(model, "sequence_", None))}
    metrics = {f"sequence.oof_kappa.{k}": float(v) for k, v in scores.items() if np.isfinite(v)}
    return params, metrics
