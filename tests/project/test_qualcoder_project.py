"""`qualflow import qualcoder`: a hand-built QualCoder project into a qualflow project, via the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.qualcoder.make_qualcoder_project import build


@pytest.fixture
def qda(tmp_path: Path) -> Path:
    folder = tmp_path / "Carers.qda"
    folder.mkdir()
    return build(folder / "data.qda")


def test_import_qualcoder_into_a_project_and_through_the_cli(qda: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.app import app
    from pipeline.project.core import Project, init_project
    from pipeline.store.queries import load_codings

    init_project(tmp_path / "proj").close()
    result = CliRunner().invoke(
        app, ["import", "qualcoder", str(qda.parent), "--project", str(tmp_path / "proj")]
    )
    assert result.exit_code == 0, result.output
    assert "imported from QualCoder (database v7): 2 sources, 8 codes, 5 codings" in result.output
    assert "skipped: media source 'map.png'" in result.output
    proj = Project.open(tmp_path / "proj")
    with proj.store.transaction() as s:
        codings = load_codings(s)
    assert sorted((c.code, c.coder) for c in codings)[0] == ("Barriers/Barriers", "sara")
    proj.close()
