"""Counts in the CLI's output agree with their noun: "1 held-out source", "1 new version"."""

from __future__ import annotations

from flows.retrain import RetrainReport
from pipeline.gate import GateDecision


def test_the_training_line_says_one_held_out_source_in_the_singular() -> None:
    decision = GateDecision(True, "macro_f1", 0.5, None, 0.0, False, "no champion yet")
    data = {"n_train_segments": 1, "n_sources": 2, "n_eval_segments": 1, "n_eval_sources": 1}
    report = RetrainReport("m", "1", "r", "e", "u", decision, data=data)
    assert (
        report.lines()[0]
        == "trained m@1 on 1 segment of 1 source; evaluated on 1 segment of 1 held-out source"
    )
    data = {"n_train_segments": 40, "n_sources": 5, "n_eval_segments": 12, "n_eval_sources": 2}
    report = RetrainReport("m", "1", "r", "e", "u", decision, data=data)
    assert report.lines()[0] == (
        "trained m@1 on 40 segments of 3 sources; evaluated on 12 segments of 2 held-out sources"
    )
