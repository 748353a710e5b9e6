"""Soak test of the review app: 8 coders for N minutes on loopback; p95 over time and the server's memory.

Builds the synthetic project of ``bench/review_load.py`` (10,000 pending suggestions, no model), starts
the app in its own process as ``qualflow review`` does, and runs 8 coder processes that, until the
time is up, decide suggestions (pausing ``--think-ms`` between requests, as a person reading does),
open the queue every 10th request and a transcript every 25th, and log out and in again every 200th.
Prints, per time slice, the requests, their p50/p95 and the server's resident memory (VmRSS), then
RSS at start and end. Bounded: at most 60 minutes, loopback only.

    python bench/soak.py --minutes 30 [--think-ms 300] [--slices 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from review_load import CODERS, SERVER_PID, build, pct, serving  # noqa: E402


def server_rss_mib() -> float:
    """The server process's resident memory in MiB (Linux /proc)."""
    for line in Path(f"/proc/{SERVER_PID[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak_coder(c: int, base: str, pool: list[int], until: float, think_s: float, barrier, results) -> None:  # type: ignore[no-untyped-def]
    """One coder process: a loop of decisions, page views and re-logins until ``until`` (wall clock)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    import httpx

    def log_in() -> tuple[str, str]:
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.get("/login").text.split('name="csrf-token" content="')[1].split('"')[0]
            r = client.post(
                "/login", data={"name": f"coder{c}", "password": "bench-password", "csrf_token": token}
            )
            assert r.status_code in (200, 303), r.status_code
            token = client.get("/sources").text.split('name="csrf-token" content="')[1].split('"')[0]
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        return token, cookie

    token, cookie = log_in()
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    rng = random.Random(c)
    order = rng.sample(pool, len(pool))
    out: list[tuple[float, str, float, int]] = []  # (time, kind, ms, status)
    barrier.wait()
    i = 0
    while time.time() < until:
        i += 1
        time.sleep(think_s * rng.uniform(0.5, 1.5))
        headers = {"X-CSRF-Token": token, "Cookie": cookie}
        if i % 200 == 0:
            kind = "relogin"
            t = time.perf_counter()
            conn.request("POST", "/logout", body="", headers=headers)
            resp = conn.getresponse()
            resp.read()
            token, cookie = log_in()
            status = resp.status
        elif i % 25 == 0:
            kind, path = "transcript", f"/sources/src{rng.randint(1, 9)}"
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        elif i % 10 == 0:
            kind = "queue"
            t = time.perf_counter()
            conn.request("GET", "/queue", headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        else:
            kind = "decide"
            sid = order[i % len(order)]
            body = json.dumps({"action": "accept" if (sid + c) % 3 else "reject", "revision": 0})
            t = time.perf_counter()
            conn.request(
                "POST",
                f"/api/suggestions/{sid}/decide",
                body=body,
                headers={**headers, "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        out.append((time.time(), kind, (time.perf_counter() - t) * 1000, status))
    conn.close()
    results.put(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--think-ms", type=float, default=300.0)
    ap.add_argument("--slices", type=int, default=10, help="time slices in the report")
    ap.add_argument("--suggestions", type=int, default=10_000)
    args = ap.parse_args()
    if not 0 < args.minutes <= 60:
        ap.error("keep it bounded: 0 < --minutes <= 60")

    root = Path(tempfile.mkdtemp(prefix="qualflow-soak-")) / "proj"
    ids = build(root, args.suggestions, 500)
    print(
        f"built {len(ids)} suggestions; {CODERS} coders for {args.minutes:g} min, think {args.think_ms:g} ms"
    )
    with serving(root, in_process=False) as base:
        rss_start = server_rss_mib()
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(CODERS + 1)
        results = ctx.Queue()
        t0 = time.time()
        until = t0 + args.minutes * 60
        procs = [
            ctx.Process(target=soak_coder, args=(c, base, ids, until, args.think_ms / 1000, barrier, results))
            for c in range(CODERS)
        ]
        for p in procs:
            p.start()
        barrier.wait()
        t0 = time.time()
        rss: list[tuple[float, float]] = [(0.0, server_rss_mib())]
        while time.time() < until:
            time.sleep(min(5.0, max(until - time.time(), 0.01)))
            rss.append((time.time() - t0, server_rss_mib()))
        rows: list[tuple[float, str, float, int]] = []
        for _ in procs:
            rows += results.get(timeout=120)
        for p in procs:
            p.join(timeout=60)
        rss_end = server_rss_mib()

    span = max(until - t0, 1e-9)
    width = span / args.slices
    print(
        f"{'slice':>12s} {'requests':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'decide p95':>11s} {'RSS MiB':>8s}  errors"
    )
    for k in range(args.slices):
        a, b = k * width, (k + 1) * width
        sl = [r for r in rows if a <= r[0] - t0 < b]
        if not sl:
            continue
        ms = [r[2] for r in sl]
        dec = [r[2] for r in sl if r[1] == "decide"] or [float("nan")]
        errors = sum(1 for r in sl if r[3] >= 500 or (r[1] != "decide" and r[3] >= 400))
        mem = [m for t, m in rss if a <= t < b + 5] or [float("nan")]
        print(
            f"{a / 60:5.1f}-{b / 60:4.1f} min {len(sl):9d} {statistics.median(ms):8.1f} {pct(ms, 95):8.1f} "
            f"{pct(dec, 95):11.1f} {max(mem):8.1f}  {errors}"
        )
    statuses: dict[int, int] = {}
    for r in rows:
        statuses[r[3]] = statuses.get(r[3], 0) + 1
    all_ms = [r[2] for r in rows]
    print(
        f"all: {len(rows)} requests, p50 {statistics.median(all_ms):.1f} ms, p95 {pct(all_ms, 95):.1f} ms; statuses {statuses}"
    )
    warm = next((m for t, m in rss if t >= width), rss_end)  # after the first slice: caches filled
    print(
        f"server RSS: start {rss_start:.1f} MiB (before any request), after the first slice {warm:.1f} MiB, "
        f"end {rss_end:.1f} MiB (growth after warm-up {rss_end - warm:+.1f} MiB)"
    )


if __name__ == "__main__":
    main()
