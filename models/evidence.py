"""Evidence suggester: nearest coded examples and the code's definition, fused by one pooled classifier.

Real studies have hundreds of codes and one to five examples per code. A classifier per code cannot
learn from one example; this suggester never learns a code on its own. For every (segment, code) pair
it computes 14 *evidence* features that mean the same for every code (22 with the hierarchy's):

==  =====================================================================================
 0  cosine to the code's nearest positive example (its prototype when it has none)
 1  cosine to the 2nd-nearest positive example (the nearest when it has one)
 2  cosine to the code's prototype (name, description, inclusion, examples; see
    :func:`models.prototype.prototype_inputs`)
 3  cosine to the centroid of the code's positive examples (the prototype when none)
 4  cosine to ``normalize(prior_weight * prototype + sum(positive examples))``
 5  ``log(1 + n_positives)``
 6  1 when the code has at least one positive example
 7  best nearest-example cosine among the code's siblings (same parent), itself included
 8-13  features 0, 1, 2, 3, 4 and 7 minus that segment's maximum over all codes ("relative")
14  best nearest-example cosine over the codes of the subtree of the code's top-level ancestor
    (its *theme*; for a code without parent, its own subtree: itself and its descendants)
15  the same over the subtree of the code's parent (its *category*; no parent: its own subtree)
16  mean cosine of the 3 nearest examples in the theme's subtree (fewer when it has fewer)
17  the same in the category's subtree
18-21  features 14-17 minus that segment's maximum over all codes
==  =====================================================================================

Features 14-21 are used only when the hierarchy adds to the siblings (``uses_ancestors_``): some code's
theme or category subtree is not just its sibling group, as when themes hold categories that hold codes,
or a parent is codable. In a flat codebook, or one with one level of uncodable categories, they would
repeat features 0/8 and 7/13, and the model keeps its 14 (so the window features below are 14-18 then).

and, when ``fit`` is given ``X_window`` (the vectors of each segment's *window*: the segment joined with
its neighbours in the same turn, :func:`pipeline.project.corpus.window_vectors`), 5 more that compare
the window with the examples' windows, since coders code passages, not sentences (numbered after the
14 or 22 above; here with 14):

==  =====================================================================================
14  cosine of the window to the code's nearest positive example's window (prototype if none)
15  cosine of the window to the code's prototype
16  cosine of the window to the centroid of the positive examples' windows (prototype if none)
17-18  features 14 and 15 minus that segment's maximum over all codes
==  =====================================================================================


and one standardised logistic regression on all pairs, label ``Y == 1`` (a rejection, ``Y == -1``,
is a negative like ``Y == 0``), turns them into a probability. The features are computed *out of
fold* (grouped by source), so the classifier learns how far a new interview's passage is from the
examples of the code it belongs to, not how close a training segment is to itself. Because the
classifier is pooled over codes, a code's first example counts at once.

Abstention is one threshold for every code, applied to a segment's best code (a segment that passes
shows its top-k codes as alternatives), chosen by a target: the out-of-fold top-1 score of coded
segments at quantile ``1 - min_coverage`` (so about ``min_coverage`` of the coded segments of a new
interview get a suggestion), or, with ``target_precision``, the lowest threshold whose out-of-fold
top-1 precision reaches it. ``coverage_curve_`` holds the whole curve.

A score threshold fitted on a few coded interviews does not carry over to a new one: one interview's
scores sit lower than another's (on the demo study, ``min_coverage=0.95`` covered 0.70 of a held-out
interview's coded passages). So, with ``min_coverage`` (not ``target_precision``), the gate is also set
*within each source*: out of fold, each coded segment's rank in its own source (the share of that
source's segments whose top-1 score is at least its own) is recorded, and ``source_share_`` is the
``min_coverage`` quantile of those ranks (the higher value). At suggestion time, given the segments'
``groups`` (:meth:`suggest_from_proba`), the ``ceil(source_share_ * n)`` best segments of each source
of ``n`` segments get a suggestion even below ``threshold_`` -- unless their score is below
``source_floor`` (default 0: no floor; a source of one or two segments otherwise always gets its best
one suggested, however low its score). A rank within the source is scale-free, so it transfers where
an absolute score does not; without ``groups`` only ``threshold_`` applies.

Categories: when a parent is itself codable (it is one of ``codes``) and has at least two codable
children, a segment on which none of those children reaches the threshold but whose children's summed
score beats the segment's best single code gets the parent suggested with that sum as its score (at
most 1): it leads the segment's top-k, and may carry the segment over the threshold (the category is
confident where no code in it is). :meth:`suggest_from_proba` applies it; ``predict_proba`` is unchanged.
An uncodable parent (``Code.is_codable`` false) is never suggested.

Cold start (no positive example at all): a softmax over the prototype cosines, its temperature the
median spread (standard deviation over codes) of the cosines, so scores rank codes without all
printing 1.00; the same coverage gate is applied to the top-1 scores of the fitted segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from models.base import BaseSuggester, softmax
from pipeline.embed.base import l2_normalize
from pipeline.errors import InputError
from pipeline.evaluate import coverage_curve
from pipeline.labels import Suggestions, top_k_above_threshold

N_FEATURES = 22
FEATURE_NAMES = (
    "nearest",
    "second_nearest",
    "prototype",
    "centroid",
    "prior_mix",
    "log_positives",
    "has_examples",
    "sibling_nearest",
    "nearest_rel",
    "second_nearest_rel",
    "prototype_rel",
    "centroid_rel",
    "prior_mix_rel",
    "sibling_nearest_rel",
    "theme_nearest",
    "category_nearest",
    "theme_top",
    "category_top",
    "theme_nearest_rel",
    "category_nearest_rel",
    "theme_top_rel",
    "category_top_rel",
)
ANCESTOR_FEATURES = slice(14, 22)
"""The hierarchy features (a model pickled before them, or fitted on a codebook whose hierarchy adds
nothing to the siblings, uses the other 14)."""
ANCESTOR_TOP = 3
"""Features 16-17 average the cosines of this many nearest examples in the subtree."""
WINDOW_FEATURE_NAMES = (
    "window_nearest",
    "window_prototype",
    "window_centroid",
    "window_nearest_rel",
    "window_prototype_rel",
)
N_WINDOW_FEATURES = len(WINDOW_FEATURE_NAMES)
_CHUNK = 2048  # segments scored at once in predict_proba (memory: chunk x codes x 23 floats)


class EvidenceSuggester(BaseSuggester):
    """Pooled evidence classifier with a coverage/precision-targeted abstention threshold.

    Parameters
    ----------
    codes : list of str
        Code names; the columns of ``Y`` and of ``predict_proba``.
    code_embeddings : ndarray of shape (n_codes, dim) or None
        One prototype vector per code (:func:`models.make_suggester` fills it from the codebook).
        ``None``: prototype features are 0 and a code without examples cannot be suggested.
    parents : mapping code -> parent name (or None), or None
        The codebook's hierarchy, uncodable codes included (a parent missing from it counts as
        top-level): codes with the same parent are siblings (feature 7); themes and categories give
        features 14-21; a codable parent can be suggested for its children (the category rule in the
        module docstring). :func:`models.make_suggester` fills it from the codebook.
    exclusive : bool, default False
        Mutually exclusive codebook: rows of ``predict_proba`` are normalised to sum to 1 and
        :meth:`suggest` returns one code. (The default suggester for exclusive codebooks is
        ``linear``; see :func:`models.default_suggester`.)
    min_coverage : float, default 0.95
        Share of coded segments that should get a suggestion. Sets, out of fold, the score threshold
        and ``source_share_``: given the segments' sources (``suggest_from_proba(..., groups=)``), the
        best ``ceil(source_share_ * n)`` of each source's ``n`` segments pass whatever their score,
        since a score threshold learnt on a few coded interviews does not carry over to a new one
        (see the module docstring).
    source_floor : float, default 0.0
        The per-source gate never adds a segment whose best score (after the category rule) is below
        this; 0: no floor (every source's best ``ceil(source_share_ * n)`` segments pass).
    target_precision : float or None, default None
        When set (> 0), the threshold is instead the lowest whose out-of-fold top-1 precision (share
        of suggested segments whose first code is one a coder gave) is at least this.
    n_splits : int, default 3
        Folds (grouped by source) for the out-of-fold evidence; fewer sources, fewer folds.
    prior_weight : float, default 5.0
        The definition counts like this many examples in feature 4.
    C : float, default 1.0
        Inverse regularisation of the pooled logistic regression.
    alternatives : bool, default True
        When a segment's best code reaches the threshold, list its top-k codes even if the 2nd and
        3rd do not (a coder sees alternatives, not one guess); False: only codes that reach it.

    Side information: ``groups`` (fit) gives the folds and the per-source coverage ranks;
    ``X_window`` (fit and predict, shape of ``X``): the vectors of each segment's window (features
    after the others; a model fitted with it needs it to predict); ``texts`` and ``X_prev`` are accepted and ignored.

    Attributes
    ----------
    classes_, thresholds_ (all equal), n_features_in_
    threshold_ : float, the common threshold
    source_share_ : float or None, the share of each source's best segments that get a suggestion
        whatever their score (``None``: only ``threshold_``; with ``target_precision``, or at cold start)
    uses_window_ : bool, fitted with ``X_window`` (5 window features more)
    uses_ancestors_ : bool, the hierarchy features 14-21 are used (22 features instead of 14)
    parent_children_ : list of ``(parent column, children's columns)``, the codable parents the
        category rule can suggest
    coverage_curve_ : dict of arrays ``threshold``, ``coverage`` (share of coded segments with a
        suggestion), ``precision`` (top-1 precision of the suggested segments), ``suggested`` (share of
        all segments with a suggestion), out of fold, thresholds descending
    cold_start_ : bool, True when fitted without any positive example
    temperature_ : float, the cold-start softmax temperature (None otherwise)
    notes_ : list of str, what ``fit`` had to decide (fewer folds, one source, cold start)
    """

    uses_code_embeddings: ClassVar[bool] = True

    def __init__(
        self,
        codes: Sequence[str],
        code_embeddings: npt.NDArray[np.floating] | None = None,
        parents: Mapping[str, str | None] | None = None,
        exclusive: bool = False,
        min_coverage: float = 0.95,
        target_precision: float | None = None,
        source_floor: float = 0.0,
        n_splits: int = 3,
        prior_weight: float = 5.0,
        C: float = 1.0,
        alternatives: bool = True,
    ) -> None:
        self.codes = codes
        self.code_embeddings = code_embeddings
        self.parents = parents
        self.exclusive = exclusive
        self.min_coverage = min_coverage
        self.target_precision = target_precision
        self.source_floor = source_floor
        self.n_splits = n_splits
        self.prior_weight = prior_weight
        self.C = C
        self.alternatives = alternatives

    # --- evidence -----------------------------------------------------------------------------
    def _base(
        self, X: npt.NDArray[np.float32], Y: npt.NDArray[np.int8], W: npt.NDArray[np.float32] | None = None
    ) -> dict[str, Any]:
        """What the features need from the labelled segments ``X``, ``Y`` (and their windows ``W``)."""
        pos = Y == 1
        coded = pos.any(axis=1)
        raw = pos.T.astype(np.float64) @ X.astype(np.float64)
        window: dict[str, Any] = {}
        if W is not None:
            raw_w = pos.T.astype(np.float64) @ W.astype(np.float64)
            window = {
                "window_examples": [W[pos[:, c]] for c in range(Y.shape[1])],
                "window_centroid": l2_normalize(raw_w.astype(np.float32)),
            }
        return window | {
            # the coded segments, and each code's examples as rows of them (hierarchy features)
            "X": X[coded],
            "rows": [np.flatnonzero(pos[coded, c]) for c in range(Y.shape[1])],
            "n_pos": pos.sum(axis=0).astype(np.int64),
            "examples": [X[pos[:, c]] for c in range(Y.shape[1])],
            "centroid": l2_normalize(raw.astype(np.float32)),
            "mix": l2_normalize(
                (self.prior_weight * self.proto_.astype(np.float64) + raw).astype(np.float32)
            ),
        }

    def _nearest(
        self,
        X: npt.NDArray[np.float32],
        examples: list[npt.NDArray[np.float32]],
        default: npt.NDArray[np.float32],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Per code, the cosine of each row of ``X`` to its nearest and 2nd-nearest example (``default``'s
        column for a code without examples; the nearest again for a code with one)."""
        near, second = default.copy(), default.copy()
        for c, E in enumerate(examples):
            if len(E) == 1:
                near[:, c] = second[:, c] = X @ E[0]
            elif len(E) > 1:
                S = X @ E.T
                top2 = np.partition(S, S.shape[1] - 2, axis=1)[:, -2:]
                near[:, c], second[:, c] = top2[:, 1], top2[:, 0]
        return near, second

    def _features(
        self, base: dict[str, Any], X: npt.NDArray[np.float32], W: npt.NDArray[np.float32] | None = None
    ) -> npt.NDArray[np.float32]:
        """Evidence of shape (n_segments, n_codes, 14), 22 with the hierarchy features (``uses_ancestors_``),
        and 5 more with the windows ``W`` (see the module docstring)."""
        n, m = X.shape[0], len(base["n_pos"])
        proto = X @ self.proto_.T
        near, second = self._nearest(X, base["examples"], proto)
        has = base["n_pos"] > 0
        centroid = np.where(has[None, :], X @ base["centroid"].T, proto)
        mix = X @ base["mix"].T
        sibling = near.copy()
        for cols in self._sibling_groups_:
            sibling[:, cols] = near[:, cols].max(axis=1, keepdims=True)
        uses_ancestors = getattr(self, "uses_ancestors_", False)  # a model pickled before them: False
        ancestors = self._ancestor_evidence(base, X, near) if uses_ancestors else []
        nb = N_FEATURES if uses_ancestors else ANCESTOR_FEATURES.start
        # one array for all the features (the window ones after the others): no concatenated copy
        F = np.empty((n, m, nb + (0 if W is None else N_WINDOW_FEATURES)), dtype=np.float32)
        for j, A in enumerate((near, second, proto, centroid, mix)):
            F[..., j] = A
        F[..., 5] = np.log1p(base["n_pos"])[None, :]
        F[..., 6] = has[None, :]
        F[..., 7] = sibling
        for j, A in enumerate((near, second, proto, centroid, mix, sibling)):
            F[..., 8 + j] = A - A.max(axis=1, keepdims=True)
        if uses_ancestors:
            for j, A in enumerate(ancestors):
                F[..., 14 + j] = A
                F[..., 18 + j] = A - A.max(axis=1, keepdims=True)
        if W is None:
            return F
        w_proto = W @ self.proto_.T
        w_near, _ = self._nearest(W, base["window_examples"], w_proto)
        w_centroid = np.where(has[None, :], W @ base["window_centroid"].T, w_proto)
        for j, A in enumerate((w_near, w_proto, w_centroid)):
            F[..., nb + j] = A
        for j, A in enumerate((w_near, w_proto)):
            F[..., nb + 3 + j] = A - A.max(axis=1, keepdims=True)
        return F

    def _sibling_groups(self, codes: list[str]) -> list[npt.NDArray[np.intp]]:
        if self.parents is None:
            return []
        by_parent: dict[str, list[int]] = {}
        for i, code in enumerate(codes):
            parent = self.parents.get(code)
            if parent is not None:
                by_parent.setdefault(parent, []).append(i)
        return [np.asarray(ix) for ix in by_parent.values() if len(ix) > 1]

    def _lineages(self, codes: list[str]) -> list[list[str]]:
        """Per code, itself and its ancestors, nearest first (from ``parents``; a parent missing from
        ``parents`` is taken as top-level)."""
        parents = self.parents or {}
        out = []
        for code in codes:
            line = [code]
            while (up := parents.get(line[-1])) is not None and up not in line:
                line.append(up)
            out.append(line)
        return out

    def _ancestor_groups(
        self, codes: list[str]
    ) -> tuple[list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]], ...]:
        """``(members, targets)`` pairs for the theme and the category features: the codes of the subtree
        of a top-level ancestor (of a parent) and the codes whose theme (category) it is. Pairs where
        both are one code, whose feature is then its own nearest cosine, are left out."""
        lines = self._lineages(codes)
        result = []
        for anchor in (lambda line: line[-1], lambda line: line[min(1, len(line) - 1)]):
            targets: dict[str, list[int]] = {}
            for i, line in enumerate(lines):
                targets.setdefault(anchor(line), []).append(i)
            pairs = []
            for node, tgt in targets.items():
                members = [j for j, line in enumerate(lines) if node in line]
                if len(members) > 1 or members != tgt:
                    pairs.append((np.asarray(members), np.asarray(tgt)))
            result.append(pairs)
        return tuple(result)

    def _ancestor_evidence(
        self, base: dict[str, Any], X: npt.NDArray[np.float32], near: npt.NDArray[np.float32]
    ) -> list[npt.NDArray[np.float32]]:
        """Features 14-17 (theme nearest, category nearest, theme top-3, category top-3), each of
        shape (n_segments, n_codes)."""
        own = near.copy()  # a code alone in its subtree: its own examples
        for c, E in enumerate(base["examples"]):
            if len(E):
                own[:, c] = _mean_top(X @ E.T, ANCESTOR_TOP)
        out = []
        for pairs in (self._theme_groups_, self._category_groups_):
            nearest, top = near.copy(), own.copy()
            for members, targets in pairs:
                nearest[:, targets] = near[:, members].max(axis=1, keepdims=True)
                rows = np.unique(np.concatenate([base["rows"][c] for c in members]))
                if len(rows):
                    top[:, targets] = _mean_top(X @ base["X"][rows].T, ANCESTOR_TOP)[:, None]
                else:
                    top[:, targets] = nearest[:, targets]
            out.append((nearest, top))
        (theme, theme_top), (category, category_top) = out
        return [theme, category, theme_top, category_top]

    def _parent_children(self, codes: list[str]) -> list[tuple[int, npt.NDArray[np.intp]]]:
        """``(parent column, its children's columns)`` for each code that is itself suggestible (codable)
        and has at least two suggestible children."""
        col = {code: i for i, code in enumerate(codes)}
        kids: dict[int, list[int]] = {}
        for i, code in enumerate(codes):
            parent = (self.parents or {}).get(code)
            if parent is not None and parent in col:
                kids.setdefault(col[parent], []).append(i)
        return [(p, np.asarray(ix)) for p, ix in kids.items() if len(ix) > 1]

    def lift_parents(self, P: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The category rule: on a segment where none of a codable parent's children reaches the
        threshold but their summed score beats the segment's best code, the parent scores that sum
        (at most 1), so it leads the suggestion (module docstring). ``P`` itself is not changed."""
        pairs = getattr(self, "parent_children_", [])  # a model pickled before the rule: none
        if not pairs or not len(P):
            return P
        out = P.copy()
        best_code = P.max(axis=1)
        for parent, children in pairs:
            total, best = P[:, children].sum(axis=1), P[:, children].max(axis=1)
            rows = (best < self.thresholds_[parent]) & (total > best_code)
            out[rows, parent] = np.maximum(P[rows, parent], np.minimum(total[rows], 1.0))
        return out

    def _n_base_features(self) -> int:
        """22, or 14 without the hierarchy features (fitted without them, or pickled before them)."""
        n_ancestor = ANCESTOR_FEATURES.stop - ANCESTOR_FEATURES.start
        return N_FEATURES if getattr(self, "uses_ancestors_", False) else N_FEATURES - n_ancestor

    def _ancestors_add_evidence(self, m: int) -> bool:
        """False when every code's theme and category subtree is its sibling group (a flat codebook, or
        codes under uncodable top-level categories): features 14-17 would repeat 0/8 or 7/13 exactly."""

        def spans(pairs: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]) -> list[frozenset[int]]:
            out = [frozenset([c]) for c in range(m)]
            for members, targets in pairs:
                for c in targets:
                    out[c] = frozenset(members.tolist())
            return out

        sibling = spans([(cols, cols) for cols in self._sibling_groups_])
        return spans(self._theme_groups_) != sibling or spans(self._category_groups_) != sibling

    # --- fit ----------------------------------------------------------------------------------
    def fit(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike,
        *,
        groups: Any = None,
        texts: Any = None,
        X_prev: Any = None,
        X_window: Any = None,
    ) -> EvidenceSuggester:
        """Out-of-fold evidence, the pooled classifier and the common threshold; returns self."""
        Xa, Ya = self._check_fit_input(X, Y, groups=groups, texts=texts, X_prev=X_prev, X_window=X_window)
        Wa = self._check_window(X_window, Xa.shape)
        codes = list(self.codes)
        n, m = Ya.shape
        self._check_settings()
        if self.code_embeddings is None:
            self.proto_ = np.zeros((m, Xa.shape[1]), dtype=np.float32)
        else:
            self.proto_ = np.asarray(self.code_embeddings, dtype=np.float32)
            if self.proto_.shape != (m, Xa.shape[1]):
                raise InputError(
                    f"EvidenceSuggester: code_embeddings has shape {self.proto_.shape} but codes and X need "
                    f"{(m, Xa.shape[1])}; embed the codebook with the same embedder as the segments"
                )
        self._sibling_groups_ = self._sibling_groups(codes)
        self._theme_groups_, self._category_groups_ = self._ancestor_groups(codes)
        self.uses_ancestors_ = self._ancestors_add_evidence(m)
        self.parent_children_ = self._parent_children(codes)
        self.classes_ = np.array(codes)
        self.n_features_in_ = Xa.shape[1]
        self.notes_: list[str] = []
        positive = Ya == 1
        self.cold_start_ = bool(not positive.any() or positive.all())
        self.temperature_: float | None = None
        self.stacker_: Any = None
        self.uses_window_ = Wa is not None and not self.cold_start_  # the cold start reads X alone
        self.source_share_: float | None = None
        if self.cold_start_:
            self.notes_.append("no coded segment to learn from: cold start (softmax over prototype cosines)")
            S = Xa @ self.proto_.T
            spread = float(np.median(S.std(axis=1))) if m > 1 else 0.0
            self.temperature_ = spread if spread > 1e-6 else 1.0
            P_oof = softmax(S, self.temperature_)
            coded = np.ones(n, dtype=bool)  # no coded segment: the gate covers the segments themselves
        else:
            P_oof = self._fit_stacker(Xa, Ya, groups, Wa)
            self.base_ = self._base(Xa, Ya, Wa)
            coded = positive.any(axis=1)
        if self.exclusive:
            P_oof = P_oof / P_oof.sum(axis=1, keepdims=True)
        self.coverage_curve_ = coverage_curve(P_oof, positive, coded)
        self.threshold_ = self._pick_threshold(P_oof, positive, coded)
        self.thresholds_ = np.full(m, self.threshold_, dtype=np.float64)
        if not self.cold_start_ and not self.target_precision and groups is not None:
            self.source_share_ = source_share(P_oof.max(axis=1), coded, np.asarray(groups), self.min_coverage)
        return self

    def _check_window(self, X_window: Any, shape: tuple[int, ...]) -> npt.NDArray[np.float32] | None:
        if X_window is None:
            return None
        W = np.asarray(X_window, dtype=np.float32)
        if W.shape != shape:
            raise InputError(f"EvidenceSuggester: X_window must have the shape of X {shape}, got {W.shape}")
        if not np.isfinite(W).all():
            raise InputError("EvidenceSuggester: X_window contains NaN or infinite values")
        return W

    def wants_window(self) -> bool:
        """True (the project pipeline then passes ``X_window``, each segment's window embedded) unless
        fitted without windows: a model pickled before them, or fitted without ``X_window``."""
        return bool(getattr(self, "uses_window_", "classes_" not in self.__dict__))

    def _check_settings(self) -> None:
        if not 0.0 < self.min_coverage <= 1.0:
            raise InputError(f"EvidenceSuggester: min_coverage must be in (0, 1], got {self.min_coverage}")
        if self.target_precision is not None and not 0.0 <= self.target_precision <= 1.0:
            raise InputError(
                f"EvidenceSuggester: target_precision must be in [0, 1] (0 or None: off), got {self.target_precision}"
            )
        if not 0.0 <= self.source_floor <= 1.0:
            raise InputError(
                f"EvidenceSuggester: source_floor must be in [0, 1] (0: no floor), got {self.source_floor}"
            )

    def _folds(self, n: int, groups: Any) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
        from sklearn.model_selection import GroupKFold, KFold

        g = np.arange(n) if groups is None else np.asarray(groups)
        n_groups = len(np.unique(g))
        if n_groups >= 2:
            k = min(self.n_splits, n_groups)
            if k < self.n_splits:
                self.notes_.append(f"{n_groups} sources: {k} folds instead of {self.n_splits}")
            return list(GroupKFold(n_splits=k).split(np.zeros(n), groups=g))
        if n >= 2:
            # one source: folds over its segments (neighbouring sentences share context, so the
            # threshold is a little optimistic); in-sample evidence would find every example itself
            k = min(self.n_splits, n)
            self.notes_.append(f"one source: {k} folds over its segments, not over sources")
            return list(KFold(n_splits=k).split(np.zeros(n)))
        self.notes_.append("one segment: in-sample evidence")
        idx = np.arange(n)
        return [(idx, idx)]

    def _fit_stacker(
        self,
        X: npt.NDArray[np.float32],
        Y: npt.NDArray[np.int8],
        groups: Any,
        W: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float64]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        n, m = Y.shape
        f = self._n_base_features() + (N_WINDOW_FEATURES if W is not None else 0)
        # The one (segments x codes x features) array the pooled regression is fitted on, and no full-size
        # copy of it: sklearn's StandardScaler.fit made a float64 one (twice its size) and the pipeline a
        # scaled one for the fit and another for the out-of-fold probabilities (a 3 GB suggest). Each
        # fold's evidence is still computed whole and the probabilities in one call, as before: a matrix
        # product's rows can differ in the last bit with the number of rows BLAS is given, and these are
        # to stay bit-identical.
        F = np.zeros((n, m, f), dtype=np.float32)
        for train, test in self._folds(n, groups):
            if W is None:
                F[test] = self._features(self._base(X[train], Y[train]), X[test])
            else:
                F[test] = self._features(self._base(X[train], Y[train], W[train]), X[test], W[test])
        y = (Y == 1).reshape(-1)
        F2 = F.reshape(-1, f)  # a view: F is scaled in place below
        block = _CHUNK * m
        scaler = fit_standard_scaler(F2, block)  # global column statistics, summed a block at a time
        for i in range(0, len(F2), block):  # elementwise: the same values as transforming F2 whole
            F2[i : i + block] = scaler.transform(F2[i : i + block])
        # what make_pipeline(StandardScaler(), LogisticRegression(...)).fit(F2, y) does, with the scaled
        # copy it would make written over F instead
        lr = LogisticRegression(C=self.C, max_iter=2000).fit(F2, y)
        self.stacker_ = make_pipeline(scaler, lr)
        return lr.predict_proba(F2)[:, 1].reshape(n, m).astype(np.float64)  # == self._stack(unscaled F)

    def _stack(self, F: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        n, m, f = F.shape
        return self.stacker_.predict_proba(F.reshape(-1, f))[:, 1].reshape(n, m).astype(np.float64)

    def _pick_threshold(
        self, P: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_], coded: npt.NDArray[np.bool_]
    ) -> float:
        if self.target_precision:
            curve = self.coverage_curve_
            ok = np.flatnonzero(curve["precision"] >= self.target_precision)
            if len(ok):
                return float(curve["threshold"][ok[-1]])
            self.notes_.append(
                f"no threshold reaches precision {self.target_precision} out of fold: suggesting only the best"
            )
            return float(P.max())
        top = P.max(axis=1)[coded]
        return float(np.quantile(top, 1.0 - self.min_coverage)) if len(top) else 0.0

    # --- predict ------------------------------------------------------------------------------
    def suggest_from_proba(
        self, P: npt.NDArray[np.floating], k: int = 3, *, groups: Any = None
    ) -> Suggestions:
        """Nothing for a segment whose best score is below its threshold; otherwise its top-``k``
        codes (with ``alternatives``) or those of them that reach it. One code when exclusive.

        ``groups`` (the source of each row of ``P``): the ``ceil(source_share_ * n)`` best segments of
        each source of ``n`` segments pass too, whatever their score if it reaches ``source_floor``
        (without ``alternatives``, with their best code)."""
        kk = 1 if self.exclusive else k
        P = np.asarray(P, dtype=np.float64)
        if not self.exclusive:
            P = self.lift_parents(P)
        ranked = top_k_above_threshold(P, np.full(P.shape[1], -np.inf), kk)
        t = self.thresholds_
        passes = np.array([bool(row) and row[0][1] >= t[row[0][0]] for row in ranked], dtype=bool)
        share = getattr(self, "source_share_", None)  # a model pickled before it existed: threshold only
        if groups is not None and share is not None and len(P):
            top = P.max(axis=1)
            floor = getattr(self, "source_floor", 0.0)  # a model pickled before the setting: no floor
            passes |= best_per_group(top, np.asarray(groups), share) & (top >= floor)
        if self.alternatives:
            return [row if ok else [] for row, ok in zip(ranked, passes, strict=True)]
        return [
            ([(c, sc) for c, sc in row if sc >= t[c]] or row[:1]) if ok else []
            for row, ok in zip(ranked, passes, strict=True)
        ]

    def predict_proba(
        self, X: npt.ArrayLike, *, texts: Any = None, X_prev: Any = None, X_window: Any = None
    ) -> npt.NDArray[np.float64]:
        """Probabilities, shape (n_segments, n_codes) (rows sum to 1 when exclusive or at cold start).

        ``X_window`` is required when the model was fitted with it (and ignored otherwise)."""
        Xa = self._check_predict_input(X, texts=texts, X_prev=X_prev, X_window=X_window)
        if self.cold_start_:
            assert self.temperature_ is not None
            return softmax(Xa @ self.proto_.T, self.temperature_)
        W = None
        if getattr(self, "uses_window_", False):  # a model pickled before windows: no window features
            if X_window is None:
                raise InputError(
                    "EvidenceSuggester: fitted with X_window (each segment's window); pass X_window= to predict too"
                )
            W = self._check_window(X_window, Xa.shape)
        parts = [
            self._stack(
                self._features(self.base_, Xa[i : i + _CHUNK], None if W is None else W[i : i + _CHUNK])
            )
            for i in range(0, len(Xa), _CHUNK)
        ]
        P = np.concatenate(parts) if parts else np.zeros((0, len(self.classes_)))
        if self.exclusive:
            P = P / P.sum(axis=1, keepdims=True)
        return P


def fit_standard_scaler(F: npt.NDArray[np.float32], block: int) -> Any:
    """``StandardScaler().fit(F)``, bit for bit, without its full-size temporaries (a float64 copy of
    ``F`` minus the mean, a NaN mask and a float32 copy of it): the column sums it takes over all rows
    are accumulated ``block`` rows at a time, in the same row order (numpy sums a C-ordered array over
    axis 0 row after row, so carrying the running sum as the first row of the next block adds the same
    numbers in the same order). The statistics stay global: every row counts in every column's mean
    and variance. With a NaN or infinite value, sklearn's own ``fit`` (which keeps NaNs apart or
    refuses infinities) is used. The formulas are sklearn's ``_incremental_mean_and_var`` and
    ``StandardScaler.partial_fit`` for a first call without sample weights; a unit test compares every
    attribute with sklearn's fit."""
    from sklearn.preprocessing import StandardScaler

    try:  # private helpers: a scikit-learn that moved them gets its own fit (the same numbers, more memory)
        from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature
    except ImportError:  # pragma: no cover - scikit-learn 1.5-1.9 have both
        return StandardScaler().fit(F)

    n, f = F.shape
    if n < 2 or not all(np.isfinite(F[i : i + block]).all() for i in range(0, n, block)):
        return StandardScaler().fit(F)

    def column_sum(blocks: Any) -> npt.NDArray[np.float64]:
        total: npt.NDArray[np.float64] | None = None
        for B in blocks:
            total = (
                B.sum(axis=0, dtype=np.float64)
                if total is None
                else np.concatenate([total[None], B]).sum(axis=0)
            )
        assert total is not None
        return total

    def centred(T: npt.NDArray[np.float64], squared: bool) -> Any:
        for i in range(0, n, block):
            D = F[i : i + block] - T
            if squared:
                D **= 2
            yield D

    scaler = StandardScaler().fit(F[:2])  # sklearn's bookkeeping (n_features_in_, ...); statistics below
    last_sample_count = np.zeros(f, dtype=np.float64)
    last_mean, last_variance = 0.0, 0.0
    last_sum = last_mean * last_sample_count
    new_sum = column_sum(F[i : i + block].astype(np.float64) for i in range(0, n, block))
    new_sample_count = n - np.zeros(f, dtype=np.float64)  # no NaN: every row counts
    updated_sample_count = last_sample_count + new_sample_count
    updated_mean = (last_sum + new_sum) / updated_sample_count
    T = new_sum / new_sample_count
    correction = column_sum(centred(T, squared=False))
    new_unnormalized_variance = column_sum(centred(T, squared=True))
    new_unnormalized_variance -= correction**2 / new_sample_count
    last_unnormalized_variance = last_variance * last_sample_count
    with np.errstate(divide="ignore", invalid="ignore"):
        last_over_new_count = last_sample_count / new_sample_count
        updated_unnormalized_variance = (
            last_unnormalized_variance
            + new_unnormalized_variance
            + last_over_new_count / updated_sample_count * (last_sum / last_over_new_count - new_sum) ** 2
        )
    zeros = last_sample_count == 0
    updated_unnormalized_variance[zeros] = new_unnormalized_variance[zeros]
    scaler.mean_ = updated_mean
    scaler.var_ = updated_unnormalized_variance / updated_sample_count
    scaler.n_samples_seen_ = updated_sample_count
    if np.max(scaler.n_samples_seen_) == np.min(scaler.n_samples_seen_):
        scaler.n_samples_seen_ = scaler.n_samples_seen_[0]
    constant = _is_constant_feature(scaler.var_, scaler.mean_, scaler.n_samples_seen_)
    scaler.scale_ = _handle_zeros_in_scale(np.sqrt(scaler.var_), copy=False, constant_mask=constant)
    return scaler


