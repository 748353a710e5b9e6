"""Issue #14 in Chromium: the queue shows a passage suggestion whole, and Accept codes the passage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.project.core import Project, init_project
from pipeline.store.schema import CodingRow, SuggestionRow
from tests.project.test_passages import A1, queue, span

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


def test_passage_is_shown_whole_and_accepted_in_one_click(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from review.app import create_app
    from review.testing import live_server

    proj = init_project(tmp_path / "proj")
    queue(proj, tmp_path)
    with proj.store.transaction() as s:
        sid = s.scalar(
            select(SuggestionRow.id).where(SuggestionRow.start == span(A1)[0], SuggestionRow.rank == 1)
        )
    proj.close()
    app = create_app(tmp_path / "proj", single_user="solo")
    with live_server(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(base_url=base)
        page.set_default_timeout(10_000)
        page.goto("/queue")
        item = page.locator(f'#items .item[data-id="{sid}"]')
        assert item.locator("blockquote").inner_text() == f"Mina: {A1}"
        item.locator('button[data-act="accept"]').click()
        page.wait_for_selector(f'#items .item[data-id="{sid}"].st-accepted')
        browser.close()
    app.state.project.close()
    p = Project.open(tmp_path / "proj")
    with p.store.transaction() as s:
        assert [(c.start, c.end, c.code) for c in s.scalars(select(CodingRow))] == [(*span(A1), "budget")]
    p.close()
