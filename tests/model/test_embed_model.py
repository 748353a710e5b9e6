"""The real all-MiniLM-L6-v2 (packaged, offline) with torch and as an int8 ONNX export."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.embed.cache import CachedEmbedder
from pipeline.embed.factory import make_embedder
from pipeline.embed.model_dir import packaged_model_dir
from pipeline.embed.sentence_transformers import SentenceTransformerEmbedder

pytestmark = pytest.mark.model

SENTENCES = [
    "We never had enough money in the budget to hire more nurses.",
    "The lack of funding meant the ward stayed understaffed.",
    "My manager did not listen when we raised concerns about the night shifts.",
    "I started drinking less after my daughter was born.",
    "Honestly I just don't trust the doctors anymore.",
    "The new software rollout was confusing for everyone on the team.",
    "We had a meeting every Monday to plan the week.",
    "It was hard to find childcare, so I cut my hours.",
    "I felt supported by my colleagues during the pandemic.",
    "The training sessions were too short to be useful.",
    "Sure.",
    "Yeah, I guess so.",
    "What would you like to talk about today?",
    "Smoking helps me relax after a long day at work.",
    "My family keeps telling me I should exercise more.",
    "The commute takes over an hour each way, which is exhausting.",
    "Nobody explained why the policy had changed.",
    "I would like to cut down to two drinks a week.",
    "The patients' relatives were often angry with us.",
    "",
]


@pytest.fixture(scope="module")
def st_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(packaged_model_dir(), progress=False)


@pytest.fixture(scope="module")
def qualflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proj") / ".qualflow"


def test_minilm_shape_dtype_and_unit_norms(st_embedder: SentenceTransformerEmbedder) -> None:
    X = st_embedder.encode(SENTENCES)
    assert X.shape == (len(SENTENCES), 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert st_embedder.dim == 384
    assert st_embedder.encode([]).shape == (0, 384)


def test_minilm_paraphrase_closer_than_unrelated(st_embedder: SentenceTransformerEmbedder) -> None:
    X = st_embedder.encode(SENTENCES[:4])
    assert float(X[0] @ X[1]) > float(X[0] @ X[2]) + 0.1  # same ward, different topic
    assert float(X[0] @ X[1]) > float(X[0] @ X[3]) + 0.3  # unrelated


def test_minilm_matches_bare_sentence_transformers(st_embedder: SentenceTransformerEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    bare = SentenceTransformer(str(packaged_model_dir()), device="cpu", local_files_only=True)
    np.testing.assert_allclose(
        st_embedder.encode(SENTENCES), bare.encode(SENTENCES, normalize_embeddings=True), atol=1e-5
    )


def test_warm_cache_never_loads_the_model(qualflow_dir: Path) -> None:
    cold = make_embedder("minilm", cache_dir=qualflow_dir, progress=False)
    X = cold.encode(SENTENCES[:5])
    warm = make_embedder("minilm", cache_dir=qualflow_dir, progress=False)
    assert isinstance(warm, CachedEmbedder) and isinstance(warm.inner, SentenceTransformerEmbedder)
    Y = warm.encode(SENTENCES[4::-1])
    assert warm.last_stats_.hits == 5 and warm.inner._model is None
    np.testing.assert_array_equal(Y, X[::-1])


@pytest.fixture(scope="module")
def onnx_embedder(qualflow_dir: Path):  # type: ignore[no-untyped-def]
    from unittest import mock

    from pipeline.embed.factory import ONNX_CACHE_ENV

    with mock.patch.dict(os.environ):
        # this module checks an export folder of its own (where exports go: tests/unit/test_embed.py)
        os.environ[ONNX_CACHE_ENV] = str(qualflow_dir / "onnx")
        e = make_embedder("onnx:minilm", cache_dir=qualflow_dir, progress=False)
    assert isinstance(e, CachedEmbedder)
    return e.inner


def test_onnx_int8_agrees_with_torch(onnx_embedder, st_embedder: SentenceTransformerEmbedder) -> None:  # type: ignore[no-untyped-def]
    V = onnx_embedder.encode(SENTENCES)
    R = st_embedder.encode(SENTENCES)
    assert V.shape == R.shape and V.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    cos = (V * R).sum(axis=1)
    assert cos.min() >= 0.95, cos
    assert onnx_embedder.fingerprint.startswith("onnx-int8-v2:all-MiniLM-L6-v2:")
    assert onnx_embedder.fingerprint != st_embedder.fingerprint


def test_the_default_float32_onnx_gives_torchs_vectors(
    qualflow_dir: Path, st_embedder: SentenceTransformerEmbedder
) -> None:
    """`onnx-fp32:minilm`, the default backend: the same vectors as torch to float precision (so the
    same decisions), under its own fingerprint and export folder (never int8 vectors from a cache)."""
    from unittest import mock

    from pipeline.config import EmbeddingConfig
    from pipeline.embed.factory import ONNX_CACHE_ENV

    assert EmbeddingConfig().model == "onnx-fp32:minilm"
    with mock.patch.dict(os.environ):
        os.environ[ONNX_CACHE_ENV] = str(qualflow_dir / "onnx")
        e = make_embedder("onnx-fp32:minilm", cache_dir=qualflow_dir, progress=False)
    inner = e.inner  # type: ignore[attr-defined]
    V, R = inner.encode(SENTENCES), st_embedder.encode(SENTENCES)
    assert V.shape == R.shape and V.dtype == np.float32
    assert (V * R).sum(axis=1).min() >= 0.9999
    assert inner.fingerprint.startswith("onnx-none-v2:all-MiniLM-L6-v2:")
    assert inner.onnx_dir.name.endswith("-none-v2") and "int8" not in inner.onnx_dir.name


def test_onnx_restores_input_order_across_batches(onnx_embedder) -> None:  # type: ignore[no-untyped-def]
    from pipeline.embed.onnx import OnnxEmbedder

    small = OnnxEmbedder(onnx_embedder.onnx_dir, batch_size=3, progress=False)
    X = small.encode(SENTENCES)
    perm = np.random.default_rng(0).permutation(len(SENTENCES))
    Y = small.encode([SENTENCES[i] for i in perm])
    np.testing.assert_allclose(Y, X[perm], atol=1e-6)  # batches do not depend on input order
    # int8 activation ranges are taken per batch, so other batch sizes move vectors a little
    cos = (X * onnx_embedder.encode(SENTENCES)).sum(axis=1)
    assert cos.min() >= 0.95 and cos.mean() >= 0.98, cos


def test_onnx_export_is_reused_and_loadable_by_path(onnx_embedder, qualflow_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.embed.onnx import MODEL_FILE, ensure_onnx_export

    onnx_dir = onnx_embedder.onnx_dir
    before = (onnx_dir / MODEL_FILE).stat().st_mtime_ns
    assert ensure_onnx_export(packaged_model_dir(), qualflow_dir / "onnx") == onnx_dir
    assert (onnx_dir / MODEL_FILE).stat().st_mtime_ns == before
    again = make_embedder(f"onnx:{onnx_dir}", progress=False)
    assert again.fingerprint == onnx_embedder.fingerprint


def test_a_shared_onnx_cache_serves_every_project(
    onnx_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from pipeline.embed.factory import ONNX_CACHE_ENV

    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copytree(onnx_embedder.onnx_dir, shared / onnx_embedder.onnx_dir.name)  # as if exported once
    monkeypatch.setenv(ONNX_CACHE_ENV, str(shared))
    a = make_embedder("onnx:minilm", cache_dir=tmp_path / "p1" / ".qualflow", progress=False)
    b = make_embedder("onnx:minilm", cache_dir=tmp_path / "p2" / ".qualflow", progress=False)
    assert a.inner.onnx_dir == b.inner.onnx_dir == shared / onnx_embedder.onnx_dir.name  # type: ignore[attr-defined]
    assert a.fingerprint == onnx_embedder.fingerprint
    assert not (tmp_path / "p1" / ".qualflow" / "onnx").exists()
