"""The study and discovery benchmarks' converter, parsers and metrics on tiny hand-made fixtures.

No model and no qualflow project: the parts that decide the numbers are checked by hand-worked values.
The games-as-art conversion runs only when ``../shared`` is there, and skips cleanly otherwise.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_dir

sys.path.insert(0, str(REPO / "bench"))

import discovery  # noqa: E402
import games_as_art_to_study as gaa  # noqa: E402
import study  # noqa: E402
from _study_common import (  # noqa: E402
    Coding,
    StudyError,
    Suggestion,
    load_study,
    parse_segments_table,
    parse_table,
    top_categories,
)


def test_locate_passages_whitespace_emphasis_and_changed_word() -> None:
    text = "I played  Zelda, and the music was lovely. It made me cry or laugh at once."
    coded = (
        "I played **Zelda**, and **the music was lovely.**<sup>audio; beauty</sup> "
        "**It made me cry our laugh at once.**<sup>emotional response</sup>"
    )
    spans, inexact = gaa.locate_passages(text, coded)
    assert [(text[s.start : s.end], s.codes) for s in spans] == [
        ("the music was lovely.", ("audio", "beauty")),
        ("It made me cry or laugh at once.", ("emotional response",)),
    ]
    assert inexact == 1


def test_locate_passages_refuses_a_missing_passage() -> None:
    with pytest.raises(StudyError, match="not found"):
        gaa.locate_passages("short text", "**something entirely different here**<sup>x</sup>")


def test_passage_metrics_by_hand() -> None:
    codings = [
        Coding("a", 0, 10, "x", "c1"),
        Coding("a", 0, 10, "y", "c2"),  # same passage, second code
        Coding("a", 20, 30, "z", "c1"),
    ]
    passages = study.passages_of(codings)
    assert sorted((p.start, sorted(p.codes)) for p in passages) == [(0, ["x", "y"]), (20, ["z"])]
    sugg = [
        Suggestion("a", 0, 0, 5, "w", 0.9, 1, "m", "deductive"),
        Suggestion("a", 0, 0, 5, "y", 0.5, 2, "m", "deductive"),
        Suggestion("a", 1, 5, 12, "y", 0.8, 1, "m", "deductive"),  # best score of y on passage 1 = 0.8
        Suggestion("a", 9, 40, 50, "z", 0.9, 1, "m", "deductive"),  # overlaps nothing
        Suggestion("a", 9, 40, 50, "cand", 0.9, 1, "m", "inductive"),  # ignored
    ]
    category = {"w": "W", "x": "T", "y": "T", "z": "Z"}
    row = study.RowResult("r", "yes")
    study.score_row(row, sugg, passages, codings, category)
    m = row.metrics()
    assert m["passages"] == 2 and m["coverage"] == 0.5
    assert m["code_hit@1"] == 0.0 and m["code_hit@3"] == 0.5  # passage 1 ranks w (0.9), y (0.8)
    assert m["category_hit@1"] == 0.0 and m["category_hit@3"] == 0.5
    assert m["precision"] == pytest.approx(2 / 4)  # the two y suggestions overlap a y coding
    assert m["suggestions_per_passage"] == 2.0
    # the precision-coverage curve re-scores the kept suggestions above each threshold
    full, top = row.curve(category, quantiles=(0.0, 0.5))
    assert full["threshold"] == 0.5 and full["coverage"] == 0.5 and full["precision"] == pytest.approx(0.5)
    assert top["threshold"] == pytest.approx(0.85)  # keeps w and z (0.9): passage 1 keeps w only
    assert top["coverage"] == 0.5 and top["code_hit@3"] == 0.0 and top["precision"] == 0.0


def test_folds_group_whole_sources() -> None:
    folds = study.make_folds([f"s{i}" for i in range(7)], 3, seed=1)
    assert sorted(s for f in folds for s in f) == [f"s{i}" for i in range(7)]
    assert sorted(len(f) for f in folds) == [2, 2, 3]
    with pytest.raises(StudyError, match="folds"):
        study.make_folds(["a", "b"], 3, seed=0)


def test_top_categories() -> None:
    from pipeline.domain import Code, Codebook

    cb = Codebook([Code("theme", is_codable=False), Code("cat", parent="theme"), Code("leaf", parent="cat")])
    assert top_categories(cb) == {"theme": "theme", "cat": "theme", "leaf": "theme"}


def test_parse_rich_tables() -> None:
    out = (
        "┏━━━━┳━━━━━━━┳━━━━━━┓\n"
        "┃ #  ┃ start ┃ end  ┃\n"
        "┡━━━━╇━━━━━━━╇━━━━━━┩\n"
        "│ 2  │ 156   │ 166  │ Mina │ text │\n"
        "│    │       │      │      │ more │\n"
        "│ 13 │ 1259  │ 1292 │ Mina │ x    │\n"
    )
    assert parse_segments_table(out) == [(2, 156, 166), (13, 1259, 1292)]
    table = "│ 3  │ music /  │ a, b │ 0.41 │\n│    │ sound    │ c    │      │\n"
    assert parse_table(table) == [["3", "music / sound", "a, b c", "0.41"]]


def test_discovery_scores_by_hand(tmp_path: Path) -> None:
    export = tmp_path / "s.csv"
    with export.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "segment", "start", "end", "code", "score", "rank", "model", "kind"])
        for seg in (1, 2, 3):
            w.writerow(["a", seg, 0, 1, "music / sound", 0.4123, 1, "d", "inductive"])
        for seg in (7, 8):
            w.writerow(["a", seg, 0, 1, "other", 0.3, 1, "d", "inductive"])
    out = (
        "2 candidate open codes (0 continued, 2 new, 0 dropped) over 5 of the 9 segments looked at\n"
        "│ 1 │ 3  │ music / sound │ x │ 0.41 │ 2.0 │ 0.50 │ new category │\n"
        "│ 2 │ 4  │ other         │ x │ 0.30 │ 1.0 │ 0.40 │ new category │\n"
    )
    cands, summary, notes = discovery.parse_candidates(out, export)
    assert summary == (2, 5, 9) and not notes
    assert [(c.id, sorted(s for _, s in c.members)) for c in cands] == [(3, [1, 2, 3]), (4, [7, 8])]
    res = discovery.score(["audio", "ghost"], {"audio": {("a", 2), ("a", 3), ("a", 4), ("a", 8)}}, cands)
    audio, ghost = res
    assert audio["best_rank"] == 1 and audio["jaccard"] == pytest.approx(2 / 5)
    assert audio["precision"] == pytest.approx(2 / 3) and audio["recall"] == pytest.approx(2 / 4)
    assert audio["recovered"] and audio["effort"] == 1
    assert ghost["jaccard"] == 0.0 and not ghost["recovered"] and ghost["effort"] is None


def test_malformed_study_dir_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "transcripts").mkdir()
    with pytest.raises(SystemExit) as exc:
        study.main([str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_games_as_art_converts_to_a_valid_study(tmp_path: Path) -> None:
    shared = shared_dir()
    src = shared / "data" / "games-as-art" if shared else None
    if src is None or not (src / "coded_texts.csv").is_file():
        pytest.skip("../shared/data/games-as-art is not available")
    n_texts, n_pass, n_cod, _ = gaa.convert(src, tmp_path)
    assert (n_texts, n_cod) == (90, 693)
    s = load_study(tmp_path)
    assert len(s.transcripts) == 90 and len(s.codings) == 693
    for c in s.codings[:50]:
        text = s.transcripts[c.source].read_text(encoding="utf-8")
        assert text[c.start : c.end].strip() == text[c.start : c.end] != ""
