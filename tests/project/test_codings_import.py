"""Importing a codings CSV into a project: what is stored and what the count says."""

from __future__ import annotations

from pathlib import Path

from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings_counted
from pipeline.project.core import init_project
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
