"""Inter-coder agreement: coefficients on a reliability matrix, and unitizing of codings.

Everything here is a pure function on plain data. The core is a *reliability matrix* ``R``:

``R : ndarray of int of shape (n_units, n_coders)``
    ``R[u, j]`` is the category index (``0 .. n_categories - 1``) that coder ``j`` gave unit ``u``,
    or :data:`MISSING` (``-1``) when coder ``j`` did not code unit ``u``.

Every coefficient also accepts a stack ``R`` of shape ``(n_groups, n_units, n_coders)``, where the
groups share their units (typically one binary presence matrix per code, on the same segments): the
coefficient is then *pooled* across groups (the per-group contingency counts are summed before the
chance correction, as in De Vries et al. 2008, "Using pooled kappa to summarize interrater agreement
across many items") and the bootstrap resamples units, keeping a unit's groups together.

Rules, stated once
------------------
* A unit with fewer than two ratings carries no agreement information: it drops out of observed
  agreement (all coefficients) and out of Krippendorff's α altogether. Fleiss' κ and Gwet's AC1 use
  every unit with at least one rating for the category proportions (Gwet 2014, the form ``irrCAC``
  implements); on complete data this is exactly Fleiss (1971) as ``statsmodels`` computes it.
* Cohen's κ needs exactly two coders and uses the units both coded.
* Scott's π uses pooled category proportions over the units with at least two ratings; on complete
  data it equals Fleiss' κ (Fleiss 1971 generalises Scott's π to many coders).
* A coefficient that is ``0/0`` (every rating in one category: chance agreement is 1) is undefined.
  The reference packages disagree here (scikit-learn and statsmodels return NaN, ``krippendorff``
  raises), so qualflow never returns NaN: it raises :class:`AgreementError` naming the cause.
  Percent agreement, Brennan–Prediger and Gwet's AC1 stay defined in that case.
* ``estimate`` returns an :class:`Estimate` with a percentile bootstrap confidence interval:
  units are resampled with replacement (seeded ``numpy.random.Generator``), vectorised through
  per-unit sufficient statistics, so no Python loop runs over units.

Unitizing (what a unit is)
--------------------------
* :func:`segment_units` — qualflow's segments; presence (0/1) of each code per coder and segment.
* :func:`char_units` / :func:`char_agreement` — every character is a unit (NVivo, QualCoder).
* :func:`overlap_agreement` — MAXQDA's segment matching by span overlap, with κ after Brennan &
  Prediger.

Examples
--------
Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four coders, twelve
units, nominal values 1-5 (here 0-4), with missing data:

>>> import numpy as np
>>> m = -1
>>> R = np.array([
...     [0, 0, m, 0], [1, 1, 2, 1], [2, 2, 2, 2], [2, 2, 2, 2], [1, 1, 1, 1], [0, 1, 2, 3],
...     [3, 3, 3, 3], [0, 0, 1, 0], [1, 1, 1, 1], [m, 4, 4, 4], [m, m, 0, 0], [m, 2, m, m]])
>>> round(krippendorff_alpha(R), 3)
0.743

One module, one concern: agreement coefficients share one set of sufficient statistics and one
bootstrap; the rules stated once above hold for all of them, which is why they live together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from pipeline.domain import Coding, Segment
from pipeline.errors import InputError, QualflowError

MISSING = -1
"""The value marking "this coder did not code this unit" in a reliability matrix."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class AgreementError(QualflowError):
    """Agreement cannot be computed on these data (too few coders, no shared units, 0/0)."""


@dataclass(frozen=True)
class Estimate:
    """One agreement coefficient with its bootstrap confidence interval.

    Attributes
    ----------
    coefficient : str
        Key in :data:`COEFFICIENTS` (``"cohen"``, ``"krippendorff"``...).
    value : float
        The point estimate (never NaN).
    ci_low, ci_high : float or None
        Percentile bootstrap interval; ``None`` when ``n_boot == 0``.
    n_units : int
        Units the coefficient rests on (units with at least two ratings; for Cohen's κ, units both
        coders coded).
    n_coders : int
        Coders who rated at least one of those units.
    ci : float
        Confidence level of the interval.
    n_boot : int
        Bootstrap resamples drawn.
    note : str
        Anything the reader should know (e.g. resamples where the coefficient was undefined).
    """

    coefficient: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n_units: int
    n_coders: int
    ci: float = 0.95
    n_boot: int = 0
    note: str = ""


# ----------------------------------------------------------------------------------------------
# Per-unit sufficient statistics. Each coefficient is f(sum over units of per-unit statistics),
# so the point estimate is f(S.sum(0)) and a bootstrap replicate is f(w @ S) for resampling
# weights w. ``_value`` functions are vectorised over leading axes and return NaN where 0/0.
# ----------------------------------------------------------------------------------------------


def _counts(R: IntArray, k: int) -> FloatArray:
    """Category counts per unit: ``(n_units, n_coders)`` -> ``(n_units, k)``; no loop over units.

    Few coders and categories: one vectorised comparison per (coder, category) column; otherwise a
    single bincount over flat (unit, category) indices.
    """
    n, c = R.shape
    if k * c <= 256:
        Rt = np.ascontiguousarray(R.T)  # (n_coders, n_units): contiguous rows for the passes below
        Nt = np.zeros((k, n), dtype=np.float64)
        for j in range(c):
            for cat in range(k):
                Nt[cat] += Rt[j] == cat
        return Nt.T
    valid = R >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], R.shape)[valid]
    flat = rows * k + R[valid]
    return np.bincount(flat, minlength=n * k).reshape(n, k).astype(np.float64)


def _rowsum(A: npt.NDArray[Any]) -> FloatArray:
    """Sum over the (short) last axis, column by column: far faster than ``A.sum(axis=1)`` here."""
    if A.shape[1] > 64:
        return np.asarray(A.sum(axis=1), dtype=np.float64)
    out = np.zeros(A.shape[0], dtype=np.float64)
    for j in range(A.shape[1]):
        out += A[:, j]
    return out


