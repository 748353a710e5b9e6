"""Contrastive fine-tuning of a sentence-transformers model on a project's coded segments.

Triplets are drawn per code: an anchor and a positive are two segments a human gave the code; the
negative is, when there is one, a segment whose suggestion of that code a coder *rejected* (the
hardest and most honest negative), else a segment coded with something else and not with this code.
Each batch holds triplets of different codes where the codebook allows, and is trained with
:class:`~sentence_transformers.losses.MultipleNegativesRankingLoss` (every other positive and
negative in the batch is a further negative) when the codebook has at least as many codes as a batch
has triplets, else with a cosine :class:`~sentence_transformers.losses.TripletLoss` on each triplet's
own negative (:func:`choose_loss`). A plain loop (no ``Trainer``: no ``datasets``, no
accelerate), one fixed seed, a wall-clock budget checked after every step, and a cap of
``epochs`` passes over the coded segments.

The result is an ordinary sentence-transformers folder: its fingerprint (a digest of its files)
differs from the base model's, so the embedding cache never mixes their vectors.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FINETUNE_MANIFEST = "qualflow_finetune.json"


@dataclass
class FineTuneResult:
    """What a fine-tuning run did. ``peak_rss_mb``: the process's peak resident memory so far."""

    model_dir: str
    steps: int
    triplets: int
    hard_negatives: int
    seconds: float
    stopped_by_budget: bool
    mean_loss: float
    peak_rss_mb: float
    seed: int
    loss: str = "mnrl"


def make_triplets(
    Y: npt.NDArray[np.integer], rng: np.random.Generator, per_code: int
) -> list[tuple[int, int, int, int]]:
    """(code column, anchor row, positive row, negative row), up to ``per_code`` per code.

    ``Y`` : ndarray (n_segments, n_codes) of 1 (coded), -1 (rejected suggestion), 0 (nothing said).
    A code with fewer than 2 coded segments gives no triplet. Negatives of code 0 below: row 2 (its
    suggestion was rejected) and row 3 (coded with something else).

    >>> Y = np.array([[1, 0], [1, 0], [-1, 1], [0, 1]])
    >>> sorted({(c, n) for c, a, p, n in make_triplets(Y, np.random.default_rng(0), 3) if c == 0})
    [(0, 2), (0, 3)]
    """
    out = []
    n_codes = Y.shape[1]
    for c in range(n_codes):
        pos = np.flatnonzero(Y[:, c] == 1)
        if len(pos) < 2:
            continue
        hard = np.flatnonzero(Y[:, c] == -1)
        easy = np.flatnonzero((Y[:, c] != 1) & (Y == 1).any(axis=1))
        if len(hard) == 0 and len(easy) == 0:
            continue
        for _ in range(per_code):
            a, p = rng.choice(pos, size=2, replace=False)
            neg_pool = hard if len(hard) and (len(easy) == 0 or rng.random() < 0.5) else easy
            out.append((c, int(a), int(p), int(rng.choice(neg_pool))))
    return out


def _batches(
    triplets: list[tuple[int, int, int, int]], batch_size: int, rng: np.random.Generator
) -> list[list[tuple[int, int, int, int]]]:
    """Batches with as few repeated codes as the codebook allows (a repeated code's positive is a
    false in-batch negative for the other)."""
    by_code: dict[int, list[tuple[int, int, int, int]]] = {}
    for t in triplets:
        by_code.setdefault(t[0], []).append(t)
    queues = [by_code[c] for c in rng.permutation(sorted(by_code))]
    ordered: list[tuple[int, int, int, int]] = []
    while any(queues):
        for q in queues:
            if q:
                ordered.append(q.pop())
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


#: Margin of the cosine triplet loss (few codes); the MNRL scale is sentence-transformers' default.
TRIPLET_MARGIN = 0.3


