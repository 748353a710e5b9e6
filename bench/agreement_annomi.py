"""Reproduce AnnoMI's human ceiling with qualflow's agreement coefficients.

Usage: ``python bench/agreement_annomi.py PATH`` where PATH is
``AnnoMI-full_multiannotated_subset.csv`` (or the folder holding it; see ../shared/data/annomi/SOURCE.md).

Units are utterances, identified by ``(transcript_id, utterance_id)``; coders are the 10
``annotator_id`` values; therapist utterances are rated on ``main_therapist_behaviour`` and client
utterances on ``client_talk_type`` (nominal). Every annotator rated every such utterance once, so the
reliability matrix is complete: 216 × 10 and 212 × 10.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pipeline.agreement import fleiss_kappa, krippendorff_alpha, mean_pairwise_cohen

FILE = "AnnoMI-full_multiannotated_subset.csv"
TASKS = {"main_therapist_behaviour": "therapist", "client_talk_type": "client"}
TARGETS = {"main_therapist_behaviour": (0.737, 0.737, 0.737), "client_talk_type": (0.467, 0.467, 0.470)}


def annomi_matrices(path: Path) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Reliability matrix (n_utterances, 10) and annotator names per task."""
    import pandas as pd

    csv = path / FILE if path.is_dir() else path
    df = pd.read_csv(csv, keep_default_na=False)
    out: dict[str, tuple[np.ndarray, list[str]]] = {}
    for column, speaker in TASKS.items():
        rows = df[df["interlocutor"] == speaker]
        table = rows.pivot(index=["transcript_id", "utterance_id"], columns="annotator_id", values=column)
        categories = sorted(rows[column].unique())
        index = {c: i for i, c in enumerate(categories)}
        R = table.apply(lambda s, index=index: s.map(index)).fillna(-1).to_numpy(dtype=np.int64)
        out[column] = (R, [str(c) for c in table.columns])
    return out


def annomi_agreement(path: Path) -> dict[str, tuple[float, float, float]]:
    """Fleiss' κ, Krippendorff's α and mean pairwise Cohen's κ per task."""
    return {
        column: (fleiss_kappa(R), krippendorff_alpha(R), mean_pairwise_cohen(R, coders))
        for column, (R, coders) in annomi_matrices(path).items()
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    path = Path(argv[0])
    print(f"{'task':26} {'units':>5}  {'Fleiss κ':>14}  {'Kripp. α':>14}  {'mean Cohen κ':>14}")
    matrices = annomi_matrices(path)
    for column, values in annomi_agreement(path).items():
        cells = "  ".join(
            f"{v:.3f} ({t:.3f})".rjust(14) for v, t in zip(values, TARGETS[column], strict=True)
        )
        print(f"{column:26} {matrices[column][0].shape[0]:>5}  {cells}")
    print("(value (target); targets from ../shared/data/annomi/SOURCE.md)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
