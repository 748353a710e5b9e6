"""Abuse of the review app: huge bodies, unauthenticated API bodies, password guessing, headers, cookies."""

from __future__ import annotations

import logging
import resource
import shutil
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.project.core import Project
from pipeline.store.schema import LoginThrottleRow
from review.auth import add_coder
from review.testing import demo_template, live_server
from review.throttle import LoginThrottle, ThrottlePolicy
from tests.review.test_review import PASSWORD, csrf_of, login


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = demo_template(tmp_path_factory.getbasetemp())
    dest = tmp_path_factory.mktemp("abuse") / "tmpl"
    shutil.copytree(root, dest)
    p = Project.open(dest)  # migrated to the newest schema, with two coders
    with p.store.transaction() as s:
        add_coder(s, "ana", role="coder", password=PASSWORD)
        add_coder(s, "lea", role="lead", password=PASSWORD)
    p.close()
    return dest


@pytest.fixture
def proj_dir(template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(template, dest)
    return dest


def set_review(proj_dir: Path, **settings: object) -> None:
    toml = proj_dir / "qualflow.toml"
    text = toml.read_text(encoding="utf-8")
    for key, value in settings.items():
        rendered = ("true" if value else "false") if isinstance(value, bool) else str(value)
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} =")]
        i = lines.index("[review]")
        lines.insert(i + 1, f"{key} = {rendered}")
        text = "\n".join(lines) + "\n"
    toml.write_text(text, encoding="utf-8")


