"""Independent review, rounds and adjudication without a browser: per-coder decisions, concurrency,
assignments, decision agreement, consensus."""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.config import dumps_config, load_config
from pipeline.errors import ConfigError, InputError
from pipeline.project import rounds
from pipeline.project.core import Project
from pipeline.project.independent import coder_scope, decide_independent
from pipeline.store.schema import CoderDecisionRow, CoderRow, CodingRow, DecisionRow, SuggestionRow
from pipeline.store.schema import SourceRow as SourceRowName
from review.auth import add_coder
from review.testing import add_fake_suggestions, demo_template

PASSWORD = "correct horse 1"


def set_policy(root: Path, policy: str) -> None:
    cfg = load_config(root)
    cfg.review.policy = policy
    (root / "qualflow.toml").write_text(dumps_config(cfg), encoding="utf-8")


@pytest.fixture
def proj_dir(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(demo_template(tmp_path_factory.getbasetemp()), dest)
    set_policy(dest, "independent")
    return dest


def coder(s, name: str) -> CoderRow:  # type: ignore[no-untyped-def]
    row = s.scalar(select(CoderRow).where(CoderRow.name == name))
    assert row is not None
    return row


def test_policy_is_validated(tmp_path: Path, proj_dir: Path) -> None:
    assert load_config(proj_dir).review.policy == "independent"
    text = (proj_dir / "qualflow.toml").read_text(encoding="utf-8").replace('"independent"', '"anarchy"')
    (proj_dir / "qualflow.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="policy 'anarchy'"):
        load_config(proj_dir)


def test_each_coder_decides_for_themselves(proj_dir: Path) -> None:
    ids = add_fake_suggestions(proj_dir, 4)
    p = Project.open(proj_dir)
    with p.store.transaction() as s:
        for n in ("ann", "ben"):
            add_coder(s, n, role="coder", password=PASSWORD)
    with p.store.transaction() as s:
        ann, ben = coder(s, "ann"), coder(s, "ben")
        a = decide_independent(s, ids[0], ann, "accept", expected_revision=0)
        b = decide_independent(s, ids[0], ben, "reject", expected_revision=0)
        assert a.applied and b.applied and a.coding_id is not None and b.coding_id is None
        again = decide_independent(s, ids[0], ann, "reject", expected_revision=1)
        assert not again.applied and "already accepted" in again.message
        stale = decide_independent(s, ids[1], ann, "accept", expected_revision=3)
        assert not stale.applied
        assert ids[0] in coder_scope(s, ann).decided and ids[0] in coder_scope(s, ben).decided
        assert ids[1] not in coder_scope(s, ann).decided
        sug = s.get(SuggestionRow, ids[0])
        assert sug is not None and sug.state == "pending" and sug.revision == 0  # shared row untouched
        u = decide_independent(s, ids[0], ann, "undo", expected_revision=1)
        assert u.applied and u.state == "pending"
        coding = s.get(CodingRow, a.coding_id)
        assert coding is not None and not coding.active
        r = decide_independent(s, ids[0], ann, "recode", new_code=_other_code(s, ids[0]), expected_revision=2)
        assert r.applied and r.state == "recoded"
        with pytest.raises(InputError):
            decide_independent(s, ids[1], ben, "undo", expected_revision=0)  # nothing to undo
        log = list(s.scalars(select(DecisionRow).where(DecisionRow.suggestion_id.in_(ids[:2]))))
        assert len(log) == 6  # every call logged, applied or not (a refused undo raises)
    p.close()


def _other_code(s, sid: int) -> str:  # type: ignore[no-untyped-def]
    from pipeline.project.decisions import _latest_codebook_id, codable_names

    sug = s.get(SuggestionRow, sid)
    return next(c for c in codable_names(s, _latest_codebook_id(s)) if c != sug.code)


def test_no_lost_or_duplicated_decision_per_coder_over_http(proj_dir: Path) -> None:
    """4 coders, two tabs each, in parallel on the same 12 suggestions: each coder's decision applies
    exactly once per suggestion, every attempt is logged, and nobody takes a suggestion from another."""
    import re

    import httpx

    from review.app import create_app
    from review.testing import live_server

    ids = add_fake_suggestions(proj_dir, 12)
    p = Project.open(proj_dir)
    names = [f"coder{i}" for i in range(4)]
    with p.store.transaction() as s:
        for n in names:
            add_coder(s, n, role="coder", password=PASSWORD)
    app = create_app(proj_dir)
    results: list[tuple[str, int, int]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names) * 2)

    def csrf(html: str) -> str:
        m = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert m
        return m.group(1)

    def work(name: str, base: str, seed: int) -> None:
        try:
            with httpx.Client(base_url=base, timeout=30) as c:
                token = csrf(c.get("/login").text)
                c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
                token = csrf(c.get("/queue").text)
                order = list(ids)
                random.Random(seed).shuffle(order)
                barrier.wait()
                for sid in order:
                    r = c.post(
                        f"/api/suggestions/{sid}/decide",
                        json={"action": ("accept", "reject")[(sid + seed) % 2], "revision": 0},
                        headers={"X-CSRF-Token": token},
                    )
                    assert r.status_code in (200, 409), r.text
                    results.append((name, sid, r.status_code))
        except BaseException as exc:
            errors.append(exc)

    with live_server(app) as base:
        threads = [
            threading.Thread(target=work, args=(n, base, i * 2 + tab))
            for i, n in enumerate(names)
            for tab in (0, 1)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    app.state.project.close()
    assert not errors, errors
    applied = [(n, sid) for n, sid, st in results if st == 200]
    assert sorted(applied) == sorted((n, sid) for n in names for sid in ids)  # once each, none lost
    with p.store.transaction() as s:
        log = list(s.scalars(select(DecisionRow).where(DecisionRow.suggestion_id.in_(ids))))
        assert len(log) == len(ids) * len(names) * 2
        assert sum(d.applied for d in log) == len(ids) * len(names)
        states = list(s.scalars(select(CoderDecisionRow).where(CoderDecisionRow.suggestion_id.in_(ids))))
        assert len(states) == len(ids) * len(names)
        for sid in ids:
            made = list(s.scalars(select(CodingRow).where(CodingRow.suggestion_id == sid, CodingRow.active)))
            accepted = [c for c in states if c.suggestion_id == sid and c.state == "accepted"]
            assert len(made) == len(accepted)
            assert s.get(SuggestionRow, sid).state == "pending"  # type: ignore[union-attr]
    p.close()


def test_assignments_scope_the_queue_and_a_sample_is_seeded(proj_dir: Path) -> None:
    p = Project.open(proj_dir)
    with p.store.transaction() as s:
        add_coder(s, "ann", role="coder", password=PASSWORD)
    rounds.start_round(p, "R1")
    info = rounds.assign(p, ["ann", "ben"], sources=["int01"], sample=0.2, seed=7)
    again = rounds.assign(p, ["ann", "ben"], sources=["int01"], sample=0.2, seed=7)
    assert info.assignments == again.assignments and list(info.assignments) == ["ann", "ben"]
    with p.store.transaction() as s:
        scope = coder_scope(s, coder(s, "ann"))
        assert not scope.everything and scope.sampled_sources and len(scope.segments) >= 1
        assert coder_scope(s, coder(s, "ben")).segments == scope.segments  # the same sample for both
    with pytest.raises(InputError, match="exists already"):
        rounds.start_round(p, "R1")
    p.close()


def test_adjudicating_a_segment_of_a_passage_settles_the_decisions_on_the_passage(proj_dir: Path) -> None:
    from pipeline.project import adjudication
    from pipeline.store.queries import load_segments

    (sid,) = add_fake_suggestions(proj_dir, 1)
    p = Project.open(proj_dir)
    with p.store.transaction() as s:
        for n, role in (("ann", "coder"), ("ben", "coder"), ("lea", "lead")):
            add_coder(s, n, role=role, password=PASSWORD)
        sug = s.get(SuggestionRow, sid)
        assert sug is not None
        segs = [r for r, _ in load_segments(s, p.config)]
        first = next(i for i, r in enumerate(segs) if r.id == sug.segment_id)
        a, b = segs[first], segs[first + 1]
        assert a.source_id == b.source_id and a.turn_idx == b.turn_idx  # two sentences of one answer
        sug.end = b.end  # one suggestion for the passage a..b, anchored at a (as merge_passages stores it)
        source = s.scalar(select(SourceRowName.name).where(SourceRowName.id == a.source_id))
    rounds.start_round(p, "R1")
    rounds.assign(p, ["ann", "ben"], sources=[source])
    with p.store.transaction() as s:
        yes = decide_independent(s, sid, coder(s, "ann"), "accept", expected_revision=0)
        no = decide_independent(s, sid, coder(s, "ben"), "reject", expected_revision=0)
        assert yes.applied and no.applied
        made = sorted(
            int(d)
            for d in s.scalars(
                select(CoderDecisionRow.decision_id).where(CoderDecisionRow.suggestion_id == sid)
            )
        )
    _, units = adjudication.units_to_adjudicate(p)
    spans = {(u.start, u.end) for u in units if u.source == source}
    assert {(a.start, a.end), (b.start, b.end)} <= spans
    # the second sentence is not the suggestion's anchor segment: its settlement still finds both decisions
    settled = adjudication.adjudicate(p, "lea", source=source, start=b.start, end=b.end, choice="ann")
    assert settled["settled_decision_ids"] == made and len(made) == 2
    p.close()
