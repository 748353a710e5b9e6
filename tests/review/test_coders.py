"""`qualflow coders list` and `qualflow coders remove`: who can log in, taking a login away (sessions end at
once, codings and decisions stay), letting the coder in again, and the coders that cannot be removed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cli.review_commands import coders_add, coders_list, coders_remove
from pipeline.errors import InputError
from pipeline.project.core import Project
from pipeline.store.schema import CoderRow, CodingRow, DecisionRow
from review.auth import add_coder, authenticate
from tests.review import test_review as _review
from tests.review.test_review import PASSWORD, csrf_of, login, make_coder, pending_ids

# the demo project on SQLite and PostgreSQL, and the review app's test clients, as in test_review
review_template = _review.review_template  # built once, reused (demo_template)


@pytest.fixture(scope="session")
def review_pg_template(review_template: Path, pg_cluster) -> str:  # type: ignore[no-untyped-def]
    """test_review's PostgreSQL template under a name of its own (both modules may run in one session)."""
    from pipeline.store.copy import copy_database

    name = "coders_review_template"
    copy_database(f"sqlite:///{review_template / 'qualflow.db'}", pg_cluster.create_database(name))
    return name


proj_dir = _review.proj_dir
proj = _review.proj
client_factory = _review.client_factory


def _counts(p: Project, name: str) -> tuple[int, int]:
    with p.store.transaction() as s:
        cid = s.scalar(select(CoderRow.id).where(CoderRow.name == name))
        codings = s.scalar(select(func.count()).where(CodingRow.coder_id == cid, CodingRow.active.is_(True)))
        decisions = s.scalar(select(func.count()).where(DecisionRow.coder_id == cid))
    return int(codings or 0), int(decisions or 0)


def test_coders_list_shows_logins_codings_decisions_and_sessions(proj: Project, client_factory) -> None:  # type: ignore[no-untyped-def]
    make_coder(proj, "sara", "lead")  # sara's 69 codings came from the demo's CSV
    make_coder(proj, "ana")
    login(client_factory(), "ana")
    assert coders_list(proj).splitlines() == [
        "name                     role   kind   login  codings  decisions  sessions",
        "ana                      coder  human  yes    0        0          1",
        "reza                     coder  human  no     53       0          0",
        "sara                     lead   human  yes    69       0          0",
        "model:local-discover@2   -      model  no     0        0          0",
        "model:local-prototype@1  -      model  no     0        0          0",
    ]
    rows = json.loads(coders_list(proj, "json"))
    assert rows[0] == {
        "name": "ana",
        "kind": "human",
        "role": "coder",
        "can_log_in": True,
        "codings": 0,
        "decisions": 0,
        "sessions": 1,
    }
    with pytest.raises(InputError, match="--format 'csv' is not one of"):
        coders_list(proj, "csv")


