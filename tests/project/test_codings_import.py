"""Importing a codings CSV into a project: what is stored and what the count says."""

from __future__ import annotations

from pathlib import Path

from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings_counted
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest

T1 = "Interviewer: How is the budget?\nParticipant: The budget is too small. We cannot hire staff.\n"


def test_repeated_lines_are_stored_once_and_counted(tmp_path: Path) -> None:
    proj = init_project(tmp_path / "p")
    (tmp_path / "i1.txt").write_text(T1, encoding="utf-8")
    ingest(proj, [tmp_path / "i1.txt"])
    (tmp_path / "cb.yaml").write_text("name: t\ncodes:\n  - name: budget\n", encoding="utf-8")
    import_codebook(proj, tmp_path / "cb.yaml")
    start = T1.index("The budget")
    line = f"i1,{start},{start + 10},budget,sara\n"
    csv = tmp_path / "codings.csv"
    csv.write_text("source,start,end,code,coder\n" + line * 2 + f"i1,{start},{start + 10},budget,reza\n")
    assert import_codings_counted(proj, csv) == ({"sara": 1, "reza": 1}, 1)
    assert import_codings_counted(proj, csv) == ({}, 3)  # all stored already


def test_codings_on_interviewer_turns_are_pointed_out(tmp_path: Path) -> None:
    """A study that codes what the interviewer does (AnnoMI's therapist behaviour) gets one note at
    import: qualflow reads participant turns only unless `include_interviewer` is on."""
    import subprocess
    import sys

    from pipeline.project.codings import interviewer_codings

    proj = init_project(tmp_path / "p")
    (tmp_path / "i1.txt").write_text(T1, encoding="utf-8")
    ingest(proj, [tmp_path / "i1.txt"])
    (tmp_path / "cb.yaml").write_text(
        "name: t\ncodes:\n  - name: budget\n  - name: question\n", encoding="utf-8"
    )
    import_codebook(proj, tmp_path / "cb.yaml")
    q, a = T1.index("How is"), T1.index("The budget")
    csv = tmp_path / "codings.csv"
    csv.write_text(
        "source,start,end,code,coder\n"
        f"i1,{q},{q + len('How is the budget?')},question,sara\n"
        f"i1,{a},{a + 10},budget,sara\n",
        encoding="utf-8",
    )
    proj.close()
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", "p", "codings", "import", "codings.csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "note: 1 coding sits on interviewer turns (question (1)), which qualflow skips" in out
    assert "[segmentation] include_interviewer = true" in out
    proj = Project.open(tmp_path / "p")
    assert interviewer_codings(proj) == {"question": 1}
    proj.config.segmentation.include_interviewer = True
    assert interviewer_codings(proj) == {}
    proj.close()
