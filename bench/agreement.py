"""Time the agreement coefficients at project scale.

Usage: ``python bench/agreement.py [--units 100000] [--coders 10] [--codes 50] [--boot 1000]``

1. Every report coefficient (percent, Fleiss' κ, Krippendorff's α, Gwet's AC1) for each of 50 codes
   and pooled across codes, on presence matrices of 100,000 units × 10 coders (10% missing).
   Target: < 5 s.
2. 1,000 bootstrap resamples of Krippendorff's α and of Fleiss' κ on one code's 100,000 × 10 matrix.
   Target: < 10 s each.
3. The report's panel at study scale (``--panel-units 45000 --panel-codes 300``: two coders, about
   five codings per code, so most codes are rare): percent, Cohen's κ, Krippendorff's α and Gwet's
   AC1 with 1,000 resamples for every code and pooled, side by side in this run: one
   ``estimates()`` per code (the panel before ``group_estimates``; timed on ``--old-codes`` codes and
   scaled to all) against ``group_estimates()`` on all codes, whose numbers are checked on the codes
   timed both ways and pooled: the same estimates, notes and unit counts, and point estimates and
   interval bounds within 1e-9 (the largest difference is printed; with two coders it is 0, bit for
   bit). Target: < 30 s. ``--panel-coders 3`` (Fleiss' κ for Cohen's): statistics such as 1/3 are not
   exact in floating point, so the sums per row pattern equal the unit-by-unit sums up to rounding.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TOLERANCE = 1e-9
"""Largest difference allowed between ``group_estimates()`` and ``estimates()`` (point and bounds)."""


def max_difference(new: object, old: object) -> float:
    """Largest absolute difference of point estimates and interval bounds between two results of
    ``estimates()`` (``(defined, undefined)`` pairs, or lists of them); ``inf`` when they differ in
    anything else (which coefficients are defined, the reasons, unit counts, notes, a missing bound)."""
    if isinstance(new, list) and isinstance(old, list):
        return max((max_difference(a, b) for a, b in zip(new, old, strict=True)), default=0.0)
    assert isinstance(new, tuple) and isinstance(old, tuple)
    (new_ok, new_why), (old_ok, old_why) = new, old
    if new_why != old_why or new_ok.keys() != old_ok.keys():
        return float("inf")
    worst = 0.0
    for name, a in new_ok.items():
        b = old_ok[name]
        if (a.n_units, a.n_coders, a.ci, a.n_boot, a.note) != (b.n_units, b.n_coders, b.ci, b.n_boot, b.note):
            return float("inf")
        for x, y in ((a.value, b.value), (a.ci_low, b.ci_low), (a.ci_high, b.ci_high)):
            if (x is None) != (y is None):
                return float("inf")
            if x is not None and y is not None:
                worst = max(worst, abs(x - y))
    return worst


def main(argv: list[str]) -> int:
    from pipeline.agreement import bootstrap, estimates, group_estimates

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=100_000)
    ap.add_argument("--coders", type=int, default=10)
    ap.add_argument("--codes", type=int, default=50)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--panel-units", type=int, default=45_000)
    ap.add_argument("--panel-codes", type=int, default=300)
    ap.add_argument("--old-codes", type=int, default=5, help="codes timed the old way (then scaled)")
    ap.add_argument("--panel-coders", type=int, default=2)
    ap.add_argument("--panel-only", action="store_true", help="run case 3 only")
    args = ap.parse_args(argv)
    if args.panel_only:
        return panel(args, estimates, group_estimates)

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
    return panel(args, estimates, group_estimates)


def panel(args: argparse.Namespace, estimates, group_estimates) -> int:  # type: ignore[no-untyped-def]
    """Case 3: the per-code panel the old way (one ``estimates`` per code) and with ``group_estimates``."""
    rng = np.random.default_rng(1)
    n, g, c = args.panel_units, args.panel_codes, args.panel_coders
    presence = np.zeros((g, n, c), dtype=np.int8)
    for i in range(g):  # about five codings per code, each by one coder or both, over 1-3 units
        for _ in range(rng.integers(1, 10)):
            u = int(rng.integers(0, n - 3))
            span = slice(u, u + int(rng.integers(1, 4)))
            who = rng.integers(0, c + 1)
            if who < c:
                presence[i, span, who] = 1
            else:
                presence[i, span, :] = 1
    names = ("percent", "cohen" if c == 2 else "fleiss", "krippendorff", "ac1")
    opts = {"n_categories": 2, "n_boot": args.boot, "seed": 0, "coders": [f"coder{j}" for j in range(c)]}
    k = min(args.old_codes, g)

    t0 = time.perf_counter()
    old_rows = [estimates(names, presence[i], **opts) for i in range(k)]
    t_old_codes = time.perf_counter() - t0
    t0 = time.perf_counter()
    old_pooled = estimates(names, presence, **opts)
    t_old_pooled = time.perf_counter() - t0
    t_old = t_old_codes / max(k, 1) * g + t_old_pooled

    t0 = time.perf_counter()
    rows, pooled = group_estimates(names, presence, **opts)
    t_new = time.perf_counter() - t0
    diff = max(max_difference(rows[:k], old_rows), max_difference(pooled, old_pooled))
    same = diff <= TOLERANCE

    print(
        f"report panel, {len(names)} coefficients x {args.boot:,} resamples, {n:,} units x {c} coders x {g} codes:"
    )
    print(
        f"  one estimates() per code: {t_old_codes / max(k, 1):.2f} s per code (timed on {k}) x {g} "
        f"+ pooled {t_old_pooled:.2f} s = {t_old:.0f} s"
    )
    print(
        f"  group_estimates(): {t_new:.2f} s   ({t_old / t_new:.0f}x faster; target < 30 s: "
        f"{t_new / 30:.2f} of it)"
    )
    print(
        f"  on the {k} codes and pooled, largest |difference| of point estimates and interval bounds: "
        f"{diff:.3g} (bit for bit: {rows[:k] == old_rows and pooled == old_pooled}; "
        f"<= {TOLERANCE:g}: {same})"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
