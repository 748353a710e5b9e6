"""A persistent embedding cache inside the project, keyed by (embedder fingerprint, normalised-text hash).

One SQLite file (``<project>/.qualflow/embeddings.sqlite``), one rowid table with a
(fingerprint, text_hash) primary key, float32 vectors as little-endian blobs, 16 KiB pages, WAL
journal so several processes (a flow and the review app) can read while one writes.

Why not one ``.npy`` matrix per fingerprint: raw bulk I/O is faster (10,000 x 384 rows: ~0.05 s each
way, against ~0.2 s get / ~0.6 s put here), but every new batch must rewrite or shard the matrix, and
concurrent writers need their own locking and compaction. SQLite gives transactional appends and
multi-process safety for a cost that stays under 1 % of embedding the same rows (10,000 rows take
about a minute to embed on 2 cores). A WITHOUT ROWID table was 2-4x slower for these 1.5 KiB rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.embed.base import Embedder, FloatMatrix
from pipeline.text import normalize, normalized_hash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    fingerprint TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (fingerprint, text_hash)
)
"""
_CHUNK = 500  # keys per SELECT ... IN (...), under SQLite's bound-parameter limit


class EmbeddingCache:
    """Vectors stored by (fingerprint, text hash) in a SQLite file.

    Parameters
    ----------
    path : Path
        The SQLite file; created with its folder on first use.

    >>> import tempfile
    >>> cache = EmbeddingCache(Path(tempfile.mkdtemp()) / "embeddings.sqlite")
    >>> cache.put_many("fp", ["h1"], np.array([[0.6, 0.8]], dtype=np.float32))
    >>> cache.get_many("fp", ["h1", "h2"])["h1"].tolist(), cache.count("fp"), cache.count("other")
    ([0.6000000238418579, 0.800000011920929], 1, 0)
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per cache object, kept open: closing the last connection to a WAL database
        # checkpoints it (an fsync, ~30 ms), which would dominate small lookups.
        with self._lock:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
                conn.execute("PRAGMA page_size=16384")  # only takes effect on a new file
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                conn.commit()
                self._conn = conn
            yield self._conn

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __getstate__(self) -> dict[str, object]:
        # picklable for process pools: the copy opens its own connection
        return {"path": self.path}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(Path(str(state["path"])))  # type: ignore[misc]

    def get_many(self, fingerprint: str, text_hashes: Sequence[str]) -> dict[str, FloatMatrix]:
        """The stored vectors among ``text_hashes``: {text_hash: ndarray of shape (dim,)}; misses are absent."""
        found: dict[str, FloatMatrix] = {}
        keys = list(dict.fromkeys(text_hashes))
        with self._connect() as conn:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                rows = conn.execute(
                    "SELECT text_hash, vector FROM embeddings WHERE fingerprint = ? AND text_hash IN "
                    f"({','.join('?' * len(chunk))})",
                    [fingerprint, *chunk],
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype="<f4").astype(np.float32, copy=False)
        return found

    def put_many(self, fingerprint: str, text_hashes: Sequence[str], X: FloatMatrix) -> None:
        """Store row ``i`` of ``X`` (ndarray of shape (n, dim)) under ``text_hashes[i]``, in one transaction."""
        blobs = np.ascontiguousarray(X, dtype="<f4")
        with self._connect() as conn, conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (fingerprint, text_hash, vector) VALUES (?, ?, ?)",
                [(fingerprint, key, blobs[i].tobytes()) for i, key in enumerate(text_hashes)],
            )

    def count(self, fingerprint: str | None = None) -> int:
        """Number of stored vectors (for one fingerprint, or all)."""
        with self._connect() as conn:
            if fingerprint is None:
                return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            sql = "SELECT COUNT(*) FROM embeddings WHERE fingerprint = ?"
            return int(conn.execute(sql, (fingerprint,)).fetchone()[0])

    def fingerprints(self) -> dict[str, int]:
        """{fingerprint: number of vectors} of everything stored."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT fingerprint, COUNT(*) FROM embeddings GROUP BY fingerprint ORDER BY 1"
            )
            return {fp: int(n) for fp, n in rows}

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete the vectors of one fingerprint (or all); returns how many were deleted."""
        with self._connect() as conn, conn:
            if fingerprint is None:
                return conn.execute("DELETE FROM embeddings").rowcount
            return conn.execute("DELETE FROM embeddings WHERE fingerprint = ?", (fingerprint,)).rowcount


@dataclass
class CacheStats:
    """Counts over distinct normalised texts: ``hits + embedded == unique``; ``requested`` counts inputs."""

    requested: int = 0
    unique: int = 0
    hits: int = 0
    embedded: int = 0

    def __iadd__(self, other: CacheStats) -> CacheStats:
        self.requested += other.requested
        self.unique += other.unique
        self.hits += other.hits
        self.embedded += other.embedded
        return self


class CachedEmbedder:
    """Wraps an :class:`~pipeline.embed.Embedder` so each distinct normalised text is embedded once, ever.

    Texts are keyed by ``(inner.fingerprint, normalized_hash(text))``; the inner embedder sees only
    the misses, deduplicated and normalised (so one key always means one vector, whichever spelling
    came first), and is not even loaded when everything is a hit.

    Parameters
    ----------
    inner : Embedder
        The embedder that makes vectors for misses.
    cache : EmbeddingCache
        Where vectors are kept.

    Attributes
    ----------
    last_stats_ : CacheStats
        Counts of the latest :meth:`encode` call.
    stats_ : CacheStats
        Counts summed over every call.

    >>> import tempfile
    >>> from pipeline.embed.base import HashingEmbedder
    >>> e = CachedEmbedder(HashingEmbedder(8), EmbeddingCache(Path(tempfile.mkdtemp()) / "e.sqlite"))
    >>> _ = e.encode(["a b", "a  b", "c"]); e.last_stats_
    CacheStats(requested=3, unique=2, hits=0, embedded=2)
    >>> _ = e.encode(["c", "d"]); e.last_stats_
    CacheStats(requested=2, unique=2, hits=1, embedded=1)
    """

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.last_stats_ = CacheStats()
        self.stats_ = CacheStats()

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def dim(self) -> int:
        return self.inner.dim

    def load(self) -> None:
        """Load the inner embedder's model now, if it has one to load."""
        self.inner.load()

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``, reusing stored vectors.

        Returns
        -------
        ndarray of shape (n_texts, dim), float32, in input order.
        """
        if len(texts) == 0:
            self.last_stats_ = CacheStats()
            return np.zeros((0, self.dim), dtype=np.float32)
        fingerprint = self.inner.fingerprint
        keys = [normalized_hash(t) for t in texts]
        first_text: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            first_text.setdefault(key, text)
        found = self.cache.get_many(fingerprint, list(first_text))
        missing = [key for key in first_text if key not in found]
        if missing:
            X_new = self.inner.encode([normalize(first_text[key]) for key in missing])
            self.cache.put_many(fingerprint, missing, X_new)
            found.update(zip(missing, X_new, strict=True))
        self.last_stats_ = CacheStats(
            len(texts), len(first_text), len(first_text) - len(missing), len(missing)
        )
        self.stats_ += self.last_stats_
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
