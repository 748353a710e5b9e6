"""`qualflow codebook show`: the tree marks categories (codable: false), and names, dimensions and
descriptions are shown as written (not read as rich markup)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.app import app

CODEBOOK = """name: Care [pilot]
codes:
  - name: barriers
    description: What gets in the way
    codable: false
  - name: cost
    parent: barriers
    dimension: causal
    description: Prices and fees
  - name: staff
    parent: barriers
    description: Too few [qualified] people
  - name: trust
    description: Confidence in others
"""


def test_categories_are_marked_and_text_is_not_markup(tmp_path: Path) -> None:
    from pipeline.project.codebooks import import_codebook
    from pipeline.project.core import init_project

    root = tmp_path / "p"
    (tmp_path / "cb.yaml").write_text(CODEBOOK, encoding="utf-8")
    proj = init_project(root)
    try:
        import_codebook(proj, tmp_path / "cb.yaml")
    finally:
        proj.close()
    r = CliRunner().invoke(app, ["--project", str(root), "codebook", "show"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1:] == [
        "├── barriers (category)  What gets in the way",
        "│   ├── cost [causal]  Prices and fees",
        "│   └── staff  Too few [qualified] people",
        "└── trust  Confidence in others",
    ]
    assert r.output.splitlines()[0].startswith("Care [pilot] (version 1, hash ")
