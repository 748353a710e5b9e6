"""The review app: decisions (first wins, undo, recode), candidates, auth, security and concurrency."""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from pipeline.errors import InputError, NotFoundError
from pipeline.project import decisions
from pipeline.project.core import Project
from pipeline.project.decisions import ForbiddenError, QueueItem, decide, order_queue
from pipeline.project.ingest import ingest
from pipeline.store.schema import (
    CandidateRow,
    CodebookVersionRow,
    CoderRow,
    CodingRow,
    DecisionRow,
    SourceRow,
    SuggestionRow,
)
from review.auth import (
    add_coder,
    authenticate,
    hash_password,
    load_or_create_secret,
    verify_password,
)
from review.testing import add_fake_suggestions, demo_template
from review.views import split_spans

PASSWORD = "correct horse 1"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def review_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_template(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def review_pg_template(review_template: Path, pg_cluster) -> str:  # type: ignore[no-untyped-def]
    """The demo project's database copied once into PostgreSQL (``qualflow db copy``): a template."""
    from pipeline.store.copy import copy_database

    name = "review_template"
    copy_database(f"sqlite:///{review_template / 'qualflow.db'}", pg_cluster.create_database(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def proj_dir(request: pytest.FixtureRequest, review_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A copy of the demo project, on SQLite and on PostgreSQL (a fresh database from the template)."""
    dest = tmp_path / "proj"
    shutil.copytree(review_template, dest)
    if request.param == "sqlite":
        yield dest
        return
    from tests.pg import point_project_at

    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(template=request.getfixturevalue("review_pg_template"))
    point_project_at(dest, url)
    yield dest
    cluster.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def proj(proj_dir: Path):
    p = Project.open(proj_dir)
    yield p
    p.close()


def make_coder(p: Project, name: str, role: str = "coder") -> None:
    with p.store.transaction() as s:
        add_coder(s, name, role=role, password=PASSWORD)


def coder(s, name: str) -> CoderRow:  # type: ignore[no-untyped-def]
    row = s.scalar(select(CoderRow).where(CoderRow.name == name))
    assert row is not None
    return row


def pending_ids(p: Project, kind: str = "deductive") -> list[int]:
    with p.store.transaction() as s:
        return list(
            s.scalars(
                select(SuggestionRow.id)
                .where(SuggestionRow.state == "pending", SuggestionRow.kind == kind)
                .order_by(SuggestionRow.id)
            )
        )


# --------------------------------------------------------------------------- pure functions


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 50),
    st.integers(0, 60),
    st.lists(st.tuples(st.integers(-5, 70), st.integers(-5, 70)), max_size=8),
)
def test_split_spans_cover_exactly_and_list_covering_marks(start: int, length: int, raw: list) -> None:
    end = start + length
    marks = [(a, b, f"m{i}") for i, (a, b) in enumerate(raw)]
    spans = split_spans(start, end, marks)
    if length == 0:
        assert spans == []
        return
    assert spans[0].start == start and spans[-1].end == end
    for left, right in zip(spans, spans[1:], strict=False):
        assert left.end == right.start
    for sp in spans:
        assert sp.start < sp.end
        want = {k for a, b, k in marks if a < sp.end and b > sp.start and max(a, start) < min(b, end)}
        # a span lies inside or outside each mark: never half-covered
        assert sp.keys == want
        for a, b, k in marks:
            if k in sp.keys:
                assert a <= sp.start and sp.end <= b


def test_order_queue_spreads_codes_and_sources() -> None:
    items = [QueueItem(i, 100 + i, i % 2, "a" if i < 6 else "b", 0.5, 0.9 - i * 0.01) for i in range(10)]
    order = [it.suggestion_id for it in order_queue(items, limit=4)]
    # by priority alone: 0 1 2 3; diversity interleaves code b and alternates the sources
    assert order == [0, 7, 1, 6]
    assert len(order_queue(items, limit=100)) == 10


def test_order_queue_cold_start_puts_representatives_first() -> None:
    items = [QueueItem(i, 100 + i, 1, f"c{i}", 0.5, 0.9 - i * 0.1) for i in range(5)]
    order = order_queue(items, representatives=frozenset({104}), cold_start=True, limit=2)
    assert [it.suggestion_id for it in order] == [4, 0]
    order = order_queue(items, representatives=frozenset({104}), cold_start=False, limit=2)
    assert [it.suggestion_id for it in order] == [0, 1]


def _order_queue_by_scanning(items, *, representatives=frozenset(), cold_start=False, limit=50):
    """order_queue as it was before its heap: every group's head scanned at each step."""
    groups: dict = {}
    boost = 1.0 if cold_start else 0.0

    def base(item):
        return item.priority + (boost if item.segment_id in representatives else 0.0)

    for item in sorted(items, key=lambda i: (-base(i), i.suggestion_id)):
        groups.setdefault((item.code, item.source_id), []).append(item)
    heads = dict.fromkeys(groups, 0)
    by_code: dict = {}
    by_source: dict = {}
    out = []
    while len(out) < limit and heads:
        best_key, best = None, None
        for key, pos in heads.items():
            item = groups[key][pos]
            value = base(item) - 0.15 * by_code.get(item.code, 0) - 0.05 * by_source.get(item.source_id, 0)
            rank = (-value, item.suggestion_id)
            if best is None or rank < best:
                best, best_key = rank, key
        item = groups[best_key][heads[best_key]]
        out.append(item)
        by_code[item.code] = by_code.get(item.code, 0) + 1
        by_source[item.source_id] = by_source.get(item.source_id, 0) + 1
        heads[best_key] += 1
        if heads[best_key] == len(groups[best_key]):
            del heads[best_key]
    return out


@pytest.mark.parametrize("candidates", [1, 2000])  # 1: the first try takes 20 x limit items, often too few
@pytest.mark.parametrize("seed", range(6))
def test_order_queue_picks_what_scanning_every_head_picks(
    seed: int, candidates: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.project.decisions as decisions

    monkeypatch.setattr(decisions, "QUEUE_CANDIDATES", candidates)
    rng = random.Random(seed)
    n, n_codes, n_sources = rng.choice([(40, 3, 2), (250, 25, 12), (3000, 60, 40)])
    # priorities on a coarse grid, so that values tie and the suggestion id decides
    items = [
        QueueItem(
            rng.randrange(10**6) * 10 + i % 10,
            rng.randrange(n // 2),
            rng.randrange(n_sources),
            f"c{rng.randrange(n_codes)}",
            0.5,
            rng.choice([0.05 * k for k in range(21)]),
        )
        for i in range(n)
    ]
    items = list({it.suggestion_id: it for it in items}.values())
    reps = frozenset(rng.sample(range(n // 2), 5))
    for cold in (False, True):
        for limit in (1, 50, min(n + 1, 300)):  # n + 1: all of a small queue
            want = _order_queue_by_scanning(items, representatives=reps, cold_start=cold, limit=limit)
            got = order_queue(items, representatives=reps, cold_start=cold, limit=limit)
            assert [i.suggestion_id for i in got] == [i.suggestion_id for i in want]


# --------------------------------------------------------------------------- auth and CLI support


def test_password_hashing_and_authentication(proj: Project) -> None:
    h = hash_password("s3cret-pass")
    assert h.startswith("$argon2id$") and "s3cret" not in h
    assert (
        verify_password(h, "s3cret-pass")
        and not verify_password(h, "wrong")
        and not verify_password(None, "x")
    )
    with proj.store.transaction() as s:
        row, created = add_coder(
            s, "sara", role="lead", password=PASSWORD
        )  # sara exists from the codings CSV
        assert not created and row.role == "lead"
        assert authenticate(s, "sara", PASSWORD) is not None
        assert authenticate(s, "sara", "nope") is None
        assert authenticate(s, "nobody", PASSWORD) is None
        assert authenticate(s, "model:local-prototype@1", PASSWORD) is None
        with pytest.raises(InputError, match=r"unknown role 'boss'; choose one of \['coder', 'lead'\]"):
            add_coder(s, "x", role="boss", password=PASSWORD)
        with pytest.raises(InputError, match="too short"):
            add_coder(s, "x", role="coder", password="short")
        with pytest.raises(InputError, match="not usable"):
            add_coder(s, "model:evil", role="coder", password=PASSWORD)


def test_secret_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / ".qualflow")
    assert load_or_create_secret(tmp_path / ".qualflow") == first and len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / ".qualflow" / "secret_key").st_mode) == 0o600


def test_cli_review_commands_coders_add_and_review_bind(proj: Project) -> None:
    from cli.review_commands import coders_add, read_password, run_review

    msg = coders_add(proj, "lena", "coder", password_stdin=True, stdin=io.StringIO(PASSWORD + "\n"))
    assert msg.startswith("added coder 'lena'")
    msg = coders_add(proj, "lena", "lead", prompt=lambda _: PASSWORD)
    assert msg.startswith("updated lead 'lena'")
    with proj.store.transaction() as s:
        assert authenticate(s, "lena", PASSWORD) is not None
    with pytest.raises(InputError, match="standard input is empty"):
        read_password(password_stdin=True, stdin=io.StringIO(""))
    answers = iter(["one-password", "another-one"])
    with pytest.raises(InputError, match="the two passwords differ"):
        read_password(password_stdin=False, prompt=lambda _: next(answers))
    with pytest.raises(InputError, match="unknown role"):
        coders_add(proj, "x", "admin", password_stdin=True, stdin=io.StringIO(PASSWORD))
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(InputError, match="--single-user has no login, so it binds only loopback"):
            run_review(proj, host=host, port=8123, single_user="ana")


def test_serve_refuses_non_loopback_in_single_user_mode(proj_dir: Path) -> None:
    from review.app import serve

    with pytest.raises(InputError, match=r"not '10\.1\.2\.3'"):
        serve(proj_dir, host="10.1.2.3", port=8123, single_user="ana")


# --------------------------------------------------------------------------- decisions


def test_accept_reject_recode_undo_and_the_log(proj: Project) -> None:
    make_coder(proj, "ana")
    ids = pending_ids(proj)
    assert len(ids) >= 3
    a, b, c = ids[:3]
    with proj.store.transaction() as s:
        ana = coder(s, "ana")
        r = decide(s, a, ana, "accept")
        assert (r.applied, r.previous_state, r.state, r.revision) == (True, "pending", "accepted", 1)
        cod = s.get(CodingRow, r.coding_id)
        sug = s.get(SuggestionRow, a)
        assert cod is not None and sug is not None
        assert (cod.origin, cod.code, cod.coder_id, cod.start, cod.end, cod.suggestion_id) == (
            "model-accepted",
            sug.code,
            ana.id,
            sug.start,
            sug.end,
            a,
        )
        r = decide(s, b, ana, "reject")
        assert r.state == "rejected" and r.coding_id is None
        new_code = next(
            n
            for n in decisions.codable_names(s, sug.codebook_version_id)
            if n != s.get(SuggestionRow, c).code  # type: ignore[union-attr,operator]
        )  # type: ignore[union-attr]
        r = decide(s, c, ana, "recode", new_code=new_code)
        cod = s.get(CodingRow, r.coding_id)
        assert r.state == "recoded" and cod is not None
        assert (cod.origin, cod.code) == ("human", new_code) and "recoded from" in (cod.memo or "")
        u = decide(s, c, ana, "undo")
        assert (u.applied, u.previous_state, u.state) == (True, "recoded", "pending")
        assert s.get(CodingRow, r.coding_id).active is False  # type: ignore[union-attr]
        with pytest.raises(InputError, match="there is no decision to undo"):
            decide(s, c, ana, "undo")
        log = list(s.scalars(select(DecisionRow).order_by(DecisionRow.id)))
        assert [(d.suggestion_id, d.action, d.previous_state, d.resulting_state, d.applied) for d in log] == [
            (a, "accept", "pending", "accepted", True),
            (b, "reject", "pending", "rejected", True),
            (c, "recode", "pending", "recoded", True),
            (c, "undo", "recoded", "pending", True),
        ]
        assert all(d.coder_id == ana.id and d.model_version_id and d.codebook_version_id for d in log)
        assert log[2].new_code == new_code


def test_first_decision_wins_and_the_second_is_logged(proj: Project) -> None:
    make_coder(proj, "ana")
    make_coder(proj, "ben")
    sid = pending_ids(proj)[0]
    with proj.store.transaction() as s:
        ana, ben = coder(s, "ana"), coder(s, "ben")
        first = decide(s, sid, ana, "accept", expected_revision=0)
        second = decide(s, sid, ben, "reject", expected_revision=0)
        assert first.applied and not second.applied
        assert second.message == "already accepted by ana" and second.state == "accepted"
        with pytest.raises(ForbiddenError, match="decided by ana; only they or a lead can undo it"):
            decide(s, sid, ben, "undo")
        stale = decide(s, sid, ana, "undo", expected_revision=0)  # a stale page cannot undo either
        assert not stale.applied
        n = s.scalar(select(func.count()).select_from(DecisionRow).where(DecisionRow.suggestion_id == sid))
        assert n == 3
        assert s.get(SuggestionRow, sid).decided_by == ana.id  # type: ignore[union-attr]


def test_a_lead_may_undo_anyones_decision(proj: Project) -> None:
    make_coder(proj, "ana")
    make_coder(proj, "lea", role="lead")
    sid = pending_ids(proj)[0]
    with proj.store.transaction() as s:
        decide(s, sid, coder(s, "ana"), "accept")
        assert decide(s, sid, coder(s, "lea"), "undo").state == "pending"


def test_decide_rejects_bad_input(proj: Project) -> None:
    make_coder(proj, "ana")
    sid = pending_ids(proj)[0]
    inductive = pending_ids(proj, "inductive")[0]
    with proj.store.transaction() as s:
        ana = coder(s, "ana")
        with pytest.raises(InputError, match=r"unknown action 'approve'; choose one of \['accept'"):
            decide(s, sid, ana, "approve")
        with pytest.raises(InputError, match="code 'trus' is not a codable code"):
            decide(s, sid, ana, "recode", new_code="trus")
        with pytest.raises(InputError, match="recode needs the new code"):
            decide(s, sid, ana, "recode")
        with pytest.raises(InputError, match="accept takes no new code"):
            decide(s, sid, ana, "accept", new_code="tools")
        with pytest.raises(InputError, match="belongs to candidate open code"):
            decide(s, inductive, ana, "accept")
        with pytest.raises(NotFoundError, match="no suggestion 999999"):
            decide(s, 999999, ana, "accept")
        with pytest.raises(ForbiddenError, match="is a model"):
            decide(s, sid, coder(s, "model:local-prototype@1"), "accept")


def drop_code_from_codebook(p: Project, code: str) -> int:
    """Store a new codebook version without the leaf code ``code``; its id."""
    from pipeline.domain import Codebook
    from pipeline.store.queries import require_codebook, store_codebook

    with p.store.transaction() as s:
        _, cb = require_codebook(s)
        assert code in {c.name for c in cb.codes}
        row, created = store_codebook(
            s, Codebook(codes=[c for c in cb.codes if c.name != code], name=cb.name)
        )
        assert created
        return row.id


def test_accepting_a_suggestion_of_a_dropped_code_is_refused(proj: Project) -> None:
    make_coder(proj, "ana")
    sid = pending_ids(proj)[0]
    with proj.store.transaction() as s:
        code = s.get(SuggestionRow, sid).code  # type: ignore[union-attr]
        n_codings = s.scalar(select(func.count()).select_from(CodingRow))
    cb_id = drop_code_from_codebook(proj, code)
    with proj.store.transaction() as s:
        ana = coder(s, "ana")
        with pytest.raises(
            InputError,
            match=rf"suggestion {sid} is for code '{code}', which is not a codable code of the current "
            rf"codebook \(version {cb_id}\).*; recode it to one of \[.*\] or reject it",
        ):
            decide(s, sid, ana, "accept")
        assert s.get(SuggestionRow, sid).state == "pending"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(CodingRow)) == n_codings
        assert s.scalar(select(func.count()).select_from(DecisionRow)) == 0
        # rejecting it, or recoding it to a code that still exists, works
        other = next(n for n in decisions.codable_names(s, cb_id) if n != code)
        r = decide(s, sid, ana, "recode", new_code=other)
        assert r.applied and s.get(CodingRow, r.coding_id).code == other  # type: ignore[union-attr]
        assert decide(s, pending_ids_in(s)[0], ana, "reject").applied


def pending_ids_in(s) -> list[int]:  # type: ignore[no-untyped-def]
    return list(
        s.scalars(
            select(SuggestionRow.id)
            .where(SuggestionRow.state == "pending", SuggestionRow.kind == "deductive")
            .order_by(SuggestionRow.id)
        )
    )


def test_the_same_passage_and_code_twice_makes_one_coding(proj_dir: Path) -> None:
    (first,) = add_fake_suggestions(proj_dir, 1, model_name="model-a")
    (second,) = add_fake_suggestions(proj_dir, 1, model_name="model-b")  # same segment, same code
    p = Project.open(proj_dir)
    make_coder(p, "ana")
    make_coder(p, "ben")
    try:
        with p.store.transaction() as s:
            a, b = s.get(SuggestionRow, first), s.get(SuggestionRow, second)
            assert a is not None and b is not None
            assert (a.segment_id, a.code) == (
                b.segment_id,
                b.code,
            ) and a.model_version_id != b.model_version_id
            span = (a.source_id, a.start, a.end, a.code)
            ana, ben = coder(s, "ana"), coder(s, "ben")
            r1 = decide(s, first, ana, "accept")
            r2 = decide(s, second, ana, "accept")
            assert r1.applied and r1.coding_id is not None
            assert (r2.applied, r2.state, r2.coding_id) == (True, "accepted", None)
            assert r2.message == f"identical active coding {r1.coding_id} exists; no second coding made"

            def active(coder_id: int) -> list[int]:
                return list(
                    s.scalars(
                        select(CodingRow.id).where(
                            CodingRow.source_id == span[0],
                            CodingRow.start == span[1],
                            CodingRow.end == span[2],
                            CodingRow.code == span[3],
                            CodingRow.coder_id == coder_id,
                            CodingRow.active,
                        )
                    )
                )

            assert active(ana.id) == [r1.coding_id]
            log = list(s.scalars(select(DecisionRow).where(DecisionRow.suggestion_id == second)))
            assert [(d.action, d.applied, d.note) for d in log] == [("accept", True, r2.message)]
            # undoing the decision that linked no coding retracts nothing
            assert decide(s, second, ana, "undo").state == "pending"
            assert active(ana.id) == [r1.coding_id]
            # another coder's identical coding is theirs: it is made
            r3 = decide(s, second, ben, "accept")
            assert r3.coding_id is not None and active(ben.id) == [r3.coding_id]
            # a recode to a code the coder already gave the passage by hand makes no second coding either
            (third,) = add_fake_suggestions_in(s, a, "model-c")
            other = next(n for n in decisions.codable_names(s, a.codebook_version_id) if n != a.code)
            src_name = s.scalar(select(SourceRow.name).where(SourceRow.id == a.source_id))
            assert src_name is not None
            hand = decisions.add_coding(s, ana, source=src_name, start=a.start, end=a.end, code=other)
            r4 = decide(s, third, ana, "recode", new_code=other)
            assert r4.applied and r4.coding_id is None and str(hand.id) in r4.message
    finally:
        p.close()


def add_fake_suggestions_in(s, like: SuggestionRow, model_name: str) -> list[int]:  # type: ignore[no-untyped-def]
    """One pending suggestion like ``like`` from another model version."""
    from pipeline.project.suggest import register_model_version

    mv = register_model_version(
        s,
        name=model_name,
        suggester="fake",
        params={},
        embedding="none",
        codebook_version_id=like.codebook_version_id,
    )
    row = SuggestionRow(
        source_id=like.source_id,
        segment_id=like.segment_id,
        start=like.start,
        end=like.end,
        code=like.code,
        score=0.5,
        rank=1,
        kind="deductive",
        model_version_id=mv.id,
        codebook_version_id=like.codebook_version_id,
        priority=1.0,
        state="pending",
    )
    s.add(row)
    s.flush()
    return [row.id]


def test_hand_coding_memo_and_retract(proj: Project) -> None:
    make_coder(proj, "ana")
    make_coder(proj, "ben")
    with proj.store.transaction() as s:
        ana, ben = coder(s, "ana"), coder(s, "ben")
        row = decisions.add_coding(s, ana, source="int09_fa", start=5, end=20, code="tools", memo=" first ")
        assert (row.origin, row.memo, row.start, row.end) == ("human", "first", 5, 20)
        with pytest.raises(InputError, match=r"int09_fa: offsets 20\.\.5 are not a span"):
            decisions.add_coding(s, ana, source="int09_fa", start=20, end=5, code="tools")
        with pytest.raises(
            InputError, match="code .network-governance. is a category, not codable in the codebook"
        ):
            decisions.add_coding(s, ana, source="int09_fa", start=0, end=5, code="network-governance")
        with pytest.raises(NotFoundError, match="no source named 'nope'"):
            decisions.add_coding(s, ana, source="nope", start=0, end=5, code="tools")
        with pytest.raises(ForbiddenError, match="belongs to ana, not you"):
            decisions.set_memo(s, row.id, ben, "mine now")
        assert decisions.set_memo(s, row.id, ana, "why: tools").memo == "why: tools"
        with pytest.raises(ForbiddenError):
            decisions.retract_coding(s, row.id, ben)
        assert decisions.retract_coding(s, row.id, ana).active is False


def test_candidates_accept_merge_reject(proj: Project) -> None:
    make_coder(proj, "lea", role="lead")
    make_coder(proj, "ana")
    with proj.store.transaction() as s:
        cands = list(s.scalars(select(CandidateRow.id).where(CandidateRow.state == "pending")))
        n_versions = s.scalar(select(func.count()).select_from(CodebookVersionRow))
    assert len(cands) >= 2
    first, second = cands[:2]
    with proj.store.transaction() as s:
        lea, ana = coder(s, "lea"), coder(s, "ana")
        with pytest.raises(ForbiddenError, match="only a lead"):
            decisions.resolve_candidate(s, first, ana, "accept", name="x")
        with pytest.raises(InputError, match="unknown candidate action 'keep'"):
            decisions.resolve_candidate(s, first, lea, "keep")
        with pytest.raises(InputError, match="exists already"):
            decisions.resolve_candidate(s, first, lea, "accept", name="Tools")
        r = decisions.resolve_candidate(s, first, lea, "accept", name="benefit-delays", definition="Waiting.")
        assert r.applied and r.state == "accepted" and r.code == "benefit-delays" and r.members_decided > 0
        assert s.scalar(select(func.count()).select_from(CodebookVersionRow)) == n_versions + 1  # type: ignore[union-attr,operator]
        assert "benefit-delays" in decisions.codable_names(s, r.codebook_version_id)  # type: ignore[arg-type]
        members = list(s.scalars(select(SuggestionRow).where(SuggestionRow.candidate_id == first)))
        assert {m.state for m in members} == {"accepted"}
        codings = list(
            s.scalars(select(CodingRow).where(CodingRow.suggestion_id.in_([m.id for m in members])))
        )
        assert {(c.code, c.origin, c.coder_id) for c in codings} == {
            ("benefit-delays", "model-accepted", lea.id)
        }
        again = decisions.resolve_candidate(s, first, lea, "reject")
        assert not again.applied and again.message == "already accepted by lea"
        r2 = decisions.resolve_candidate(s, second, lea, "merge", code="tools")
        assert r2.state == "merged" and r2.code == "tools"
        # a new code is usable at once, for suggestions and hand codings alike
        decisions.add_coding(s, ana, source="int01", start=0, end=10, code="benefit-delays")


def test_candidate_reject_rejects_members(proj: Project) -> None:
    make_coder(proj, "lea", role="lead")
    with proj.store.transaction() as s:
        cid = s.scalar(select(CandidateRow.id).where(CandidateRow.state == "pending"))
        r = decisions.resolve_candidate(s, cid, coder(s, "lea"), "reject")  # type: ignore[arg-type]
        states = set(s.scalars(select(SuggestionRow.state).where(SuggestionRow.candidate_id == cid)))
        assert r.state == "rejected" and states == {"rejected"}
        actions = set(
            s.scalars(
                select(DecisionRow.action)
                .join(SuggestionRow, DecisionRow.suggestion_id == SuggestionRow.id)
                .where(SuggestionRow.candidate_id == cid)
            )
        )
        assert actions == {"reject"}


# --------------------------------------------------------------------------- HTTP: security


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert m, "page without a CSRF token"
    return m.group(1)


def login(client, name: str, password: str = PASSWORD) -> str:  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/queue").text)


@pytest.fixture
def client_factory(proj_dir: Path):
    from fastapi.testclient import TestClient

    from review.app import create_app

    app = create_app(proj_dir)
    clients = []

    def make():  # type: ignore[no-untyped-def]
        c = TestClient(app, base_url="http://127.0.0.1")
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
    app.state.project.close()


def test_every_route_without_a_session_redirects_to_login(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    client = client_factory()
    app = client.app
    checked = 0
    for route in app.routes:
        path = getattr(route, "path", "")
        if path in ("/login",) or path.startswith("/static"):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: "accept" if m.group(1) == "action" else "1", path)
        for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
            r = client.request(method, url, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/login", (method, url, r.status_code)
            checked += 1
    assert checked >= 13
    r = client.get("/login")
    assert r.status_code == 200 and "Log in" in r.text
    assert client.get("/static/app.js").status_code == 200  # the login page needs it


def test_login_cookie_flags_and_wrong_password(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "ana")
    client = client_factory()
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"name": "ana", "password": "wrong-one", "csrf_token": token})
    assert r.status_code == 401 and "wrong name or password" in r.text
    r = client.post("/login", data={"name": "ana", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403  # the login form needs its CSRF token too
    r = client.post(
        "/login", data={"name": "ana", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "qualflow_session=" in cookie
    page = client.get("/queue")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_transcript_markup_renders_as_text(proj: Project, client_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    evil = tmp_path / "evil.txt"
    evil.write_text(
        'Interviewer: <script>alert("x")</script> hello?\n'
        'Maria: "><img src=x onerror=alert(1)> and </p><b>bold</b> &amp; more.\n',
        encoding="utf-8",
    )
    ingest(proj, [evil])
    make_coder(proj, "ana")
    client = client_factory()
    login(client, "ana")
    html = client.get("/sources/evil").text
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&amp;amp;" in html
    assert len(re.findall(r"<script\b", html)) == 1  # only /static/app.js


def test_posts_without_csrf_token_are_refused(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "lea", role="lead")
    client = client_factory()
    token = login(client, "lea")
    sid = pending_ids(proj)[0]
    with proj.store.transaction() as s:
        cid = s.scalar(select(CandidateRow.id))
        coding = s.scalar(select(CodingRow.id))
    attempts = [
        (f"/api/suggestions/{sid}/decide", {"json": {"action": "accept"}}),
        ("/api/codings", {"json": {"source": "int01", "start": 0, "end": 5, "code": "tools"}}),
        (f"/api/codings/{coding}/memo", {"json": {"memo": "x"}}),
        (f"/api/codings/{coding}/retract", {"json": {}}),
        (f"/candidates/{cid}/reject", {"data": {}}),
        ("/codebook", {"data": {"name": "new-code"}}),
        ("/logout", {"data": {}}),
    ]
    for url, kw in attempts:
        for headers in ({}, {"X-CSRF-Token": "forged"}):
            r = client.post(url, headers=headers, follow_redirects=False, **kw)  # type: ignore[arg-type]
            assert r.status_code == 403, (url, headers, r.status_code)
    r = client.post(f"/candidates/{cid}/reject", data={"csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    with proj.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(DecisionRow)) == 0
        assert s.get(CandidateRow, cid).state == "pending"  # type: ignore[union-attr]
    r = client.post(
        f"/api/suggestions/{sid}/decide", json={"action": "accept"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 200 and r.json()["state"] == "accepted"


def test_a_coder_cannot_act_as_another(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "ana")
    make_coder(proj, "ben")
    ana_c, ben_c = client_factory(), client_factory()
    ana_t, ben_t = login(ana_c, "ana"), login(ben_c, "ben")
    sid = pending_ids(proj)[0]
    # the acting coder comes from the session; a coder field in the body is ignored
    r = ben_c.post(
        f"/api/suggestions/{sid}/decide",
        json={"action": "accept", "coder": "ana", "coder_id": 1},
        headers={"X-CSRF-Token": ben_t},
    )
    assert r.status_code == 200
    # ana's token is useless with ben's cookie, and the other way round
    r = ana_c.post(f"/api/suggestions/{sid}/decide", json={"action": "undo"}, headers={"X-CSRF-Token": ben_t})
    assert r.status_code == 403
    r = ana_c.post(f"/api/suggestions/{sid}/decide", json={"action": "undo"}, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 403 and "decided by ben" in r.json()["error"]
    r = ana_c.post(
        "/api/codings",
        json={"source": "int01", "start": 0, "end": 12, "code": "tools", "coder": "ben"},
        headers={"X-CSRF-Token": ana_t},
    )
    assert r.status_code == 201 and r.json()["coder"] == "ana"
    ana_coding = r.json()["id"]
    r = ben_c.post(
        f"/api/codings/{ana_coding}/memo", json={"memo": "hijack"}, headers={"X-CSRF-Token": ben_t}
    )
    assert r.status_code == 403 and "belongs to ana" in r.json()["error"]
    r = ben_c.post("/candidates/1/accept", data={"name": "x", "csrf_token": ben_t}, follow_redirects=False)
    assert r.status_code == 403  # ben is not a lead
    # a tampered cookie is no session at all
    forged = ana_c.cookies.get("qualflow_session")[:-3] + "xyz"
    ben_c.cookies.clear()
    ben_c.cookies.set("qualflow_session", forged)
    assert ben_c.get("/queue", follow_redirects=False).status_code == 303
    with proj.store.transaction() as s:
        d = s.scalar(select(DecisionRow).where(DecisionRow.suggestion_id == sid))
        assert d is not None and d.coder_id == coder(s, "ben").id
        assert s.get(CodingRow, ana_coding).memo is None  # type: ignore[union-attr]


def test_api_refuses_an_identical_hand_coding(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "ana")
    make_coder(proj, "ben")
    ana_c, ben_c = client_factory(), client_factory()
    ana_t, ben_t = login(ana_c, "ana"), login(ben_c, "ben")
    body = {"source": "int01", "start": 0, "end": 12, "code": "tools"}
    r = ana_c.post("/api/codings", json=body, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 201
    first = r.json()["id"]
    r = ana_c.post("/api/codings", json=body, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 409
    assert r.json() == {
        "error": f"you already have coding {first} of int01 0..12 'tools'",
        "coding_id": first,
    }
    # with a memo: the answer says where to put it, and nothing is stored
    r = ana_c.post("/api/codings", json={**body, "memo": "یادداشت"}, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 409 and r.json()["coding_id"] == first
    assert f"set it on coding {first} (POST /api/codings/{first}/memo)" in r.json()["error"]
    r = ana_c.post(f"/api/codings/{first}/memo", json={"memo": "یادداشت"}, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 200 and r.json() == {"id": first, "memo": "یادداشت"}
    # another coder, another span or another code is no duplicate; a retracted coding is none either
    assert ben_c.post("/api/codings", json=body, headers={"X-CSRF-Token": ben_t}).status_code == 201
    r = ana_c.post("/api/codings", json={**body, "end": 13}, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 201
    assert (
        ana_c.post(f"/api/codings/{first}/retract", json={}, headers={"X-CSRF-Token": ana_t}).status_code
        == 200
    )
    r = ana_c.post("/api/codings", json=body, headers={"X-CSRF-Token": ana_t})
    assert r.status_code == 201
    with proj.store.transaction() as s:
        names = {c.id: c.name for c in s.scalars(select(CoderRow))}
        rows = s.scalars(select(CodingRow).where(CodingRow.start == 0, CodingRow.code == "tools")).all()
        got = sorted(
            (names[r.coder_id], r.end, r.active) for r in rows if names[r.coder_id] in ("ana", "ben")
        )
        assert got == [("ana", 12, False), ("ana", 12, True), ("ana", 13, True), ("ben", 12, True)]
        assert [r.memo for r in rows if r.id == first] == ["یادداشت"]


def beaten_to_it(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, coding: dict, *, committed: bool = True
) -> list[int]:
    """Make ``module.name`` (a writer of codings, taking the session first) run just after another
    request stored the identical ``coding`` (columns of ``codings``): past the caller's look-up, as a
    double click or a second tab would. Returns the other coding's id once stored.

    ``committed``: the other request commits on its own connection. Otherwise the row goes in on the
    caller's own transaction, for writers that hold SQLite's write lock by then (a decision's UPDATE
    took it): there no other connection can write, but PostgreSQL lets one, and the database's answer
    is the same."""
    from sqlalchemy import insert

    from pipeline.store import Store

    real = getattr(module, name)
    made: list[int] = []

    def late(session, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not made and committed:
            other = Store(session.get_bind().url.render_as_string(hide_password=False))
            try:
                with other.transaction() as s:
                    row = CodingRow(**coding)
                    s.add(row)
                    s.flush()
                    made.append(row.id)
            finally:
                other.dispose()
        elif not made:
            res = session.connection().execute(insert(CodingRow.__table__), {**coding, "active": True})
            made.append(res.inserted_primary_key[0])
        return real(session, *args, **kwargs)

    monkeypatch.setattr(module, name, late)
    return made


def test_api_answers_409_for_an_identical_coding_stored_after_its_look_up(  # type: ignore[no-untyped-def]
    proj: Project, client_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up finds nothing, a concurrent request stores the same coding, the database refuses the
    second: the API answers as the look-up would have, with the coding that got there first."""
    make_coder(proj, "ana")
    with proj.store.transaction() as s:
        ana = coder(s, "ana")
        src = s.scalar(select(SourceRow).where(SourceRow.name == "int01", SourceRow.is_current))
        cb = s.scalar(select(func.max(CodebookVersionRow.id)))
        assert src is not None and cb is not None
        columns = {
            "source_id": src.id,
            "start": 0,
            "end": 12,
            "code": "tools",
            "codebook_version_id": cb,
            "coder_id": ana.id,
            "origin": "human",
        }
    other = beaten_to_it(monkeypatch, decisions, "store_coding", columns)
    c = client_factory()
    token = login(c, "ana")
    body = {"source": "int01", "start": 0, "end": 12, "code": "tools", "memo": "mine"}
    r = c.post("/api/codings", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 409, r.text
    (first,) = other
    assert r.json()["coding_id"] == first
    assert r.json()["error"].startswith(f"you already have coding {first} of int01 0..12 'tools'; to keep")
    with proj.store.transaction() as s:
        rows = s.scalars(
            select(CodingRow).where(CodingRow.coder_id == ana.id, CodingRow.start == 0, CodingRow.end == 12)
        ).all()
        assert [(r.id, r.active, r.memo) for r in rows] == [(first, True, None)]


def test_an_accept_beaten_by_an_identical_coding_links_the_existing_one(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coding is refused by the database, the rest of the decision's transaction goes on: the
    suggestion is accepted and the decision logged, naming the coding stored first (as when the
    look-up finds it)."""
    make_coder(proj, "ana")
    (sid,) = pending_ids(proj)[:1]
    with proj.store.transaction() as s:
        sugg, ana = s.get(SuggestionRow, sid), coder(s, "ana")
        assert sugg is not None
        columns = {
            "source_id": sugg.source_id,
            "start": sugg.start,
            "end": sugg.end,
            "code": sugg.code,
            "codebook_version_id": sugg.codebook_version_id,
            "coder_id": ana.id,
            "origin": "human",
        }
    other = beaten_to_it(monkeypatch, decisions, "store_coding", columns, committed=False)
    with proj.store.transaction() as s:
        r = decide(s, sid, coder(s, "ana"), "accept")
    (first,) = other
    assert (r.applied, r.state, r.coding_id) == (True, "accepted", None)
    assert r.message == f"identical active coding {first} exists; no second coding made"
    with proj.store.transaction() as s:
        assert s.scalar(select(SuggestionRow.state).where(SuggestionRow.id == sid)) == "accepted"
        log = s.scalars(select(DecisionRow).where(DecisionRow.suggestion_id == sid)).all()
        assert [(d.action, d.applied, d.note) for d in log] == [("accept", True, r.message)]
        same = s.scalars(
            select(CodingRow.id).where(
                CodingRow.source_id == columns["source_id"],
                CodingRow.start == columns["start"],
                CodingRow.end == columns["end"],
                CodingRow.code == columns["code"],
                CodingRow.coder_id == ana.id,
            )
        ).all()
        assert same == [first]


def test_candidate_members_reuse_the_leads_identical_coding(proj: Project) -> None:
    """Merging a candidate into a code the lead already gave one member's passage: that member is
    accepted, its decision names the lead's coding, and no second coding is made."""
    make_coder(proj, "lea", role="lead")
    with proj.store.transaction() as s:
        lea = coder(s, "lea")
        cid = s.scalar(select(CandidateRow.id).where(CandidateRow.state == "pending"))
        member = s.scalar(
            select(SuggestionRow).where(SuggestionRow.candidate_id == cid).order_by(SuggestionRow.id)
        )
        assert cid is not None and member is not None
        name = s.scalar(select(SourceRow.name).where(SourceRow.id == member.source_id))
        assert name is not None
        hand = decisions.add_coding(s, lea, source=name, start=member.start, end=member.end, code="tools")
        r = decisions.resolve_candidate(s, cid, lea, "merge", code="tools")
        assert r.applied and r.members_decided > 0
        assert s.scalar(select(SuggestionRow.state).where(SuggestionRow.id == member.id)) == "accepted"
        note = s.scalar(select(DecisionRow.note).where(DecisionRow.suggestion_id == member.id))
        assert note == f"candidate {cid}; identical active coding {hand.id} exists; no second coding made"
        same = s.scalars(
            select(CodingRow.id).where(
                CodingRow.source_id == member.source_id,
                CodingRow.start == member.start,
                CodingRow.end == member.end,
                CodingRow.code == "tools",
                CodingRow.coder_id == lea.id,
                CodingRow.active,
            )
        ).all()
        assert same == [hand.id]


def test_imported_codings_beaten_by_an_identical_coding_keep_their_memo(
    proj: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.domain import Coding
    from pipeline.project import codings

    make_coder(proj, "ana")
    with proj.store.transaction() as s:
        ana = coder(s, "ana")
        src = s.scalar(select(SourceRow).where(SourceRow.name == "int01", SourceRow.is_current))
        cb = s.scalar(select(func.max(CodebookVersionRow.id)))
        assert src is not None and cb is not None
        src_id = src.id
        columns = {
            "source_id": src_id,
            "start": 0,
            "end": 12,
            "code": "tools",
            "codebook_version_id": cb,
            "coder_id": ana.id,
            "origin": "human",
            "memo": "theirs",
        }
    other = beaten_to_it(monkeypatch, codings, "_store_new_codings", columns)
    with proj.store.transaction() as s:
        added = codings.add_codings(
            s,
            [
                Coding("int01", 0, 12, "tools", "ana", memo="mine"),
                Coding("int01", 0, 12, "tools", "ana", memo="also mine"),
                Coding("int01", 0, 13, "tools", "ana"),
            ],
            {"int01": s.get(SourceRow, src_id)},  # type: ignore[dict-item]
            int(cb),
        )
    assert added == {"ana": 1}
    (first,) = other
    with proj.store.transaction() as s:
        rows = s.scalars(
            select(CodingRow).where(CodingRow.coder_id == ana.id, CodingRow.start == 0).order_by(CodingRow.id)
        ).all()
        assert [(r.id == first, r.end, r.active, r.memo) for r in rows] == [
            (True, 12, True, "theirs\n\nmine\n\nalso mine"),
            (False, 13, True, None),
        ]


def test_pages_render_and_blind_mode_hides_other_coders(proj_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from review.app import create_app

    cfg = proj_dir / "qualflow.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("blind = false", "blind = true"), encoding="utf-8")
    p = Project.open(proj_dir)
    make_coder(p, "ana")
    make_coder(p, "lea", role="lead")
    p.close()
    app = create_app(proj_dir)
    with (
        TestClient(app, base_url="http://127.0.0.1") as ana,
        TestClient(app, base_url="http://127.0.0.1") as lea,
    ):
        login(ana, "ana")
        login(lea, "lea")
        for url in ("/queue", "/sources", "/sources/int01", "/sources/int09_fa", "/candidates", "/codebook"):
            assert ana.get(url).status_code == 200, url
        ana_html, lea_html = ana.get("/sources/int01").text, lea.get("/sources/int01").text
        assert "sara" not in ana_html and "reza" not in ana_html and "blind" in ana_html
        assert "sara" in lea_html and "reza" in lea_html
        fa = ana.get("/sources/int09_fa").text
        assert 'dir="auto"' in fa and "مصاحبه" not in fa.split("<main>")[0]
        assert ana.get("/queue?source=nope").status_code == 400
        assert ana.get("/sources/nope").status_code == 404
        assert "Add a code" in lea.get("/codebook").text and "Add a code" not in ana.get("/codebook").text
    app.state.project.close()


def test_single_user_mode_needs_no_login_but_keeps_csrf(proj_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from review.app import create_app

    app = create_app(proj_dir, single_user="solo")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        page = c.get("/queue")
        assert page.status_code == 200 and "solo" in page.text
        assert c.get("/login", follow_redirects=False).headers["location"] == "/queue"
        sid = pending_ids(app.state.project)[0]
        assert c.post(f"/api/suggestions/{sid}/decide", json={"action": "accept"}).status_code == 403
        r = c.post(
            f"/api/suggestions/{sid}/decide",
            json={"action": "accept"},
            headers={"X-CSRF-Token": csrf_of(page.text)},
        )
        assert r.status_code == 200
    app.state.project.close()
    with pytest.raises(InputError, match="is a model coder"):
        create_app(proj_dir, single_user="model:local-prototype@1")


def test_dns_rebinding_foreign_host_is_refused_on_loopback(proj_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from review.app import create_app

    app = create_app(proj_dir, single_user="solo")
    with TestClient(app, base_url="http://attacker.example:8000") as evil:
        r = evil.get("/sources/int01")
        assert r.status_code == 400 and "int01" not in r.text and "csrf" not in r.text.lower()
        assert evil.get("/queue").status_code == 400
        assert evil.post("/api/codings", json={}).status_code == 400
    for base in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "http://127.0.0.1"):
        with TestClient(app, base_url=base) as ok:
            assert ok.get("/sources/int01").status_code == 200, base
    app.state.project.close()
    # with logins too, as long as the app is bound to loopback (the default); not on a public address
    app = create_app(proj_dir)
    with TestClient(app, base_url="http://attacker.example:8000") as evil:
        assert evil.get("/login").status_code == 400
    app.state.project.close()
    app = create_app(proj_dir, host="0.0.0.0")
    with TestClient(app, base_url="http://review.example.org") as lan:
        assert lan.get("/login").status_code == 200
    app.state.project.close()
    with pytest.raises(InputError, match="--single-user has no login"):
        create_app(proj_dir, single_user="solo", host="0.0.0.0")


def test_posts_from_a_foreign_origin_are_refused(proj_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from review.app import create_app

    app = create_app(proj_dir, single_user="solo")
    sid = pending_ids(app.state.project)[0]
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        token = csrf_of(c.get("/queue").text)
        url = f"/api/suggestions/{sid}/decide"
        for origin in ("http://attacker.example", "http://127.0.0.1:9999", "null", "https://localhost:8000"):
            r = c.post(url, json={"action": "accept"}, headers={"X-CSRF-Token": token, "Origin": origin})
            assert r.status_code == 403 and "not from this app" in r.json()["error"], origin
        r = c.post(
            "/codebook", data={"name": "x", "csrf_token": token}, headers={"Origin": "http://evil.example"}
        )
        assert r.status_code == 403
        with app.state.project.store.transaction() as s:
            assert s.scalar(select(func.count()).select_from(DecisionRow)) == 0
        # its own origin (as a browser sends it) and no Origin at all (curl, older browsers) are fine
        r = c.post(
            url,
            json={"action": "accept"},
            headers={"X-CSRF-Token": token, "Origin": "http://127.0.0.1:8000"},
        )
        assert r.status_code == 200
        r = c.post(url, json={"action": "undo"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200
    app.state.project.close()


def test_accepting_a_dropped_code_over_http_is_a_400(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "ana")
    sid = pending_ids(proj)[0]
    with proj.store.transaction() as s:
        code = s.get(SuggestionRow, sid).code  # type: ignore[union-attr]
    drop_code_from_codebook(proj, code)
    client = client_factory()
    token = login(client, "ana")
    r = client.post(
        f"/api/suggestions/{sid}/decide", json={"action": "accept"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 400 and "not a codable code of the current codebook" in r.json()["error"]


def test_logout_revokes_a_saved_cookie(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "ana")
    client = client_factory()
    token = login(client, "ana")
    saved = client.cookies.get("qualflow_session")
    assert saved and client.app.state.sessions.count() == 1
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.app.state.sessions.count() == 0
    thief = client_factory()
    thief.cookies.set("qualflow_session", saved)
    r = thief.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    thief.cookies.set("qualflow_session", saved)
    sid = pending_ids(proj)[0]
    r = thief.post(
        f"/api/suggestions/{sid}/decide",
        json={"action": "accept"},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/login"
    thief.cookies.set("qualflow_session", saved)
    assert thief.get("/login", follow_redirects=False).status_code == 200  # the form, not a redirect loop
    with proj.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(DecisionRow)) == 0
    # two sessions of one coder are independent: logging one out keeps the other
    one, two = client_factory(), client_factory()
    t1 = login(one, "ana")
    login(two, "ana")
    one.post("/logout", data={"csrf_token": t1})
    assert two.get("/queue", follow_redirects=False).status_code == 200


def test_a_password_change_ends_the_coders_sessions(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "ana")
    make_coder(proj, "ben")
    ana, ben = client_factory(), client_factory()
    token = login(ana, "ana")
    login(ben, "ben")
    with proj.store.transaction() as s:
        add_coder(s, "ana", role="coder", password="a new password 2")  # what `qualflow coders add` does
    r = ana.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert (
        ana.post(
            "/api/codings",
            json={"source": "int01", "start": 0, "end": 5, "code": "tools"},
            headers={"X-CSRF-Token": token},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert ben.get("/queue", follow_redirects=False).status_code == 200  # other coders stay logged in
    fresh = client_factory()
    login(fresh, "ana", "a new password 2")
    assert fresh.get("/queue", follow_redirects=False).status_code == 200


def test_two_app_instances_share_sessions(proj_dir: Path) -> None:
    """Two review-app instances on one database (two workers, or two machines behind a proxy): a session
    started in one works in the other, a logout or a password change in one ends it in both, and a
    restart keeps it."""
    from fastapi.testclient import TestClient

    from review.app import create_app

    p = Project.open(proj_dir)
    make_coder(p, "ana")
    make_coder(p, "ben")
    p.close()
    one, two = create_app(proj_dir), create_app(proj_dir)
    clients: list[TestClient] = []

    def client(app, cookie: str | None = None) -> TestClient:  # type: ignore[no-untyped-def]
        c = TestClient(app, base_url="http://127.0.0.1")
        clients.append(c)
        if cookie is not None:
            c.cookies.set("qualflow_session", cookie)
        return c

    def status(app, cookie: str) -> int:  # type: ignore[no-untyped-def]
        return client(app, cookie).get("/queue", follow_redirects=False).status_code

    try:
        ca = client(one)
        token = login(ca, "ana")
        saved = ca.cookies.get("qualflow_session")
        assert saved is not None
        assert status(two, saved) == 200  # started in one, live in two
        r = client(two, saved).post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303  # logout in two ...
        assert status(one, saved) == 303  # ... is a logout in one
        # a password change ends the coder's sessions in every instance
        cben = client(one)
        login(cben, "ben")
        ben = cben.cookies.get("qualflow_session")
        assert ben is not None and status(two, ben) == 200
        with one.state.project.store.transaction() as s:
            add_coder(s, "ben", role="coder", password="a new password 2")
        assert two.state.sessions.count() == 0
        assert status(one, ben) == 303 and status(two, ben) == 303
        # a restart keeps the sessions (they are in the database, not in a process)
        cana = client(one)
        login(cana, "ana")
        alive = cana.cookies.get("qualflow_session")
        assert alive is not None
    finally:
        for c in clients:
            c.close()
        one.state.project.close()
        two.state.project.close()
    three = create_app(proj_dir)
    assert status(three, alive) == 200
    clients[-1].close()
    three.state.project.close()


# --------------------------------------------------------------------------- concurrency


def test_eight_clients_deciding_overlapping_suggestions(proj_dir: Path) -> None:
    """8 coders over HTTP, in parallel, on the same 24 suggestions, through two app instances on one
    database (as two workers): every decision logged, first wins (0 lost, 0 applied twice)."""
    import httpx

    from review.app import create_app
    from review.testing import live_server

    ids = add_fake_suggestions(proj_dir, 24)
    p = Project.open(proj_dir)
    names = [f"coder{i}" for i in range(8)]
    for n in names:
        make_coder(p, n)
    apps = [create_app(proj_dir), create_app(proj_dir)]
    results: dict[str, list[tuple[int, str, int, dict]]] = {n: [] for n in names}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))

    def work(name: str, base: str, seed: int) -> None:
        try:
            with httpx.Client(base_url=base, timeout=30) as c:
                token = csrf_of(c.get("/login").text)
                c.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
                token = csrf_of(c.get("/queue").text)
                order = list(ids)
                random.Random(seed).shuffle(order)
                barrier.wait()
                for sid in order:
                    action = ("accept", "reject")[(sid + seed) % 2]
                    r = c.post(
                        f"/api/suggestions/{sid}/decide",
                        json={"action": action, "revision": 0},
                        headers={"X-CSRF-Token": token},
                    )
                    results[name].append((sid, action, r.status_code, r.json()))
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    with live_server(apps[0]) as base0, live_server(apps[1]) as base1:
        bases = (base0, base1)
        threads = [threading.Thread(target=work, args=(n, bases[i % 2], i)) for i, n in enumerate(names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    for app in apps:
        app.state.project.close()
    assert not errors, errors
    assert all(len(v) == len(ids) for v in results.values())
    winners: dict[int, str] = {}
    for name, rows in results.items():
        for sid, _action, status, body in rows:
            assert status in (200, 409), body
            if status == 200:
                assert sid not in winners, f"suggestion {sid} applied twice"
                winners[sid] = name
            else:
                assert body["applied"] is False and body["message"].startswith("already ")
    assert set(winners) == set(ids)
    with p.store.transaction() as s:
        log = list(s.scalars(select(DecisionRow).where(DecisionRow.suggestion_id.in_(ids))))
        assert len(log) == len(ids) * len(names)  # nothing lost
        by_id = {c.id: c.name for c in s.scalars(select(CoderRow))}
        for sid in ids:
            sug = s.get(SuggestionRow, sid)
            applied = [d for d in log if d.suggestion_id == sid and d.applied]
            assert sug is not None and len(applied) == 1 and sug.revision == 1
            assert by_id[applied[0].coder_id] == winners[sid] == by_id[sug.decided_by]  # type: ignore[index]
            assert sug.state == applied[0].resulting_state
            losers = [d for d in log if d.suggestion_id == sid and not d.applied]
            assert all(d.note == f"already {sug.state} by {winners[sid]}" for d in losers)
            codings = list(s.scalars(select(CodingRow).where(CodingRow.suggestion_id == sid)))
            assert len(codings) == (1 if sug.state == "accepted" else 0)
    p.close()


def test_review_with_two_worker_processes_shares_sessions(proj_dir: Path) -> None:
    """`qualflow review --workers 2`: a session works on every fresh connection (the kernel spreads
    them over both processes) and, after a logout, fails on every one."""
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from review.testing import free_port

    p = Project.open(proj_dir)
    make_coder(p, "ana")
    p.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "--project",
        str(proj_dir),
        "review",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the review app did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as c:
            token = login(c, "ana")  # type: ignore[arg-type]
            saved = c.cookies.get("qualflow_session")

        def fresh_status() -> int:  # a new connection each time
            with httpx.Client(base_url=base, timeout=30, cookies={"qualflow_session": saved or ""}) as c:
                return c.get("/queue", follow_redirects=False).status_code

        assert [fresh_status() for _ in range(12)] == [200] * 12
        with httpx.Client(base_url=base, timeout=30, cookies={"qualflow_session": saved or ""}) as c:
            assert c.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
        assert [fresh_status() for _ in range(12)] == [303] * 12
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
