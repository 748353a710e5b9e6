"""Embedding throughput, overhead, ONNX (int8 and float32) vs torch, cache cold vs warm, and peak memory: one run.

Usage::

    .venv/bin/python bench/embed.py [--n 2000] [--rounds 2] [--annomi ../shared/data/annomi]

Every backend runs in its own child process (so each peak RSS is its own), on the same texts, with
the same warm-up (one batch) before timing. Throughput is the best of ``--rounds`` alternating runs,
which damps the noise of a shared machine. The cold cached run and the warm re-run each time the
whole second-run path: building the embedder from its spec plus ``encode`` (model load included).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# ---- texts -------------------------------------------------------------------------------------

_OPENERS = [
    "Honestly,",
    "I mean,",
    "To be fair,",
    "At the start,",
    "Looking back,",
    "Most days",
    "Sometimes",
    "Last winter",
    "On the night shift",
    "When I joined",
    "After the reorganisation",
    "Before the pandemic",
]
_SUBJECTS = [
    "my manager",
    "the ward sister",
    "our team",
    "the new director",
    "my family",
    "the patients",
    "the union rep",
    "my colleagues",
    "the junior doctors",
    "the agency staff",
    "my partner",
    "the council",
]
_VERBS = [
    "never really listened to",
    "kept pushing back on",
    "was quietly worried about",
    "tried to work around",
    "complained a lot about",
    "felt let down by",
    "slowly came to accept",
    "openly argued against",
    "did not understand",
    "made jokes about",
    "were exhausted by",
    "put a lot of effort into",
]
_OBJECTS = [
    "the budget cuts",
    "the rota changes",
    "the new software",
    "the staffing shortage",
    "the training days",
    "the paperwork",
    "the long commute",
    "the childcare costs",
    "the sick leave policy",
    "the overtime",
    "the bed shortage",
    "the team meetings",
    "the drinking",
    "the smoking",
    "the waiting lists",
]
_TAILS = [
    "and nobody explained why it had changed",
    "because there simply was not enough money",
    "so I started looking for another job",
    "which made the whole place feel unsafe",
    "even though we had raised it many times",
    "until someone finally wrote it down",
    "and that really affected my sleep",
    "but we found small ways to cope with it",
    "which I think says a lot about trust here",
    "so the morale on the ward dropped",
    "and it took months before anything happened",
    "and I felt I had no say in it at all",
]


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct interview-like sentences of 15-40 words from a seeded template generator."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        target = rng.randint(15, 40)
        words: list[str] = []
        while len(words) < target:
            clause = [rng.choice(_OPENERS), rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
            words += " ".join(clause).split() + rng.choice(_TAILS).split()
        text = " ".join(words[:target]).rstrip(",") + "."
        out[text[0].upper() + text[1:]] = None
    return list(out)


def annomi_texts(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct AnnoMI utterances of at least 3 words (seeded sample)."""
    with (folder / "AnnoMI-simple.csv").open(encoding="utf-8", newline="") as fh:
        texts = list(dict.fromkeys(r["utterance_text"].strip() for r in csv.DictReader(fh)))
    texts = [t for t in texts if len(t.split()) >= 3]
    random.Random(seed).shuffle(texts)
    return texts[:n]


