"""Benchmark of ``process_interviews``: flow wall time against bare embedding, and the cost of a re-run.

One run prints, side by side:

1. the wall time of ``process_interviews`` on N synthetic interviews, first run of a fresh project,
   against a running Prefect server (its model loading, ingest, segmentation, embedding,
   suggesting, discovery and Prefect overhead), ``--repeat`` times, each against the bare
   embedding time of the same texts (the participant segments, and the codebook texts of the
   cold-start prototypes the flow embeds too; the real packaged model, no cache, model loaded)
   measured just before and just after it in the same process (the mean of the two: this
   machine's speed drifts by ~10 % over minutes); the median ratio is the figure (target <= 1.3).
   Each run is a fresh process whose first flow call is the one timed (imports warm on both
   sides). The first run's tasks are listed with their start and duration from the server's
   records. The server is first warmed by one trivial flow run (a running server has served
   requests before);
2. the wall time of a re-run with nothing new against the running server (target < 5 s), and beside
   it the same re-run in Prefect's ephemeral mode (a fresh process: temporary server start included).

Usage: ``.venv/bin/python bench/flow.py [--n 50] [--turns 16] [--embedding minilm] [--repeat 3]``

``--dask`` measures instead ``[flows] task_runner = "dask"`` with a LocalCluster of 1 and of 2
workers against the thread runner, on copies of the same inbox, side by side in one run (against a
running server, one fresh process per run, the three settings interleaved ``--repeat`` times), and
prints the median wall times and the ratio 1 worker / 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "budget agency ministry branch payment pension insurer employer union registry data contract "
    "meeting deadline law reform coordination trust delay staff director office region system "
    "report audit transfer benefit claim partner network service rule decision approval funds"
).split()
FILLER = "we the they often usually because when then also but really quite always never".split()


def synthetic_interview(i: int, turns: int) -> str:
    import random

    rng = random.Random(i)
    lines = []
    for t in range(turns):
        lines.append(f"Interviewer: Could you say more about {rng.choice(WORDS)} in case {t}?")
        sents = []
        for _ in range(2):
            n = rng.randint(22, 40)
            words = [rng.choice(WORDS if rng.random() < 0.6 else FILLER) for _ in range(n)]
            sents.append(" ".join(words).capitalize() + ".")
        lines.append(f"Participant{i}: " + " ".join(sents))
    return "\n".join(lines) + "\n"


def make_project(root: Path, n: int, turns: int, embedding: str) -> None:
    from pipeline.project.codebooks import import_codebook
    from pipeline.project.core import Project, init_project

    init_project(root).close()
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8").replace('language = "auto"', 'language = "en"')
    cfg = cfg.replace('model = "onnx-fp32:minilm"', f'model = "{embedding}"')
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    proj = Project.open(root)
    import_codebook(proj, REPO / "data" / "demo" / "codebook.yaml")
    proj.close()
    for i in range(n):
        (root / "inbox" / f"bench{i:03d}.txt").write_text(synthetic_interview(i, turns), encoding="utf-8")


def segment_texts(root: Path) -> list[str]:
    from pipeline.project.core import Project
    from pipeline.project.process import find_new_files, parse_files
    from pipeline.segment import segment_text

    proj = Project.open(root)
    seg = proj.config.segmentation
    texts = []
    for pf in parse_files(proj, find_new_files(proj)).parsed:
        for s in segment_text(pf.source.text, pf.source.turns, mode=seg.mode, language=pf.source.language):
            if s.role != "interviewer":
                texts.append(s.text)
    proj.close()
    return list(dict.fromkeys(texts))


def codebook_texts(root: Path) -> list[str]:
    """The texts of the cold-start prototypes (name, description, inclusion, examples per codable
    code): the flow embeds them too, as no model is registered yet."""
    from models.prototype import prototype_inputs
    from pipeline.domain import Codebook
    from pipeline.project.core import Project
    from pipeline.store.queries import require_codebook

    proj = Project.open(root)
    with proj.store.transaction() as session:
        _, codebook = require_codebook(session)
    proj.close()
    codable = Codebook(codes=[c for c in codebook.codes if c.is_codable], name=codebook.name)
    return [t for texts in prototype_inputs(codable) for t in texts]


WARM_SERVER = """
from prefect import flow
flow(name="warm-up")(lambda: None)()
"""


def task_times(flow_run_id: object, called_at: float) -> list[tuple[str, float, float]]:
    """(task name, start after the flow was called, duration) of a flow run's tasks, from the
    server's records; ``called_at`` is the wall-clock time (``time.time()``) of the call."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    runs = sorted((r for r in runs if r.start_time and r.end_time), key=lambda r: r.start_time)
    return [
        (
            r.name.rsplit("-", 1)[0],
            r.start_time.timestamp() - called_at,
            (r.end_time - r.start_time).total_seconds(),
        )
        for r in runs
    ]


