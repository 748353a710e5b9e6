"""The agreement panel of a project: window segmentation, too few coders, and what the report says."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.agreement import AgreementError
from pipeline.project.agreement import project_agreement
from pipeline.project.codebooks import import_codebook
from pipeline.project.codings import import_codings
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.project.report import write_project_report

T1 = (
    "Interviewer: How is the budget?\n"
    "Participant: The budget is too small. We cannot hire staff.\n"
    "Interviewer: And trust?\n"
    "Participant: Trust is low. They never answer letters.\n"
)
CODEBOOK = """name: tiny
codes:
  - name: budget
    description: Money.
  - name: trust
    description: Trust in the ministry.
"""


def _project(tmp_path: Path, mode: str) -> Project:
    root = tmp_path / "p"
    init_project(root)
    cfg = root / "qualflow.toml"
    text = cfg.read_text(encoding="utf-8")
    assert 'mode = "sentence"' in text
    cfg.write_text(text.replace('mode = "sentence"', f'mode = "{mode}"'), encoding="utf-8")
    proj = Project.open(root)
    (tmp_path / "tx").mkdir()
    (tmp_path / "tx" / "i1.txt").write_text(T1, encoding="utf-8")
    ingest(proj, [tmp_path / "tx" / "i1.txt"])
    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    import_codebook(proj, tmp_path / "cb.yaml")
    return proj


def _codings(tmp_path: Path, proj: Project, rows: str) -> None:
    path = tmp_path / "codings.csv"
    path.write_text("source,start,end,code,coder\n" + rows, encoding="utf-8")
    import_codings(proj, path)


def test_window_segmentation_gives_an_agreement_panel(tmp_path: Path) -> None:
    # windows overlap by design; the panel cuts them into disjoint units instead of refusing
    proj = _project(tmp_path, "window")
    start = T1.index("The budget")
    end = T1.index("We cannot") - 1
    t_start, t_end = T1.index("Trust is low"), T1.index("Trust is low") + len("Trust is low.")
    _codings(
        tmp_path,
        proj,
        f"i1,{start},{end},budget,sara\ni1,{start},{end},budget,reza\n"
        f"i1,{t_start},{t_end},trust,sara\ni1,{t_start},{t_end},trust,reza\n",
    )
    report = project_agreement(proj, n_boot=0)
    assert list(report.coders) == ["reza", "sara"]
    assert report.pooled.estimates["cohen"].value == pytest.approx(1.0)
    assert not report.disagreements
    page = (write_project_report(proj, tmp_path / "out")).read_text(encoding="utf-8")
    assert "No two coders yet" not in page and "No agreement panel" not in page


def test_one_coder_is_a_clear_error_and_the_report_says_why(tmp_path: Path) -> None:
    proj = _project(tmp_path, "sentence")
    with pytest.raises(AgreementError, match="codings by no one yet; import another coder's codings"):
        project_agreement(proj, n_boot=0)
    start = T1.index("The budget")
    _codings(tmp_path, proj, f"i1,{start},{start + 10},budget,sara\n")
    with pytest.raises(AgreementError, match="this project has codings only by 'sara'"):
        project_agreement(proj, n_boot=0)
    page = (write_project_report(proj, tmp_path / "out")).read_text(encoding="utf-8")
    assert "No agreement panel: agreement needs codings by at least two coders" in page
