"""Convert AnnoMI (``../shared/data/annomi/AnnoMI-simple.csv``) into the study layout.

Usage::

    python bench/annomi_to_study.py ../shared/data/annomi OUT [--max-transcripts N]

writes ``OUT/transcripts/annomi_007.txt`` ... (one per transcript: each utterance on its own paragraph as
``Therapist: text`` or ``Client: text``, a labelled transcript qualflow reads turn by turn),
``OUT/codebook.yaml`` (two categories, ``therapist behaviour`` with question / reflection /
therapist_input / other and ``client talk type`` with change / neutral / sustain) and ``OUT/codings.csv``
(one coding per utterance: its text's offsets, its label, coder ``annomi``). The simple file's labels
are one expert's, or for the 7 transcripts all 10 experts coded, their majority vote.

The therapist's codes sit on the interviewer's turns, which qualflow skips unless ``[segmentation]
include_interviewer = true`` (``codings import`` says so); the study benchmark as it stands scores
participant (client) turns only.

AnnoMI's licence is unclear (see its SOURCE.md): use the output for evaluation only and keep it out of
the repository. ``--max-transcripts`` keeps the first N transcripts (by id) for a quicker run.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _study_common import StudyError, fail, progress  # noqa: E402

CODER = "annomi"
SPEAKER = {"therapist": "Therapist", "client": "Client"}
CODEBOOK = """\
name: AnnoMI (motivational interviewing)
codes:
  - name: therapist behaviour
    codable: false
    description: What the therapist does in an utterance.
    codes:
      - name: question
        description: The therapist asks a question, open or closed.
      - name: reflection
        description: The therapist reflects back what the client said, simply or adding meaning.
      - name: therapist_input
        description: The therapist gives information, advice, options or negotiates a plan.
      - name: other
        description: Any other therapist utterance (greetings, fillers, facilitation).
  - name: client talk type
    codable: false
    description: The client's stance towards changing the target behaviour.
    codes:
      - name: change
        description: Change talk, the client speaks in favour of changing the behaviour.
      - name: neutral
        description: Neither for nor against change.
      - name: sustain
        description: Sustain talk, the client speaks in favour of the status quo.
"""


def convert(src: Path, out: Path, max_transcripts: int | None = None) -> tuple[int, int]:
    """Write the study folder; returns (transcripts, codings)."""
    import pandas as pd

    path = src / "AnnoMI-simple.csv"
    if not path.is_file():
        raise StudyError(f"{path}: missing; SRC must be the AnnoMI folder (see its SOURCE.md)")
    df = pd.read_csv(path, keep_default_na=False)
    need = {"transcript_id", "utterance_id", "interlocutor", "utterance_text"}
    if not need <= set(df.columns):
        raise StudyError(f"{path}: missing columns {sorted(need - set(df.columns))}")
    ids = sorted(df["transcript_id"].unique())[: max_transcripts or None]
    tdir = out / "transcripts"
    tdir.mkdir(parents=True, exist_ok=True)
    (out / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    n_cod = 0
    with (out / "codings.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["source", "start", "end", "code", "coder"])
        for tid in ids:
            name = f"annomi_{int(tid):03d}"
            parts: list[str] = []
            pos = 0
            rows = df[df["transcript_id"] == tid].sort_values("utterance_id")
            for r in rows.itertuples():
                who = str(r.interlocutor)
                text = " ".join(str(r.utterance_text).split())
                if who not in SPEAKER or not text:
                    continue
                label = f"{SPEAKER[who]}: "
                start = pos + len(label)
                parts.append(label + text + "\n\n")
                code = r.main_therapist_behaviour if who == "therapist" else r.client_talk_type
                if code and code != "n/a":
                    writer.writerow([name, start, start + len(text), code, CODER])
                    n_cod += 1
                pos += len(parts[-1])
            (tdir / f"{name}.txt").write_text("".join(parts), encoding="utf-8", newline="")
    return len(ids), n_cod


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="the AnnoMI folder (AnnoMI-simple.csv)")
    ap.add_argument("out", type=Path, help="output study folder (created)")
    ap.add_argument("--max-transcripts", type=int, metavar="N", help="keep the first N transcripts")
    args = ap.parse_args(argv)
    try:
        n, c = convert(args.src, args.out, args.max_transcripts)
    except StudyError as exc:
        fail(str(exc))
    progress(f"wrote {args.out}: {n} transcripts, {c} codings")


if __name__ == "__main__":
    main()