def test_a_removed_coder_cannot_log_in_loses_their_sessions_and_keeps_their_work(  # type: ignore[no-untyped-def]
    proj: Project, client_factory
) -> None:
    make_coder(proj, "sara", "lead")
    make_coder(proj, "ben")
    sara, ben = client_factory(), client_factory()
    token = login(sara, "sara")
    login(ben, "ben")
    sid = pending_ids(proj)[0]
    r = sara.post(
        f"/api/suggestions/{sid}/decide", json={"action": "accept"}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 200, r.text
    codings, decisions = _counts(proj, "sara")
    assert (codings, decisions) == (70, 1)
    # a second lead, so that sara is not the last one
    make_coder(proj, "lena", "lead")

    assert coders_remove(proj, "sara") == (
        "removed lead 'sara': they can no longer log in (1 open session ended); their 70 codings and "
        "1 decision are kept; `qualflow coders add sara` with a password lets them in again"
    )
    # the live session is gone at the next request, pages and API alike
    r = sara.get("/queue", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = sara.post(
        "/api/codings",
        json={"source": "int01", "start": 0, "end": 5, "code": "tools"},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert ben.get("/queue", follow_redirects=False).status_code == 200  # others stay logged in
    # the login answers exactly as for a wrong password: no telling a removed account from a typo
    fresh = client_factory()
    form = {"name": "sara", "password": PASSWORD, "csrf_token": csrf_of(fresh.get("/login").text)}
    refused = fresh.post("/login", data=form, follow_redirects=False)
    typo = client_factory()
    form = {"name": "ben", "password": "not the password", "csrf_token": csrf_of(typo.get("/login").text)}
    wrong = typo.post("/login", data=form, follow_redirects=False)
    assert refused.status_code == wrong.status_code == 401
    assert "wrong name or password" in refused.text and "wrong name or password" in wrong.text
    with proj.store.transaction() as s:
        assert authenticate(s, "sara", PASSWORD) is None
    assert _counts(proj, "sara") == (70, 1)  # history and agreement keep their codings and decisions
    listed = {line.split()[0]: line.split()[1:] for line in coders_list(proj).splitlines()}
    assert listed["sara"] == ["lead", "human", "no", "70", "1", "0"]
    assert (
        coders_remove(proj, "sara")
        == "'sara' already could not log in; their 70 codings and 1 decision are kept"
    )

    # a password lets them in again
    msg = coders_add(proj, "sara", "lead", password_stdin=True, stdin=io.StringIO("another pass 2\n"))
    assert msg == "enabled lead 'sara': they can log in at `qualflow review`"
    again = client_factory()
    login(again, "sara", "another pass 2")
    assert again.get("/queue", follow_redirects=False).status_code == 200


def test_the_last_lead_and_the_special_coders_cannot_be_removed(proj: Project) -> None:
    make_coder(proj, "sara", "lead")
    make_coder(proj, "ana")
    with pytest.raises(InputError, match="'sara' is the only lead who can log in; make another lead first"):
        coders_remove(proj, "sara")
    with pytest.raises(InputError, match="'model:local-prototype@1' is the model coder, not a person"):
        coders_remove(proj, "model:local-prototype@1")
    with pytest.raises(InputError, match="no coder 'nobody'"):
        coders_remove(proj, "nobody")
    with proj.store.transaction() as s:
        s.add(CoderRow(name="consensus", kind="human", role="coder", password_hash=None))
    with pytest.raises(InputError, match="'consensus' is the consensus coder, not a person"):
        coders_remove(proj, "consensus")
    with proj.store.transaction() as s, pytest.raises(InputError, match="records the adjudications"):
        add_coder(s, "consensus", role="lead", password=PASSWORD)
    # a coder (not a lead) goes; the lead stays able to log in
    assert coders_remove(proj, "ana").startswith(
        "removed coder 'ana': they can no longer log in (0 open sessions"
    )
    with proj.store.transaction() as s:
        assert authenticate(s, "sara", PASSWORD) is not None


def test_the_coders_commands_through_the_cli(proj_dir) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from cli.app import app

    runner = CliRunner()
    base = ["--project", str(proj_dir), "coders"]
    r = runner.invoke(app, [*base, "add", "ana", "--role", "lead", "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0 and r.stdout == "added lead 'ana'; they log in at `qualflow review`\n"
    r = runner.invoke(app, [*base, "add", "reza", "--password-stdin"], input=PASSWORD + "\n")
    assert r.stdout == "enabled coder 'reza': they can log in at `qualflow review`\n"
    r = runner.invoke(app, [*base, "remove", "reza"])
    assert r.exit_code == 0
    assert r.stdout == (
        "removed coder 'reza': they can no longer log in (0 open sessions ended); their 53 codings and "
        "0 decisions are kept; `qualflow coders add reza` with a password lets them in again\n"
    )
    r = runner.invoke(app, [*base, "list"])
    assert r.exit_code == 0 and r.stdout.splitlines()[:3] == [
        "name                     role   kind   login  codings  decisions  sessions",
        "ana                      lead   human  yes    0        0          0",
        "reza                     coder  human  no     53       0          0",
    ]
    r = runner.invoke(app, [*base, "list", "--format", "json"])
    assert [c["name"] for c in json.loads(r.stdout) if c["can_log_in"]] == ["ana"]
    r = runner.invoke(app, [*base, "remove", "ana"])
    assert isinstance(r.exception, InputError)  # `qualflow` prints it on one line and exits 2
    assert "'ana' is the only lead who can log in" in str(r.exception)


def test_review_says_when_nobody_can_log_in(project: Project) -> None:
    """`qualflow review` on a project whose coders came from a codings file only: the login page would
    refuse everyone, so the command says how to give someone a password (or use --single-user)."""
    from cli.review_commands import login_note

    note = login_note(project)
    assert note is not None and "`qualflow coders add NAME --role lead`" in note and "--single-user" in note
    coders_add(project, "lea", "lead", password_stdin=True, stdin=io.StringIO("a long password\n"))
    assert login_note(project) is None
    coders_add(project, "ben", "coder", password_stdin=True, stdin=io.StringIO("a long password\n"))
    coders_remove(project, "ben")
    assert login_note(project) is None  # lea still can


@pytest.mark.parametrize("name", ["consensus", "model:local-evidence@1", " "])
def test_single_user_is_a_person(project: Project, name: str) -> None:
    """`consensus` never logs in and cannot be given a password, nor is a model a person: `review
    --single-user` refuses them before binding anything (it used to act as them, or create a
    human coder named `model:...`)."""
    from cli.review_commands import run_review

    with pytest.raises(InputError, match="--single-user"):
        run_review(project, host="127.0.0.1", port=8123, single_user=name)
