"""The review app in headless Chromium (Debian's, driven by playwright): keyboard, selection, candidates.

Screenshots go to test-artifacts/screenshots/ (git-ignored). With ``QUALFLOW_UPDATE_DOCS_IMG=1`` they are
also copied to docs/img/review-*.png, the pictures in docs/review.md; a plain ``make test`` leaves the
committed files alone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.project.core import Project
from pipeline.store.schema import CandidateRow, CodeRow, CodingRow, DecisionRow, SourceRow, SuggestionRow
from review.auth import add_coder

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"
DOCS_IMG = REPO / "docs" / "img"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "correct horse 1"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from review.app import create_app
    from review.testing import demo_template, live_server

    root = tmp_path_factory.mktemp("browser") / "proj"
    shutil.copytree(demo_template(tmp_path_factory.getbasetemp()), root)
    p = Project.open(root)
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password=PASSWORD)
    p.close()
    app = create_app(root)
    with live_server(app) as base:
        yield base, root
    app.state.project.close()


@pytest.fixture(scope="module")
def page(server: tuple[str, Path]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=server[0])
        pg = context.new_page()
        pg.set_default_timeout(10_000)
        yield pg
        context.close()
        browser.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"review-{name}.png"
    page.screenshot(path=str(path), full_page=False)
    if update_docs_img():
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / f"review-{name}.png")


def update_docs_img() -> bool:
    """Whether screenshots also replace docs/img/review-*.png (``QUALFLOW_UPDATE_DOCS_IMG=1``)."""
    return os.environ.get("QUALFLOW_UPDATE_DOCS_IMG") == "1"


def test_screenshots_touch_docs_img_only_when_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class FakePage:
        def screenshot(self, path: str, full_page: bool) -> None:
            Path(path).write_bytes(b"png")

    monkeypatch.setattr(__name__ + ".SHOTS", tmp_path / "shots")
    monkeypatch.setattr(__name__ + ".DOCS_IMG", tmp_path / "img")
    monkeypatch.delenv("QUALFLOW_UPDATE_DOCS_IMG", raising=False)
    shot(FakePage(), "x")
    assert (tmp_path / "shots" / "review-x.png").exists() and not (tmp_path / "img").exists()
    monkeypatch.setenv("QUALFLOW_UPDATE_DOCS_IMG", "1")
    shot(FakePage(), "y")
    assert (tmp_path / "img" / "review-y.png").read_bytes() == b"png"


def db(root: Path) -> Project:
    return Project.open(root, migrate=False)


def last_decision(root: Path) -> DecisionRow:
    p = db(root)
    try:
        with p.store.transaction() as s:
            row = s.scalar(select(DecisionRow).order_by(DecisionRow.id.desc()).limit(1))
            assert row is not None
            return row
    finally:
        p.close()


def test_login_and_decide_with_the_keyboard(page: Any, server: tuple[str, Path]) -> None:
    base, root = server
    page.goto("/queue")
    assert page.url.endswith("/login")
    page.fill("#name", "lea")
    page.fill("#password", PASSWORD)
    shot(page, "login")
    page.click("button[type=submit]")
    page.wait_for_url("**/queue")
    page.wait_for_selector("#items .item.current")
    shot(page, "queue")

    first = page.locator("#items .item").nth(0)
    sid = int(first.get_attribute("data-id"))
    page.keyboard.press("a")
    page.wait_for_selector(f'#items .item[data-id="{sid}"].st-accepted')
    d = last_decision(root)
    assert (d.suggestion_id, d.action, d.resulting_state, d.applied) == (sid, "accept", "accepted", True)

    second = int(page.locator("#items .item.current").get_attribute("data-id"))
    assert second != sid
    page.keyboard.press("r")
    page.wait_for_selector(f'#items .item[data-id="{second}"].st-rejected')
    d = last_decision(root)
    assert (d.suggestion_id, d.action, d.resulting_state) == (second, "reject", "rejected")

    third = int(page.locator("#items .item.current").get_attribute("data-id"))
    page.keyboard.press("c")
    page.wait_for_selector("#picker[open]")
    page.keyboard.type("mechan")
    shot(page, "recode")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#items .item[data-id="{third}"].st-recoded')
    d = last_decision(root)
    assert (d.suggestion_id, d.action, d.new_code, d.resulting_state) == (
        third,
        "recode",
        "mechanisms",
        "recoded",
    )

    page.keyboard.press("u")  # undoes the recode
    page.wait_for_selector(f'#items .item[data-id="{third}"].st-pending')
    d = last_decision(root)
    assert (d.suggestion_id, d.action, d.previous_state, d.resulting_state) == (
        third,
        "undo",
        "recoded",
        "pending",
    )
    page.keyboard.press("k")
    assert int(page.locator("#items .item.current").get_attribute("data-id")) == second
    page.keyboard.press("j")
    assert int(page.locator("#items .item.current").get_attribute("data-id")) == third
    assert "undone" in page.inner_text("#status")
    shot(page, "queue-decided")


def test_select_text_code_it_and_write_a_memo(page: Any, server: tuple[str, Path]) -> None:
    base, root = server
    page.goto("/sources/int01")
    page.wait_for_selector("#transcript")
    shot(page, "transcript")
    # pick a participant span and select 20 characters inside it, as a mouse drag would
    idx = page.evaluate(
        """() => Array.from(document.querySelectorAll('.turn.role-participant span[data-start]'))
        .findIndex(s => s.dataset.end - s.dataset.start > 60 && !s.dataset.codings)"""
    )
    span = page.locator(".turn.role-participant span[data-start]").nth(idx)
    start = int(span.get_attribute("data-start"))
    span_text = span.inner_text()
    page.evaluate(
        """(el) => { const t = el.firstChild; const r = document.createRange();
        r.setStart(t, 4); r.setEnd(t, 24); const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
        el.dispatchEvent(new MouseEvent('mouseup', {bubbles: true})); }""",
        span.element_handle(),
    )
    page.wait_for_selector("#selbox:not([hidden])")
    assert page.inner_text("#sel-range") == f"{start + 4}–{start + 24}"
    page.fill("#sel-memo", "trust in the fund")
    page.click("#sel-code")
    page.wait_for_selector("#picker[open]")
    page.fill("#picker-filter", "tools")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    p = db(root)
    with p.store.transaction() as s:
        c = s.scalar(
            select(CodingRow).where(CodingRow.origin == "human").order_by(CodingRow.id.desc()).limit(1)
        )
        src = s.scalar(select(SourceRow).where(SourceRow.name == "int01", SourceRow.is_current))
        assert c is not None and src is not None
        assert (c.start, c.end, c.code, c.memo) == (start + 4, start + 24, "tools", "trust in the fund")
        assert src.text[c.start : c.end] == span_text[4:24]
        coding_id = c.id
    p.close()
    item = page.locator(f'.coding[data-coding="{coding_id}"]')
    item.locator("textarea.memo").fill("memo edited in the browser")
    item.locator("button[data-memo]").click()
    from playwright.sync_api import expect

    # a locator assertion, not wait_for_function: polling a string predicate needs eval, which the app's
    # Content-Security-Policy (script-src 'self') refuses when the condition is not true at once
    expect(page.locator("#status")).to_have_text("memo saved")
    p = db(root)
    with p.store.transaction() as s:
        assert s.get(CodingRow, coding_id).memo == "memo edited in the browser"  # type: ignore[union-attr]
    p.close()


def test_persian_renders_right_to_left(page: Any, server: tuple[str, Path]) -> None:
    page.goto("/sources/int09_fa")
    utt = page.locator(".turn .utt").nth(1)
    assert utt.get_attribute("dir") == "auto"
    assert utt.evaluate("el => getComputedStyle(el).direction") == "rtl"
    english = page.locator(".speaker").nth(0)
    assert english.get_attribute("dir") == "auto"
    shot(page, "transcript-fa")


def test_lead_accepts_a_candidate_open_code(page: Any, server: tuple[str, Path]) -> None:
    base, root = server
    page.goto("/candidates")
    card = page.locator("section.candidate").nth(0)
    cid = int(card.get_attribute("data-candidate"))
    shot(page, "candidates")
    card.locator(".accept-form input[name=name]").fill("benefit-delays")
    card.locator(".accept-form textarea[name=definition]").fill("Payments that reach people late.")
    with page.expect_navigation():
        card.locator(".accept-form button[type=submit]").click()
    assert "accepted as new code 'benefit-delays'" in page.inner_text(".flash")
    p = db(root)
    with p.store.transaction() as s:
        cand = s.get(CandidateRow, cid)
        assert cand is not None and cand.state == "accepted" and cand.resolution["by"] == "lea"
        assert s.scalar(select(CodeRow).where(CodeRow.name == "benefit-delays")) is not None
        members = list(s.scalars(select(SuggestionRow).where(SuggestionRow.candidate_id == cid)))
        assert members and {m.state for m in members} == {"accepted"}
        actions = {
            d.action
            for d in s.scalars(
                select(DecisionRow).where(DecisionRow.suggestion_id.in_([m.id for m in members]))
            )
        }
        assert actions == {"accept"}
    p.close()
    page.goto("/codebook")
    assert "benefit-delays" in page.inner_text("table.codebook")
    shot(page, "codebook")
