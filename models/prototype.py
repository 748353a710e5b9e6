"""Zero-shot suggester: cosine similarity to one prototype vector per code.

A code's prototype is the mean embedding of its name, description, inclusion criteria and examples
(:func:`prototype_inputs`). It needs no human coding at all: the cold start of every new project.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from models.base import BaseSuggester, sigmoid, softmax
from pipeline.domain import Codebook
from pipeline.embed.base import Embedder, l2_normalize
from pipeline.errors import InputError


def prototype_inputs(codebook: Codebook, hierarchy: Codebook | None = None) -> list[list[str]]:
    """Texts that describe each code, in codebook order.

    Per code: the name with ``-`` and ``_`` as spaces, then the description, the inclusion criteria
    and each example, skipping empty ones. The exclusion criteria are left out on purpose: embedding
    "not X" lands close to X. A code with neither description nor inclusion criteria but a parent is
    also described by its parent's name and by ``"parent: name"`` (a bare name like "awe" says little;
    under "feelings" it says more). Parents are looked up in ``hierarchy`` (default: ``codebook``), so a
    codebook of codable codes can pass the full codebook whose categories are not codable.

    >>> from pipeline.domain import Code
    >>> prototype_inputs(Codebook([Code("phased-design", "Pilots first.", examples=["We tried it in two provinces."])]))
    [['phased design', 'Pilots first.', 'We tried it in two provinces.']]
    >>> prototype_inputs(Codebook([Code("feelings"), Code("awe", parent="feelings")]))
    [['feelings'], ['awe', 'feelings', 'feelings: awe']]
    """
    known = {c.name for c in (hierarchy or codebook).codes}
    out = []
    for code in codebook.codes:
        name = _readable(code.name)
        texts = [name, code.description, code.inclusion]
        if (
            not (code.description or "").strip()
            and not (code.inclusion or "").strip()
            and code.parent in known
        ):
            parent = _readable(code.parent or "")
            texts += [parent, f"{parent}: {name}"]
        texts += list(code.examples)
        out.append([t.strip() for t in texts if t and t.strip()])
    return out


def _readable(name: str) -> str:
    return name.replace("-", " ").replace("_", " ").strip()


def embed_prototypes(texts_per_code: Sequence[Sequence[str]], embedder: Embedder) -> npt.NDArray[np.float32]:
    """One unit vector per code: the normalised mean of the embeddings of its texts.

    Returns
    -------
    ndarray of shape (n_codes, dim), float32 (a code with no text gets a zero row).
    """
    flat = [t for texts in texts_per_code for t in texts]
    E = embedder.encode(flat) if flat else np.zeros((0, embedder.dim), dtype=np.float32)
    out = np.zeros((len(texts_per_code), embedder.dim), dtype=np.float32)
    pos = 0
    for i, texts in enumerate(texts_per_code):
        if texts:
            out[i] = E[pos : pos + len(texts)].mean(axis=0)
        pos += len(texts)
    return l2_normalize(out)


class PrototypeSuggester(BaseSuggester):
    """Similarity of each segment to each code's prototype, turned into a probability.

    Parameters
    ----------
    codes : list of str
        Code names; the columns of ``Y`` and of ``predict_proba``.
    code_embeddings : ndarray of shape (n_codes, dim) or None
        One prototype vector per code (see :meth:`from_codebook`). ``None``: prototypes come from the
        positive examples in ``fit`` alone.
    exclusive : bool, default False
        Mutually exclusive codebook: probabilities are a softmax over codes (rows sum to 1) and
        :meth:`suggest` returns the argmax only.
    center : float, default 0.2
        Multi-label calibration before any data: ``p = sigmoid((cos - center) / temperature)``.
        With MiniLM a close paraphrase of a definition scores cos 0.4-0.6, a looser one 0.2-0.3 and
        an unrelated sentence -0.1-0.3: the cold-start default leans to recall (coders reject, and
        rejections move the prototypes away); data replaces it (``min_calibration_positives``).
    temperature : float, default 0.05
        Scale of the similarity (also the softmax temperature in exclusive mode).
    threshold : float, default 0.5
        Suggest a code only when its probability is at least this. In exclusive mode the threshold
        is ``min(threshold, 1 / n_codes)``, so the argmax is always suggested by default.
    prior_weight : float, default 5.0
        In ``fit``, a code's prototype becomes ``normalize(prior_weight * e_code + sum(x_pos) -
        rejection_weight * sum(x_rejected))``: the definition counts like ``prior_weight`` examples,
        so a code's own data takes over as its examples grow.
    rejection_weight : float, default 0.5
        Weight of a rejected (``-1``) segment, pushed away from the prototype.
    min_calibration_positives : int, default 20
        With at least this many positives in total, ``fit`` replaces ``center``/``temperature`` by a
        logistic regression of the label on the cosine, pooled over codes (Platt scaling).

    Side information ``groups``, ``texts`` and ``X_prev`` is accepted and ignored.
    """

    uses_code_embeddings: ClassVar[bool] = True

    def __init__(
        self,
        codes: Sequence[str],
        code_embeddings: npt.NDArray[np.floating] | None = None,
        exclusive: bool = False,
        center: float = 0.2,
        temperature: float = 0.05,
        threshold: float = 0.5,
        prior_weight: float = 5.0,
        rejection_weight: float = 0.5,
        min_calibration_positives: int = 20,
    ) -> None:
        self.codes = codes
        self.code_embeddings = code_embeddings
        self.exclusive = exclusive
        self.center = center
        self.temperature = temperature
        self.threshold = threshold
        self.prior_weight = prior_weight
        self.rejection_weight = rejection_weight
        self.min_calibration_positives = min_calibration_positives

    @classmethod
    def from_codebook(cls, codebook: Codebook, embedder: Embedder, **params: Any) -> PrototypeSuggester:
        """A suggester whose prototypes are the embedded :func:`prototype_inputs` of ``codebook``.

        The embedder is used here only; the suggester does not keep it (it pickles small).
        """
        emb = embed_prototypes(prototype_inputs(codebook), embedder)
        return cls(codes=codebook.names(), code_embeddings=emb, **params)

    def fit(
        self,
        X: npt.ArrayLike,
        Y: npt.ArrayLike | None = None,
        *,
        groups: Any = None,
        texts: Any = None,
        X_prev: Any = None,
    ) -> PrototypeSuggester:
        """Set the prototypes, refined with the positive and rejected examples in ``Y`` if any.

        ``Y=None`` (or all zeros) is the cold start: prototypes are the code embeddings alone.
        """
        codes = self._check_codes()
        if Y is None:
            Y = np.zeros((np.asarray(X).shape[0], len(codes)), dtype=np.int8)
        Xa, Ya = self._check_fit_input(X, Y, groups=groups, texts=texts, X_prev=X_prev)
        dim = Xa.shape[1]
        if self.code_embeddings is None:
            base = np.zeros((len(codes), dim), dtype=np.float64)
        else:
            base = np.asarray(self.code_embeddings, dtype=np.float64)
            if base.shape != (len(codes), dim):
                raise InputError(
                    f"PrototypeSuggester: code_embeddings has shape {base.shape} but codes and X need "
                    f"{(len(codes), dim)}; embed the codebook with the same embedder as the segments"
                )
        pos = (Ya == 1).astype(np.float64)
        rej = (Ya == -1).astype(np.float64)
        raw = self.prior_weight * base + pos.T @ Xa - self.rejection_weight * (rej.T @ Xa)
        self.prototypes_ = l2_normalize(raw)
        self._raw = raw  # for the leave-one-out similarities of calibration; not kept after fit
        self.classes_ = np.array(codes)
        self.n_features_in_ = dim
        self.n_positives_ = pos.sum(axis=0).astype(np.int64)
        self.slope_, self.intercept_ = 1.0 / self.temperature, -self.center / self.temperature
        self.calibrated_ = False
        if not self.exclusive and int(self.n_positives_.sum()) >= self.min_calibration_positives:
            self._calibrate(Xa, Ya)
        n = len(codes)
        t = self.threshold if not self.exclusive else min(self.threshold, 1.0 / n)
        if self.calibrated_:
            # calibrated probabilities of a rare code stay low; decide where F1 on the data is best
            t = min(t, self._f1_threshold(Xa, Ya))
        self.thresholds_ = np.full(n, t, dtype=np.float64)
        del self._raw
        return self

    def _loo_similarity(self, X: npt.NDArray[np.float32], Y: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
        """Cosine of each training segment to each prototype built *without* that segment.

        A segment's own contribution makes its prototype look closer than on new interviews;
        calibrating and choosing thresholds on these leave-one-out similarities keeps them honest.
        ``raw_c - a x_i`` with ``a = pos - rejection_weight * rej``, all in closed form.
        """
        Xd = X.astype(np.float64)
        a = (Y == 1).astype(np.float64) - self.rejection_weight * (Y == -1).astype(np.float64)
        D = Xd @ self._raw.T
        xx = (Xd * Xd).sum(axis=1, keepdims=True)
        rn = (self._raw * self._raw).sum(axis=1)[None, :]
        norm2 = np.maximum(rn - 2 * a * D + a * a * xx, 1e-12)
        return (D - a * xx) / np.sqrt(norm2)

    def _f1_threshold(self, X: npt.NDArray[np.float32], Y: npt.NDArray[np.int8]) -> float:
        from models.linear import best_f1_threshold

        P = sigmoid(self.slope_ * self._loo_similarity(X, Y) + self.intercept_)
        return max(best_f1_threshold(P.ravel(), (Y == 1).ravel()), 0.05)

    def _calibrate(self, X: npt.NDArray[np.float32], Y: npt.NDArray[np.int8]) -> None:
        from sklearn.linear_model import LogisticRegression

        S = self._loo_similarity(X, Y)
        s, y = S.ravel()[:, None], (Y == 1).ravel()
        if y.all() or not y.any():
            return
        lr = LogisticRegression(C=100.0).fit(s, y)
        self.slope_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        self.calibrated_ = True

    def similarity(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Cosine similarity of each segment to each prototype, shape (n_segments, n_codes)."""
        Xa = self._check_predict_input(X)
        return Xa @ self.prototypes_.T

    def predict_proba(
        self, X: npt.ArrayLike, *, texts: Any = None, X_prev: Any = None
    ) -> npt.NDArray[np.float64]:
        """Calibrated probabilities, shape (n_segments, n_codes)."""
        self._check_side(np.asarray(X).shape[0], texts=texts, X_prev=X_prev)
        S = self.similarity(X)
        if self.exclusive:
            return softmax(S, self.temperature)
        return sigmoid(self.slope_ * S + self.intercept_)
