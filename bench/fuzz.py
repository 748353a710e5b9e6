"""Fuzz every reader of untrusted files for N minutes and print executions and findings per reader.

The harnesses are those of ``tests/unit/test_fuzz_readers.py`` (``tests/unit/fuzz_targets.py``): mutated bytes of a
valid seed file (for .docx/.qdpx, also a mutated member zipped again); a reader must return or raise a
one-line ``InputError``. Without ``--atheris`` (or when atheris is not installed) the cases come from a
seeded random mutator in a loop, the time shared equally between the readers.

    python bench/fuzz.py --minutes 30 [--only txt,docx] [--seed 0] [--save DIR] [--atheris]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")

from tests.unit.fuzz_targets import TARGETS, random_case, run_one  # noqa: E402


def run_random(
    names: list[str], seconds: float, seed: int, save: Path | None = None
) -> dict[str, tuple[int, Counter[str], dict[str, str]]]:
    rng = random.Random(seed)
    out: dict[str, tuple[int, Counter[str], dict[str, str]]] = {}
    per = seconds / len(names)
    for name in names:
        results: Counter[str] = Counter()
        examples: dict[str, str] = {}
        end = time.monotonic() + per
        n = 0
        while time.monotonic() < end:
            data = random_case(name, rng)
            o = run_one(name, data)
            n += 1
            results[o.result] += 1
            if o.finding:
                results["finding:" + o.finding] += 1
                if o.finding not in examples and save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    digest = hashlib.sha256(data).hexdigest()[:12]
                    (save / f"{name}-{digest}{TARGETS[name].suffix}").write_bytes(data)
                examples.setdefault(o.finding, o.detail)
        out[name] = (n, results, examples)
        findings = {k[8:]: v for k, v in results.items() if k.startswith("finding:")}
        print(
            f"{name:14s} {n:8d} executions  ok {results['ok']:7d}  InputError {results['input_error']:7d}  "
            f"findings {sum(findings.values())} ({len(findings)} distinct)",
            flush=True,
        )
        for key, count in findings.items():
            print(f"    {count:6d} x {key}: {examples[key][:200]!r}", flush=True)
    return out


def run_atheris(names: list[str], seconds: float) -> None:  # pragma: no cover - optional
    import atheris  # type: ignore[import-not-found]

    name = names[0]
    if len(names) > 1:
        print(f"atheris fuzzes one reader per process; fuzzing {name} (pass --only to choose)")
    found: dict[str, int] = defaultdict(int)
    count = 0

    def one(data: bytes) -> None:
        nonlocal count
        count += 1
        o = run_one(name, data)
        if o.finding:
            found[o.finding] += 1
            raise RuntimeError(f"{o.finding}: {o.detail}")

    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}"], one)
    atheris.Fuzz()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--only", default="", help="comma-separated readers: " + ",".join(TARGETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atheris", action="store_true", help="use atheris when installed")
    ap.add_argument("--save", type=Path, default=None, help="write the first input of each finding here")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        sys.exit(f"unknown readers {unknown}; choose from {list(TARGETS)}")
    seconds = args.minutes * 60
    if args.atheris:
        try:
            import atheris  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            print("atheris is not installed; using the random mutator instead")
        else:
            run_atheris(names, seconds)
            return
    t0 = time.monotonic()
    out = run_random(names, seconds, args.seed, args.save)
    total = sum(n for n, _, _ in out.values())
    findings = sum(c for _, r, _ in out.values() for k, c in r.items() if k.startswith("finding:"))
    print(f"total: {total} executions in {time.monotonic() - t0:.0f} s, {findings} findings")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
