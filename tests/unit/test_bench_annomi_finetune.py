"""bench/annomi_finetune.py's argument checks and Markdown writing, without AnnoMI or a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import annomi_finetune as aft  # noqa: E402


def test_codebooks_and_minutes() -> None:
    assert aft.codebooks_of("both") == ["client_talk_type", "main_therapist_behaviour"]
    assert aft.codebooks_of("main_therapist_behaviour") == ["main_therapist_behaviour"]
    assert aft.positive_minutes("0.5") == 0.5
    for bad in ("0", "-3", "nan", "inf", "ten"):
        with pytest.raises(argparse.ArgumentTypeError):
            aft.positive_minutes(bad)


def test_missing_data_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        aft.parse_args([str(tmp_path / "nowhere")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "AnnoMI-simple.csv not found" in err[-1]


def test_write_section_replaces_only_its_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\n\ntext\n", encoding="utf-8")
    aft.write_section(doc, "| a |\n")
    first = doc.read_text(encoding="utf-8")
    assert first.count(aft.SECTION) == 1 and "| a |" in first and "## Other\n\ntext" in first
    doc.write_text(first + "\nmore prose\n", encoding="utf-8")
    aft.write_section(doc, "| b |\n")
    second = doc.read_text(encoding="utf-8")
    assert "| b |" in second and "| a |" not in second and second.endswith("more prose\n")
    assert second.count(aft.SECTION) == 1
