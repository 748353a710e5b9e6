"""Peak memory and time of the evidence suggester's fit and predict: the fit now against the pipeline fit
it replaced, side by side, on the same synthetic study; and whether they agree bit for bit.

Usage::

    .venv/bin/python bench/evidence_memory.py [--segments 8000] [--codes 300] [--coded 1500]

Each variant runs in its own child process, so each peak RSS is its own (the figure is the peak of the
process minus its RSS once the data were made). ``whole`` is the fit before (``make_pipeline(StandardScaler(),
LogisticRegression())`` fitted on the (segments x codes x features) evidence, which made a float64
copy of it for the scaler and scaled copies for the fit and the out-of-fold probabilities); ``now`` is
:class:`models.evidence.EvidenceSuggester` (the scaler's statistics summed a block at a time, the
evidence scaled in place). Both share today's ``_features``.
Unit vectors from a few hundred random topics, 40 categories of codes (uncodable parents), each coded
segment with one code, 150 sources, windows on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_study(segments: int, codes: int, coded: int, dim: int = 384) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(codes)]
    parents = {c: f"cat{i % 40}" for i, c in enumerate(names)}
    topics = rng.standard_normal((codes, dim)).astype(np.float32)
    which = rng.integers(codes, size=segments)
    X = (topics[which] + 1.5 * rng.standard_normal((segments, dim))).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    W = X + np.roll(X, 1, axis=0)
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    Y = np.zeros((segments, codes), dtype=np.int8)
    rows = rng.choice(segments, min(coded, segments), replace=False)
    Y[rows, which[rows]] = 1
    groups = np.arange(segments) * 150 // segments
    proto = topics / np.linalg.norm(topics, axis=1, keepdims=True)
    return {
        "names": names,
        "parents": parents,
        "X": X,
        "W": W.astype(np.float32),
        "Y": Y,
        "groups": groups,
        "proto": proto,
    }


def whole_array_class() -> Any:
    from models.evidence import N_WINDOW_FEATURES, EvidenceSuggester

    class WholeArrayEvidence(EvidenceSuggester):
        def _fit_stacker(self, X: Any, Y: Any, groups: Any, W: Any = None) -> Any:
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            n, m = Y.shape
            f = self._n_base_features() + (N_WINDOW_FEATURES if W is not None else 0)
            F = np.zeros((n, m, f), dtype=np.float32)
            for train, test in self._folds(n, groups):
                if W is None:
                    F[test] = self._features(self._base(X[train], Y[train]), X[test])
                else:
                    F[test] = self._features(self._base(X[train], Y[train], W[train]), X[test], W[test])
            self.stacker_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))
            self.stacker_.fit(F.reshape(-1, f), (Y == 1).reshape(-1))
            return self._stack(F)

    return WholeArrayEvidence


def child(variant: str, segments: int, codes: int, coded: int) -> None:
    from models.evidence import EvidenceSuggester

    s = make_study(segments, codes, coded)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cls = whole_array_class() if variant == "whole" else EvidenceSuggester
    t = time.perf_counter()
    model = cls(s["names"], code_embeddings=s["proto"], parents=s["parents"])
    model.fit(s["X"], s["Y"], groups=s["groups"], X_window=s["W"])
    fit_s = time.perf_counter() - t
    P = model.predict_proba(s["X"], X_window=s["W"])
    digest = hashlib.sha256(P.tobytes() + np.float64(model.threshold_).tobytes()).hexdigest()[:16]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"fit_s": fit_s, "peak_mb": (peak - before) / 1024, "digest": digest}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=8000)
    ap.add_argument("--codes", type=int, default=300)
    ap.add_argument("--coded", type=int, default=1500)
    ap.add_argument("--child", choices=["whole", "now"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.segments, a.codes, a.coded)
        return
    out = {}
    for variant in ("whole", "now"):
        cmd = [sys.executable, __file__, "--child", variant, "--segments", str(a.segments)]
        cmd += ["--codes", str(a.codes), "--coded", str(a.coded)]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[variant] = json.loads(res.stdout.strip().splitlines()[-1])
    w, b = out["whole"], out["now"]
    print(f"{a.segments} segments x {a.codes} codes, {a.coded} coded, windows on")
    print(f"{'':10} {'before':>12} {'now':>12} {'ratio':>8}")
    print(f"{'peak MB':10} {w['peak_mb']:12.0f} {b['peak_mb']:12.0f} {b['peak_mb'] / w['peak_mb']:8.2f}")
    print(f"{'fit s':10} {w['fit_s']:12.1f} {b['fit_s']:12.1f} {b['fit_s'] / w['fit_s']:8.2f}")
    same = w["digest"] == b["digest"]
    print(f"probabilities and threshold bit-identical: {'yes' if same else 'NO'}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