def _pair_agreement(N: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per unit: ratings ``r``, share of agreeing ordered pairs ``a`` and indicator ``r >= 2``."""
    r = _rowsum(N)
    two = r >= 2
    denom = np.where(two, r * (r - 1), 1.0)
    a = np.where(two, _rowsum(N * (N - 1)) / denom, 0.0)
    return r, a, two.astype(np.float64)


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def _kappa_form(pa: FloatArray, pe: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isclose(pe, 1.0, rtol=0, atol=1e-12), np.nan, (pa - pe) / (1 - pe))


def _stats_percent(N: FloatArray, R: IntArray, k: int) -> tuple[FloatArray, BoolArray]:
    _, a, two = _pair_agreement(N)
    return np.stack([a, two], axis=1), two.astype(bool)


def _value_percent(T: FloatArray, k: int) -> FloatArray:
    return _safe_div(T[..., 0], T[..., 1])


def _stats_fleiss(N: FloatArray, R: IntArray, k: int) -> tuple[FloatArray, BoolArray]:
    r, a, two = _pair_agreement(N)
    rated = r >= 1
    p = N / np.where(rated, r, 1.0)[:, None]
    return np.column_stack([a, two, rated.astype(np.float64), p]), rated


def _pi_fleiss(T: FloatArray) -> FloatArray:
    return T[..., 3:] / T[..., 2:3]


def _value_fleiss(T: FloatArray, k: int) -> FloatArray:
    pa = _safe_div(T[..., 0], T[..., 1])
    pi = _pi_fleiss(T)
    return _kappa_form(pa, (pi**2).sum(axis=-1))


def _value_ac1(T: FloatArray, k: int) -> FloatArray:
    pa = _safe_div(T[..., 0], T[..., 1])
    pi = _pi_fleiss(T)
    pe = (pi * (1 - pi)).sum(axis=-1) / (k - 1)
    return _kappa_form(pa, pe)


def _stats_scott(N: FloatArray, R: IntArray, k: int) -> tuple[FloatArray, BoolArray]:
    _, a, two = _pair_agreement(N)
    return np.column_stack([a, two, N * two[:, None]]), two.astype(bool)


def _value_scott(T: FloatArray, k: int) -> FloatArray:
    pa = _safe_div(T[..., 0], T[..., 1])
    tot = T[..., 2:]
    p = tot / tot.sum(axis=-1, keepdims=True)
    return _kappa_form(pa, (p**2).sum(axis=-1))


def _value_bp(T: FloatArray, k: int) -> FloatArray:
    pa = _safe_div(T[..., 0], T[..., 1])
    return _kappa_form(pa, np.full_like(pa, 1.0 / k))


def _stats_alpha(N: FloatArray, R: IntArray, k: int) -> tuple[FloatArray, BoolArray]:
    m = _rowsum(N)
    pairable = m >= 2
    d = np.where(pairable, _rowsum(N * (N - 1)) / np.where(pairable, m - 1, 1.0), 0.0)
    return np.column_stack([d, N * pairable[:, None]]), pairable


def _value_alpha(T: FloatArray, k: int) -> FloatArray:
    n_c = T[..., 1:]
    n = n_c.sum(axis=-1)
    observed_disagreement = n - T[..., 0]
    expected = n**2 - (n_c**2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * observed_disagreement / expected, np.nan)


def _stats_cohen(N: FloatArray, R: IntArray, k: int) -> tuple[FloatArray, BoolArray]:
    both = (R[:, 0] >= 0) & (R[:, 1] >= 0)
    eye = np.eye(k)
    a = np.where(both, R[:, 0], 0)
    b = np.where(both, R[:, 1], 0)
    w = both[:, None].astype(np.float64)
    agree = (both & (R[:, 0] == R[:, 1])).astype(np.float64)
    return np.column_stack([agree, eye[a] * w, eye[b] * w]), both


def _value_cohen(T: FloatArray, k: int) -> FloatArray:
    pa_counts = T[..., 1 : 1 + k]
    pb_counts = T[..., 1 + k :]
    n = pa_counts.sum(axis=-1)
    po = _safe_div(T[..., 0], n)
    pe = _safe_div((pa_counts * pb_counts).sum(axis=-1), n**2)
    return _kappa_form(po, pe)


@dataclass(frozen=True)
class _Coefficient:
    label: str
    stats: Callable[[FloatArray, IntArray, int], tuple[FloatArray, BoolArray]]
    value: Callable[[FloatArray, int], FloatArray]
    two_coders: bool = False
    needs_two_categories: bool = False
    chance_corrected: bool = True


COEFFICIENTS: dict[str, _Coefficient] = {
    "percent": _Coefficient("percent agreement", _stats_percent, _value_percent, chance_corrected=False),
    "cohen": _Coefficient("Cohen's kappa", _stats_cohen, _value_cohen, two_coders=True),
    "fleiss": _Coefficient("Fleiss' kappa", _stats_fleiss, _value_fleiss),
    "scott": _Coefficient("Scott's pi", _stats_scott, _value_scott),
    "krippendorff": _Coefficient("Krippendorff's alpha", _stats_alpha, _value_alpha),
    "brennan_prediger": _Coefficient(
        "Brennan-Prediger kappa", _stats_percent, _value_bp, needs_two_categories=True
    ),
    "ac1": _Coefficient("Gwet's AC1", _stats_fleiss, _value_ac1, needs_two_categories=True),
}
"""Coefficient name -> implementation: the one registry ``estimate`` looks names up in."""


def coefficient_label(name: str) -> str:
    """Human-readable name of a coefficient (``"cohen"`` -> ``"Cohen's kappa"``)."""
    return _lookup(name).label


def _lookup(name: str) -> _Coefficient:
    try:
        return COEFFICIENTS[name]
    except KeyError:
        raise InputError(
            f"Unknown agreement coefficient {name!r}; choose one of {sorted(COEFFICIENTS)}"
        ) from None


# ----------------------------------------------------------------------------------------------
# Validation at the public boundary
# ----------------------------------------------------------------------------------------------


def _names(coders: Sequence[str] | None, n: int) -> list[str]:
    if coders is None:
        return [f"coder {j}" for j in range(n)]
    if len(coders) != n:
        raise InputError(f"{len(coders)} coder names given for a matrix with {n} coder columns")
    return list(coders)


def _quote(names: Sequence[str]) -> str:
    return ", ".join(repr(x) for x in names)


def _check_matrix(R: npt.ArrayLike, n_categories: int | None) -> tuple[IntArray, int]:
    arr = np.asarray(R)
    if arr.ndim not in (2, 3):
        raise InputError(
            f"reliability matrix must have shape (n_units, n_coders) or (n_groups, n_units, n_coders); "
            f"got {arr.ndim} dimension(s)"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"reliability matrix must hold integer category indices (-1 = missing); got {arr.dtype}"
        )
    out = arr if arr.size else arr.astype(np.int64)  # integer dtypes are kept (int8 presence saves memory)
    if out.size and out.min() < MISSING:
        raise InputError(f"reliability matrix holds {out.min()}; use 0..n_categories-1, and -1 for missing")
    observed = int(out.max()) + 1 if out.size else 0
    if n_categories is None:
        k = max(observed, 1)
    else:
        if n_categories < observed:
            raise InputError(
                f"n_categories={n_categories} but the matrix holds category index {observed - 1}"
            )
        k = int(n_categories)
    return out, k


# ----------------------------------------------------------------------------------------------
# Point estimates and bootstrap
# ----------------------------------------------------------------------------------------------


@dataclass
class _Matrix:
    """A validated reliability matrix, with what every coefficient needs computed once."""

    R3: IntArray  # (n_groups, n_units, n_coders)
    k: int
    names: list[str]
    rated: BoolArray  # (n_units, n_coders): rated in any group
    n_ratings: FloatArray  # (n_units,)
    _counts: FloatArray | None = None

    @property
    def counts(self) -> FloatArray:
        """Category counts per (group, unit): shape (n_groups * n_units, k)."""
        if self._counts is None:
            g, n, c = self.R3.shape
            self._counts = _counts(self.R3.reshape(g * n, c), self.k)
        return self._counts


def _matrix(R: npt.ArrayLike, n_categories: int | None, coders: Sequence[str] | None) -> _Matrix:
    arr, k = _check_matrix(R, n_categories)
    R3 = arr[None] if arr.ndim == 2 else arr
    names = _names(coders, R3.shape[2])
    if R3.shape[2] < 2:
        who = f" ({_quote(names)})" if names else ""
        raise AgreementError(f"only one coder{who} in the data; agreement needs at least two")
    rated = R3.max(axis=0) >= 0
    active = np.array([bool(rated[:, j].any()) for j in range(rated.shape[1])])  # per coder column
    if active.sum() == 0:
        raise AgreementError(f"no coder coded any of these units (all values missing for {_quote(names)})")
    if active.sum() == 1:
        who = names[int(np.flatnonzero(active)[0])]
        raise AgreementError(f"only one coder ({who!r}) coded these units; agreement needs at least two")
    n_ratings = _rowsum(rated)
    if not (n_ratings >= 2).any():
        raise AgreementError(
            f"coders {_quote([x for x, a in zip(names, active, strict=True) if a])} share no units: "
            "no unit was coded by two of them"
        )
    return _Matrix(R3, k, names, rated, n_ratings)


def _prepare(name: str, m: _Matrix) -> tuple[_Coefficient, _Stats, int, int]:
    """Per-unit statistics of the units a coefficient uses, with n_units and n_coders."""
    spec, n_units, n_coders = _check(name, m)
    g, n, c = m.R3.shape
    S, used = spec.stats(m.counts, m.R3.reshape(g * n, c), m.k)
    if g > 1:  # pooled: sum each unit's statistics over groups
        S = S.reshape(g, n, -1).sum(axis=0)
        used = used.reshape(g, n).max(axis=0)
    return spec, _Stats(S, used), n_units, n_coders


def _check(name: str, m: _Matrix) -> tuple[_Coefficient, int, int]:
    """The coefficient, if it is defined for this matrix's coders and categories, with n_units and
    n_coders; AgreementError otherwise."""
    spec = _lookup(name)
    g, n, c = m.R3.shape
    if spec.two_coders and c != 2:
        raise AgreementError(
            f"{spec.label} needs exactly two coders; got {c} ({_quote(m.names)}): "
            "use 'fleiss' or 'krippendorff', or pairwise_cohen()"
        )
    if spec.needs_two_categories and m.k < 2:
        raise AgreementError(
            f"{spec.label} needs at least two possible categories; pass n_categories (e.g. 2 for presence)"
        )
    unit_ok = (m.rated[:, 0] & m.rated[:, 1]) if spec.two_coders else m.n_ratings >= 2
    n_units = int(unit_ok.sum())
    if n_units == 0:
        raise AgreementError(f"coders {_quote(m.names)} share no units: no unit was coded by both")
    n_coders = sum(bool((m.rated[:, j] & unit_ok).any()) for j in range(c))
    return spec, n_units, n_coders


@dataclass(frozen=True)
class _Stats:
    """Per-unit statistics (n_units, m); rows of unused units are all zero."""

    S: FloatArray
    used: BoolArray

    def total(self) -> FloatArray:
        return np.ones(self.S.shape[0]) @ self.S  # BLAS: much faster than S.sum(axis=0)

    def rows(self) -> FloatArray:
        return self.S[self.used]


def _undefined_message(spec: _Coefficient, T: FloatArray, k: int) -> str:
    return (
        f"{spec.label} is undefined here: every rating falls in one category, so chance agreement is 1 "
        f"and the coefficient is 0/0 (observed agreement {_value_percent_like(T, spec, k)}); "
        "report percent agreement or Gwet's AC1 instead"
    )


def _value_percent_like(T: FloatArray, spec: _Coefficient, k: int) -> str:
    """Observed agreement from summed statistics ``T`` of shape (m,)."""
    if spec.stats is _stats_cohen:
        po = T[0] / max(T[1 : 1 + k].sum(), 1.0)
    else:
        po = T[0] / max(T[1], 1.0)
    return f"{100 * po:.0f}%"


def _point(
    name: str, R: npt.ArrayLike, n_categories: int | None, coders: Sequence[str] | None = None
) -> float:
    _lookup(name)
    m = _matrix(R, n_categories, coders)
    spec, st, _, _ = _prepare(name, m)
    value = float(spec.value(st.total(), m.k))
    if not np.isfinite(value):
        raise AgreementError(_undefined_message(spec, st.total(), m.k))
    return value


def bootstrap(
    name: str,
    R: npt.ArrayLike,
    *,
    n_categories: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> FloatArray:
    """Bootstrap replicates of a coefficient, resampling units with replacement.

    Parameters
    ----------
    name : str
        Key in :data:`COEFFICIENTS`.
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories (default: largest index + 1).
    n_boot : int
        Number of resamples.
    seed : int
        Seed of the ``numpy.random.Generator``.

    Returns
    -------
    ndarray of shape (n_boot,)
        Replicates; NaN where a resample makes the coefficient 0/0 (e.g. a single category).

    Notes
    -----
    Only the units the coefficient uses are resampled. Per-unit sufficient statistics ``S`` of shape
    ``(n_units, m)`` are computed once; each replicate is ``f(w @ S)`` with multinomial resampling
    counts ``w`` drawn as bincounts of ``Generator.integers`` in chunks, so nothing loops over units.
    """
    _lookup(name)
    m = _matrix(R, n_categories, None)
    spec, st, _, _ = _prepare(name, m)
    return _bootstrap(spec, st.rows(), m.k, n_boot, seed)


def _bootstrap(spec: _Coefficient, S: FloatArray, k: int, n_boot: int, seed: int) -> FloatArray:
    job = _Job("", spec, k, 0, 0, S.shape[0], S=S)  # a job without patterns keeps its S
    _run_bootstrap([job], n_boot, seed)
    assert job.reps is not None
    return job.reps


def _resamples(n: int, n_boot: int, seed: int) -> Iterator[tuple[int, FloatArray]]:
    """Multinomial resampling counts of ``n`` units, ``(start, w)`` with ``w`` of shape (b, n) for
    resamples ``start .. start + b``: the same draws for the same ``n``, ``n_boot`` and ``seed``."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):  # loops over chunks of resamples, never over units
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b) * n)[:, None]
        yield start, np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def _n_chunks(n: int, n_boot: int) -> int:
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    return -(-n_boot // chunk)


def estimate(
    name: str,
    R: npt.ArrayLike,
    *,
    n_categories: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    coders: Sequence[str] | None = None,
) -> Estimate:
    """A coefficient with its percentile bootstrap confidence interval and the units it rests on.

    Parameters
    ----------
    name : str
        One of :data:`COEFFICIENTS`: ``percent``, ``cohen``, ``fleiss``, ``scott``, ``krippendorff``,
        ``brennan_prediger``, ``ac1``.
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing); a 3-D stack is pooled across groups.
    n_categories : int, optional
        Number of possible categories (default: largest index + 1). Matters for Brennan–Prediger
        and AC1; pass 2 for presence/absence data.
    n_boot : int
        Bootstrap resamples (0: no interval).
    seed : int
        Seed of the ``numpy.random.Generator``.
    ci : float
        Confidence level, in (0, 1).
    coders : sequence of str, optional
        Coder names (one per column) used in error messages.

    Returns
    -------
    Estimate

    Raises
    ------
    InputError
        Unknown coefficient name, malformed matrix, bad ``ci``/``n_boot``.
    AgreementError
        Fewer than two coders, no shared unit, or a coefficient that is 0/0 on these data.

    Examples
    --------
    >>> est = estimate("cohen", [[0, 0], [1, 1], [0, 1], [1, 1]], n_boot=200, seed=1)
    >>> est.value, est.n_units, est.n_coders
    (0.5, 4, 2)
    >>> est.ci_low <= est.value <= est.ci_high
    True
    >>> estimate("kappa", [[0, 0]])
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: Unknown agreement coefficient 'kappa'; choose one of ['ac1', 'brennan_prediger', 'cohen', 'fleiss', 'krippendorff', 'percent', 'scott']
    """
    _lookup(name)
    _check_boot(n_boot, ci)
    return _estimate(name, _matrix(R, n_categories, coders), n_boot, seed, ci)


def _check_boot(n_boot: int, ci: float) -> None:
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1); got {ci}")
    if n_boot < 0:
        raise InputError(f"n_boot must be >= 0; got {n_boot}")


