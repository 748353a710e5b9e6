"""The fast CPU backend: a sentence-transformers model exported to ONNX, int8-quantised, run with onnxruntime.

:func:`export_onnx` turns a local BERT-family sentence-transformers folder (mean pooling, as
all-MiniLM-L6-v2) into a folder holding ``model.onnx`` (int8 weights, dynamic quantisation per
channel; the six feed-forward output projections stay float32 because their GELU inputs have
outliers that per-batch activation ranges handle badly), the model's ``tokenizer.json`` and a ``qualflow_onnx.json`` manifest. It runs offline (torch's
TorchScript exporter + ``onnxruntime.quantization.quantize_dynamic``). :class:`OnnxEmbedder` runs the
folder with onnxruntime and the ``tokenizers`` package: texts sorted by length into batches, padding
per batch, mean pooling over the attention mask, L2 normalisation, input order restored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.embed.base import PROGRESS_MIN_TEXTS, FloatMatrix, l2_normalize
from pipeline.embed.model_dir import model_dir_digest, model_label
from pipeline.errors import InputError, QualflowError

log = logging.getLogger(__name__)

MANIFEST = "qualflow_onnx.json"
MODEL_FILE = "model.onnx"
#: Bumped whenever the export recipe changes, so old exports are not reused.
EXPORT_VERSION = 2
Quantize = Literal["int8", "none"]
QUANTIZE_MODES: tuple[str, ...] = ("int8", "none")


def is_onnx_export(path: Path) -> bool:
    """True when ``path`` is a folder written by :func:`export_onnx`."""
    return (path / MANIFEST).is_file()


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _check_exportable(model_dir: Path) -> int:
    """Check ``model_dir`` is a mean-pooled BERT-family model; return its max sequence length."""
    config = _read_json(model_dir / "config.json") if (model_dir / "config.json").is_file() else {}
    if config.get("model_type") != "bert":
        raise InputError(
            f"{model_dir}: the ONNX backend exports BERT-family models (config.json model_type 'bert'), "
            f"not {config.get('model_type')!r}; use 'sentence-transformers:{model_dir}' instead"
        )
    pooling = model_dir / "1_Pooling" / "config.json"
    if not pooling.is_file() or not _mean_pooled(_read_json(pooling)):
        raise InputError(
            f"{model_dir}: the ONNX backend supports mean-pooling models only (1_Pooling/config.json); "
            f"use 'sentence-transformers:{model_dir}' instead"
        )
    if not (model_dir / "tokenizer.json").is_file():
        raise InputError(f"{model_dir}: no tokenizer.json, which the ONNX backend needs")
    positions = int(config.get("max_position_embeddings", 512))
    st_config = model_dir / "sentence_bert_config.json"
    max_len = _read_json(st_config).get("max_seq_length") if st_config.is_file() else None
    if not max_len:
        # sentence-transformers 6 keeps it in the tokenizer's config instead (a folder fine-tuned here):
        # what torch truncates at, so the ONNX export cuts texts where torch does
        tok_config = model_dir / "tokenizer_config.json"
        tok_len = _read_json(tok_config).get("model_max_length") if tok_config.is_file() else None
        max_len = (
            tok_len if isinstance(tok_len, int) and 0 < tok_len <= positions else None
        )  # no 1e30 sentinel
    return int(max_len or positions)


def _mean_pooled(pooling: dict[str, Any]) -> bool:
    """Whether a ``1_Pooling/config.json`` is mean pooling alone, in either format sentence-transformers
    writes: ``pooling_mode_mean_tokens`` (before 6; how all-MiniLM-L6-v2 ships) or ``pooling_mode``
    (6 and later: how a folder fine-tuned here is saved).

    >>> _mean_pooled({"pooling_mode_mean_tokens": True}), _mean_pooled({"pooling_mode": "mean"})
    (True, True)
    >>> _mean_pooled({"pooling_mode": ["mean", "max"]}), _mean_pooled({"pooling_mode": "cls"})
    (False, False)
    """
    mode = pooling.get("pooling_mode")
    if mode is None:
        return bool(pooling.get("pooling_mode_mean_tokens"))
    return mode == "mean" or mode == ["mean"]


def source_fingerprint(model_dir: Path) -> str:
    """Fingerprint of the source model folder, as the sentence-transformers backend computes it."""
    return f"{model_label(model_dir)}:{model_dir_digest(model_dir)}"


_FFN_OUTPUT = re.compile(r"layer\.\d+/output/dense/MatMul$")


def _ffn_output_matmuls(onnx_path: Path) -> list[str]:
    """Names of the feed-forward output projections (GELU activations with outliers), kept float32."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and _FFN_OUTPUT.search(n.name)]


