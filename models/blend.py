"""The default suggester: prototypes while a code has few examples, the classifier as they grow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from models.base import BaseSuggester
from models.linear import LinearSuggester
from models.prototype import PrototypeSuggester


class BlendSuggester(BaseSuggester):
    """Per-code mixture of a prototype suggester and a supervised classifier.

    For code ``c`` with ``n_c`` positives the classifier's weight is ``w_c = n_c / (n_c + n_ramp)``
    (0 with no example, 1/2 at ``n_ramp`` examples) and

        P[:, c] = (1 - w_c) * P_prototype[:, c] + w_c * P_classifier[:, c]
        thresholds_[c] = (1 - w_c) * t_prototype[c] + w_c * t_classifier[c]

    (in exclusive mode each row of ``P`` is then renormalised to sum to one).

    A code the classifier could not learn (too few positives) keeps the prototype alone. With no
    human coding at all the blend is the prototype suggester (cold start).

    Parameters
    ----------
    codes : list of str
    code_embeddings : ndarray of shape (n_codes, dim) or None
        Passed to the default prototype suggester (see ``PrototypeSuggester.from_codebook`` and
        :func:`models.prototype.embed_prototypes`).
    exclusive : bool, default False
    n_ramp : float, default 20.0
    prototype : suggester or None
        Unfitted suggester for the zero-shot part; default ``PrototypeSuggester(codes,
        code_embeddings, exclusive)``. It is cloned in ``fit``.
    classifier : suggester or None
        Unfitted supervised suggester; default ``LinearSuggester(codes, exclusive,
        random_state=random_state)``. It is cloned in ``fit``.
    random_state : int, RandomState or None

    Side information (``groups``, ``texts``, ``X_prev``) is passed to the classifier.
    """

    uses_code_embeddings: ClassVar[bool] = True

    def __init__(
        self,
        codes: Sequence[str],
        code_embeddings: npt.NDArray[np.floating] | None = None,
        exclusive: bool = False,
        n_ramp: float = 20.0,
        prototype: BaseSuggester | None = None,
        classifier: BaseSuggester | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.codes = codes
        self.code_embeddings = code_embeddings
        self.exclusive = exclusive
        self.n_ramp = n_ramp
        self.prototype = prototype
        self.classifier = classifier
        self.random_state = random_state

    def fit(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike,
        *,
        groups: Any = None,
        texts: Sequence[str] | None = None,
        X_prev: Any = None,
    ) -> BlendSuggester:
        """Fit both parts; the classifier only when some code has enough positives."""
        from sklearn.base import clone

        Xa, Ya = self._check_fit_input(X, Y, groups=groups, texts=texts, X_prev=X_prev)
        codes = list(self.codes)
        proto = (
            PrototypeSuggester(codes, self.code_embeddings, exclusive=self.exclusive)
            if self.prototype is None
            else clone(self.prototype)
        )
        clf = (
            LinearSuggester(codes, exclusive=self.exclusive, random_state=self.random_state)
            if self.classifier is None
            else clone(self.classifier)
        )
        self.prototype_ = proto.fit(Xa, Ya)
        n_pos = (Ya == 1).sum(axis=0)
        self.n_positives_ = n_pos.astype(np.int64)
        learnable = int((n_pos > 0).sum()) >= (2 if self.exclusive else 1) and (Ya == 1).any()
        self.classifier_: BaseSuggester | None = None
        w = np.zeros(len(codes))
        if learnable:
            self.classifier_ = clf.fit(Xa, Ya, groups=groups, texts=texts, X_prev=X_prev)
            w = (n_pos / (n_pos + self.n_ramp)).astype(np.float64)
            if isinstance(clf, LinearSuggester) and not self.exclusive:
                # codes the classifier abstains on (too few positives) keep the prototype alone
                w = np.where([e is None for e in clf.estimators_], 0.0, w).astype(np.float64)
        self.weights_ = w
        t_clf = self.classifier_.thresholds_ if self.classifier_ is not None else np.zeros(len(codes))
        self.thresholds_ = np.asarray((1 - w) * self.prototype_.thresholds_ + w * t_clf, dtype=np.float64)
        self.classes_ = np.array(codes)
        self.n_features_in_ = Xa.shape[1]
        return self

    def predict_proba(
        self, X: npt.ArrayLike, *, texts: Sequence[str] | None = None, X_prev: Any = None
    ) -> npt.NDArray[np.float64]:
        """Blended probabilities, shape (n_segments, n_codes)."""
        Xa = self._check_predict_input(X, texts=texts, X_prev=X_prev)
        P = self.prototype_.predict_proba(Xa)
        if self.classifier_ is None:
            return P
        Q = self.classifier_.predict_proba(Xa, texts=texts, X_prev=X_prev)
        B = (1 - self.weights_) * P + self.weights_ * Q
        if self.exclusive:  # per-code weights break the sum to one: renormalise
            B /= np.maximum(B.sum(axis=1, keepdims=True), 1e-12)
        return B
