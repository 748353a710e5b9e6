"""The sentence-transformers (torch) embedding backend."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed.base import PROGRESS_MIN_TEXTS, FloatMatrix
from pipeline.embed.model_dir import _INSTALL_HINT, model_dir_digest, model_label
from pipeline.errors import InputError


class SentenceTransformerEmbedder:
    """A local sentence-transformers model folder, loaded offline, once, on first use.

    Parameters
    ----------
    model_path : Path
        A sentence-transformers model folder (see :func:`resolve_model_dir`).
    device : str
        Torch device, ``"cpu"`` by default.
    batch_size : int
        Texts per forward pass.
    progress : bool
        Show a progress bar for inputs of at least :data:`PROGRESS_MIN_TEXTS` texts.
    """

    def __init__(
        self, model_path: Path | str, *, device: str = "cpu", batch_size: int = 32, progress: bool = True
    ) -> None:
        self.model_path = Path(model_path)
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        if not self.model_path.is_dir():
            raise InputError(f"embedding model folder {self.model_path} does not exist; {_INSTALL_HINT}")
        if batch_size < 1:
            raise InputError(f"embedding batch_size must be at least 1, got {batch_size}")
        self._model: Any = None
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = f"st:{model_label(self.model_path)}:{model_dir_digest(self.model_path)}"
        return self._fingerprint

    @property
    def languages(self) -> tuple[str, ...] | None:
        """The languages the model card declares (``None``: any); see :mod:`pipeline.embed.languages`."""
        from pipeline.embed.model_dir import model_languages

        return model_languages(self.model_path)

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def load(self) -> None:
        """Load the model now (it is otherwise loaded on first use)."""
        self._load()

    def __getstate__(self) -> dict[str, Any]:
        # picklable for other processes (a Dask worker): the copy loads its own model on first use
        return {**self.__dict__, "_model": None}

    def _load(self) -> Any:
        if self._model is None:
            # Belt and braces: the folder is local, and the hub client must not even try.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
        return self._model

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts`` in batches.

        Returns
        -------
        ndarray of shape (n_texts, dim), float32, rows of unit length.
        """
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        X = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.progress and len(texts) >= PROGRESS_MIN_TEXTS,
        )
        return np.asarray(X, dtype=np.float32)