def choose_loss(n_codes: int, batch_size: int) -> str:
    """``"mnrl"`` (MultipleNegativesRankingLoss) when a batch can hold triplets of different codes,
    else ``"triplet"`` (cosine TripletLoss on each triplet's own negative).

    MNRL treats every other positive in the batch as a negative: with fewer codes than triplets per
    batch (AnnoMI's 3 client codes, 16 per batch) most of those are the *same* code, and the loss
    pushes a code's segments apart (on AnnoMI's client codebook its loss did not fall in 19 steps;
    the triplet loss's did). Neither has yet shown a reliable κ gain there (docs/embeddings.md).

    >>> choose_loss(230, 16), choose_loss(3, 16)
    ('mnrl', 'triplet')
    """
    return "mnrl" if n_codes >= batch_size else "triplet"


def make_loss(model: Any, name: str) -> Any:
    import sentence_transformers.losses as losses

    if name == "triplet":
        return losses.TripletLoss(
            model, distance_metric=losses.TripletDistanceMetric.COSINE, triplet_margin=TRIPLET_MARGIN
        )
    return losses.MultipleNegativesRankingLoss(model)


def fine_tune(
    base_dir: Path,
    texts: Sequence[str],
    Y: npt.NDArray[np.integer],
    out_dir: Path,
    *,
    minutes: float = 10.0,
    seed: int = 0,
    batch_size: int = 16,
    epochs: int = 1,
    lr: float = 2e-5,
    max_seq_length: int = 128,
) -> FineTuneResult:
    """Fine-tune the sentence-transformers folder ``base_dir`` on ``texts`` labelled by ``Y`` and save
    it to ``out_dir`` (replaced if it exists).

    Parameters
    ----------
    texts : the training segments (held-out sources must not be among them)
    Y : ndarray of shape (len(texts), n_codes): 1 coded, -1 rejected, 0 nothing said
    minutes : wall-clock budget of the training loop (the model is saved after the step that ends it)
    epochs : at most this many passes (triplets per code = its coded segments, times ``epochs``)

    Raises
    ------
    ValueError
        When no code has two coded segments and a negative (nothing to learn from).
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    Y = np.asarray(Y)
    per_code = max(2, int(np.ceil(epochs * np.median(np.maximum((Y == 1).sum(axis=0), 1)))))
    triplets = make_triplets(Y, rng, per_code)
    if not triplets:
        raise ValueError("fine-tuning needs a code with at least two coded segments and one other segment")
    batches = _batches(triplets, batch_size, rng)
    model = SentenceTransformer(str(base_dir), device="cpu", local_files_only=True)
    model.max_seq_length = min(model.max_seq_length or max_seq_length, max_seq_length)
    loss_name = choose_loss(len({t[0] for t in triplets}), batch_size)
    loss_fn = make_loss(model, loss_name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    t0 = time.monotonic()
    deadline = t0 + 60.0 * minutes
    losses_seen: list[float] = []
    stopped = False
    for batch in batches:
        feats = [model.tokenize([texts[t[j]] for t in batch]) for j in (1, 2, 3)]  # on the CPU already
        loss = loss_fn(feats, torch.zeros(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses_seen.append(float(loss.detach()))
        if time.monotonic() > deadline:
            stopped = len(losses_seen) < len(batches)
            break
    model.eval()
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    model.save(str(out_dir))
    result = FineTuneResult(
        model_dir=str(out_dir),
        steps=len(losses_seen),
        triplets=sum(len(b) for b in batches[: len(losses_seen)]),
        hard_negatives=sum(1 for c, _, _, n in triplets if Y[n, c] == -1),
        seconds=round(time.monotonic() - t0, 2),
        stopped_by_budget=stopped,
        mean_loss=round(float(np.mean(losses_seen)), 4) if losses_seen else float("nan"),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        seed=seed,
        loss=loss_name,
    )
    from pipeline.embed.model_dir import model_languages

    # the base model's languages stay with the folder (read by pipeline.embed.languages.model_languages)
    langs = model_languages(base_dir)
    manifest = {"base": str(base_dir), "languages": None if langs is None else list(langs), **asdict(result)}
    (out_dir / FINETUNE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return result