# ---- children ----------------------------------------------------------------------------------


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: per address space, so reset by exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def _encoders(kinds: list[str], batch_size: int, onnx_dir: str) -> dict[str, Callable[[list[str]], Any]]:
    from pipeline.embed.factory import make_embedder
    from pipeline.embed.model_dir import packaged_model_dir

    out: dict[str, Callable[[list[str]], Any]] = {}
    for kind in kinds:
        if kind == "bare":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(packaged_model_dir()), device="cpu", local_files_only=True)
            out[kind] = functools.partial(
                model.encode, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        else:
            spec = {
                "qualflow-st": "minilm",
                "onnx": f"onnx:{onnx_dir}",
                "onnx-fp32": f"onnx:{onnx_dir}-fp32",
            }[kind]
            out[kind] = make_embedder(spec, batch_size=batch_size, progress=False).encode
    return out


def child(kind: str, texts: list[str], args: argparse.Namespace) -> dict:
    """One measurement in a fresh process; prints a JSON line."""
    result: dict = {"kind": kind}
    if kind == "speed":  # throughput: the three backends in one process, alternating, best of rounds
        encoders = _encoders(["bare", "qualflow-st", "onnx", "onnx-fp32"], args.batch_size, args.onnx_dir)
        best = {k: float("inf") for k in encoders}
        for enc in encoders.values():
            enc(texts[: args.batch_size])  # same warm-up for all
        for _ in range(args.rounds):
            for k, enc in encoders.items():
                t0 = time.perf_counter()
                X = enc(texts)
                best[k] = min(best[k], time.perf_counter() - t0)
                np.save(Path(args.work) / f"{k}.npy", np.asarray(X, dtype=np.float32))
        result["seconds"] = best
    elif kind in ("cold", "warm"):  # the whole (re-)run path: build from spec + encode
        from pipeline.embed.factory import make_embedder

        t0 = time.perf_counter()
        e = make_embedder(
            "minilm", cache_dir=Path(args.cache_dir), batch_size=args.batch_size, progress=False
        )
        X = e.encode(texts)
        result["seconds"] = time.perf_counter() - t0
        result["stats"] = vars(e.last_stats_)  # type: ignore[attr-defined]
        np.save(Path(args.work) / f"{kind}.npy", X)
    else:  # "mem-<backend>": load one backend, embed a few batches, report peak memory
        enc = _encoders([kind.removeprefix("mem-")], args.batch_size, args.onnx_dir)[
            kind.removeprefix("mem-")
        ]
        enc(texts[: 8 * args.batch_size])
    result["peak_mb"] = _peak_mb()
    return result


def run_child(kind: str, args: argparse.Namespace, work: Path, cache_dir: Path | None = None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--work",
        str(work),
        "--batch-size",
        str(args.batch_size),
        "--rounds",
        str(args.rounds),
        "--onnx-dir",
        str(work / "onnx"),
        "--cache-dir",
        str(cache_dir or work),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"child {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- cache micro-benchmark ----------------------------------------------------------------------


def cache_io(n: int = 10_000, dim: int = 384) -> tuple[float, float]:
    from pipeline.embed.cache import EmbeddingCache

    X = np.random.default_rng(0).random((n, dim), dtype=np.float32)
    keys = [f"{i:064x}" for i in range(n)]
    with tempfile.TemporaryDirectory() as d:
        cache = EmbeddingCache(Path(d) / "embeddings.sqlite")
        cache.count()
        t0 = time.perf_counter()
        cache.put_many("fp", keys, X)
        t1 = time.perf_counter()
        got = cache.get_many("fp", keys)
        t2 = time.perf_counter()
        assert len(got) == n
        cache.close()
    return t1 - t0, t2 - t1


# ---- main --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="number of texts")
    ap.add_argument("--rounds", type=int, default=2, help="alternating timed rounds per backend (best kept)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--annomi", type=Path, help="AnnoMI folder: use real utterances instead of synthetic text"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--onnx-dir", help=argparse.SUPPRESS)
    ap.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        if args.child == "export":
            from pipeline.embed.model_dir import packaged_model_dir
            from pipeline.embed.onnx import export_onnx

            t0 = time.perf_counter()
            export_onnx(packaged_model_dir(), Path(args.onnx_dir))
            int8_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            export_onnx(packaged_model_dir(), Path(f"{args.onnx_dir}-fp32"), "none")
            fp32_s = time.perf_counter() - t0
            print(json.dumps({"seconds": int8_s, "fp32_seconds": fp32_s, "peak_mb": _peak_mb()}))
            return
        texts = json.loads((Path(args.work) / "texts.json").read_text(encoding="utf-8"))
        print(json.dumps(child(args.child, texts, args)))
        return

    texts = annomi_texts(args.annomi, args.n) if args.annomi else synthetic_texts(args.n)
    words = [len(t.split()) for t in texts]
    source = f"AnnoMI utterances ({args.annomi})" if args.annomi else "synthetic interview sentences"
    print(
        f"texts: {len(texts)} {source}, {min(words)}-{max(words)} words (mean {np.mean(words):.1f}); "
        f"batch {args.batch_size}; {os.cpu_count()} CPUs; throughput best of {args.rounds} alternating round(s)"
    )

    with tempfile.TemporaryDirectory(prefix="qf-bench-embed-") as tmp:
        work = Path(tmp)
        (work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        export = run_child("export", args, work)
        speed = run_child("speed", args, work)
        mem = {
            k: run_child(f"mem-{k}", args, work)["peak_mb"]
            for k in ("bare", "qualflow-st", "onnx", "onnx-fp32")
        }
        cache_dir = work / "project" / ".qualflow"
        cold = run_child("cold", args, work, cache_dir)
        warm = run_child("warm", args, work, cache_dir)
        bare, ours, onnx, fp32 = (
            np.load(work / f"{k}.npy") for k in ("bare", "qualflow-st", "onnx", "onnx-fp32")
        )
        cold_X, warm_X = np.load(work / "cold.npy"), np.load(work / "warm.npy")
    put_s, get_s = cache_io()

    sec = speed["seconds"]
    sps = {k: len(texts) / v for k, v in sec.items()}
    overhead = sec["qualflow-st"] / sec["bare"] - 1
    # bare and qualflow run the same torch encode: the faster of the two is the fair torch figure
    torch_sps = max(sps["bare"], sps["qualflow-st"])
    onnx_ratio = sps["onnx"] / torch_sps
    warm_ratio = cold["seconds"] / warm["seconds"]
    cos = (onnx * bare).sum(axis=1)
    fp32_ratio = sps["onnx-fp32"] / torch_sps
    cos32 = (fp32 * bare).sum(axis=1)

    print()
    print("| run | seconds | sentences/s | peak RSS MB |")
    print("|---|---:|---:|---:|")
    print(
        f"| bare `SentenceTransformer.encode` (torch) | {sec['bare']:.2f} | {sps['bare']:.0f} | {mem['bare']:.0f} |"
    )
    print(
        f"| qualflow `sentence-transformers` (torch) | {sec['qualflow-st']:.2f} | {sps['qualflow-st']:.0f} | {mem['qualflow-st']:.0f} |"
    )
    print(f"| qualflow `onnx` (int8) | {sec['onnx']:.2f} | {sps['onnx']:.0f} | {mem['onnx']:.0f} |")
    print(
        f"| qualflow `onnx-fp32` (float32, the default) | {sec['onnx-fp32']:.2f} | {sps['onnx-fp32']:.0f} "
        f"| {mem['onnx-fp32']:.0f} |"
    )
    print(
        f"| cached `minilm`, cold run (load + embed all) | {cold['seconds']:.2f} | {len(texts) / cold['seconds']:.0f} | {cold['peak_mb']:.0f} |"
    )
    print(
        f"| cached `minilm`, warm re-run (all hits) | {warm['seconds']:.3f} | {len(texts) / warm['seconds']:.0f} | {warm['peak_mb']:.0f} |"
    )
    print()
    print(
        f"ONNX export (offline): int8 {export['seconds']:.1f} s, float32 {export['fp32_seconds']:.1f} s, "
        f"peak RSS {export['peak_mb']:.0f} MB"
    )
    print(f"ONNX float32 vs torch cosine: min {cos32.min():.6f}, mean {cos32.mean():.6f}")
    print(
        f"ONNX int8 vs torch cosine: min {cos.min():.4f}, p01 {np.quantile(cos, 0.01):.4f}, mean {cos.mean():.4f}"
    )
    print(
        f"qualflow vs bare max |diff| {np.abs(ours - bare).max():.1e}; warm vs cold max |diff| {np.abs(warm_X - cold_X).max():.1e}"
    )
    print(f"cold {cold['stats']}; warm {warm['stats']}")
    print(f"cache I/O, 10,000 x 384 float32 (SQLite): put {put_s:.3f} s, get {get_s:.3f} s")
    print()
    print(
        f"{'PASS' if overhead <= 0.15 else 'FAIL'} qualflow overhead vs bare encode: {overhead * 100:+.1f} % (target <= 15 %)"
    )
    print(
        f"{'PASS' if warm_ratio >= 50 else 'FAIL'} warm re-run vs cold run: {warm_ratio:.0f}x faster (target >= 50x)"
    )
    print(
        f"{'PASS' if warm['stats']['embedded'] == 0 else 'FAIL'} warm re-run embedded {warm['stats']['embedded']} texts (target 0)"
    )
    print(
        f"{'PASS' if onnx_ratio > 1 else 'FAIL'} ONNX int8 vs the faster torch run: {onnx_ratio:.2f}x the speed, "
        f"{mem['onnx'] / mem['bare']:.2f}x the peak memory (target: faster)"
    )
    print(
        f"{'PASS' if cos.min() >= 0.95 else 'FAIL'} ONNX int8 agreement with torch: min cosine {cos.min():.4f} (target >= 0.95)"
    )
    print(
        f"{'PASS' if fp32_ratio > 1 else 'FAIL'} ONNX float32 (the default) vs the faster torch run: "
        f"{fp32_ratio:.2f}x the speed, {mem['onnx-fp32'] / mem['bare']:.2f}x the peak memory (target: faster)"
    )
    print(
        f"{'PASS' if cos32.min() >= 0.9999 else 'FAIL'} ONNX float32 agreement with torch: min cosine "
        f"{cos32.min():.6f} (target >= 0.9999)"
    )


if __name__ == "__main__":
    main()