def _estimate(name: str, m: _Matrix, n_boot: int, seed: int, ci: float) -> Estimate:
    spec, st, n_units, n_coders = _prepare(name, m)
    total = st.total()
    value = float(spec.value(total, m.k))
    if not np.isfinite(value):
        raise AgreementError(_undefined_message(spec, total, m.k))
    if n_boot == 0:
        return Estimate(name, value, None, None, n_units, n_coders, ci, 0)
    reps = _bootstrap(spec, st.rows(), m.k, n_boot, seed)
    return _finish(name, value, n_units, n_coders, ci, reps)


def _finish(name: str, value: float, n_units: int, n_coders: int, ci: float, reps: FloatArray) -> Estimate:
    """The estimate with its percentile interval from bootstrap replicates ``reps``."""
    n_boot = reps.size
    finite = reps[np.isfinite(reps)]
    note = ""
    if finite.size < reps.size:
        note = f"{reps.size - finite.size} of {reps.size} resamples were undefined (0/0) and left out"
    if finite.size == 0:
        return Estimate(name, value, None, None, n_units, n_coders, ci, n_boot, note)
    low, high = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2])
    return Estimate(name, value, float(low), float(high), n_units, n_coders, ci, n_boot, note)


def estimates(
    names: Sequence[str],
    R: npt.ArrayLike,
    *,
    n_categories: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    coders: Sequence[str] | None = None,
) -> tuple[dict[str, Estimate], dict[str, str]]:
    """Several coefficients on one matrix, validating it and counting categories once.

    Parameters
    ----------
    names : sequence of str
        Keys of :data:`COEFFICIENTS`.
    R, n_categories, n_boot, seed, ci, coders
        As in :func:`estimate`.

    Returns
    -------
    defined : dict
        ``{name: Estimate}`` for the coefficients defined on these data.
    undefined : dict
        ``{name: reason}`` for the others (e.g. 0/0 when every rating falls in one category).

    Raises
    ------
    InputError, AgreementError
        As :func:`estimate`, for problems of the whole matrix (too few coders, no shared unit).

    Examples
    --------
    >>> ok, why = estimates(["percent", "cohen"], [[0, 0], [0, 0]], n_categories=2, n_boot=0)
    >>> ok["percent"].value, sorted(why)
    (1.0, ['cohen'])
    """
    for name in names:
        _lookup(name)
    _check_boot(n_boot, ci)
    m = _matrix(R, n_categories, coders)
    defined: dict[str, Estimate] = {}
    undefined: dict[str, str] = {}
    for name in names:
        try:
            defined[name] = _estimate(name, m, n_boot, seed, ci)
        except AgreementError as err:
            undefined[name] = str(err)
    return defined, undefined


# ----------------------------------------------------------------------------------------------
# Many groups at once: the per-code panel of a report
# ----------------------------------------------------------------------------------------------

PROGRESS_MIN_GROUPS = 50
"""Stacks of at least this many groups get progress bars (when ``progress=True``)."""

_EXACT_BITS = 20
_UNIT_STATS_BYTES = 256 * 2**20
"""Unit-by-unit statistics the shared bootstrap keeps; beyond, they are rebuilt from patterns per chunk."""
_PATTERN_COUNTS_BYTES = 256 * 2**20
"""Resampling counts per pattern (``n_boot`` x patterns per group) the shared bootstrap keeps for groups
whose pattern sums are not exact; beyond, such groups' sums go unit by unit. Few coders on presence
data have few patterns (three coders at most 27: 216 KB per group at 1,000 resamples); many coders
with noisy codings can have thousands."""
_MAX_OFF_SHARE = 0.5
"""Share of a group's used units off its most common pattern beyond which inexact sums go unit by unit."""


@dataclass(frozen=True)
class _Patterns:
    """The distinct rows of one group's reliability matrix: ``rows[inverse] == R``."""

    rows: IntArray  # (n_patterns, n_coders)
    inverse: IntArray  # (n_units,)
    counts: IntArray  # (n_patterns,)
    dominant: int  # the most frequent pattern


def _patterns(R: npt.NDArray[Any], k: int) -> _Patterns | None:
    """Distinct rows of ``R`` (n_units, n_coders), or ``None`` when their codes would not fit int64.

    Presence data has few: with two coders at most nine rows (each coder -1, 0 or 1), and most
    units of a code share one (nobody applied the code there).
    """
    n, c = R.shape
    base = k + 1
    if c * np.log2(base) > 60:
        return None
    key = np.zeros(n, dtype=np.int64)
    for j in range(c):  # loops over coders, not units
        key *= base
        key += R[:, j].astype(np.int64) + 1
    size = base**c
    if size <= 1 << 16:
        cnt = np.bincount(key, minlength=size)
        present = np.flatnonzero(cnt)
        lookup = np.zeros(size, dtype=np.int64)
        lookup[present] = np.arange(present.size)
        inverse, counts = lookup[key], cnt[present]
    else:
        present, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    rows = np.empty((present.size, c), dtype=np.int64)
    code = present.copy()
    for j in range(c - 1, -1, -1):
        rows[:, j] = code % base - 1
        code //= base
    return _Patterns(rows, inverse.astype(np.int64), counts.astype(np.int64), int(np.argmax(counts)))


