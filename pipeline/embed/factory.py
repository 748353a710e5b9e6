"""Embedders by name: ``make_embedder("sentence-transformers:PATH" | "onnx:PATH" | "hashing" ...)``,
wrapped in the embedding cache when a cache folder is given. The one place that knows every backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.embed.base import Embedder, HashingEmbedder
from pipeline.embed.model_dir import resolve_model_dir
from pipeline.embed.sentence_transformers import SentenceTransformerEmbedder
from pipeline.errors import ConfigError, InputError

if TYPE_CHECKING:
    from pipeline.embed.onnx import Quantize


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


#: A folder for ONNX exports shared by every project (default: see :func:`onnx_export_root`).
#: An export is named by its source model's fingerprint and recipe, so sharing never mixes models.
ONNX_CACHE_ENV = "QUALFLOW_ONNX_CACHE"


def user_onnx_cache() -> Path:
    """Where the packaged model's ONNX export is kept for every project of this user:
    ``$XDG_CACHE_HOME/qualflow/onnx`` (default ``~/.cache/qualflow/onnx``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qualflow" / "onnx"


def onnx_export_root(model_dir: Path, cache_dir: Path | None) -> Path | None:
    """The folder that keeps the ONNX export of ``model_dir`` (``None``: none can be had).

    ``$QUALFLOW_ONNX_CACHE`` when set (a test suite, a benchmark's fresh project per fold). Else the
    packaged model (a public model, the default) is exported once per user (:func:`user_onnx_cache`),
    so a new project does not pay the export (10-15 s, 0.9 GB) again; any other model, a team's own or
    one fine-tuned on the interviews, stays in the project's ``.qualflow/onnx`` (``cache_dir``), never
    outside it. The user folder falls back to the project's when it cannot be created.
    """
    from pipeline.embed.model_dir import packaged_model_dir

    shared = os.environ.get(ONNX_CACHE_ENV)
    if shared:
        return Path(shared).expanduser()
    try:
        packaged: Path | None = packaged_model_dir().resolve()
    except ConfigError:  # the package is missing: then this is not it
        packaged = None
    if model_dir.resolve() == packaged:
        user = user_onnx_cache()
        try:
            user.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        else:
            if os.access(user, os.W_OK):
                return user
    return None if cache_dir is None else cache_dir / "onnx"


#: The ONNX backends and how each exports a sentence-transformers folder: ``onnx-fp32`` in float32 (the
#: default of new projects since 2026-12-02: torch's vectors to float precision, so the same AnnoMI κ,
#: at torch's speed or a little more and 0.4x its memory), ``onnx`` int8-quantised (1.6-1.7x torch's
#: speed; 0.008-0.012 lower AnnoMI κ than torch with the default suggester, docs/benchmarks.md).
ONNX_BACKENDS: dict[str, Quantize] = {"onnx": "int8", "onnx-fp32": "none"}


def _make_onnx(arg: str, opts: EmbedderOptions, backend: str = "onnx") -> Embedder:
    from pipeline.embed.onnx import OnnxEmbedder, ensure_onnx_export, is_onnx_export

    path = Path(arg).expanduser()
    if not path.is_absolute() and opts.base_dir is not None:
        path = opts.base_dir / path
    if arg and is_onnx_export(path):
        return OnnxEmbedder(path, batch_size=opts.batch_size, progress=opts.progress)
    model_dir = resolve_model_dir(arg or "minilm", opts.base_dir)
    root = onnx_export_root(model_dir, opts.cache_dir)
    if root is None:
        raise ConfigError(
            f"embedding model '{backend}:{arg}' needs a folder to keep its ONNX export: open it from a "
            "project (it uses <project>/.qualflow/onnx) or run `qualflow models export-onnx --out DIR` and "
            "use 'onnx:DIR'"
        )
    onnx_dir = ensure_onnx_export(model_dir, root, ONNX_BACKENDS[backend])
    return OnnxEmbedder(onnx_dir, batch_size=opts.batch_size, progress=opts.progress)


def _make_onnx_fp32(arg: str, opts: EmbedderOptions) -> Embedder:
    return _make_onnx(arg, opts, backend="onnx-fp32")


#: Backend name -> factory(argument after the colon, options). The one place backends are named.
EMBEDDER_BACKENDS: dict[str, Callable[[str, EmbedderOptions], Embedder]] = {
    "hashing": _make_hashing,
    "onnx": _make_onnx,
    "onnx-fp32": _make_onnx_fp32,
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
    pipeline.errors.InputError: unknown embedding model 'bert'; use 'minilm', or BACKEND[:MODEL] with BACKEND one of ['hashing', 'onnx', 'onnx-fp32', 'sentence-transformers'] ...
    """
    spec = EMBEDDER_ALIASES.get(spec.strip(), spec.strip())
    backend, _, arg = spec.partition(":")
    if backend not in EMBEDDER_BACKENDS:
        raise InputError(
            f"unknown embedding model {spec!r}; use {', '.join(repr(a) for a in EMBEDDER_ALIASES)}, or "
            f"BACKEND[:MODEL] with BACKEND one of {sorted(EMBEDDER_BACKENDS)} "
            "(e.g. 'onnx-fp32:minilm', 'sentence-transformers:/path/to/folder', 'hashing:256')"
        )
    return backend, arg


#: The backends a fine-tuned encoder can run on (both read a sentence-transformers folder).
FINE_TUNE_BACKENDS: tuple[str, ...] = (*ONNX_BACKENDS, "sentence-transformers")


def fine_tune_base_dir(spec: str, base_dir: Path | None = None) -> Path:
    """The sentence-transformers folder that fine-tuning starts from, for the ``[embedding] model`` ``spec``.

    ``onnx:FOLDER`` of an export made by ``qualflow models export-onnx`` means the folder it was
    exported from (its manifest's ``source``).

    Raises
    ------
    ConfigError
        When the backend has no sentence-transformers model (``hashing``), or the export's source
        folder is not on this machine.
    """
    backend, arg = parse_embedder_spec(spec)
    if backend not in FINE_TUNE_BACKENDS:
        raise ConfigError(
            f"[suggester] fine_tune needs a sentence-transformers model; [embedding] model is {spec!r}: "
            "use 'onnx-fp32:minilm' or 'minilm', or set fine_tune = false"
        )
    if backend in ONNX_BACKENDS and arg:
        from pipeline.embed.onnx import MANIFEST, is_onnx_export

        path = Path(arg).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if is_onnx_export(path):
            import json

            source = str(json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("source", ""))
            if not source or not Path(source).is_dir():
                raise ConfigError(
                    f"[embedding] model {spec!r} is an ONNX export whose source model folder "
                    f"{source or '(not recorded)'!r} is not on this machine, so it cannot be fine-tuned; "
                    "set model = 'onnx:<the sentence-transformers folder>' instead"
                )
            return resolve_model_dir(source)
    return resolve_model_dir(arg or "minilm", base_dir)


def fine_tuned_spec(spec: str, encoder_dir: Path) -> str:
    """The embedder spec of a fine-tuned encoder folder in a project whose ``[embedding] model`` is
    ``spec``: ``onnx:<folder>`` / ``onnx-fp32:<folder>`` (exported to ONNX, int8 / float32, on first use)
    in a project on that backend, else ``sentence-transformers:<folder>``.

    >>> fine_tuned_spec("onnx:minilm", Path("/p/.qualflow/encoders/run-1"))
    'onnx:/p/.qualflow/encoders/run-1'
    >>> fine_tuned_spec("minilm", Path("/p/.qualflow/encoders/run-1"))
    'sentence-transformers:/p/.qualflow/encoders/run-1'
    """
    return f"{fine_tuned_backend(spec)}:{encoder_dir}"


def fine_tuned_backend(spec: str) -> str:
    """What runs a fine-tuned encoder in a project whose ``[embedding] model`` is ``spec``.

    >>> fine_tuned_backend("onnx:minilm"), fine_tuned_backend("onnx-fp32:minilm"), fine_tuned_backend("minilm")
    ('onnx', 'onnx-fp32', 'sentence-transformers')
    """
    backend, _ = parse_embedder_spec(spec)
    return backend if backend in ONNX_BACKENDS else "sentence-transformers"


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
        ``cache_dir/embeddings.sqlite`` (a :class:`~pipeline.embed.cache.CachedEmbedder` is returned)
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
    from pipeline.embed.cache import CachedEmbedder, EmbeddingCache

    return CachedEmbedder(embedder, EmbeddingCache(cache_dir / "embeddings.sqlite"))
