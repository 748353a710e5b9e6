"""Issue #14 in the review app: a passage suggestion is shown as the passage's text and decided once."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from pipeline.project.core import Project
from pipeline.store.schema import CodingRow, SuggestionRow
from tests.project.test_passages import A1, queue, span


def test_queue_page_shows_the_passage_text_and_accept_codes_it(project: Project, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from review.app import create_app

    queue(project, tmp_path)
    with project.store.transaction() as s:
        sid = s.scalar(
            select(SuggestionRow.id).where(SuggestionRow.start == span(A1)[0], SuggestionRow.rank == 1)
        )
    app = create_app(project.root, single_user="solo")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        page = c.get("/queue")
        assert page.status_code == 200
        assert A1 in page.text  # the whole passage, not its first sentence alone
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        r = c.post(
            f"/api/suggestions/{sid}/decide",
            json={"action": "accept"},
            headers={"X-CSRF-Token": token.group(1)},
        )
        assert r.status_code == 200, r.text
    app.state.project.close()
    with project.store.transaction() as s:
        assert [(x.start, x.end, x.code) for x in s.scalars(select(CodingRow))] == [(*span(A1), "budget")]