def _mean_top(S: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """Per row of ``S``, the mean of its ``k`` largest values (all of them when it has fewer).

    >>> round(float(_mean_top(np.array([[0.1, 0.9, 0.5, 0.7]]), 3)[0]), 3)
    0.7
    """
    if S.shape[1] <= k:
        return S.mean(axis=1)
    return np.partition(S, S.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def source_share(
    top: npt.NDArray[np.floating],
    coded: npt.NDArray[np.bool_],
    groups: npt.NDArray[Any],
    min_coverage: float,
) -> float | None:
    """The share of a source's best segments (by top-1 score ``top``) that holds ``min_coverage`` of
    its coded segments: per coded segment, the share of its source's segments scoring at least as
    high; their ``min_coverage`` quantile (the higher value). ``None`` when nothing is coded.

    >>> top = np.array([0.9, 0.1, 0.5, 0.2, 0.8, 0.7])
    >>> coded = np.array([True, False, True, False, False, True])
    >>> g = np.array(["a", "a", "a", "a", "b", "b"])
    >>> source_share(top, coded, g, 1.0), source_share(top, coded, g, 0.5)
    (1.0, 0.5)
    """
    ranks = []
    for name in np.unique(groups[coded]):
        rows = groups == name
        t = top[rows]
        ranks += [float((t >= x).sum()) / len(t) for x in top[rows & coded]]
    if not ranks:
        return None
    return float(np.quantile(np.asarray(ranks), min_coverage, method="higher"))


def best_per_group(
    top: npt.NDArray[np.floating], groups: npt.NDArray[Any], share: float
) -> npt.NDArray[np.bool_]:
    """True for the ``ceil(share * n)`` highest ``top`` of each group of ``n`` rows (ties: earlier row).

    >>> best_per_group(np.array([0.1, 0.4, 0.3, 0.9, 0.2]), np.array(["a", "a", "a", "b", "b"]), 0.5).tolist()
    [False, True, True, True, False]
    """
    out = np.zeros(len(top), dtype=bool)
    for name in np.unique(groups):
        rows = np.flatnonzero(groups == name)
        n_best = int(np.ceil(share * len(rows) - 1e-9))
        if n_best:
            order = rows[np.argsort(-top[rows], kind="stable")]
            out[order[:n_best]] = True
    return out
