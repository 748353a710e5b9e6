"""Helpers for tests and benchmarks of the review app: a demo project and a live loopback server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

from pipeline.domain import SuggestionState

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def build_demo_project(root: Path, *, demo: Path = DEMO, database_url: str | None = None) -> Path:
    """A project at ``root`` with the demo transcripts, codebook, codings, suggestions and candidates.

    Uses the hashing embedder and the prototype suggester: no model, a few seconds. ``database_url``
    (default: SQLite in the folder) may name an empty PostgreSQL database.
    """
    from pipeline.embed.base import HashingEmbedder
    from pipeline.project.codebooks import import_codebook
    from pipeline.project.codings import import_codings
    from pipeline.project.core import init_project
    from pipeline.project.discover import discover
    from pipeline.project.ingest import ingest
    from pipeline.project.suggest import suggest

    project = init_project(root, database_url=database_url)
    try:
        ingest(project, [demo / "transcripts"])
        import_codebook(project, demo / "codebook.yaml")
        import_codings(project, demo / "codings.csv")
        suggest(project, suggester="prototype", embedder=HashingEmbedder())
        discover(project, embedder=HashingEmbedder())
    finally:
        project.close()
    return root


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: FastAPI, *, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL and stops it afterwards."""
    import uvicorn

    from review.auth import is_loopback

    if not is_loopback(host):
        raise ValueError(f"live_server binds loopback only, not {host!r}")
    port = port or free_port()
    from review.app import uvicorn_options

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off", **uvicorn_options()
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the review app did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def add_fake_suggestions(project_root: Path, n: int, *, model_name: str = "test-model") -> list[int]:
    """Queue ``n`` extra pending deductive suggestions (round-robin over segments and codable codes).

    For tests and benchmarks that need more suggestions than the demo's prototype suggester makes.
    Returns their ids.
    """
    from sqlalchemy import select

    from pipeline.project.core import Project
    from pipeline.project.suggest import register_model_version
    from pipeline.store.queries import load_segments, require_codebook
    from pipeline.store.schema import SuggestionRow

    project = Project.open(project_root)
    try:
        with project.store.transaction() as session:
            cb_row, codebook = require_codebook(session)
            codes = [c.name for c in codebook.codes if c.is_codable]
            segs = [r for r, _ in load_segments(session, project.config)]
            mv = register_model_version(
                session,
                name=model_name,
                suggester="fake",
                params={},
                embedding="none",
                codebook_version_id=cb_row.id,
            )
            taken = set(
                session.execute(
                    select(SuggestionRow.segment_id, SuggestionRow.code).where(
                        SuggestionRow.model_version_id == mv.id
                    )
                ).tuples()
            )
            rows: list[SuggestionRow] = []
            i = 0
            while len(rows) < n:
                seg = segs[i % len(segs)]
                code = codes[(i // len(segs) + i) % len(codes)]
                i += 1
                if (seg.id, code) in taken:
                    if i > 10 * (n + len(segs) * len(codes)):
                        raise ValueError(f"cannot place {n} suggestions on {len(segs)} segments")
                    continue
                taken.add((seg.id, code))
                score = ((i * 37) % 100) / 100
                rows.append(
                    SuggestionRow(
                        source_id=seg.source_id,
                        segment_id=seg.id,
                        start=seg.start,
                        end=seg.end,
                        code=code,
                        score=score,
                        rank=1,
                        kind="deductive",
                        model_version_id=mv.id,
                        codebook_version_id=cb_row.id,
                        priority=1 - abs(score - 0.5) * 2,
                        state=SuggestionState.PENDING,
                    )
                )
            session.add_all(rows)
            session.flush()
            return [r.id for r in rows]
    finally:
        project.close()


def demo_template(base: Path) -> Path:
    """``base/review-demo-template``: the demo project, built on first use and reused afterwards."""
    root = base / "review-demo-template"
    ready = root / ".ready"
    if not ready.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        build_demo_project(root)
        ready.write_text("ok", encoding="utf-8")
    return root