def _exact(S: FloatArray, bound: float) -> bool:
    """Whether every sum of the values of ``S`` with non-negative integer weights summing to at most
    ``bound`` is exact in float64, in any order: all are multiples of ``2**-20`` and no partial sum
    reaches ``2**32``. Then grouping units by pattern gives the very bits of the unit-by-unit sum.
    """
    if S.size == 0:
        return True
    scaled = S * 2.0**_EXACT_BITS  # exact: a power of two
    if not bool(np.all(np.isfinite(scaled))) or not bool(np.all(scaled == np.round(scaled))):
        return False
    return bound * float(np.abs(S).max()) * 2.0**_EXACT_BITS < 2.0**52


@dataclass
class _PatternCounts:
    """Resampling counts per row pattern of one group, for the units some coefficients use.

    ``positions`` lists the used units (in used order) not of the ``dominant`` pattern, grouped by
    pattern (runs beginning at ``starts``, of patterns ``run_patterns``); ``C`` collects, for every
    resample, how many draws fell on each pattern. Coefficients of a group that use the same units
    share one.
    """

    n_used: int
    n_patterns: int
    dominant: int
    positions: IntArray
    starts: IntArray
    run_patterns: IntArray
    C: FloatArray | None = None

    def add(self, start: int, w: FloatArray, n_boot: int) -> None:
        """Count the draws per pattern of resamples ``start .. start + len(w)``."""
        if self.C is None:
            self.C = np.zeros((n_boot, self.n_patterns), dtype=np.float64)
        C = self.C[start : start + w.shape[0]]
        if self.positions.size:
            C[:, self.run_patterns] = np.add.reduceat(w[:, self.positions], self.starts, axis=1)
        C[:, self.dominant] = self.n_used - C.sum(axis=1)  # every resample draws n_used units


@dataclass
class _Job:
    """One coefficient of one group (or of the pooled stack) waiting for its bootstrap.

    Either ``S`` holds the per-unit statistics of the used units, or ``S_pat`` per row pattern with
    ``pattern_of`` each used unit's pattern (each replicate is ``f(w @ S)``, as :func:`bootstrap`
    computes it), or ``S_pat`` with ``counts``, the resampling counts per pattern (each replicate is
    ``f(C @ S_pat)``: the same bits where :func:`_exact` holds, else equal up to rounding, since the
    sum goes by pattern instead of unit by unit).
    """

    name: str
    spec: _Coefficient
    k: int
    n_units: int
    n_coders: int
    n_used: int
    value: float = 0.0
    S: FloatArray | None = None
    S_pat: FloatArray | None = None
    counts: _PatternCounts | None = None
    pattern_of: npt.NDArray[np.integer[Any]] | None = None
    order: Literal["C", "F"] = "C"
    reps: FloatArray | None = None

    def unit_stats(self) -> FloatArray:
        """Per-unit statistics of the used units: ``S``, or rebuilt from the patterns (the same rows)."""
        if self.S is not None:
            return self.S
        assert self.S_pat is not None and self.pattern_of is not None
        return np.asarray(self.S_pat[self.pattern_of], order=self.order)


def _pattern_stats(name: str, m: _Matrix, pats: _Patterns) -> tuple[FloatArray, BoolArray]:
    """Statistics of one coefficient per row pattern of one group (rows as :func:`_prepare`'s)."""
    _check(name, m)
    return COEFFICIENTS[name].stats(_counts(pats.rows, m.k), pats.rows, m.k)


def _pattern_job(
    name: str,
    m: _Matrix,
    pats: _Patterns,
    S_pat: FloatArray,
    used_pat: BoolArray,
    shared: dict[bytes, _PatternCounts],
    budget: list[int],
    n_boot: int,
    counts_budget: list[int],
) -> _Job:
    """The job of one coefficient on one group from its statistics per pattern. ``shared`` holds the
    group's counts by used patterns.

    Sums go per pattern, weighted by the number of units (or of resampling draws) of each pattern.
    Where every such sum is exact (:func:`_exact`: e.g. always with two coders) they are the very
    bits of the unit-by-unit sums; elsewhere (three or more coders: statistics such as 1/3) they
    equal them up to floating-point rounding, in another order. A group whose sums are not exact goes
    unit by unit instead (:func:`_unit_job`) when counting the draws per pattern would cost more than
    the unit-by-unit products (more than half its used units off its most common pattern: many coders
    with noisy codings), or when its counts (``n_boot`` x patterns floats) would exceed what is left
    of ``counts_budget[0]`` bytes. Raises AgreementError as :func:`_estimate` does."""
    spec, n_units, n_coders = _check(name, m)
    key = used_pat.tobytes()
    counts = shared.get(key)
    new = counts is None
    if counts is None:
        counts = _pattern_counts(pats, used_pat)
        size = 8 * n_boot * counts.n_patterns
        costly = size > counts_budget[0] or counts.positions.size > _MAX_OFF_SHARE * counts.n_used
        if costly and not _exact(S_pat, float(pats.inverse.size)):
            return _unit_job(name, m, pats, S_pat, used_pat, budget)
    total = pats.counts.astype(np.float64) @ S_pat
    value = float(spec.value(total, m.k))
    if not np.isfinite(value):
        raise AgreementError(_undefined_message(spec, total, m.k))
    if new:
        counts_budget[0] -= 8 * n_boot * counts.n_patterns
        shared[key] = counts
    return _Job(name, spec, m.k, n_units, n_coders, counts.n_used, value, S_pat=S_pat, counts=counts)


def _pattern_counts(pats: _Patterns, used_pat: BoolArray) -> _PatternCounts:
    """Where the used units off their most common pattern lie, grouped by pattern (no counts yet)."""
    n_patterns = pats.rows.shape[0]
    pat_used = pats.inverse[used_pat[pats.inverse]]  # pattern of each used unit, in used order
    dominant = int(np.argmax(np.bincount(pat_used, minlength=n_patterns)))
    positions = np.flatnonzero(pat_used != dominant)
    positions = positions[np.argsort(pat_used[positions], kind="stable")]
    run_of = pat_used[positions]
    starts = np.flatnonzero(np.r_[True, run_of[1:] != run_of[:-1]]) if run_of.size else run_of
    return _PatternCounts(int(pat_used.size), n_patterns, dominant, positions, starts, run_of[starts])


def _unit_job(
    name: str, m: _Matrix, pats: _Patterns, S_pat: FloatArray, used_pat: BoolArray, budget: list[int]
) -> _Job:
    """A job whose sums go unit by unit, exactly as :func:`_estimate` computes them (the statistics of
    :func:`_prepare`, in its memory layout). It keeps them while ``budget[0]`` bytes allow; beyond,
    it keeps each used unit's pattern and rebuilds the same rows, in the same layout, per chunk."""
    job = _direct_job(name, m)
    assert job.S is not None
    if job.S.nbytes <= budget[0]:
        budget[0] -= job.S.nbytes
        return job
    pattern_of = pats.inverse[used_pat[pats.inverse]]
    job.pattern_of = pattern_of.astype(np.int16) if S_pat.shape[0] < 2**15 else pattern_of
    job.S_pat = S_pat
    job.order = "F" if job.S.flags.f_contiguous and not job.S.flags.c_contiguous else "C"
    job.S = None
    return job


def _direct_job(name: str, m: _Matrix, pooled: _Stats | None = None) -> _Job:
    """The job of one coefficient from per-unit statistics (computed here unless ``pooled``)."""
    if pooled is None:
        spec, st, n_units, n_coders = _prepare(name, m)
    else:
        spec, n_units, n_coders = _check(name, m)
        st = pooled
    total = st.total()
    value = float(spec.value(total, m.k))
    if not np.isfinite(value):
        raise AgreementError(_undefined_message(spec, total, m.k))
    S = st.rows()
    return _Job(name, spec, m.k, n_units, n_coders, S.shape[0], value, S=S)


def _pooled_stats(parts: Sequence[tuple[_Patterns, FloatArray, BoolArray]], n: int) -> _Stats | None:
    """Per-unit statistics of a stack pooled over groups from each group's statistics per pattern
    (``(patterns, S_pat, used_pat)``): the dominant patterns' rows once, plus each group's other
    units; ``None`` without groups. Where every sum is exact (:func:`_exact`, e.g. two coders) the
    bits equal :func:`_prepare`'s; elsewhere they equal them up to rounding (another order)."""
    if not parts:
        return None
    base = np.zeros(parts[0][1].shape[1], dtype=np.float64)
    for pats, S_pat, _ in parts:
        base += S_pat[pats.dominant]
    # column-major, as _prepare's pooled statistics come: BLAS then sums each column as a dot product,
    # far closer to the exact sum than the running sum it keeps over a row-major matrix
    S = np.empty((n, base.size), dtype=np.float64, order="F")
    S[:] = base
    used = np.zeros(n, dtype=bool)
    for pats, S_pat, used_pat in parts:  # loops over groups, touching only the units off the dominant row
        off = np.flatnonzero(pats.inverse != pats.dominant)
        S[off] += S_pat[pats.inverse[off]] - S_pat[pats.dominant]
        if used_pat.all():
            used[:] = True
        elif used_pat.any() and not used.all():
            used |= used_pat[pats.inverse]
    return _Stats(S, used)


def _track(items: Iterable[Any], total: int, description: str, show: bool) -> Iterable[Any]:
    """``items``, with a progress bar on stderr when ``show`` (the bar goes when done)."""
    if not show:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, total=total, description=description, console=Console(stderr=True), transient=True)