EPHEMERAL = """
import sys, time
t0 = time.perf_counter()
from flows.process import process_interviews
t1 = time.perf_counter()
r = process_interviews(sys.argv[1])
t2 = time.perf_counter()
assert not r.processed
print(f"{t2 - t1:.3f} {t2 - t0:.3f}")
"""


def one_run(root: Path, embedding: str) -> None:
    """In a fresh process (so the flow call is this process's first): bare embedding, the first
    run of ``process_interviews`` on ``root``, bare embedding again; prints a JSON line."""
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    texts = segment_texts(root)
    code_texts = codebook_texts(root)
    from pipeline.embed.factory import make_embedder

    emb = make_embedder(embedding, progress=False)
    emb.encode(["warm up"])

    def bare_embedding() -> float:
        t = time.perf_counter()
        emb.encode(texts)
        emb.encode(code_texts)
        return time.perf_counter() - t

    before = bare_embedding()
    from flows.process import process_interviews

    called_at = time.time()
    t = time.perf_counter()
    state = process_interviews(str(root), return_state=True)
    t_flow = time.perf_counter() - t
    processed = len(state.result().processed)
    tasks = task_times(state.state_details.flow_run_id, called_at)
    after = bare_embedding()
    print(
        "RESULT "
        + json.dumps(
            {
                "segments": len(texts),
                "code_texts": len(code_texts),
                "fingerprint": emb.fingerprint,
                "before": before,
                "flow": t_flow,
                "after": after,
                "processed": processed,
                "tasks": tasks,
            }
        )
    )


def one_dask_run(root: Path) -> None:
    """In a fresh process: one timed ``process_interviews`` call on ``root``; prints a JSON line."""
    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    from flows.process import process_interviews

    called_at = time.time()
    t = time.perf_counter()
    state = process_interviews(str(root), return_state=True)
    t_flow = time.perf_counter() - t
    report = state.result()
    tasks = task_times(state.state_details.flow_run_id, called_at)
    print("RESULT " + json.dumps({"flow": t_flow, "processed": len(report.processed), "tasks": tasks}))


