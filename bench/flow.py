"""Benchmark of ``process_interviews``: flow wall time against bare embedding, and the cost of a re-run.

One run prints, side by side:

1. the bare embedding time of the segments of N synthetic interviews (the real packaged model, no
   cache, model already loaded) and the wall time of ``process_interviews`` on the same N files against
   a running Prefect server (ingest, segmentation, embedding, suggesting, discovery, Prefect overhead);
   target: flow <= 1.3 x embedding;
2. the wall time of a re-run with nothing new against the running server (target < 5 s), and beside
   it the same re-run in Prefect's ephemeral mode (a fresh process: temporary server start included).

Usage: ``.venv/bin/python bench/flow.py [--n 50] [--turns 16] [--embedding minilm]``
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    from pipeline.project import Project, import_codebook, init_project

    init_project(root).close()
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8").replace('language = "auto"', 'language = "en"')
    cfg = cfg.replace('model = "minilm"', f'model = "{embedding}"')
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    proj = Project.open(root)
    import_codebook(proj, REPO / "data" / "demo" / "codebook.yaml")
    proj.close()
    for i in range(n):
        (root / "inbox" / f"bench{i:03d}.txt").write_text(synthetic_interview(i, turns), encoding="utf-8")


def segment_texts(root: Path) -> list[str]:
    from pipeline.processing import find_new_files, parse_files
    from pipeline.project import Project
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="synthetic interviews (default 50)")
    ap.add_argument(
        "--turns", type=int, default=16, help="participant turns per interview (2 sentences each)"
    )
    ap.add_argument("--embedding", default="minilm", help="embedding model spec (default minilm)")
    args = ap.parse_args()

    from pipeline.privacy import disable_telemetry

    disable_telemetry()
    work = Path(tempfile.mkdtemp(prefix="qualflow-bench-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect")
    os.environ.pop("PREFECT_API_URL", None)
    root = work / "proj"
    make_project(root, args.n, args.turns, args.embedding)
    texts = segment_texts(root)

    from pipeline.embed import make_embedder

    emb = make_embedder(args.embedding, progress=False)
    emb.encode(["warm up"])
    t = time.perf_counter()
    emb.encode(texts)
    t_embed = time.perf_counter() - t

    from flows.serve import local_prefect_server

    with local_prefect_server(work / "prefect") as url:
        os.environ["PREFECT_API_URL"] = url
        from flows.process import process_interviews

        t = time.perf_counter()
        first = process_interviews(str(root))
        t_flow = time.perf_counter() - t
        t = time.perf_counter()
        again = process_interviews(str(root))
        t_rerun = time.perf_counter() - t
    os.environ.pop("PREFECT_API_URL")
    assert len(first.processed) == args.n and not again.processed

    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-ephemeral")}
    out = subprocess.run(
        [sys.executable, "-c", EPHEMERAL, str(root)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    t_eph_flow, t_eph_total = (float(x) for x in out.stdout.split()[-2:])

    print(f"\n{args.n} interviews, {len(texts)} participant segments, embedding {emb.fingerprint}")
    print(f"{'bare embedding (model loaded, no cache)':<58}{t_embed:8.2f} s")
    print(f"{'process_interviews, running server (first run)':<58}{t_flow:8.2f} s")
    print(f"{'  ratio flow / embedding (target <= 1.3)':<58}{t_flow / t_embed:8.2f}")
    print(f"{'re-run, nothing new, running server (target < 5 s)':<58}{t_rerun:8.2f} s")
    print(f"{'re-run, nothing new, ephemeral mode (flow call)':<58}{t_eph_flow:8.2f} s")
    print(f"{'re-run, nothing new, ephemeral mode (incl. imports)':<58}{t_eph_total:8.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