def _run_bootstrap(jobs: Sequence[_Job], n_boot: int, seed: int, progress: bool = False) -> None:
    """Fill every job's ``reps``: one stream of resampling counts per number of used units, shared by
    every job on that many units (each would have drawn the very same counts from ``seed``)."""
    by_n: dict[int, tuple[list[_Job], list[_PatternCounts]]] = {}
    for job in jobs:
        direct, shared = by_n.setdefault(job.n_used, ([], []))
        if job.counts is None:
            job.reps = np.empty(n_boot, dtype=np.float64)
            direct.append(job)
        elif all(c is not job.counts for c in shared):
            shared.append(job.counts)
    steps = ((n, start, w) for n in by_n for start, w in _resamples(n, n_boot, seed))  # chunk by chunk
    total = sum(_n_chunks(n, n_boot) for n in by_n)
    for n, start, w in _track(steps, total, "agreement: bootstrap", progress):
        direct, shared = by_n[n]
        for job in direct:
            assert job.reps is not None
            job.reps[start : start + w.shape[0]] = job.spec.value(w @ job.unit_stats(), job.k)
        for counts in shared:
            counts.add(start, w, n_boot)
    for job in jobs:
        if job.counts is not None:
            assert job.counts.C is not None and job.S_pat is not None
            job.reps = job.spec.value(job.counts.C @ job.S_pat, job.k)
    for job in jobs:
        if job.counts is not None:
            job.counts.C = None  # each group's counts (n_boot x patterns) are freed once used


def group_estimates(
    names: Sequence[str],
    R: npt.ArrayLike,
    *,
    n_categories: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    coders: Sequence[str] | None = None,
    progress: bool = False,
) -> tuple[list[tuple[dict[str, Estimate], dict[str, str]]], tuple[dict[str, Estimate], dict[str, str]]]:
    """:func:`estimates` of every group of a stack and of the stack pooled, sharing the work.

    The results are those of ``estimates(names, R[i], ...)`` for every group ``i`` and of
    ``estimates(names, R, ...)`` at a fraction of the cost: bit for bit where the per-unit
    statistics are exact in float64 (multiples of ``2**-20``, e.g. always with two coders), and
    equal up to floating-point rounding elsewhere (three or more coders, where a unit may score 1/3;
    the tests hold point estimates and interval bounds to within 1e-9 of :func:`estimates`):

    * every bootstrap on ``n`` units draws the same resampling counts from ``seed``, so they are
      drawn once and shared by every group and coefficient;
    * a group's units take few distinct rows (presence of one code: at most nine with two coders,
      27 with three), and a unit's statistics depend on its row only, so they are computed per row
      pattern, and each replicate sums resampling counts per pattern (counted over the few units
      off the most common pattern only) times the pattern's statistics. A group whose sums are not
      exact goes unit by unit instead, as :func:`estimates` does, where that is cheaper (most of its
      units off its most common pattern: many coders with noisy codings) or past a memory budget for
      the counts.

    Parameters
    ----------
    names : sequence of str
        Keys of :data:`COEFFICIENTS`.
    R : array-like of int of shape (n_groups, n_units, n_coders)
        One reliability matrix per group (e.g. code) on shared units (``-1`` = missing).
    n_categories, n_boot, seed, ci, coders
        As in :func:`estimate`.
    progress : bool
        Show progress bars (on stderr) for stacks of at least :data:`PROGRESS_MIN_GROUPS` groups.

    Returns
    -------
    per_group : list of (defined, undefined)
        As :func:`estimates` returns them, one pair per group.
    pooled : (defined, undefined)
        For the stack pooled across groups.

    Raises
    ------
    InputError, AgreementError
        As :func:`estimates` on the stack, else on the first group (in order) that raises.

    Examples
    --------
    >>> R = np.array([[[0, 0], [1, 1], [0, 1], [1, 1]], [[0, 0], [0, 0], [1, 1], [0, 0]]])
    >>> groups, pooled = group_estimates(["percent", "cohen"], R, n_categories=2, n_boot=200, seed=1)
    >>> groups[0][0]["cohen"] == estimate("cohen", R[0], n_categories=2, n_boot=200, seed=1)
    True
    >>> pooled[0]["percent"] == estimate("percent", R, n_categories=2, n_boot=200, seed=1)
    True
    """
    for name in names:
        _lookup(name)
    _check_boot(n_boot, ci)
    arr = np.asarray(R)
    if arr.ndim != 3:
        raise InputError(
            f"group_estimates needs a stack of shape (n_groups, n_units, n_coders); got {arr.ndim} dimension(s)"
        )
    show = progress and arr.shape[0] >= PROGRESS_MIN_GROUPS
    jobs: list[_Job] = []
    results: list[tuple[dict[str, _Job], dict[str, str]]] = []
    parts: dict[str, list[tuple[_Patterns, FloatArray, BoolArray]]] = {name: [] for name in names}
    pooled_m = _matrix(arr, n_categories, coders)  # the stack's own errors first ("only one coder", ...)
    budget = [_UNIT_STATS_BYTES]  # unit-by-unit statistics held for the shared bootstrap
    counts_budget = [_PATTERN_COUNTS_BYTES]  # resampling counts per pattern of inexact groups
    for i in _track(range(arr.shape[0]), arr.shape[0], "agreement: codes", show):
        m = _matrix(arr[i], n_categories, coders)
        pats = _patterns(m.R3[0], m.k)
        done: dict[str, _Job] = {}
        undefined: dict[str, str] = {}
        shared: dict[bytes, _PatternCounts] = {}
        for name in names:
            try:
                if pats is not None:
                    S_pat, used_pat = _pattern_stats(name, m, pats)
                    if m.k == pooled_m.k:
                        parts[name].append((pats, S_pat, used_pat))
                    job = _pattern_job(name, m, pats, S_pat, used_pat, shared, budget, n_boot, counts_budget)
                else:  # too many coders and categories for row patterns: bootstrapped now, as ever
                    job = _direct_job(name, m)
                    if n_boot:
                        _run_bootstrap([job], n_boot, seed)
                        job.S = None
                done[name] = job
            except AgreementError as err:
                undefined[name] = str(err)
        results.append((done, undefined))
        jobs += [job for job in done.values() if job.reps is None]
    pooled_done: dict[str, _Job] = {}
    pooled_undefined: dict[str, str] = {}
    n_units = arr.shape[1]
    for name in names:
        try:
            ok = len(parts[name]) == arr.shape[0]
            st = _pooled_stats(parts[name], n_units) if ok else None
            pooled_done[name] = _direct_job(name, pooled_m, st)
        except AgreementError as err:
            pooled_undefined[name] = str(err)
    jobs += pooled_done.values()
    if n_boot:
        _run_bootstrap(jobs, n_boot, seed, show)

    def finish(done: dict[str, _Job]) -> dict[str, Estimate]:
        out = {}
        for name, job in done.items():
            if n_boot == 0 or job.reps is None:
                out[name] = Estimate(name, job.value, None, None, job.n_units, job.n_coders, ci, 0)
            else:
                out[name] = _finish(name, job.value, job.n_units, job.n_coders, ci, job.reps)
        return out

    return [(finish(d), u) for d, u in results], (finish(pooled_done), pooled_undefined)


# ----------------------------------------------------------------------------------------------
# The coefficients as plain functions
# ----------------------------------------------------------------------------------------------


