"""The project's encoder fine-tuned on its labelled segments, for ``qualflow suggest --fine-tune``.

The same :func:`pipeline.embed.finetune.fine_tune` as the retrain flow, on every segment someone said
something about (coded, or a rejected suggestion), within ``[suggester] fine_tune_minutes``. The folder
is ``.qualflow/encoders/run-<hash>``, the hash covering the base model's fingerprint, the labelled
texts and their labels, the codes and the budget: a re-run with the same codings reuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.domain import sha256_text
from pipeline.errors import InputError
from pipeline.project.core import Project
from pipeline.project.corpus import Corpus

#: Bumped when what goes into a fine-tune changes, so older folders are not reused.
RECIPE_VERSION = 1  # (an exclusive codebook, fine-tuned as a classifier since, has its own line in the key)


@dataclass(frozen=True)
class TunedEncoder:
    """A fine-tuned encoder folder and what made it. ``spec``: the embedder spec that runs it (the
    project's backend); ``reused``: the folder was there already (the figures are those of the run
    that made it); ``peak_rss_mb``: that process's peak resident memory when the fine-tune ended."""

    spec: str
    folder: Path
    reused: bool
    steps: int
    triplets: int
    seconds: float
    peak_rss_mb: float
    stopped_by_budget: bool
    unit: str = "triplets"  # what ``triplets`` counts: "examples" for a classification fine-tune

    def line(self) -> str:
        """One line for the user.

        >>> TunedEncoder("onnx:/p/run-1", Path("/p/run-1"), False, 3, 48, 12.5, 2100.0, True).line()
        'fine-tuned the encoder on 48 triplets (3 steps) in 12 s (stopped by the time budget), peak memory 2100 MB; suggesting with onnx:/p/run-1'
        """
        if self.reused:
            return (
                f"reused the fine-tuned encoder {self.folder} (same codings: {self.triplets} {self.unit}, "
                f"{self.steps} steps, {self.seconds:.0f} s when trained); suggesting with {self.spec}"
            )
        budget = " (stopped by the time budget)" if self.stopped_by_budget else ""
        return (
            f"fine-tuned the encoder on {self.triplets} {self.unit} ({self.steps} steps) in {self.seconds:.0f} s"
            f"{budget}, peak memory {self.peak_rss_mb:.0f} MB; suggesting with {self.spec}"
        )


def encoder_key(
    base_fingerprint: str, corpus: Corpus, rows: list[int], minutes: float, exclusive: bool = False
) -> str:
    """Hash of what a fine-tune learns from: base model, labelled texts and labels, codes, budget, and
    whether the codebook is exclusive (the loss)."""
    Y = corpus.Y
    return sha256_text(
        f"recipe:{RECIPE_VERSION}\nbase:{base_fingerprint}\nminutes:{minutes!r}\ncodes:{','.join(corpus.codes)}\n"
        + ("exclusive\n" if exclusive else "")
        + "\n".join(f"{sha256_text(corpus.texts[i])}|{','.join(map(str, Y[i].tolist()))}" for i in rows)
    )


def fine_tune_project_encoder(project: Project, corpus: Corpus, minutes: float) -> TunedEncoder:
    """Fine-tune the project's ``[embedding] model`` on ``corpus``'s labelled segments within
    ``minutes``, or reuse the folder an earlier run made from the same data.

    Raises
    ------
    ConfigError
        The project's model is not a sentence-transformers model (``hashing``).
    InputError
        No code has two coded segments and another labelled segment to contrast them with.
    """
    from pipeline.embed.factory import fine_tune_base_dir, fine_tuned_spec
    from pipeline.embed.finetune import FINETUNE_MANIFEST
    from pipeline.embed.onnx import source_fingerprint

    model = project.config.embedding.model
    base_dir = fine_tune_base_dir(model, project.root)
    Y = corpus.Y
    rows = np.flatnonzero((Y != 0).any(axis=1)).tolist() if Y.size else []
    exclusive = bool(project.config.suggester.params.get("exclusive", False))
    key = encoder_key(source_fingerprint(base_dir), corpus, rows, minutes, exclusive)
    folder = project.cache_dir / "encoders" / f"run-{key[:12]}"
    manifest = folder / FINETUNE_MANIFEST  # written last: a folder without it is an interrupted run
    if manifest.is_file():
        done = json.loads(manifest.read_text(encoding="utf-8"))
        return TunedEncoder(
            spec=fine_tuned_spec(model, folder),
            folder=folder,
            reused=True,
            steps=int(done.get("steps", 0)),
            triplets=int(done.get("triplets", 0)),
            seconds=float(done.get("seconds", 0.0)),
            peak_rss_mb=float(done.get("peak_rss_mb", 0.0)),
            stopped_by_budget=bool(done.get("stopped_by_budget", False)),
            unit="examples" if done.get("loss") == "classify" else "triplets",
        )
    from pipeline.embed.finetune import fine_tune

    try:
        result = fine_tune(
            base_dir, [corpus.texts[i] for i in rows], Y[rows], folder, minutes=minutes, exclusive=exclusive
        )
    except ValueError as exc:
        raise InputError(
            f"--fine-tune: {exc} ({len(rows)} labelled segments); code more segments, or suggest without "
            "--fine-tune (or set [suggester] fine_tune = false)"
        ) from None
    return TunedEncoder(
        spec=fine_tuned_spec(model, folder),
        folder=folder,
        reused=False,
        steps=result.steps,
        triplets=result.triplets,
        seconds=result.seconds,
        peak_rss_mb=result.peak_rss_mb,
        stopped_by_budget=result.stopped_by_budget,
        unit=result.unit,
    )
