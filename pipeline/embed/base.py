"""Sentence embeddings: the :class:`Embedder` protocol, :func:`l2_normalize`, and the model-free
:class:`HashingEmbedder` for tests.

Every embedder returns L2-normalised float32 vectors of shape ``(n_texts, dim)`` and has a
``fingerprint`` that changes whenever its vectors would (model, version, backend), used as the
embedding cache key together with the hash of the normalised text. ``load()`` loads the model now
(a no-op where there is nothing to load); ``encode`` loads it on first use otherwise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pipeline.text import normalize

FloatMatrix = npt.NDArray[np.float32]


_WORD = re.compile(r"\w+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this embedder makes (model + backend + version)."""
        ...

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    def load(self) -> None:
        """Load the model now (a no-op when there is nothing to load); ``encode`` loads it otherwise."""
        ...

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``.

        Returns
        -------
        ndarray of shape (n_texts, dim), float32, each row of unit length (zero rows stay zero).
        """
        ...


def l2_normalize(X: npt.NDArray[np.floating]) -> FloatMatrix:
    """Rows of ``X`` scaled to unit length (zero rows stay zero), as float32.

    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (X / norms).astype(np.float32, copy=False)


class HashingEmbedder:
    """Deterministic, model-free bag-of-words embedder for fast tests.

    Words (lower-cased, normalised) and word bigrams are hashed into ``dim`` buckets with a sign;
    texts sharing words get similar vectors. No randomness, no downloads.

    >>> e = HashingEmbedder(dim=64)
    >>> v = e.encode(["budget shortage", "budget shortage", "pilot rollout"])
    >>> v.shape, v.dtype.name, bool(np.allclose(v[0], v[1]))
    ((3, 64), 'float32', True)
    """

    languages: tuple[str, ...] | None = None  # any: words are hashed whatever their language

    def __init__(self, dim: int = 256) -> None:
        self.dim_ = dim

    @property
    def dim(self) -> int:
        return self.dim_

    @property
    def fingerprint(self) -> str:
        return f"hashing-v2-{self.dim_}"

    def load(self) -> None:
        """Nothing to load."""

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.zeros((len(texts), self.dim_), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(normalize(text).lower())
            feats = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
                out[i, h % self.dim_] += 1.0 if (h >> 63) & 1 else -1.0
        return l2_normalize(out)


#: Inputs at least this long get a progress bar (when ``progress=True``).
PROGRESS_MIN_TEXTS = 256