def percent_agreement(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Observed agreement: the share of agreeing coder pairs, averaged over units with ≥ 2 ratings.

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories (not needed here; accepted for a uniform signature).

    Returns
    -------
    float
        In [0, 1]. With two coders: the share of units both coded on which they agree.

    Examples
    --------
    >>> percent_agreement([[0, 0], [1, 1], [0, 1], [-1, 1]])
    0.6666666666666666
    """
    return _point("percent", R, n_categories)


def cohen_kappa(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Cohen's κ for exactly two coders, on the units both coded.

    Parameters
    ----------
    R : array-like of int of shape (n_units, 2) or (n_groups, n_units, 2)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories.

    Returns
    -------
    float

    Examples
    --------
    The usual textbook example (50 applications; both say yes 20, both no 15, only A yes 5, only
    B yes 10): p_o = 0.7, p_e = 0.5, κ = 0.4.

    >>> R = [[1, 1]] * 20 + [[0, 0]] * 15 + [[1, 0]] * 5 + [[0, 1]] * 10
    >>> round(cohen_kappa(R), 6)
    0.4
    """
    return _point("cohen", R, n_categories)


def fleiss_kappa(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Fleiss' κ, in Gwet's generalised form for a varying number of coders per unit.

    Observed agreement averages over units with at least two ratings; category proportions
    average each unit's rating shares over units with at least one rating. On complete data this
    is Fleiss (1971) exactly (``statsmodels.stats.inter_rater.fleiss_kappa``).

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories.

    Returns
    -------
    float

    Examples
    --------
    The worked example of Fleiss' κ on Wikipedia (10 subjects, 14 raters, 5 categories):

    >>> counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
    ...           [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
    ...           [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    >>> round(fleiss_kappa(ratings_from_counts(counts)), 3)
    0.21
    """
    return _point("fleiss", R, n_categories)


def scott_pi(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Scott's π: chance agreement from the pooled category proportions of all ratings.

    Uses the units with at least two ratings. With two coders and no missing values it is Scott's
    (1955) π; on complete data with more coders it equals Fleiss' κ.

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories.

    Returns
    -------
    float

    Examples
    --------
    Two coders, p_o = 0.7, pooled proportions (0.45, 0.55): p_e = 0.505, π ≈ 0.394.

    >>> R = [[1, 1]] * 20 + [[0, 0]] * 15 + [[1, 0]] * 5 + [[0, 1]] * 10
    >>> round(scott_pi(R), 4)
    0.3939
    """
    return _point("scott", R, n_categories)


def krippendorff_alpha(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Krippendorff's α for nominal data, from the coincidence matrix; missing values allowed.

    Units with fewer than two values drop out. ``α = 1 - (n - 1) D_o / D_e`` with ``D_o`` the
    off-diagonal mass of the coincidence matrix and ``D_e = n² - Σ n_c²`` (Krippendorff 2011).

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories.

    Returns
    -------
    float

    Examples
    --------
    Krippendorff (2011) section B, two observers, binary data, ten units: α = 0.095.

    >>> A = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    >>> B = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    >>> round(krippendorff_alpha(list(zip(A, B, strict=True))), 3)
    0.095
    """
    return _point("krippendorff", R, n_categories)


def brennan_prediger(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Brennan & Prediger's (1981) κ_n: chance agreement is ``1 / n_categories``.

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories (default: largest index + 1); must be at least 2.

    Returns
    -------
    float

    Examples
    --------
    >>> brennan_prediger([[0, 0], [1, 1], [0, 1], [1, 1]], n_categories=2)
    0.5
    """
    return _point("brennan_prediger", R, n_categories)


def gwet_ac1(R: npt.ArrayLike, n_categories: int | None = None) -> float:
    """Gwet's AC1: chance agreement ``Σ π_k (1 - π_k) / (q - 1)``; resists the prevalence paradox.

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    n_categories : int, optional
        Number of possible categories ``q`` (default: largest index + 1); must be at least 2.

    Returns
    -------
    float

    Examples
    --------
    A rare code: κ is low while agreement is 90%; AC1 stays high.

    >>> R = [[0, 0]] * 18 + [[0, 1], [1, 0]]
    >>> round(cohen_kappa(R), 3), round(gwet_ac1(R, n_categories=2), 3)
    (-0.053, 0.89)
    """
    return _point("ac1", R, n_categories)


def ratings_from_counts(counts: npt.ArrayLike) -> IntArray:
    """Reliability matrix from a table of category counts per unit.

    Parameters
    ----------
    counts : array-like of int of shape (n_units, n_categories)
        ``counts[u, c]`` raters put unit ``u`` in category ``c``.

    Returns
    -------
    ndarray of int of shape (n_units, max ratings per unit)
        Ratings in category order, padded with ``-1``.

    Examples
    --------
    >>> ratings_from_counts([[2, 1], [0, 2]]).tolist()
    [[0, 0, 1], [1, 1, -1]]
    """
    C = np.asarray(counts, dtype=np.int64)
    if C.ndim != 2 or (C.size and C.min() < 0):
        raise InputError("counts must be a 2-D table of non-negative integers (units x categories)")
    n, k = C.shape
    r = C.sum(axis=1)
    width = int(r.max()) if n else 0
    out = np.full((n, width), MISSING, dtype=np.int64)
    cats = np.repeat(np.tile(np.arange(k), n), C.ravel())
    rows = np.repeat(np.arange(n), r)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(r) - r, r)
    out[rows, cols] = cats
    return out


def pairwise_cohen(
    R: npt.ArrayLike, coders: Sequence[str], *, n_categories: int | None = None
) -> dict[tuple[str, str], float | None]:
    """Cohen's κ for every pair of coders (``None`` where a pair shares no unit or κ is 0/0).

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing); a 3-D stack gives pooled κ per pair.
    coders : sequence of str
        One name per column.
    n_categories : int, optional
        Number of possible categories.

    Returns
    -------
    dict
        ``{(a, b): kappa}`` for ``a`` before ``b`` in ``coders``.

    Examples
    --------
    >>> round(pairwise_cohen([[0, 0, 1], [1, 1, 1], [0, 1, 0]], ["a", "b", "c"])[("a", "b")], 6)
    0.4
    """
    arr, k = _check_matrix(R, n_categories)
    names = _names(coders, arr.shape[-1])
    out: dict[tuple[str, str], float | None] = {}
    for i in range(len(names)):  # loops over coder pairs (few), not units
        for j in range(i + 1, len(names)):
            try:
                out[(names[i], names[j])] = _point("cohen", arr[..., [i, j]], k, [names[i], names[j]])
            except AgreementError:
                out[(names[i], names[j])] = None
    return out


def mean_pairwise_cohen(R: npt.ArrayLike, coders: Sequence[str], *, n_categories: int | None = None) -> float:
    """Mean of Cohen's κ over all coder pairs for which it is defined (Light's κ).

    Parameters
    ----------
    R : array-like of int of shape (n_units, n_coders) or (n_groups, n_units, n_coders)
        Reliability matrix (``-1`` = missing).
    coders : sequence of str
        One name per column.
    n_categories : int, optional
        Number of possible categories.

    Returns
    -------
    float
    """
    values = [v for v in pairwise_cohen(R, coders, n_categories=n_categories).values() if v is not None]
    if not values:
        raise AgreementError(f"Cohen's kappa is undefined for every pair of {_quote(coders)}")
    return float(np.mean(values))


# ----------------------------------------------------------------------------------------------
# Unitizing: from codings to reliability matrices
# ----------------------------------------------------------------------------------------------

UnitKind = Literal["segment", "char"]


@dataclass(frozen=True)
class Units:
    """Binary presence matrices, one per code, on shared units.

    Attributes
    ----------
    unit : {"segment", "char"}
        What a unit is.
    coders, codes : tuple of str
        Column and group order of ``presence``.
    presence : ndarray of int8 of shape (n_codes, n_units, n_coders)
        1 = the coder applied the code to the unit, 0 = did not, -1 = the coder never coded the
        unit's source (missing).
    sources : tuple of str
        Source names; ``source_index`` indexes into it.
    source_index, starts, ends : ndarray of int of shape (n_units,)
        Where each unit is: ``text[starts[u]:ends[u]]`` of source ``sources[source_index[u]]``.
    """

    unit: UnitKind
    coders: tuple[str, ...]
    codes: tuple[str, ...]
    presence: npt.NDArray[np.int8]
    sources: tuple[str, ...]
    source_index: IntArray
    starts: IntArray
    ends: IntArray


def _check_names(coders: Sequence[str], codes: Sequence[str]) -> None:
    if len(set(coders)) != len(coders):
        raise InputError(
            f"coders are listed twice: {_quote(sorted({c for c in coders if list(coders).count(c) > 1}))}"
        )
    if len(set(codes)) != len(codes):
        raise InputError(
            f"codes are listed twice: {_quote(sorted({c for c in codes if list(codes).count(c) > 1}))}"
        )
    if not coders:
        raise InputError("no coders given; name at least two (e.g. --coders sara,omid)")
    if not codes:
        raise InputError("no codes given; name the codes to compare or leave the selection empty for all")


def _check_coding(c: Coding, length: int | None) -> None:
    if c.start < 0 or c.end <= c.start:
        raise InputError(
            f"coding by {c.coder!r} of {c.code!r} in {c.source!r} has span [{c.start}, {c.end}); "
            "start must be >= 0 and end > start"
        )
    if length is not None and c.end > length:
        raise InputError(
            f"coding by {c.coder!r} of {c.code!r} in {c.source!r} ends at {c.end}, "
            f"past the end of the source ({length} characters)"
        )


def default_coded_sources(codings: Sequence[Coding], coders: Sequence[str]) -> dict[str, set[str]]:
    """Sources each coder has seen: those where the coder has at least one coding (any code).

    Parameters
    ----------
    codings : sequence of Coding
    coders : sequence of str

    Returns
    -------
    dict
        ``{coder: {source, ...}}`` for every coder in ``coders``.
    """
    seen: dict[str, set[str]] = {c: set() for c in coders}
    for c in codings:
        if c.coder in seen:
            seen[c.coder].add(c.source)
    return seen


def _selected(codings: Sequence[Coding], coders: Sequence[str], codes: Sequence[str]) -> list[Coding]:
    coder_set, code_set = set(coders), set(codes)
    return [c for c in codings if c.coder in coder_set and c.code in code_set]


def disjoint_pieces(
    src: npt.NDArray[np.int64], start: npt.NDArray[np.int64], end: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Cut possibly overlapping spans (source index, start, end) at every span's edges into the
    disjoint pieces that some span covers, in (source, start) order.

    >>> s, a, b = disjoint_pieces(np.array([0, 0, 0]), np.array([0, 10, 30]), np.array([15, 25, 40]))
    >>> list(zip(s.tolist(), a.tolist(), b.tolist()))
    [(0, 0, 10), (0, 10, 15), (0, 15, 25), (0, 30, 40)]
    """
    out_src: list[int] = []
    out_start: list[int] = []
    out_end: list[int] = []
    for k in np.unique(src):
        sel = src == k
        a, b = start[sel], end[sel]
        edges = np.unique(np.concatenate([a, b]))
        lo, hi = edges[:-1], edges[1:]
        # a piece is covered when some span starts at or before it and ends at or after its end
        order = np.argsort(a, kind="stable")
        reach = np.maximum.accumulate(b[order])  # furthest end of the spans starting at or before
        idx = np.searchsorted(a[order], lo, side="right") - 1
        covered = (idx >= 0) & (reach[np.maximum(idx, 0)] >= hi)
        out_src += [int(k)] * int(covered.sum())
        out_start += lo[covered].tolist()
        out_end += hi[covered].tolist()
    return (
        np.array(out_src, dtype=np.int64),
        np.array(out_start, dtype=np.int64),
        np.array(out_end, dtype=np.int64),
    )


def segment_units(
    codings: Sequence[Coding],
    segments: Sequence[Segment],
    coders: Sequence[str],
    codes: Sequence[str],
    coded_sources: Mapping[str, set[str]] | None = None,
) -> Units:
    """Presence of each code per segment and coder.

    A coding belongs to a segment when they overlap by at least half of the shorter of the two:
    a short coding inside a long segment counts, a long coding counts for every segment it mostly
    covers, and a coding that only grazes a segment's edge does not.

    Parameters
    ----------
    codings : sequence of Coding
        Codings of any coders and codes; those outside ``coders``/``codes`` are ignored.
    segments : sequence of Segment
        Segments of any sources. Segments that overlap (the windows of ``[segmentation] mode =
        "window"``) are cut at each other's edges into disjoint pieces, each a unit, so that no
        stretch of text is counted twice (:func:`disjoint_pieces`).
    coders : sequence of str
        Coders to compare (columns), e.g. ``["sara", "omid", "model:linear@3"]``.
    codes : sequence of str
        Codes to compare (groups).
    coded_sources : mapping of str to set of str, optional
        Sources each coder has seen. A coder who has not seen a source is *missing* there, not
        "absent". Default: the sources where the coder has at least one coding (of any code).

    Returns
    -------
    Units
        ``presence`` of shape (n_codes, n_segments, n_coders); units in (source, start) order.

    Examples
    --------
    >>> segs = [Segment("s", 0, 0, 10, "x" * 10), Segment("s", 1, 10, 20, "y" * 10)]
    >>> cods = [Coding("s", 2, 8, "trust", "a"), Coding("s", 4, 16, "trust", "b")]
    >>> segment_units(cods, segs, ["a", "b"], ["trust"]).presence[0].tolist()
    [[1, 1], [0, 1]]
    """
    _check_names(coders, codes)
    for c in codings:
        _check_coding(c, None)
    seen = dict(coded_sources) if coded_sources is not None else default_coded_sources(codings, coders)
    src_names = tuple(sorted({s.source for s in segments}))
    src_id = {name: i for i, name in enumerate(src_names)}
    sel = [
        c
        for c in _selected(codings, coders, codes)
        if c.source in src_id and c.source in seen.get(c.coder, ())
    ]

    s_src = np.array([src_id[s.source] for s in segments], dtype=np.int64)
    s_start = np.array([s.start for s in segments], dtype=np.int64)
    s_end = np.array([s.end for s in segments], dtype=np.int64)
    order = np.lexsort((s_start, s_src))
    s_src, s_start, s_end = s_src[order], s_start[order], s_end[order]

    c_src = np.array([src_id[c.source] for c in sel], dtype=np.int64)
    c_start = np.array([c.start for c in sel], dtype=np.int64)
    c_end = np.array([c.end for c in sel], dtype=np.int64)
    # global coordinates: sources laid end to end with a gap, so one searchsorted serves all
    extent = np.zeros(len(src_names), dtype=np.int64)
    np.maximum.at(extent, s_src, s_end)
    np.maximum.at(extent, c_src, c_end)
    offset = np.concatenate([[0], np.cumsum(extent + 1)[:-1]]) if len(src_names) else extent
    g_start, g_end = offset[s_src] + s_start, offset[s_src] + s_end
    if (s_end <= s_start).any():
        i = int(np.flatnonzero(s_end <= s_start)[0])
        raise InputError(
            f"segment at [{s_start[i]}, {s_end[i]}) of {src_names[s_src[i]]!r} is empty; "
            "segments must hold at least one character"
        )
    if (g_start[1:] < g_end[:-1]).any():  # overlapping segments (windows): cut into disjoint pieces
        s_src, s_start, s_end = disjoint_pieces(s_src, s_start, s_end)
        g_start, g_end = offset[s_src] + s_start, offset[s_src] + s_end

    n_units = len(s_start)
    coder_id = {c: j for j, c in enumerate(coders)}
    code_id = {c: i for i, c in enumerate(codes)}
    seen_mat = np.array([[name in seen.get(coder, ()) for coder in coders] for name in src_names], dtype=bool)
    base = (
        np.where(seen_mat[s_src], 0, MISSING).astype(np.int8)
        if n_units
        else np.zeros((0, len(coders)), np.int8)
    )
    presence = np.repeat(base[None], len(codes), axis=0)

    if sel:
        cg_start, cg_end = offset[c_src] + c_start, offset[c_src] + c_end
        lo = np.searchsorted(g_end, cg_start, side="right")
        hi = np.searchsorted(g_start, cg_end, side="left")
        cnt = np.maximum(hi - lo, 0)
        pair_c = np.repeat(np.arange(len(sel)), cnt)
        pair_s = lo[pair_c] + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        ov = np.minimum(g_end[pair_s], cg_end[pair_c]) - np.maximum(g_start[pair_s], cg_start[pair_c])
        shorter = np.minimum(g_end[pair_s] - g_start[pair_s], cg_end[pair_c] - cg_start[pair_c])
        keep = (ov > 0) & (2 * ov >= shorter)
        k_code = np.array([code_id[c.code] for c in sel], dtype=np.int64)[pair_c[keep]]
        k_coder = np.array([coder_id[c.coder] for c in sel], dtype=np.int64)[pair_c[keep]]
        presence[k_code, pair_s[keep], k_coder] = 1
    return Units("segment", tuple(coders), tuple(codes), presence, src_names, s_src, s_start, s_end)


def char_units(
    codings: Sequence[Coding],
    source_lengths: Mapping[str, int],
    coders: Sequence[str],
    codes: Sequence[str],
    coded_sources: Mapping[str, set[str]] | None = None,
    exclude_uncoded: bool = True,
) -> Units:
    """Presence of each code per character and coder (NVivo / QualCoder style).

    Parameters
    ----------
    codings : sequence of Coding
        Codings of any coders and codes; those outside ``coders``/``codes`` are ignored.
    source_lengths : mapping of str to int
        Length in characters of every source to compare.
    coders, codes : sequence of str
        Coders (columns) and codes (groups) to compare.
    coded_sources : mapping of str to set of str, optional
        Sources each coder has seen (default: sources where the coder has a coding).
    exclude_uncoded : bool
        Leave out characters that no compared coder coded with any compared code, so long
        stretches of uncoded text do not inflate agreement. The same characters are left out for
        every code, so per-code and pooled figures rest on the same units.

    Returns
    -------
    Units
        ``presence`` of shape (n_codes, n_chars, n_coders); ``starts[u] + 1 == ends[u]``.

    Notes
    -----
    Coverage is computed with a difference array and a cumulative sum per code (loops over codes,
    not characters). Memory is ``n_codes × n_chars × n_coders`` bytes.

    Examples
    --------
    >>> cods = [Coding("s", 0, 4, "trust", "a"), Coding("s", 2, 6, "trust", "b")]
    >>> u = char_units(cods, {"s": 10}, ["a", "b"], ["trust"])
    >>> u.presence[0].tolist()
    [[1, 0], [1, 0], [1, 1], [1, 1], [0, 1], [0, 1]]
    >>> char_units(cods, {"s": 10}, ["a", "b"], ["trust"], exclude_uncoded=False).presence.shape
    (1, 10, 2)
    """
    _check_names(coders, codes)
    for c in codings:
        if c.source in source_lengths:
            _check_coding(c, source_lengths[c.source])
    seen = dict(coded_sources) if coded_sources is not None else default_coded_sources(codings, coders)
    src_names = tuple(sorted(s for s in source_lengths if any(s in seen.get(c, ()) for c in coders)))
    src_id = {name: i for i, name in enumerate(src_names)}
    lengths = np.array([source_lengths[s] for s in src_names], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(src_names) else lengths
    total = int(lengths.sum())
    char_src = np.repeat(np.arange(len(src_names)), lengths)
    sel = [
        c
        for c in _selected(codings, coders, codes)
        if c.source in src_id and c.source in seen.get(c.coder, ())
    ]
    g_start = np.array([offset[src_id[c.source]] + c.start for c in sel], dtype=np.int64)
    g_end = np.array([offset[src_id[c.source]] + c.end for c in sel], dtype=np.int64)
    c_code = np.array([codes.index(c.code) for c in sel], dtype=np.int64)
    c_coder = np.array([list(coders).index(c.coder) for c in sel], dtype=np.int64)

    def cover(mask: BoolArray) -> npt.NDArray[np.bool_]:
        """Characters covered per coder by the selected codings: (total, n_coders)."""
        diff = np.zeros((total + 1, len(coders)), dtype=np.int32)
        np.add.at(diff, (g_start[mask], c_coder[mask]), 1)
        np.add.at(diff, (g_end[mask], c_coder[mask]), -1)
        return np.cumsum(diff[:-1], axis=0) > 0

    if exclude_uncoded:
        keep = cover(np.ones(len(sel), dtype=bool)).any(axis=1)
    else:
        keep = np.ones(total, dtype=bool)
    seen_mat = np.array([[name in seen.get(coder, ()) for coder in coders] for name in src_names], dtype=bool)
    base = np.where(seen_mat[char_src[keep]], 0, MISSING).astype(np.int8)
    presence = np.empty((len(codes), int(keep.sum()), len(coders)), dtype=np.int8)
    for i in range(len(codes)):  # loops over codes, not characters
        covered = cover(c_code == i)[keep]
        presence[i] = np.where(covered & (base == 0), 1, base)
    pos = np.arange(total) - offset[char_src] if total else np.zeros(0, dtype=np.int64)
    return Units(
        "char", tuple(coders), tuple(codes), presence, src_names, char_src[keep], pos[keep], pos[keep] + 1
    )


def char_agreement(
    codings: Sequence[Coding],
    source_lengths: Mapping[str, int],
    coders: Sequence[str],
    codes: Sequence[str],
    coded_sources: Mapping[str, set[str]] | None = None,
    exclude_uncoded: bool = True,
) -> dict[str, dict[str, float | None]]:
    """Character-level percent agreement and κ per code.

    κ is Cohen's κ for two coders and Fleiss' κ for more; ``None`` where κ is 0/0 (a code nobody,
    or everybody, applied to every compared character).

    Parameters
    ----------
    codings, source_lengths, coders, codes, coded_sources, exclude_uncoded
        As in :func:`char_units`.

    Returns
    -------
    dict
        ``{code: {"percent": float, "kappa": float | None, "n_chars": int}}``.

    Examples
    --------
    >>> cods = [Coding("s", 0, 4, "trust", "a"), Coding("s", 2, 6, "trust", "b")]
    >>> char_agreement(cods, {"s": 10}, ["a", "b"], ["trust"])["trust"]["percent"]
    0.3333333333333333
    """
    u = char_units(codings, source_lengths, coders, codes, coded_sources, exclude_uncoded)
    kappa_name = "cohen" if len(coders) == 2 else "fleiss"
    out: dict[str, dict[str, float | None]] = {}
    for i, code in enumerate(codes):
        R = u.presence[i]
        kappa: float | None
        try:
            kappa = _point(kappa_name, R, 2, coders)
        except AgreementError:
            kappa = None
        out[code] = {"percent": _point("percent", R, 2, coders), "kappa": kappa, "n_chars": float(R.shape[0])}
    return out


# ----------------------------------------------------------------------------------------------
# MAXQDA-style overlap matching
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverlapRow:
    """Matching result for one code (or the total over codes when ``code`` is ``None``).

    ``percent`` and ``kappa_bp`` are ``None`` where undefined (no codings of the code; one code).
    """

    code: str | None
    matched: int
    unmatched: tuple[int, int]
    percent: float | None
    kappa_bp: float | None


@dataclass(frozen=True)
class OverlapResult:
    """MAXQDA-style intercoder agreement of two coders by span overlap.

    Attributes
    ----------
    coders : tuple of (str, str)
    threshold : float
        Minimum overlap as a share of the longer span.
    chance : float
        ``1 / len(codes)``, MAXQDA's chance agreement.
    rows : tuple of OverlapRow
        One per code.
    total : OverlapRow
        Summed over codes.
    matches : tuple of (Coding, Coding)
        Matched pairs (first coder, second coder).
    unmatched : tuple of Coding
        Codings without a partner: what the coders sit down to discuss.
    """

    coders: tuple[str, str]
    threshold: float
    chance: float
    rows: tuple[OverlapRow, ...]
    total: OverlapRow
    matches: tuple[tuple[Coding, Coding], ...]
    unmatched: tuple[Coding, ...]


def _bp_row(code: str | None, matched: int, un: tuple[int, int], chance: float) -> OverlapRow:
    denom = matched + un[0] + un[1]
    if denom == 0:
        return OverlapRow(code, 0, un, None, None)
    po = matched / denom
    kappa = None if chance >= 1 else (po - chance) / (1 - chance)
    return OverlapRow(code, matched, un, po, kappa)


def overlap_agreement(
    codings: Sequence[Coding],
    coders: Sequence[str],
    codes: Sequence[str],
    threshold: float = 0.9,
    coded_sources: Mapping[str, set[str]] | None = None,
) -> OverlapResult:
    """MAXQDA-style agreement: codings match when their spans overlap enough.

    A coding of code ``c`` by the first coder matches a coding of ``c`` by the second coder in the
    same source when the overlap is at least ``threshold`` of the longer of the two spans.
    Matching is one-to-one, greedily by decreasing overlap share. Only sources both coders have
    seen are compared.

    Following MAXQDA's documented segment-level κ (MAXQDA manual, "Intercoder Agreement",
    maxqda.com/help-mx24/coding/problem-intercoder-agreement-qualitative-research), the cell "both
    coders did not code" does not exist for coded segments, so chance agreement is taken from
    Brennan & Prediger (1981): ``P_c = 1 / number of codes in the table``, and with ``a`` matched
    pairs and ``b``, ``c`` unmatched codings of each coder, ``P_o = a / (a + b + c)`` and
    ``κ = (P_o - P_c) / (1 - P_c)``. The same ``P_c`` is used for the per-code rows.

    Parameters
    ----------
    codings : sequence of Coding
        Codings of any coders and codes; those outside ``coders``/``codes`` are ignored.
    coders : sequence of str
        Exactly two coders.
    codes : sequence of str
        Codes compared; their number sets chance agreement.
    threshold : float
        Minimum overlap as a share of the longer span, in (0, 1]; MAXQDA's default is 90%.
    coded_sources : mapping of str to set of str, optional
        Sources each coder has seen (default: sources where the coder has a coding).

    Returns
    -------
    OverlapResult

    Examples
    --------
    >>> cods = [Coding("s", 0, 100, "trust", "a"), Coding("s", 5, 100, "trust", "b"),
    ...         Coding("s", 200, 220, "doubt", "a"), Coding("s", 200, 260, "doubt", "b")]
    >>> res = overlap_agreement(cods, ["a", "b"], ["trust", "doubt"])
    >>> res.total.matched, res.total.unmatched, round(res.total.percent, 4), round(res.total.kappa_bp, 4)
    (1, (1, 1), 0.3333, -0.3333)
    """
    if len(coders) != 2:
        raise InputError(
            f"overlap agreement compares exactly two coders; got {len(coders)} ({_quote(coders)}): "
            "compare them pair by pair"
        )
    _check_names(coders, codes)
    if not 0 < threshold <= 1:
        raise InputError(f"overlap threshold must be in (0, 1] (e.g. 0.9 for 90%); got {threshold}")
    for c in codings:
        _check_coding(c, None)
    seen = dict(coded_sources) if coded_sources is not None else default_coded_sources(codings, coders)
    shared = set(seen.get(coders[0], set())) & set(seen.get(coders[1], set()))
    if not shared:
        raise AgreementError(f"coders {_quote(coders)} share no units: no source was coded by both")
    sel = [c for c in _selected(codings, coders, codes) if c.source in shared]
    groups: dict[tuple[str, str], tuple[list[Coding], list[Coding]]] = {}
    for c in sel:
        groups.setdefault((c.source, c.code), ([], []))[0 if c.coder == coders[0] else 1].append(c)
    matches: list[tuple[Coding, Coding]] = []
    unmatched: list[Coding] = []
    per_code = {code: [0, 0, 0] for code in codes}
    for (_, code), (a_list, b_list) in sorted(groups.items()):
        a_s = np.array([[c.start, c.end] for c in a_list], dtype=np.int64).reshape(-1, 2)
        b_s = np.array([[c.start, c.end] for c in b_list], dtype=np.int64).reshape(-1, 2)
        ov = np.minimum(a_s[:, None, 1], b_s[None, :, 1]) - np.maximum(a_s[:, None, 0], b_s[None, :, 0])
        longer = np.maximum((a_s[:, 1] - a_s[:, 0])[:, None], (b_s[:, 1] - b_s[:, 0])[None, :])
        share = np.where(ov > 0, ov / longer, 0.0)
        ai, bj = np.nonzero(share >= threshold)
        used_a: set[int] = set()
        used_b: set[int] = set()
        for t in np.argsort(-share[ai, bj], kind="stable"):  # candidate pairs of one code in one source
            i, j = int(ai[t]), int(bj[t])
            if i not in used_a and j not in used_b:
                used_a.add(i)
                used_b.add(j)
                matches.append((a_list[i], b_list[j]))
        un_a = [c for i, c in enumerate(a_list) if i not in used_a]
        un_b = [c for j, c in enumerate(b_list) if j not in used_b]
        unmatched.extend(un_a + un_b)
        per_code[code][0] += len(used_a)
        per_code[code][1] += len(un_a)
        per_code[code][2] += len(un_b)
    chance = 1.0 / len(codes)
    rows = tuple(_bp_row(code, m, (ua, ub), chance) for code, (m, ua, ub) in per_code.items())
    total = _bp_row(
        None,
        sum(r.matched for r in rows),
        (sum(r.unmatched[0] for r in rows), sum(r.unmatched[1] for r in rows)),
        chance,
    )
    unmatched.sort(key=lambda c: (c.source, c.start, c.end, c.code, c.coder))
    return OverlapResult(
        (coders[0], coders[1]), threshold, chance, rows, total, tuple(matches), tuple(unmatched)
    )
