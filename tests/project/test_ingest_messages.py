"""What `qualflow ingest` says about a folder's contents: files of types it cannot read are named (not
skipped in silence), and OS junk is still ignored without a word."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

INTERVIEW = "Interviewer: How is work?\nNurse: Busy. We are short of staff.\n"


def qf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    assert qf("init", "p", cwd=tmp_path).returncode == 0
    (tmp_path / "in").mkdir()
    return tmp_path


def test_files_of_other_types_in_a_folder_are_named(folder: Path) -> None:
    d = folder / "in"
    (d / "int01.txt").write_text(INTERVIEW, encoding="utf-8")
    (d / "int02.rtf").write_text("{\\rtf1\\ansi Interviewer: How is work?\\par}", encoding="utf-8")
    (d / "int03.TXT").write_text(INTERVIEW, encoding="utf-8")
    (d / "int04.text").write_text(INTERVIEW, encoding="utf-8")
    (d / "int05.pdf").write_bytes(b"%PDF-1.4")
    (d / "int06.odt").write_bytes(b"PK")
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini", "~$int01.docx"):  # ignored without a word
        (d / junk).write_bytes(b"\x00junk")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2 added, 0 new versions, 0 unchanged; 6 segments",
        "skipped 4 files qualflow cannot read (.rtf, .text, .pdf, .odt): in/int02.rtf, in/int04.text, "
        "in/int05.pdf, in/int06.odt; save them as .txt or .docx",
    ]


def test_a_folder_of_only_other_types_says_what_it_skipped(folder: Path) -> None:
    (folder / "in" / "int02.rtf").write_text("{\\rtf1 x}", encoding="utf-8")
    (folder / "in" / "Thumbs.db").write_bytes(b"\x00")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: no transcript files found in ['in'] (looked for .txt .md .docx .vtt .srt); skipped 1 file "
        "qualflow cannot read (.rtf): in/int02.rtf; save it as .txt or .docx"
    )


NO_LABELS = (
    "Thanks for joining. Could you tell me about your job?\n\nSure. I work as a nurse.\n\n"
    "What makes it hard?\n\nStaffing mostly.\n"
)


def test_a_transcript_without_speaker_labels_gets_a_note(folder: Path) -> None:
    (folder / "in" / "int01.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / "in" / "int02.txt").write_text(NO_LABELS, encoding="utf-8")
    r = qf("--project", "p", "ingest", "in/int01.txt", "in/int02.txt", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2 added, 0 new versions, 0 unchanged; 9 segments",
        "note: int02: no speaker labels found, so every paragraph, the interviewer's questions too, is text "
        "of unknown role that will be coded and suggested for; if it is an interview, start each turn with a "
        "speaker label (Interviewer: or I:, Participant: or P:, or a name like Anna:; see docs/formats.md) "
        "and ingest it again",
    ]
    # labels added: the new version has speakers and no note; several sources share one line
    (folder / "in" / "int02.txt").write_text(
        "Interviewer: What makes it hard?\nNurse: Staffing mostly.\n", encoding="utf-8"
    )
    (folder / "in" / "int03.txt").write_text(NO_LABELS, encoding="utf-8")
    (folder / "in" / "int04.txt").write_text("Field notes.\n", encoding="utf-8")
    r = qf("--project", "p", "ingest", "in", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == [
        "  int02: version 1 -> 2",
        "note: int03, int04: no speaker labels found, so every paragraph, the interviewer's questions too, is "
        "text of unknown role that will be coded and suggested for; if they are interviews, start each turn "
        "with a speaker label (Interviewer: or I:, Participant: or P:, or a name like Anna:; see "
        "docs/formats.md) and ingest them again",
    ]
