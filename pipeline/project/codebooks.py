"""A project's codebook: import a file as a new version (unless the same content is stored), export the newest."""

from __future__ import annotations

from pathlib import Path

from pipeline.domain import Codebook
from pipeline.project.core import Project
from pipeline.store.queries import require_codebook, store_codebook
from pipeline.store.schema import (
    CodebookVersionRow,
)


def import_codebook(project: Project, path: Path) -> tuple[CodebookVersionRow, bool]:
    from pipeline.codebook_files import read_codebook

    codebook = read_codebook(path)
    with project.store.transaction() as session:
        return store_codebook(session, codebook, note=f"imported from {path.name}")


def export_codebook(project: Project, path: Path) -> Codebook:
    from pipeline.codebook_files import write_codebook

    with project.store.transaction() as session:
        _, codebook = require_codebook(session)
    write_codebook(codebook, path)
    return codebook
