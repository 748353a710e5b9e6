"""Does the embedding backend change the AnnoMI κ? torch (sentence-transformers) against ONNX (float32, int8).

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/annomi_backends.py ../shared/data/annomi [--cache DIR]
        [--backend SPEC ...]

Issue 15 makes an ONNX backend the default only when its κ on AnnoMI is within 0.01 of torch's.
This embeds every AnnoMI utterance with each backend (``minilm``, ``onnx-fp32:minilm`` and
``onnx:minilm``, as ``[embedding] model`` names them, vectors cached per backend in ``--cache``), then
trains and tests the product default for each codebook exactly as ``bench/annomi.py`` does (train on
the 126 single-expert transcripts, mean Cohen's κ with each of the 10 experts on the 7 others; and
5-fold CV κ grouped by transcript on the 126), and prints one table: κ per backend and codebook, the
difference to torch, and the cold embedding time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annomi import CODEBOOKS, TEST_TRANSCRIPTS, kappa_codes, onehot, shifted_texts  # noqa: E402

from models import make_suggester, previous_rows  # noqa: E402
from models.base import side_inputs  # noqa: E402
from pipeline.evaluate import grouped_cv_predictions, kappa_of_labels  # noqa: E402

BACKENDS = ("minilm", "onnx-fp32:minilm", "onnx:minilm")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path, help="folder with the AnnoMI CSVs")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/qualflow-annomi-backends"))
    ap.add_argument(
        "--backend",
        action="append",
        dest="backends",
        metavar="SPEC",
        help="an [embedding] model spec to compare (repeatable; default: minilm, onnx-fp32:minilm, "
        "onnx:minilm); "
        "the first is the reference the others are compared with",
    )
    args = ap.parse_args(argv)
    for name in ("AnnoMI-simple.csv", "AnnoMI-full_multiannotated_subset.csv"):
        if not (args.path / name).exists():
            ap.error(f"{args.path / name} not found; pass the folder holding the AnnoMI CSVs")
    from pipeline.embed.factory import make_embedder

    simple = pd.read_csv(args.path / "AnnoMI-simple.csv", keep_default_na=False)
    multi = pd.read_csv(args.path / "AnnoMI-full_multiannotated_subset.csv", keep_default_na=False)
    simple = simple.sort_values(["transcript_id", "utterance_id"]).reset_index(drop=True)
    texts = simple.utterance_text.tolist()
    tid = simple.transcript_id.to_numpy()
    prev, prev2 = shifted_texts(texts, tid, 1), shifted_texts(texts, tid, 2)
    rows: list[dict[str, Any]] = []
    backends = tuple(args.backends or BACKENDS)
    for spec in backends:
        emb = make_embedder(
            spec, cache_dir=args.cache / spec.replace(":", "-").replace("/", "_"), progress=True
        )
        t0 = time.perf_counter()
        X = emb.encode(texts)
        seconds = time.perf_counter() - t0
        X_prev = previous_rows(X, tid)
        for cb_name, (who, codebook) in CODEBOOKS.items():
            codes = codebook.names()
            sel = (simple.interlocutor == who).to_numpy()
            test = np.isin(tid, TEST_TRANSCRIPTS)
            tr, te = np.flatnonzero(sel & ~test), np.flatnonzero(sel & test)
            key_te = list(zip(tid[te], simple.utterance_id.to_numpy()[te], strict=True))
            experts = []
            for _, d in multi[multi.interlocutor == who].groupby("annotator_id"):
                m = dict(zip(zip(d.transcript_id, d.utterance_id, strict=True), d[cb_name], strict=True))
                experts.append(np.array([m[k] for k in key_te]))

            def side(idx: np.ndarray, model: Any) -> dict[str, Any]:
                return side_inputs(
                    model,
                    texts=[texts[i] for i in idx],
                    X_prev=X_prev[idx],  # noqa: B023
                    prev_texts=[prev[i] for i in idx],
                    prev2_texts=[prev2[i] for i in idx],
                    groups=list(tid[idx]),  # used for predict only (decoding along each transcript)
                )

            model = make_suggester("auto", codebook=codebook, embedder=emb, exclusive=True, random_state=0)
            model.fit(X[tr], onehot(simple[cb_name].to_numpy()[tr], codes), groups=tid[tr], **side(tr, model))
            pred = np.array(codes)[model.predict_proba(X[te], **side(te, model)).argmax(axis=1)]
            kappa = float(np.mean([kappa_codes(pred, e, codes) for e in experts]))

            def product() -> Any:
                return make_suggester("auto", codebook=codebook, embedder=emb, exclusive=True, random_state=0)  # noqa: B023

            Ytr = onehot(simple[cb_name].to_numpy()[tr], codes)
            P = grouped_cv_predictions(product, X[tr], Ytr, tid[tr], n_splits=5, **side(tr, product()))
            cv = kappa_of_labels(P.argmax(axis=1), Ytr.argmax(axis=1))
            rows.append({"backend": spec, "codebook": cb_name, "kappa": kappa, "cv": cv, "seconds": seconds})
            print(
                f"{spec:12s} {cb_name:26s} kappa {kappa:.3f} CV {cv:.3f} (embedding {seconds:.0f} s)",
                flush=True,
            )
    ref = {r["codebook"]: r for r in rows if r["backend"] == backends[0]}
    print(f"\n{len(texts):,} utterances; the product default (auto) per codebook\n")
    print(
        f"| backend | codebook | test κ with experts | Δ vs {backends[0]} | CV κ (5 folds) | Δ CV "
        "| embedding, cold (s) | utterances/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        delta = r["kappa"] - ref[r["codebook"]]["kappa"]
        dcv = r["cv"] - ref[r["codebook"]]["cv"]
        print(
            f"| `{r['backend']}` | {r['codebook']} | {r['kappa']:.3f} | {delta:+.3f} | {r['cv']:.3f} | {dcv:+.3f} "
            f"| {r['seconds']:.0f} | {len(texts) / r['seconds']:.0f} |"
        )
    print()
    for spec in backends[1:]:
        worst = max(abs(r["kappa"] - ref[r["codebook"]]["kappa"]) for r in rows if r["backend"] == spec)
        verdict = "PASS" if worst <= 0.01 else "FAIL"
        print(
            f"{verdict}: largest test |Δκ| of {spec} against {backends[0]} {worst:.3f} (issue 15 asks ≤ 0.01)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