@pytest.fixture
def make_client(proj_dir: Path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from review.app import create_app

    made = []

    def make(base_url: str = "http://127.0.0.1", **settings: object):  # type: ignore[no-untyped-def]
        if settings:
            set_review(proj_dir, **settings)
        app = create_app(proj_dir)
        c = TestClient(app, base_url=base_url)
        made.append((c, app))
        return c

    yield make
    for c, app in made:
        c.close()
        app.state.project.close()


# ----------------------------------------------------------------------- headers and cookies


def test_permissions_policy_and_coop_on_every_response(make_client) -> None:  # type: ignore[no-untyped-def]
    c = make_client()
    for r in (
        c.get("/login"),
        c.get("/queue", follow_redirects=False),
        c.get("/static/app.js"),
        c.get("/nope"),
    ):
        assert "camera=()" in r.headers["permissions-policy"], r.url
        assert r.headers["cross-origin-opener-policy"] == "same-origin"


def test_session_cookie_is_secure_over_https_and_behind_a_proxy(make_client) -> None:  # type: ignore[no-untyped-def]
    plain = make_client()
    token = csrf_of(plain.get("/login").text)
    r = plain.post(
        "/login", data={"name": "ana", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert (
        "secure" not in r.headers["set-cookie"].lower()
    )  # http on loopback: a Secure cookie would be dropped

    tls = make_client(base_url="https://127.0.0.1")
    r = tls.get("/login")
    assert "; secure" in r.headers["set-cookie"].lower()
    token = csrf_of(r.text)
    r = tls.post(
        "/login", data={"name": "ana", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and "; secure" in r.headers["set-cookie"].lower()

    proxied = make_client(behind_https_proxy=True)
    assert "; secure" in proxied.get("/login").headers["set-cookie"].lower()


# ----------------------------------------------------------------------- body limit and auth order


def test_a_body_over_the_limit_is_413_before_it_is_read(make_client) -> None:  # type: ignore[no-untyped-def]
    c = make_client()
    token = login(c, "ana")
    big = b'{"action": "accept", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = c.post(
        "/api/suggestions/1/decide",
        content=big,
        headers={"x-csrf-token": token, "content-type": "application/json"},
    )
    assert r.status_code == 413 and "max_body_bytes" in r.text

    def chunks():  # no Content-Length: the streamed bytes are counted
        for _ in range(40):
            yield b"x" * 65536

    r = c.post("/api/suggestions/1/decide", content=chunks(), headers={"x-csrf-token": token})
    assert r.status_code == 413
    r = c.post("/login", data={"name": "ana", "password": "p" * 2_000_000, "csrf_token": token})
    assert r.status_code == 413
    small = make_client(max_body_bytes=100)
    r = small.post("/api/suggestions/1/decide", json={"action": "accept", "pad": "y" * 200})
    assert r.status_code == 413 and "100 bytes" in r.text


def test_api_without_a_session_is_refused_before_the_body_is_read(make_client) -> None:  # type: ignore[no-untyped-def]
    c = make_client()
    read = 0

    def chunks():
        nonlocal read
        for _ in range(10):
            read += 1
            yield b"{" * 1000

    r = c.post("/api/suggestions/1/decide", content=chunks(), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert read <= 1  # the test client hands over the first chunk at most; the app did not ask for more


def test_a_1_gb_body_on_a_live_server_costs_no_memory(proj_dir: Path) -> None:
    """The row of the issue: a 1 GB JSON body without a session, over real HTTP (loopback)."""
    from review.app import create_app

    app = create_app(proj_dir)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        with live_server(app) as url:
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(
                    b"POST /api/suggestions/1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
                )
                sent = 0
                try:
                    while sent < 64 * 1024 * 1024:  # the server answers long before 1 GB
                        sock.sendall(b" " * 1_048_576)
                        sent += 1_048_576
                except OSError:
                    pass
                reply = sock.recv(4096)
    finally:
        app.state.project.close()
    assert reply.startswith(b"HTTP/1.1 413") or reply.startswith(b"HTTP/1.1 303"), reply[:80]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before < 100


# ----------------------------------------------------------------------- password guessing


def attempt(c, name: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_of(c.get("/login").text)
    return c.post(
        "/login", data={"name": name, "password": password, "csrf_token": token}, follow_redirects=False
    )


def test_password_guessing_locks_the_account_with_429_and_a_log_line(make_client, caplog) -> None:  # type: ignore[no-untyped-def]
    c = make_client()
    caplog.set_level(logging.WARNING, logger="qualflow.review.login")
    codes = [attempt(c, "ana", f"guess-{i}").status_code for i in range(12)]
    assert codes[:5] == [401] * 5 and 429 in codes[5:]
    r = attempt(c, "ana", PASSWORD)  # the right password, right after the wrong ones: still refused
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "too many failed logins" in r.text
    assert any("login throttled: account:ana" in m for m in caplog.messages)
    # another account from another client is not affected
    other = make_client()
    other_r = attempt(other, "lea", PASSWORD)
    assert other_r.status_code == 303


def test_lockout_ends_and_a_success_clears_the_counts(proj_dir: Path) -> None:
    p = Project.open(proj_dir)
    try:
        t = LoginThrottle(p.store, ThrottlePolicy(per_account=3, per_client=100, max_lock_seconds=60))
        now = time.time()
        for i in range(3):
            t.failed("ana", "10.0.0.1", now=now + i)
        assert t.wait_seconds("ana", "10.0.0.9", now=now + 2) >= 1  # the account, from any client
        assert t.wait_seconds("ana", "10.0.0.9", now=now + 10) == 0  # the 1 s lock is over
        t.failed("ana", "10.0.0.1", now=now + 10)
        assert t.wait_seconds("ana", "10.0.0.1", now=now + 10) == 2  # doubled
        t.succeeded("ana", "10.0.0.1")
        with p.store.transaction() as s:
            assert s.scalars(select(LoginThrottleRow)).all() == []
    finally:
        p.close()


@pytest.fixture
def frozen_throttle_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throttle's clock stands still: its first lock lasts 1 s, which a loaded machine can outlast
    between two requests."""
    import types

    import review.throttle

    monkeypatch.setattr(review.throttle, "time", types.SimpleNamespace(time=lambda: 1_000_000.0))


@pytest.mark.usefixtures("frozen_throttle_clock")
def test_the_throttle_is_shared_by_two_app_processes(make_client) -> None:  # type: ignore[no-untyped-def]
    one, two = make_client(), make_client()  # two apps on one database, as two server processes would be
    for i in range(5):
        assert attempt(one if i % 2 else two, "lea", f"nope-{i}").status_code == 401
    assert attempt(one, "lea", PASSWORD).status_code == 429
    assert attempt(two, "lea", PASSWORD).status_code == 429


@pytest.mark.usefixtures("frozen_throttle_clock")
def test_per_client_lockout(make_client) -> None:  # type: ignore[no-untyped-def]
    c = make_client(login_failures_per_client=4, login_failures_per_account=100)
    codes = [attempt(c, f"user{i}", "wrong-pass").status_code for i in range(6)]
    assert codes[:4] == [401] * 4 and codes[4] == 429
    assert attempt(c, "ana", PASSWORD).status_code == 429  # this client is locked, whatever the name


def test_the_migrations_match_the_schema(tmp_path: Path) -> None:
    """Migration 0002 creates exactly the ``login_throttle`` table of ``pipeline/store/schema.py``."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from pipeline.store import Store
    from pipeline.store.schema import Base

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        store.dispose()
    assert diff == []
