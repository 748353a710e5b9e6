"""Load test of the review app on loopback: decision latency with 8 concurrent coders, transcript page time.

Builds a synthetic project (no model, no spaCy): one source with 500 segments plus more sources, so that
10,000 pending suggestions wait in the queue; starts the app with uvicorn (one worker, the settings of
``review.app.uvicorn_options``) on 127.0.0.1 in its own process (``--in-process``: in a thread here);
8 coders log in and accept/reject suggestions in parallel (overlapping: every coder works through the
same shuffled pool, so some decisions lose the race and are logged with applied=False); then the
500-segment transcript page is opened repeatedly. Prints p50/p95 for both against the targets
(decisions p95 < 50 ms, transcript page < 200 ms).

    python bench/review_load.py [--decisions-per-coder 150] [--page-loads 30] [--keep DIR] [--in-process]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SENTENCE = "We talked with the {} office about the shared register and the payments that arrive late."
CODERS = 8


def build(root: Path, n_suggestions: int, segments_in_big: int) -> list[int]:
    """A project with a codebook, sources of segments and ``n_suggestions`` pending suggestions."""
    from pipeline.config import scheme_key
    from pipeline.domain import Code, Codebook
    from pipeline.project.core import init_project
    from pipeline.project.suggest import register_model_version
    from pipeline.store.queries import store_codebook
    from pipeline.store.schema import SegmentRow, SourceRow, SuggestionRow, TurnRow
    from review.auth import add_coder

    project = init_project(root)
    codes = [Code(name=f"code-{i:02d}", description=f"code number {i}") for i in range(20)]
    key = scheme_key(project.config.segmentation)
    ids: list[int] = []
    with project.store.transaction() as s:
        cb, _ = store_codebook(s, Codebook(codes=codes, name="bench"))
        mv = register_model_version(
            s, name="bench", suggester="fake", params={}, embedding="none", codebook_version_id=cb.id
        )
        n_sources = 10
        seg_rows: list[SegmentRow] = []
        for k in range(n_sources):
            n_seg = segments_in_big if k == 0 else 100
            parts: list[str] = []
            turns: list[tuple[int, int]] = []
            segs: list[tuple[int, int, str, int]] = []
            pos = 0
            for i in range(n_seg):
                if i % 5 == 0:
                    label = f"Speaker{i % 2}: "
                    if parts:
                        parts.append("\n")
                        pos += 1
                    parts.append(label)
                    pos += len(label)
                    turn_start = pos
                sent = SENTENCE.format(f"{k}-{i}") + " "
                segs.append((pos, pos + len(sent) - 1, sent[:-1], len(turns)))
                parts.append(sent)
                pos += len(sent)
                if i % 5 == 4 or i == n_seg - 1:
                    turns.append((turn_start, pos - 1))
            text = "".join(parts)
            src = SourceRow(
                name="big" if k == 0 else f"src{k}",
                file_name=f"s{k}.txt",
                file_hash=f"{k:064d}",
                text_hash=f"{k:064d}",
                format="txt",
                language="en",
                text=text,
                meta={},
                role_override={},
                ingest_order=k,
            )
            for t, (a, b) in enumerate(turns):
                src.turns.append(
                    TurnRow(idx=t, speaker=f"Speaker{t % 2}", role="participant", start=a, end=b)
                )
            s.add(src)
            s.flush()
            for i, (a, b, seg_text, turn) in enumerate(segs):
                assert text[a:b] == seg_text
                row = SegmentRow(
                    source_id=src.id,
                    scheme=key,
                    idx=i,
                    start=a,
                    end=b,
                    text=seg_text,
                    turn_idx=turn,
                    role="participant",
                )
                seg_rows.append(row)
            s.add_all(seg_rows[-len(segs) :])
        s.flush()
        rng = random.Random(0)
        rows = []
        for j in range(n_suggestions):
            seg = seg_rows[j % len(seg_rows)]
            code = codes[(j // len(seg_rows)) % len(codes)].name
            score = rng.random()
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
                    codebook_version_id=cb.id,
                    priority=1 - abs(score - 0.5) * 2,
                )
            )
        s.add_all(rows)
        s.flush()
        ids = [r.id for r in rows]
        for c in range(CODERS):
            add_coder(s, f"coder{c}", role="coder", password="bench-password")
        # some codings on the big source, so the page has highlights to render
        from pipeline.store.schema import CodingRow

        coder_id = s.scalar(select_coder_id(s))
        for seg in seg_rows[:60:3]:
            s.add(
                CodingRow(
                    source_id=seg.source_id,
                    start=seg.start,
                    end=seg.end,
                    code="code-01",
                    codebook_version_id=cb.id,
                    coder_id=coder_id,
                    origin="human",
                )
            )
    project.close()
    return ids


def select_coder_id(session):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from pipeline.store.schema import CoderRow

    return select(CoderRow.id).where(CoderRow.name == "coder0")


SERVER = """
import sys, uvicorn
from pathlib import Path
from review.app import create_app, tune_gc, uvicorn_options
app = create_app(Path(sys.argv[1]))
tune_gc()  # as `qualflow review` (review.app.serve) does
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), workers=1, log_level="warning", **uvicorn_options())
"""


SERVER_PID: list[int] = []


def server_cpu_s() -> float | None:
    """CPU seconds (user + system) used so far by the server process (Linux /proc), ``None`` in-process."""
    if not SERVER_PID:
        return None
    fields = Path(f"/proc/{SERVER_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(root: Path, *, in_process: bool) -> Iterator[str]:
    """The review app of ``root`` on loopback: its base URL (own process by default, or a thread)."""
    import httpx

    from review.app import create_app
    from review.testing import free_port, live_server

    if in_process:
        app = create_app(root)
        try:
            with live_server(app) as base:
                yield base
        finally:
            app.state.project.close()
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(root), str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the review app did not start on {base}") from None
                time.sleep(0.1)
        SERVER_PID.append(proc.pid)
        yield base
    finally:
        SERVER_PID.clear()
        proc.terminate()
        proc.wait(timeout=20)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def coder(c: int, base: str, pool: list[int], n: int, think_s: float, barrier, results) -> None:  # type: ignore[no-untyped-def]
    """One coder (a separate process): log in, wait for the others, then decide ``n`` suggestions,
    pausing ``think_s`` (randomised +-50%) between decisions as a person reading the segment does."""
    import http.client
    import json
    from urllib.parse import urlsplit

    import httpx

    out: list[tuple[str, float, int]] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        html = client.get("/login").text
        token = html.split('name="csrf-token" content="')[1].split('"')[0]
        client.post("/login", data={"name": f"coder{c}", "password": "bench-password", "csrf_token": token})
        token = client.get("/sources").text.split('name="csrf-token" content="')[1].split('"')[0]
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    # the timed requests go through the standard library's lean HTTP client on one keep-alive
    # connection, so the clients' own CPU (they share the 2 cores with the server) stays small
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": token, "Cookie": cookie}
    rng = random.Random(c)
    order = rng.sample(pool, min(n, len(pool)))
    barrier.wait()
    for sid in order:
        if think_s:
            time.sleep(think_s * rng.uniform(0.5, 1.5))
        action = "accept" if (sid + c) % 3 else "reject"
        body = json.dumps({"action": action, "revision": 0})
        t = time.perf_counter()
        conn.request("POST", f"/api/suggestions/{sid}/decide", body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append((action, (time.perf_counter() - t) * 1000, resp.status))
    conn.close()
    results.put(out)


def decision_round(base: str, pool: list[int], per_coder: int, think_s: float) -> dict:  # type: ignore[type-arg]
    """8 coder processes deciding from ``pool``; latencies, outcomes, wall time and server CPU."""
    # each coder is its own process, as 8 coders are 8 browsers: no shared interpreter lock
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(CODERS + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=coder, args=(c, base, pool, per_coder, think_s, barrier, results))
        for c in range(CODERS)
    ]
    for pr in procs:
        pr.start()
    barrier.wait()  # every coder is logged in
    t0, cpu0 = time.perf_counter(), server_cpu_s()
    latencies: dict[str, list[float]] = {"accept": [], "reject": []}
    outcomes = {"applied": 0, "lost": 0, "other": 0}
    for _ in procs:
        for action, dt, status in results.get(timeout=600):
            latencies[action].append(dt)
            outcomes[{200: "applied", 409: "lost"}.get(status, "other")] += 1
    wall = time.perf_counter() - t0
    cpu1 = server_cpu_s()
    for pr in procs:
        pr.join(timeout=60)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {"latencies": latencies, "outcomes": outcomes, "wall": wall, "cpu": cpu}


def report_round(r: dict, mode: str, target: bool) -> None:  # type: ignore[type-arg]
    lat = r["latencies"]
    both = lat["accept"] + lat["reject"]
    n = len(both)
    print(
        f"decisions, {mode}: {n} by {CODERS} coders in {r['wall']:.1f} s ({n / r['wall']:.0f}/s); {r['outcomes']}"
    )
    for name, vals in (("accept", lat["accept"]), ("reject", lat["reject"]), ("all", both)):
        print(
            f"  {name:7s} p50 {statistics.median(vals):6.1f} ms   p95 {pct(vals, 95):6.1f} ms   "
            f"max {max(vals):6.1f} ms"
        )
    if r["cpu"] is not None:
        print(f"  server CPU per decision request: {r['cpu'] / n * 1000:.1f} ms")
    p95 = pct(both, 95)
    if target:
        print(f"  target p95 < 50 ms: {'met' if p95 < 50 else 'NOT met'} (ratio to target {p95 / 50:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suggestions", type=int, default=10_000)
    ap.add_argument("--segments", type=int, default=500, help="segments of the transcript page measured")
    ap.add_argument("--decisions-per-coder", type=int, default=150)
    ap.add_argument("--page-loads", type=int, default=30)
    ap.add_argument(
        "--think-ms",
        type=float,
        default=300.0,
        help="a coder's pause between decisions (randomised +-50%%), as a person reading the segment; "
        "a closed-loop stress round (no pause) is always run beside it",
    )
    ap.add_argument("--keep", type=Path, default=None, help="build the project here and keep it")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="run the server in a thread of this process (its GIL is then shared with the clients, "
        "which inflates latencies); by default it runs in its own process, as `qualflow review` does",
    )
    args = ap.parse_args()
    if args.decisions_per_coder > 2000 or args.page_loads > 500:
        ap.error("keep it bounded: at most 2000 decisions per coder and 500 page loads")

    import httpx

    root = args.keep or Path(tempfile.mkdtemp(prefix="qualflow-bench-")) / "proj"
    t0 = time.perf_counter()
    ids = build(root, args.suggestions, args.segments)
    print(
        f"built {len(ids)} suggestions, a {args.segments}-segment transcript in {time.perf_counter() - t0:.1f} s"
    )
    size = max(args.decisions_per_coder * CODERS // 2, 1)  # overlapping: ~2 coders per suggestion
    if 2 * size > len(ids):
        ap.error(f"--decisions-per-coder too large for {len(ids)} suggestions")

    page_ms: list[float] = []
    with serving(root, in_process=args.in_process) as base:
        coders = decision_round(base, ids[:size], args.decisions_per_coder, args.think_ms / 1000)
        stress = decision_round(base, ids[size : 2 * size], args.decisions_per_coder, 0.0)
        with httpx.Client(base_url=base, timeout=30) as client:
            html = client.get("/login").text
            token = html.split('name="csrf-token" content="')[1].split('"')[0]
            client.post("/login", data={"name": "coder0", "password": "bench-password", "csrf_token": token})
            client.get("/sources/big")  # warm-up
            cpu2 = server_cpu_s()
            for _ in range(args.page_loads):
                t = time.perf_counter()
                r = client.get("/sources/big")
                page_ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200
            cpu3 = server_cpu_s()
            n_spans = r.text.count("data-start=") - r.text.count('class="item')
            t = time.perf_counter()
            client.get("/queue")
            queue_ms = (time.perf_counter() - t) * 1000

    report_round(coders, f"coders pausing {args.think_ms:.0f} ms (+-50%) between decisions", target=True)
    report_round(stress, "closed-loop stress, no pause (clients and server share the cores)", target=False)
    print(
        f"transcript page ({args.segments} segments, {n_spans} spans): p50 {statistics.median(page_ms):.1f} ms   "
        f"p95 {pct(page_ms, 95):.1f} ms   (target < 200 ms: "
        f"{'met' if pct(page_ms, 95) < 200 else 'NOT met'}, ratio {pct(page_ms, 95) / 200:.2f})"
    )
    if cpu2 is not None and cpu3 is not None:
        print(f"  server CPU per transcript page: {(cpu3 - cpu2) / args.page_loads * 1000:.1f} ms")
    print(f"queue page over {len(ids)} suggestions: {queue_ms:.1f} ms")


if __name__ == "__main__":
    main()
