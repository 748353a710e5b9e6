"""Independent double coding and adjudication in headless Chromium (Debian's, driven by playwright).

Two coders decide the same suggestions without seeing each other's choices; the agreement of their
decisions is checked against a value computed by hand. A lead then adjudicates the round's
disagreements; the consensus codings link the decisions they settled.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.project import rounds
from pipeline.project.core import Project
from pipeline.store.schema import CoderDecisionRow, CoderRow, CodingRow, SourceRow, SuggestionRow
from review.auth import add_coder
from review.testing import add_fake_suggestions
from tests.review.test_independent import set_policy
from tests.review.test_review_browser import CHROMIUM, shot

PASSWORD = "correct horse 1"
SOURCES = ["int01", "int02", "int03"]
# ann's and ben's decisions on the same six suggestions (1 accept, 0 reject)
ANN = [1, 1, 0, 1, 0, 0]
BEN = [1, 0, 0, 1, 0, 1]
# by hand: observed 4/6; each accepts 3/6, so chance 0.5*0.5 + 0.5*0.5 = 0.5; kappa = (4/6 - .5)/(1 - .5)
KAPPA_BY_HAND = (4 / 6 - 0.5) / (1 - 0.5)

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

    root = tmp_path_factory.mktemp("rounds") / "proj"
    shutil.copytree(demo_template(tmp_path_factory.getbasetemp()), root)
    set_policy(root, "independent")
    add_fake_suggestions(root, 30)
    p = Project.open(root)
    with p.store.transaction() as s:
        add_coder(s, "lea", role="lead", password=PASSWORD)
        add_coder(s, "ann", role="coder", password=PASSWORD)
        add_coder(s, "ben", role="coder", password=PASSWORD)
    rounds.start_round(p, "R1")
    rounds.assign(p, ["ann", "ben"], sources=SOURCES)
    p.close()
    app = create_app(root)
    with live_server(app) as base:
        yield base, root
    app.state.project.close()


@pytest.fixture(scope="module")
def browser(server: tuple[str, Path]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield b
        b.close()


def login(browser: Any, base: str, name: str) -> Any:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/queue")
    return page


def queue_ids(page: Any) -> list[int]:
    return [int(x) for x in page.locator("#items .item").evaluate_all("els => els.map(e => e.dataset.id)")]


def decide(page: Any, sid: int, accept: int) -> None:
    item = page.locator(f'#items .item[data-id="{sid}"]')
    item.locator(f'button[data-act="{"accept" if accept else "reject"}"]').click()
    page.wait_for_selector(f'#items .item[data-id="{sid}"].st-{"accepted" if accept else "rejected"}')


def test_two_coders_decide_the_same_suggestions_blind_to_each_other(
    browser: Any, server: tuple[str, Path]
) -> None:
    base, root = server
    ann = login(browser, base, "ann")
    ann_queue = queue_ids(ann)
    p = Project.open(root, migrate=False)
    with p.store.transaction() as s:
        src = list(s.scalars(select(SourceRow.id).where(SourceRow.name.in_(SOURCES), SourceRow.is_current)))
        in_source = set(s.scalars(select(SuggestionRow.id).where(SuggestionRow.source_id.in_(src))))
    assert len(ann_queue) >= 6 and set(ann_queue) <= in_source  # her queue is her assignment
    chosen = ann_queue[:6]
    # the first with the keyboard, the rest with the buttons
    ann.keyboard.press("a" if ANN[0] else "r")
    ann.wait_for_selector(f'#items .item[data-id="{chosen[0]}"].st-accepted')
    for sid, value in zip(chosen[1:], ANN[1:], strict=True):
        decide(ann, sid, value)
    shot(ann, "independent-ann")

    ben = login(browser, base, "ben")
    ben_queue = queue_ids(ben)
    assert set(chosen) <= set(ben_queue)  # ann's decisions took nothing from ben
    assert ben.locator("#items .item.st-accepted, #items .item.st-rejected").count() == 0
    ben.goto(f"/sources/{SOURCES[0]}")
    codings_text = " ".join(ben.locator(".coding").all_inner_texts())
    assert "ann" not in codings_text  # her codings are hidden from him
    ben.goto("/queue")
    for sid, value in zip(chosen, BEN, strict=True):
        decide(ben, sid, value)
    shot(ben, "independent-ben")

    ann.reload()
    assert not set(chosen) & set(queue_ids(ann))  # decided by her: out of her queue, though ben decided too

    result = rounds.decision_agreement(p, ["ann", "ben"], n_boot=0)
    assert result["units"] == 6 and result["suggestions"] == sorted(chosen)
    assert result["coefficients"]["cohen"].value == pytest.approx(KAPPA_BY_HAND, abs=1e-12)
    assert result["coefficients"]["percent"].value == pytest.approx(4 / 6, abs=1e-12)
    with p.store.transaction() as s:
        names = dict(s.execute(select(CoderRow.id, CoderRow.name)).tuples().all())
        states = list(s.scalars(select(CoderDecisionRow).where(CoderDecisionRow.suggestion_id.in_(chosen))))
        assert len(states) == 12
        made = list(s.scalars(select(CodingRow).where(CodingRow.suggestion_id.in_(chosen), CodingRow.active)))
        assert sorted(names[c.coder_id] for c in made) == ["ann"] * sum(ANN) + ["ben"] * sum(BEN)
        assert all(s.get(SuggestionRow, sid).state == "pending" for sid in chosen)  # type: ignore[union-attr]
    p.close()
    ann.context.close()
    ben.context.close()


def test_a_lead_adjudicates_the_round_in_the_browser(browser: Any, server: tuple[str, Path]) -> None:
    from pipeline.project import adjudication
    from pipeline.store.schema import AdjudicationRow

    base, root = server
    lea = login(browser, base, "lea")
    lea.goto("/adjudicate")
    units = lea.locator("#units .unit")
    n = units.count()
    assert n >= 1  # ann and ben disagreed on suggestions they decided differently
    first = units.nth(0)
    first.locator('input[name="memo"]').fill("ann's reading fits the definition")
    first.locator('button[value="ann"]').click()
    lea.wait_for_selector("#vs-consensus")
    shot(lea, "adjudicate")
    assert lea.locator("#units .unit.settled").count() == 1
    assert "ann" in lea.locator("#vs-consensus").inner_text()
    p = Project.open(root, migrate=False)
    with p.store.transaction() as s:
        row = s.scalar(select(AdjudicationRow))
        assert row is not None and row.choice == "ann" and row.memo == "ann's reading fits the definition"
        assert row.settled_coding_ids or row.settled_decision_ids  # linked to what it settled
        made = [s.get(CodingRow, i) for i in row.coding_ids]
        assert all(c is not None and c.origin == "consensus" for c in made)
    result = adjudication.consensus_agreement(p, round_name="R1", n_boot=0)
    assert set(result) == {"ann", "ben"} and "percent" in result["ann"]
    p.close()
    lea.context.close()
