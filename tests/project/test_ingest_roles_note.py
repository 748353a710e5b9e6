"""`qualflow ingest` says which speaker it took as the interviewer when it only guessed (by who asks
the questions), and how to change it: an essay's `Question:` label is the writer's own text, which
would otherwise be left out of coding with no word. No note for a known label or a speaker the lead
has already set with `qualflow roles`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ESSAY = (
    "Games as art? Absolutely. Gris is a watercolour painting.\n"
    "Question: is a game art because it looks like a painting? I don't think so.\n"
    "Answer: the mechanics of Gris are the story of grief.\n"
)
INTERVIEW = "Interviewer: How was it?\nParticipant: Hard at first. Better later?\n"
NAMED = "Sara: How was it?\nAli: Hard at first.\nSara: And later?\nAli: Better.\n"
NAMED2 = "Sara: Where do you work?\nMina: In Tabriz.\n"


def qf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--project", "p", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def notes(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line.startswith("note:")]


def test_a_guessed_interviewer_is_named_with_how_to_change_it(tmp_path: Path) -> None:
    assert (
        subprocess.run([sys.executable, "-m", "cli", "init", "p"], cwd=tmp_path, timeout=120).returncode == 0
    )
    for name, text in {"essay02": ESSAY, "int01": INTERVIEW, "int02": NAMED, "int03": NAMED2}.items():
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
    files = [str(tmp_path / f"{n}.txt") for n in ("essay02", "int01", "int02", "int03")]
    assert notes(qf("ingest", *files, cwd=tmp_path)) == [
        "note: essay02: 'Question' read as the interviewer because it asks the questions (its turns are not "
        "coded or suggested); if that is wrong: qualflow roles essay02 Question=participant (for each "
        "source), or name the interviewers in interviewer_names in qualflow.toml for the sources ingested "
        "from now on",
        # one line per label, however many sources it guessed in
        "note: int02, int03: 'Sara' read as the interviewer because it asks the questions (its turns are not "
        "coded or suggested); if that is wrong: qualflow roles int02 Sara=participant (for each source), or "
        "name the interviewers in interviewer_names in qualflow.toml for the sources ingested from now on",
    ]
    # the lead's answer is kept for later versions, which are then not flagged again
    assert qf("roles", "essay02", "Question=participant", cwd=tmp_path).returncode == 0
    (tmp_path / "essay02.txt").write_text(ESSAY + "Answer: Art, then.\n", encoding="utf-8")
    assert notes(qf("ingest", files[0], cwd=tmp_path)) == []
    r = qf("segments", "essay02", cwd=tmp_path)
    assert "I don't think so." in r.stdout  # the writer's own view is coded again
