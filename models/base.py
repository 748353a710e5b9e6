"""What every suggester shares: validation, parameters, top-k selection with abstention.

A suggester follows scikit-learn's estimator contract: ``__init__`` stores its parameters unchanged,
``fit(X, Y)`` learns and returns ``self``, learned state ends in ``_`` (``classes_``, ``thresholds_``),
``get_params()`` is what the flows log.

Data
----
X : ndarray of shape (n_segments, dim), float32, L2-normalised embeddings.
Y : ndarray of shape (n_segments, n_codes), int8: ``1`` coded with that code (positive), ``0`` not
    coded (implicit negative), ``-1`` a coder rejected that code for that segment (explicit negative).
    Columns follow the ``codes`` parameter.

Side information (keyword arguments, the same for every suggester; a suggester that does not use one
ignores it and says so in its docstring):

- ``groups`` (fit only): ndarray (n_segments,), the source of each segment, for grouped
  cross-validation inside ``fit``;
- ``X_prev``: ndarray (n_segments, dim), embedding of the previous turn (see :func:`previous_rows`);
- ``texts``: list of n_segments strings, for text features (TF-IDF, keyword patterns);
- ``prev_texts`` / ``prev2_texts``: lists of n_segments strings, the previous turn's text and the one
  before it (``""`` when none); only the suggesters that take them (:func:`side_inputs` passes them to
  those alone).

- ``groups`` in ``predict_proba``: the source of each row (rows of one source in reading order), only
  for a fitted suggester whose :meth:`BaseSuggester.wants_sequence` is true (a decoding along each
  source, :mod:`models.sequence`).

- ``X_window``: ndarray (n_segments, dim), embedding of each segment's window (the segment with its
  neighbours in the same turn; :func:`pipeline.project.corpus.window_vectors`); only the suggesters
  whose :meth:`BaseSuggester.wants_window` is true (the evidence suggester).

A suggester whose :meth:`BaseSuggester.wants_context` is true reads the previous turn; the project
pipeline computes ``X_prev`` / ``prev_texts`` only for those, and ``X_window`` only for those that
want windows (see :func:`side_inputs`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError
from pipeline.labels import Suggestions, top_k_above_threshold

FloatMatrix = npt.NDArray[np.float32]


def previous_rows(X: npt.NDArray[np.floating], groups: Sequence[Any] | npt.NDArray[Any]) -> FloatMatrix:
    """The previous row of the same group for every row (zeros for a group's first row).

    Rows must be in document order within each group (e.g. the segments of each source in order);
    use it to give a suggester the previous turn as context (``X_prev=``).

    Parameters
    ----------
    X : ndarray of shape (n_segments, dim)
    groups : array-like of shape (n_segments,)

    Returns
    -------
    ndarray of shape (n_segments, dim), float32

    >>> previous_rows(np.array([[1.0], [2.0], [3.0]]), ["a", "a", "b"]).ravel().tolist()
    [0.0, 1.0, 0.0]
    """
    X = np.asarray(X, dtype=np.float32)
    g = np.asarray(groups)
    out = np.zeros_like(X)
    if len(X) > 1:
        same = g[1:] == g[:-1]
        out[1:][same] = X[:-1][same]
    return out


def side_inputs(
    model: Any,
    *,
    texts: Sequence[str] | None = None,
    X_prev: Any = None,
    prev_texts: Sequence[str] | None = None,
    prev2_texts: Sequence[str] | None = None,
    X_window: Any = None,
    groups: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The side information to pass to ``model.fit`` / ``model.predict_proba``.

    ``texts`` always; ``X_prev``, ``prev_texts`` and ``prev2_texts`` only when the model :meth:`~BaseSuggester.wants_context`
    and its ``predict_proba`` takes them (a suggester without that parameter never sees it);
    ``X_window`` only when the model :meth:`~BaseSuggester.wants_window` and takes it; ``groups`` (the
    source of each row, for ``predict_proba``) only when the fitted model
    :meth:`~BaseSuggester.wants_sequence` (never before fit: ``fit`` takes ``groups`` on its own).

    >>> class M:
    ...     def wants_context(self): return True
    ...     def predict_proba(self, X, *, texts=None, X_prev=None): ...
    >>> sorted(side_inputs(M(), texts=["a"], X_prev=[[0.0]], prev_texts=[""]))
    ['X_prev', 'texts']
    """
    out: dict[str, Any] = {"texts": None if texts is None else list(texts)}
    sequence = getattr(model, "wants_sequence", None)
    if groups is not None and sequence is not None and sequence():
        if "groups" in inspect.signature(model.predict_proba).parameters:
            out["groups"] = list(groups)
    window = getattr(model, "wants_window", None)
    if X_window is not None and window is not None and window():
        if "X_window" in inspect.signature(model.predict_proba).parameters:
            out["X_window"] = X_window
    wants = getattr(model, "wants_context", None)
    if wants is None or not wants():
        return out
    accepted = inspect.signature(model.predict_proba).parameters
    if X_prev is not None and "X_prev" in accepted:
        out["X_prev"] = X_prev
    if prev_texts is not None and "prev_texts" in accepted:
        out["prev_texts"] = list(prev_texts)
    if prev2_texts is not None and "prev2_texts" in accepted:
        out["prev2_texts"] = list(prev2_texts)
    return out


def softmax(S: npt.NDArray[np.floating], temperature: float) -> npt.NDArray[np.float64]:
    """Row-wise softmax of ``S / temperature``."""
    Z = np.asarray(S, dtype=np.float64) / temperature
    Z -= Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def sigmoid(Z: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Logistic function, numerically safe."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(Z, dtype=np.float64)))


class BaseSuggester(ABC):
    """Parameters, validation and :meth:`suggest`, shared by every suggester.

    Subclasses implement ``fit`` and ``predict_proba`` and set ``classes_``, ``thresholds_`` and
    ``n_features_in_`` in ``fit``. They must have a ``codes`` and an ``exclusive`` parameter.
    A suggester that reads the codes' definitions sets ``uses_code_embeddings`` and takes a
    ``code_embeddings`` parameter, which :func:`models.make_suggester` fills from the codebook.
    """

    uses_code_embeddings: ClassVar[bool] = False

    codes: Sequence[str]
    exclusive: bool
    classes_: npt.NDArray[np.str_]
    thresholds_: npt.NDArray[np.float64]
    n_features_in_: int

    # --- parameters (scikit-learn compatible: sklearn.base.clone works) -------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters as a dict (nested ``name__param`` entries when ``deep``).

        A parameter added after a model was pickled (a champion loaded from the registry) reads as its
        default, the value the suggesters' ``getattr`` fallbacks behave as."""
        params = inspect.signature(type(self).__init__).parameters
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            default = params[name].default
            value = (
                getattr(self, name) if default is inspect.Parameter.empty else getattr(self, name, default)
            )
            if deep and isinstance(value, BaseSuggester):
                out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> BaseSuggester:
        """Set constructor parameters (``name__param`` reaches a nested suggester)."""
        valid = self._get_param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise InputError(
                    f"Unknown parameter {name!r} for {type(self).__name__}; choose one of {valid}"
                )
            if sub:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        shown = []
        for k, v in self.get_params(deep=False).items():
            if isinstance(v, np.ndarray):
                shown.append(f"{k}=<array {v.shape}>")
            elif isinstance(v, list | tuple) and len(v) > 6:
                shown.append(f"{k}=<{len(v)} items>")
            else:
                shown.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # --- validation ---------------------------------------------------------------------------
    def _check_codes(self) -> list[str]:
        codes = list(self.codes)
        if not codes:
            raise InputError(f"{type(self).__name__}: 'codes' is empty; pass the codebook's code names")
        if len(set(codes)) != len(codes):
            dup = sorted({c for c in codes if codes.count(c) > 1})
            raise InputError(f"{type(self).__name__}: duplicate code names {dup}; code names must be unique")
        return codes

    def _check_fit_input(
        self, X: npt.ArrayLike, Y: npt.ArrayLike, **side: Any
    ) -> tuple[FloatMatrix, npt.NDArray[np.int8]]:
        codes = self._check_codes()
        name = type(self).__name__
        Xa = np.asarray(X, dtype=np.float32)
        Ya = np.asarray(Y)
        if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
            raise InputError(
                f"{name}.fit: X must be a non-empty 2-D array (n_segments, dim), got shape {Xa.shape}"
            )
        if Ya.ndim != 2 or Ya.shape != (Xa.shape[0], len(codes)):
            raise InputError(
                f"{name}.fit: Y must have shape (n_segments, n_codes) = {(Xa.shape[0], len(codes))}, "
                f"got {Ya.shape}"
            )
        bad = ~np.isin(Ya, (-1, 0, 1))
        if bad.any():
            raise InputError(
                f"{name}.fit: Y may hold only 1 (coded), 0 (not coded) and -1 (rejected); "
                f"found {sorted(set(np.unique(Ya[bad]).tolist()))}"
            )
        if not np.isfinite(Xa).all():
            raise InputError(f"{name}.fit: X contains NaN or infinite values")
        Ya = Ya.astype(np.int8)
        if self.exclusive:
            many = np.flatnonzero((Ya == 1).sum(axis=1) > 1)
            if len(many):
                raise InputError(
                    f"{name}.fit: exclusive=True but {len(many)} segment(s) have more than one code "
                    f"(first: row {int(many[0])}); use exclusive=False for a multi-label codebook"
                )
        self._check_side(Xa.shape[0], **side)
        return Xa, Ya

    def _check_predict_input(self, X: npt.ArrayLike, **side: Any) -> FloatMatrix:
        name = type(self).__name__
        if "classes_" not in self.__dict__:
            raise InputError(f"{name} is not fitted yet; call fit(X, Y) first")
        Xa = np.asarray(X, dtype=np.float32)
        if Xa.ndim != 2 or Xa.shape[1] != self.n_features_in_:
            raise InputError(
                f"{name}: X must have shape (n_segments, {self.n_features_in_}) like the training data, "
                f"got {Xa.shape}"
            )
        self._check_side(Xa.shape[0], **side)
        return Xa

    def _check_side(self, n: int, **side: Any) -> None:
        for key, value in side.items():
            if value is not None and len(value) != n:
                raise InputError(f"{type(self).__name__}: {key} has {len(value)} rows but X has {n}")

    # --- shared outputs -----------------------------------------------------------------------
    def wants_context(self) -> bool:
        """True when the suggester reads the previous turn (``X_prev``, ``prev_texts``); default False."""
        return False

    def wants_window(self) -> bool:
        """True when the suggester reads each segment's window (``X_window``); default False."""
        return False

    def wants_sequence(self) -> bool:
        """True when the fitted suggester scores each source's segments together (``groups=`` in
        ``predict_proba``: the source of each row, rows of a source in reading order); default False."""
        return False

    @abstractmethod
    def fit(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike,
        *,
        groups: Any = None,
        texts: Any = None,
        X_prev: Any = None,
    ) -> BaseSuggester:
        """Learn from embeddings ``X`` (n_segments, dim) and labels ``Y`` (n_segments, n_codes); returns self."""

    @abstractmethod
    def predict_proba(
        self, X: npt.ArrayLike, *, texts: Any = None, X_prev: Any = None
    ) -> npt.NDArray[np.float64]:
        """Calibrated scores, shape (n_segments, n_codes), columns in ``classes_`` order."""

    def suggest(
        self, X: npt.ArrayLike, k: int = 3, *, texts: Any = None, X_prev: Any = None, **side: Any
    ) -> Suggestions:
        """Top-``k`` codes per segment with their calibrated scores, abstaining below thresholds.

        Returns
        -------
        list of n_segments lists of ``(code_index, score)``, best first; indices into ``classes_``.
        In ``exclusive`` mode at most one code (the argmax) is suggested whatever ``k`` is.
        """
        return self.suggest_from_proba(self.predict_proba(X, texts=texts, X_prev=X_prev, **side), k)

    def suggest_from_proba(
        self, P: npt.NDArray[np.floating], k: int = 3, *, groups: Any = None
    ) -> Suggestions:
        """:meth:`suggest` for scores already computed by :meth:`predict_proba`. ``groups`` (the source
        of each row) is for suggesters that gate per source (evidence); ignored here."""
        return top_k_above_threshold(P, self.thresholds_, 1 if self.exclusive else k)

    def predict(
        self, X: npt.ArrayLike, *, texts: Any = None, X_prev: Any = None, **side: Any
    ) -> npt.NDArray[np.int64]:
        """Decisions.

        Returns
        -------
        exclusive: ndarray (n_segments,) of the code index (argmax) or ``-1`` when it abstains;
        multi-label: ndarray (n_segments, n_codes) of 0/1 (``P >= thresholds_``).
        """
        P = self.predict_proba(X, texts=texts, X_prev=X_prev, **side)
        return decide(P, self.thresholds_, self.exclusive)


def decide(
    P: npt.NDArray[np.floating], thresholds: npt.NDArray[np.floating], exclusive: bool
) -> npt.NDArray[np.int64]:
    """Turn scores into decisions (see :meth:`BaseSuggester.predict`).

    >>> decide(np.array([[0.7, 0.3], [0.45, 0.55]]), np.array([0.5, 0.6]), exclusive=True).tolist()
    [0, -1]
    """
    P = np.asarray(P)
    if exclusive:
        best = P.argmax(axis=1)
        ok = np.take_along_axis(P >= thresholds, best[:, None], axis=1)[:, 0]
        return np.where(ok, best, -1).astype(np.int64)
    return (P >= thresholds).astype(np.int64)
