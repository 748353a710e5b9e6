"""Fine-tuning a sentence-transformers model on a project's coded segments.

For an *exclusive* codebook (one code per segment, ``[suggester] params`` ``exclusive = true``) the
encoder is trained as a classifier (``loss = "classify"``): a linear head over the normalised
sentence embedding, class-balanced cross-entropy over the codes, one pass with warm-up and linear
decay; the head is thrown away and the encoder kept, so the suggester still learns from sentence
vectors. On AnnoMI's therapist codebook this gave test κ 0.727 against 0.688 for the base encoder,
in five minutes (docs/benchmarks.md, "Fine-tuning on AnnoMI"); the contrastive losses below needed a
19-minute pass for 0.717. On its client codebook it lowered κ (0.393 → 0.355), so ``train``
keeps a fine-tuned encoder only when it scores at least as well as the base one
(:func:`pipeline.project.retrain.keep_fine_tuned`).

Otherwise the fine-tune is contrastive. Triplets are drawn per code: an anchor and a positive are
two segments a human gave the code; the negative is, when there is one, a segment whose suggestion
of that code a coder *rejected* (the hardest and most honest negative), else a segment coded with
something else and not with this code. Each batch holds triplets of different codes where the
codebook allows, and is trained with
:class:`~sentence_transformers.losses.MultipleNegativesRankingLoss` (every other positive and
negative in the batch is a further negative) when the codebook has at least as many codes as a
batch has triplets, else with a cosine :class:`~sentence_transformers.losses.TripletLoss` on each
triplet's own negative (:func:`choose_loss`). A plain loop (no ``Trainer``: no ``datasets``, no
accelerate), one fixed seed, a wall-clock budget checked after every step, and a cap of
``epochs`` passes over the coded segments.

The result is an ordinary sentence-transformers folder: its fingerprint (a digest of its files)
differs from the base model's, so the embedding cache never mixes their vectors.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterable, Sequence
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

    @property
    def unit(self) -> str:
        """What ``triplets`` counts: ``"examples"`` (coded segments) for ``classify``, else ``"triplets"``."""
        return "examples" if self.loss == "classify" else "triplets"


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


def choose_loss(n_codes: int, batch_size: int, exclusive: bool = False) -> str:
    """``"classify"`` for an exclusive codebook (module docstring); else ``"mnrl"``
    (MultipleNegativesRankingLoss) when a batch can hold triplets of different codes, else
    ``"triplet"`` (cosine TripletLoss on each triplet's own negative).

    MNRL treats every other positive in the batch as a negative: with fewer codes than triplets per
    batch (AnnoMI's 3 client codes, 16 per batch) most of those are the *same* code, and the loss
    pushes a code's segments apart (on AnnoMI's client codebook its loss did not fall in 19 steps;
    the triplet loss's did). Neither has yet shown a reliable κ gain there (docs/embeddings.md).

    >>> choose_loss(230, 16), choose_loss(3, 16), choose_loss(3, 16, exclusive=True)
    ('mnrl', 'triplet', 'classify')
    """
    if exclusive:
        return "classify"
    return "mnrl" if n_codes >= batch_size else "triplet"


def make_loss(model: Any, name: str) -> Any:
    import sentence_transformers.losses as losses

    if name == "triplet":
        return losses.TripletLoss(
            model, distance_metric=losses.TripletDistanceMetric.COSINE, triplet_margin=TRIPLET_MARGIN
        )
    return losses.MultipleNegativesRankingLoss(model)


#: The classification fine-tune (``loss = "classify"``): batch size, learning rate, warm-up share of
#: the steps, the scale of the cosine logits (the head reads normalised embeddings) and the gradient
#: clip. Chosen once on AnnoMI's training transcripts (lr 5e-5 and 1e-4, one and two passes); not tuned
#: on its test transcripts.
CLASSIFY_BATCH = 32
CLASSIFY_LR = 5e-5
CLASSIFY_WARMUP = 0.1
CLASSIFY_SCALE = 20.0
CLASSIFY_CLIP = 1.0


def classify_targets(Y: npt.NDArray[np.integer]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """The rows a classification fine-tune learns from and their target distributions.

    A row counts when it has a code (``1``); its target spreads evenly over its codes (an exclusive
    codebook has one; a double-coded segment teaches both). Rejected suggestions (``-1``) alone do not
    make a row a training example: a classifier needs to know what the segment *is*.

    >>> rows, T = classify_targets(np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [-1, 0, 1]]))
    >>> rows.tolist(), T.tolist()
    ([0, 2, 3], [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    """
    P = (np.asarray(Y) == 1).astype(np.float32)
    rows = np.flatnonzero(P.sum(axis=1) > 0)
    T = P[rows]
    return rows, T / T.sum(axis=1, keepdims=True)


def class_weights(T: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Balanced class weights ``n / (k * count)`` over the codes present; a code with no example weighs 0.

    >>> class_weights(np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)).tolist()
    [0.6666666865348816, 2.0, 0.0]
    """
    count = T.sum(axis=0)
    present = count > 0
    w = np.zeros_like(count)
    w[present] = len(T) / (present.sum() * count[present])
    return w.astype(np.float32)


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
    exclusive: bool = False,
    progress: bool = True,
) -> FineTuneResult:
    """Fine-tune the sentence-transformers folder ``base_dir`` on ``texts`` labelled by ``Y`` and save
    it to ``out_dir`` (replaced if it exists).

    Parameters
    ----------
    texts : the training segments (held-out sources must not be among them)
    Y : ndarray of shape (len(texts), n_codes): 1 coded, -1 rejected, 0 nothing said
    minutes : wall-clock budget of the training loop (the model is saved after the step that ends it)
    epochs : at most this many passes (contrastive: triplets per code = its coded segments, times
        ``epochs``; classify: passes over the coded segments)
    batch_size, lr : of the contrastive losses (classify uses :data:`CLASSIFY_BATCH`, :data:`CLASSIFY_LR`)
    exclusive : the codebook is exclusive: train as a classifier (:func:`choose_loss`)
    progress : a progress bar over the steps (when there are more than a few)

    Raises
    ------
    ValueError
        Contrastive: no code has two coded segments and a negative. Classify: fewer than two codes
        have a coded segment (nothing to tell apart).
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    Y = np.asarray(Y)
    loss_name = "classify" if exclusive else None
    if loss_name == "classify":
        rows, T = classify_targets(Y)
        if int((T.sum(axis=0) > 0).sum()) < 2:
            raise ValueError("fine-tuning an exclusive codebook needs coded segments of at least two codes")
        order = np.concatenate([rng.permutation(len(rows)) for _ in range(max(1, epochs))])
        batches: list[Any] = [order[i : i + CLASSIFY_BATCH] for i in range(0, len(order), CLASSIFY_BATCH)]
    else:
        per_code = max(2, int(np.ceil(epochs * np.median(np.maximum((Y == 1).sum(axis=0), 1)))))
        triplets = make_triplets(Y, rng, per_code)
        if not triplets:
            raise ValueError(
                "fine-tuning needs a code with at least two coded segments and one other segment"
            )
        batches = _batches(triplets, batch_size, rng)
        loss_name = choose_loss(len({t[0] for t in triplets}), batch_size)
    model = SentenceTransformer(str(base_dir), device="cpu", local_files_only=True)
    model.max_seq_length = min(model.max_seq_length or max_seq_length, max_seq_length)
    t0 = time.monotonic()
    deadline = t0 + 60.0 * minutes
    losses_seen: list[float] = []
    steps = _tracked(batches, progress)
    if loss_name == "classify":
        _train_classifier(model, [texts[i] for i in rows], T, steps, len(batches), deadline, losses_seen)
        hard = 0
    else:
        _train_contrastive(model, texts, steps, make_loss(model, loss_name), lr, deadline, losses_seen)
        hard = sum(1 for c, _, _, n in triplets if Y[n, c] == -1)
    items = sum(len(b) for b in batches[: len(losses_seen)])  # examples, or triplets, trained on
    stopped = len(losses_seen) < len(batches)
    model.eval()
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    model.save(str(out_dir))
    result = FineTuneResult(
        model_dir=str(out_dir),
        steps=len(losses_seen),
        triplets=items,
        hard_negatives=hard,
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


#: Fewer steps than this run without a progress bar (a tiny project's fine-tune takes seconds).
PROGRESS_MIN_STEPS = 5


def _tracked(batches: list[Any], progress: bool) -> Iterable[Any]:
    """``batches``, behind a progress bar when asked and there are :data:`PROGRESS_MIN_STEPS` or more."""
    if not progress or len(batches) < PROGRESS_MIN_STEPS:
        return batches
    from rich.progress import track

    return track(batches, description="fine-tuning the encoder", transient=True)


def _tokenizer(model: Any) -> Any:
    """``model.preprocess`` (sentence-transformers 6), else ``model.tokenize`` (deprecated there)."""
    return getattr(model, "preprocess", None) or model.tokenize


def _train_contrastive(
    model: Any, texts: Sequence[str], batches: Iterable[Any], loss_fn: Any, lr: float, deadline: float,
    losses_seen: list[float],
) -> None:  # fmt: skip
    """Steps of ``loss_fn`` over triplet batches until they run out or ``deadline`` passes."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    tokenize = _tokenizer(model)
    model.train()
    for batch in batches:
        feats = [tokenize([texts[t[j]] for t in batch]) for j in (1, 2, 3)]  # on the CPU already
        loss = loss_fn(feats, torch.zeros(len(batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses_seen.append(float(loss.detach()))
        if time.monotonic() > deadline:
            break


def _train_classifier(
    model: Any, texts: Sequence[str], T: npt.NDArray[np.float32], batches: Iterable[Any], n_steps: int,
    deadline: float, losses_seen: list[float],
) -> None:  # fmt: skip
    """Class-balanced cross-entropy of a linear head on the normalised sentence embedding (scaled by
    :data:`CLASSIFY_SCALE`), AdamW with warm-up and linear decay over the planned steps, gradients
    clipped; until the batches run out or ``deadline`` passes. The head is discarded."""
    import torch

    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    head = torch.nn.Linear(int(dim), T.shape[1])
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=CLASSIFY_LR, weight_decay=0.01)
    warm = max(1.0, CLASSIFY_WARMUP * n_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (n_steps - s) / n_steps)
    )
    weight = torch.from_numpy(class_weights(T))
    targets = torch.from_numpy(T)
    tokenize = _tokenizer(model)
    model.train()
    for batch in batches:
        feats = tokenize([texts[i] for i in batch])
        emb = torch.nn.functional.normalize(model(feats)["sentence_embedding"], dim=-1)
        logp = torch.log_softmax(head(emb) * CLASSIFY_SCALE, dim=-1)
        t = targets[torch.as_tensor(batch)]
        # soft-target cross-entropy, each row weighted by its codes' class weights
        row_w = (t * weight).sum(dim=-1)
        loss = (-(t * logp).sum(dim=-1) * row_w).sum() / row_w.sum()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLASSIFY_CLIP)
        optimizer.step()
        schedule.step()
        losses_seen.append(float(loss.detach()))
        if time.monotonic() > deadline:
            break