def dask_comparison(work: Path, n: int, turns: int, embedding: str, repeat: int) -> None:
    """Thread runner vs Dask with 1 and 2 LocalCluster workers, on copies of the same inbox."""
    settings = {
        "thread": 'task_runner = "thread"',
        "dask, 1 worker": 'task_runner = "dask"\ndask_workers = 1',
        "dask, 2 workers": 'task_runner = "dask"\ndask_workers = 2',
    }
    from flows.serve import local_prefect_server

    times: dict[str, list[float]] = {k: [] for k in settings}
    embed: dict[str, list[float]] = {k: [] for k in settings}
    with local_prefect_server(work / "prefect") as url:
        os.environ["PREFECT_API_URL"] = url
        subprocess.run([sys.executable, "-c", WARM_SERVER], env=os.environ, capture_output=True, check=True)
        for r in range(repeat):
            for i, (label, lines) in enumerate(settings.items()):
                root = work / f"dask{r}-{i}"
                make_project(root, n, turns, embedding)
                toml = root / "qualflow.toml"
                text = toml.read_text(encoding="utf-8")
                text = text.replace('task_runner = "thread"\n', "").replace("dask_workers = 2\n", "")
                toml.write_text(text.replace("[flows]\n", f"[flows]\n{lines}\n", 1), encoding="utf-8")
                res = subprocess.run(
                    [sys.executable, __file__, "--one-dask", str(root)],
                    env=os.environ,
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                out = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))[7:])
                assert out["processed"] == n
                times[label].append(out["flow"])
                spans = [
                    (s, s + d) for name, s, d in out["tasks"] if name in ("embed-segments", "embed-chunk")
                ]
                embed[label].append(max(e for _, e in spans) - min(s for s, _ in spans))
    os.environ.pop("PREFECT_API_URL")
    print(
        f"\n{n} interviews of {turns} participant turns, embedding {embedding}; {repeat} run(s) each, interleaved"
    )
    print(f"  {'task runner':<18}{'flow (median)':>15}{'embedding span':>16}   runs")
    for label in settings:
        print(
            f"  {label:<18}{statistics.median(times[label]):>13.2f} s{statistics.median(embed[label]):>14.2f} s"
            f"   {', '.join(f'{t:.2f}' for t in times[label])}"
        )
    ratio = statistics.median(times["dask, 1 worker"]) / statistics.median(times["dask, 2 workers"])
    ratio_e = statistics.median(embed["dask, 1 worker"]) / statistics.median(embed["dask, 2 workers"])
    print(f"  ratio 1 worker / 2 workers: flow {ratio:.2f}, embedding span {ratio_e:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="synthetic interviews (default 50)")
    ap.add_argument(
        "--turns", type=int, default=16, help="participant turns per interview (2 sentences each)"
    )
    ap.add_argument("--embedding", default="minilm", help="embedding model spec (default minilm)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="first runs to time, each on a fresh project (default 3)"
    )
    ap.add_argument("--dask", action="store_true", help="compare 1 and 2 Dask workers (and threads) only")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: one timed run
    ap.add_argument("--one-dask", type=Path, help=argparse.SUPPRESS)  # internal: one timed run
    args = ap.parse_args()
    if args.one:
        one_run(args.one, args.embedding)
        return
    if args.one_dask:
        one_dask_run(args.one_dask)
        return

    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    work = Path(tempfile.mkdtemp(prefix="qualflow-bench-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect")
    os.environ.pop("PREFECT_API_URL", None)
    if args.dask:
        dask_comparison(work, args.n, args.turns, args.embedding, args.repeat)
        shutil.rmtree(work, ignore_errors=True)
        return
    roots = [work / f"proj{r}" for r in range(args.repeat)]
    for root in roots:
        make_project(root, args.n, args.turns, args.embedding)

    from flows.serve import local_prefect_server

    runs = []
    with local_prefect_server(work / "prefect") as url:
        os.environ["PREFECT_API_URL"] = url
        # a running server has served requests before: warm it with one trivial flow run
        subprocess.run([sys.executable, "-c", WARM_SERVER], env=os.environ, capture_output=True, check=True)
        for root in roots:
            res = subprocess.run(
                [sys.executable, __file__, "--one", str(root), "--embedding", args.embedding],
                env=os.environ,
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
            runs.append(json.loads(line.removeprefix("RESULT ")))
            assert runs[-1]["processed"] == args.n
        from flows.process import process_interviews

        t = time.perf_counter()
        again = process_interviews(str(roots[0]))
        t_rerun = time.perf_counter() - t
    os.environ.pop("PREFECT_API_URL")
    assert not again.processed

    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-ephemeral")}
    out = subprocess.run(
        [sys.executable, "-c", EPHEMERAL, str(roots[0])],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    t_eph_flow, t_eph_total = (float(x) for x in out.stdout.split()[-2:])

    bare = [(r["before"] + r["after"]) / 2 for r in runs]
    ratios = [r["flow"] / b for r, b in zip(runs, bare, strict=True)]
    print(
        f"\n{args.n} interviews: {runs[0]['segments']} participant segments and {runs[0]['code_texts']} "
        f"codebook texts (the cold-start prototypes) to embed; embedding {runs[0]['fingerprint']}"
    )
    print("first run of process_interviews on a fresh project, running server, one process per run:")
    print(
        f"  {'run':<6}{'bare before':>12}{'flow':>10}{'bare after':>12}{'ratio':>8}"
        f"{'embed task':>12}{'to 1st task':>13}{'after last':>12}"
    )
    for i, (r, x) in enumerate(zip(runs, ratios, strict=True), start=1):
        embed = sum(took for name, _, took in r["tasks"] if name == "embed-segments")
        first = min(start for _, start, _ in r["tasks"])
        after_last = r["flow"] - max(start + took for _, start, took in r["tasks"])
        print(
            f"  {i:<6}{r['before']:>10.2f} s{r['flow']:>8.2f} s{r['after']:>10.2f} s{x:>8.2f}"
            f"{embed:>10.2f} s{first:>11.2f} s{after_last:>10.2f} s"
        )
    print(f"{'median ratio flow / bare embedding (target <= 1.3)':<58}{statistics.median(ratios):8.2f}")
    print("  tasks of run 1 (start after the flow was called, duration), from the server's records:")
    for name, start, took in runs[0]["tasks"]:
        print(f"    {name:<40}{start:7.2f} s {took:7.2f} s")
    print(f"{'re-run, nothing new, running server (target < 5 s)':<58}{t_rerun:8.2f} s")
    print(f"{'re-run, nothing new, ephemeral mode (flow call)':<58}{t_eph_flow:8.2f} s")
    print(f"{'re-run, nothing new, ephemeral mode (incl. imports)':<58}{t_eph_total:8.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
