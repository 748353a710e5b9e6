"""The review queue at scale: ``order_queue`` (a lazy greedy over a heap, on the best-ranked items
first) against the scan of every group's head at each step it replaced, side by side on a project's
pending suggestions, and whole ``GET /queue`` page loads.

Usage::

    .venv/bin/python bench/queue_order.py PROJECT [--rounds 5]

``PROJECT``: a project with pending suggestions, e.g. the 150-interview, 300-code study of
docs/benchmarks.md ("Review app") after ``qualflow suggest`` (92,771 pending). Nothing is written to it
but the review app's coder row (``bench``, single-user mode). Times are the median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def order_by_scanning(
    items: Any, *, representatives: Any = frozenset(), cold_start: bool = False, limit: int = 50
) -> Any:
    """order_queue before its heap: every group's head scanned at each step."""
    groups: dict[Any, list[Any]] = {}
    boost = 1.0 if cold_start else 0.0

    def base(item: Any) -> float:
        return float(item.priority + (boost if item.segment_id in representatives else 0.0))

    for item in sorted(items, key=lambda i: (-base(i), i.suggestion_id)):
        groups.setdefault((item.code, item.source_id), []).append(item)
    heads = dict.fromkeys(groups, 0)
    by_code: dict[str, int] = {}
    by_source: dict[int, int] = {}
    out: list[Any] = []
    while len(out) < limit and heads:
        best_key, best = None, None
        for key, pos in heads.items():
            item = groups[key][pos]
            value = base(item) - 0.15 * by_code.get(item.code, 0) - 0.05 * by_source.get(item.source_id, 0)
            rank = (-value, item.suggestion_id)
            if best is None or rank < best:
                best, best_key = rank, key
        item = groups[best_key][heads[best_key]]
        out.append(item)
        by_code[item.code] = by_code.get(item.code, 0) + 1
        by_source[item.source_id] = by_source.get(item.source_id, 0) + 1
        heads[best_key] += 1
        if heads[best_key] == len(groups[best_key]):
            del heads[best_key]
    return out


def median_time(fn: Any, rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from pipeline.domain import SuggestionState
    from pipeline.project.core import Project
    from pipeline.project.decisions import QueueItem, order_queue
    from pipeline.store.schema import SourceRow, SuggestionRow
    from review.app import create_app

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    project = Project.open(a.project)
    with project.store.transaction() as s:
        rows = s.execute(
            select(
                SuggestionRow.id,
                SuggestionRow.segment_id,
                SuggestionRow.source_id,
                SuggestionRow.code,
                SuggestionRow.score,
                SuggestionRow.priority,
            )
            .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
            .where(
                SuggestionRow.state == SuggestionState.PENDING,
                SuggestionRow.kind == "deductive",
                SourceRow.is_current,
            )
        ).all()
    project.close()
    items = [QueueItem(*r) for r in rows]
    t_old, old = median_time(lambda: order_by_scanning(items, cold_start=True), max(1, a.rounds // 2))
    t_new, new = median_time(lambda: order_queue(items, cold_start=True), a.rounds)
    same = [i.suggestion_id for i in old] == [i.suggestion_id for i in new]
    print(
        f"{len(items)} pending suggestions, {len({(i.code, i.source_id) for i in items})} (code, source) groups"
    )
    print(f"{'':22} {'scan (before)':>14} {'now':>12} {'ratio':>8}")
    print(f"{'order_queue, 50 shown':22} {t_old:13.3f}s {t_new:11.3f}s {t_new / t_old:8.3f}")
    print(f"same 50 in the same order: {'yes' if same else 'NO'}")
    app = create_app(a.project, single_user="bench")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.get("/queue")  # first load: the coder row, templates
        t_page, r = median_time(lambda: client.get("/queue"), a.rounds)
    print(f"GET /queue (whole page, in process): {t_page:.3f}s median of {a.rounds}, status {r.status_code}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