def export_onnx(model_dir: Path, out_dir: Path, quantize: Quantize = "int8", *, opset: int = 17) -> Path:
    """Export a local sentence-transformers model folder to an ONNX folder usable by :class:`OnnxEmbedder`.

    Parameters
    ----------
    model_dir : Path
        A BERT-family, mean-pooled sentence-transformers folder (e.g. the packaged all-MiniLM-L6-v2).
    out_dir : Path
        Folder to create (replaced atomically if it exists).
    quantize : {"int8", "none"}
        ``"int8"``: dynamic int8 quantisation (weights per channel, activations per batch; the
        feed-forward output projections stay float32). ``"none"``: float32.
    opset : int
        ONNX opset.

    Returns
    -------
    Path
        ``out_dir``.
    """
    if quantize not in QUANTIZE_MODES:
        raise InputError(f"unknown ONNX quantisation {quantize!r}; choose one of {list(QUANTIZE_MODES)}")
    import logging
    import warnings

    # torch's tracer and onnxruntime's quantiser warn about things that do not apply to this recipe
    # (checked by the agreement test with torch); a user sees one line from the caller, not a page
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(max(level, logging.ERROR))
        try:
            return _export(model_dir, out_dir, quantize, opset)
        finally:
            root.setLevel(level)


def _export(model_dir: Path, out_dir: Path, quantize: Quantize, opset: int) -> Path:
    max_len = _check_exportable(model_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class _LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.full((2, 12), 1000, dtype=torch.long)
    mask = torch.ones((2, 12), dtype=torch.long)
    mask[1, 6:] = 0  # a padded row, so the traced graph keeps the attention mask
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fp32 = tmp / "model_fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(
                _LastHidden(model),
                (ids, mask, torch.zeros_like(ids)),
                str(fp32),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
                opset_version=opset,
                dynamo=False,
            )
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            keep_float = _ffn_output_matmuls(fp32)
            if len(keep_float) != model.config.num_hidden_layers:
                raise QualflowError(
                    f"ONNX export of {model_dir}: found {len(keep_float)} feed-forward output projections, "
                    f"expected {model.config.num_hidden_layers}; the export recipe does not fit this model"
                )
            quantize_dynamic(
                str(fp32),
                str(tmp / MODEL_FILE),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=keep_float,
            )
            fp32.unlink()
        else:
            fp32.rename(tmp / MODEL_FILE)
        shutil.copy2(model_dir / "tokenizer.json", tmp / "tokenizer.json")
        manifest = {
            "export_version": EXPORT_VERSION,
            "source": str(model_dir),
            "source_fingerprint": source_fingerprint(model_dir),
            "quantize": quantize,
            "max_seq_length": max_len,
            "dim": int(model.config.hidden_size),
            "pad_token_id": int(model.config.pad_token_id or 0),
            "pooling": "mean",
            "opset": opset,
            "torch": torch.__version__,
            "languages": _languages_of(model_dir),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_onnx_export(model_dir: Path, root: Path, quantize: Quantize = "int8") -> Path:
    """The export of ``model_dir`` under ``root`` (e.g. ``<project>/.qualflow/onnx``), made on first use.

    The folder name carries the source fingerprint, the quantisation and :data:`EXPORT_VERSION`, so a
    changed model or recipe gets a fresh export. Exporting all-MiniLM-L6-v2 takes 10-15 s on 2 cores.
    """
    name = f"{source_fingerprint(model_dir).replace(':', '-')}-{quantize}-v{EXPORT_VERSION}"
    out_dir = root / name
    if not is_onnx_export(out_dir):
        log.info("exporting %s to ONNX (%s) in %s", model_dir, quantize, out_dir)
        export_onnx(model_dir, out_dir, quantize)
    return out_dir


class OnnxEmbedder:
    """Runs a folder made by :func:`export_onnx` with onnxruntime; loaded once, on first use.

    Parameters
    ----------
    onnx_dir : Path
        Folder holding ``model.onnx``, ``tokenizer.json`` and ``qualflow_onnx.json``.
    batch_size : int
        Texts per forward pass (texts are sorted by token length first).
    threads : int, optional
        onnxruntime intra-op threads (default: the CPUs this process may use).
    progress : bool
        Show a progress bar for inputs of at least :data:`~pipeline.embed.PROGRESS_MIN_TEXTS` texts.

    Notes
    -----
    Dynamic int8 quantisation takes activation ranges per batch, so a text's vector depends a little
    on its batch-mates (cosine 0.99 on average, >= 0.95, between batch sizes 3 and 32 here); batches
    depend only on the set of texts, never on their order.
    """

    def __init__(
        self, onnx_dir: Path, *, batch_size: int = 32, threads: int | None = None, progress: bool = True
    ) -> None:
        self.onnx_dir = Path(onnx_dir)
        if not is_onnx_export(self.onnx_dir):
            raise InputError(
                f"{self.onnx_dir} is not an ONNX export (no {MANIFEST}); make one with `qualflow models export-onnx`"
            )
        if batch_size < 1:
            raise InputError(f"embedding batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.threads = threads
        self.progress = progress
        self.manifest_ = _read_json(self.onnx_dir / MANIFEST)
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def fingerprint(self) -> str:
        m = self.manifest_
        return f"onnx-{m['quantize']}-v{m['export_version']}:{m['source_fingerprint']}"

    @property
    def languages(self) -> tuple[str, ...] | None:
        """The languages of the exported model (``None``: any); see :mod:`pipeline.embed.languages`."""
        from pipeline.embed.model_dir import KNOWN_MODEL_LANGUAGES

        if "languages" in self.manifest_:
            langs = self.manifest_["languages"]
            return None if langs is None else tuple(langs)
        label = str(self.manifest_.get("source_fingerprint", "")).split(":")
        return KNOWN_MODEL_LANGUAGES.get(label[1]) if len(label) > 1 else None

    @property
    def dim(self) -> int:
        return int(self.manifest_["dim"])

    def __getstate__(self) -> dict[str, Any]:
        # picklable for other processes (a Dask worker): the copy opens its own session on first use
        return {**self.__dict__, "_session": None, "_tokenizer": None}

    def load(self) -> None:
        """Load the ONNX session and tokenizer now (they are otherwise loaded on first use)."""
        self._load()

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or os.cpu_count() or 1
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                str(self.onnx_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(self.onnx_dir / "tokenizer.json"))
            tokenizer.no_padding()  # tokenizer.json may pad to a fixed length; we pad per batch
            tokenizer.enable_truncation(max_length=int(self.manifest_["max_seq_length"]))
            self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``.

        Returns
        -------
        ndarray of shape (n_texts, dim), float32, rows of unit length, in input order.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 0:
            return out
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        # Sorted by (token length, text), so batches (and so the int8 activation ranges, which dynamic
        # quantisation takes per batch) do not depend on the input order.
        order = np.array(sorted(range(len(texts)), key=lambda i: (lengths[i], texts[i])), dtype=np.int64)
        starts: Iterable[int] = range(0, len(texts), self.batch_size)
        if self.progress and len(texts) >= PROGRESS_MIN_TEXTS:
            from rich.progress import track

            starts = track(starts, description="embedding (onnx)")
        pad = int(self.manifest_["pad_token_id"])
        for start in starts:
            idx = order[start : start + self.batch_size]
            width = int(lengths[idx].max())
            ids = np.full((len(idx), width), pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = lengths[i]
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[idx] = pooled
        return l2_normalize(out)


def _languages_of(model_dir: Path) -> list[str] | None:
    from pipeline.embed.model_dir import model_languages

    langs = model_languages(model_dir)
    return None if langs is None else list(langs)
