"""Time the agreement coefficients at project scale.

Usage: ``python bench/agreement.py [--units 100000] [--coders 10] [--codes 50] [--boot 1000]``

1. Every report coefficient (percent, Fleiss' κ, Krippendorff's α, Gwet's AC1) for each of 50 codes
   and pooled across codes, on presence matrices of 100,000 units × 10 coders (10% missing).
   Target: < 5 s.
2. 1,000 bootstrap resamples of Krippendorff's α and of Fleiss' κ on one code's 100,000 × 10 matrix.
   Target: < 10 s each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    from pipeline.agreement import bootstrap, estimates

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--coders", type=int, default=10)
    ap.add_argument("--codes", type=int, default=50)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    prevalence = rng.uniform(0.02, 0.3, size=args.codes)
    truth = rng.random((args.codes, args.units, 1)) < prevalence[:, None, None]
    flip = rng.random((args.codes, args.units, args.coders)) < 0.1
    presence = (truth ^ flip).astype(np.int8)
    missing = rng.random((args.units, args.coders)) < 0.1  # a coder did not see the unit's source
    presence[:, missing] = -1
    names = ("percent", "fleiss", "krippendorff", "ac1")
    shape = f"{args.units:,} units x {args.coders} coders x {args.codes} codes"

    t0 = time.perf_counter()
    for i in range(args.codes):
        estimates(names, presence[i], n_categories=2, n_boot=0)
    t_codes = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimates(names, presence, n_categories=2, n_boot=0)
    t_pooled = time.perf_counter() - t0
    total = t_codes + t_pooled
    print(f"{len(names)} coefficients per code + pooled, {shape}:")
    print(
        f"  per code {t_codes:.2f} s + pooled {t_pooled:.2f} s = {total:.2f} s   (target < 5 s: {total / 5:.2f} of it)"
    )

    for name in ("krippendorff", "fleiss"):
        t0 = time.perf_counter()
        reps = bootstrap(name, presence[0], n_categories=2, n_boot=args.boot, seed=0)
        t_boot = time.perf_counter() - t0
        print(
            f"{args.boot:,} bootstrap resamples of {name}, {args.units:,} units x {args.coders} coders: "
            f"{t_boot:.2f} s   (target < 10 s: {t_boot / 10:.2f} of it; sd {np.std(reps):.4f})"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
