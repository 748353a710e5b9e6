"""The coders' review app: FastAPI, server-rendered Jinja2 pages, a little JavaScript, no CDN.

``create_app(project_dir)`` builds the app; ``serve(project_dir, host, port)`` runs it with uvicorn.
Every page but ``/login`` (and the static files it needs) requires a session; every POST needs the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser sends
an ``Origin`` header, the app's own origin. Bound to loopback (and always in single-user mode), the app
answers only requests whose ``Host`` is a loopback name (DNS rebinding).

Sessions: the signed cookie carries the coder id, a random session id and a fingerprint of the coder's
password hash. The session id must be a live row of the ``review_sessions`` table (:mod:`review.sessions`,
``app.state.sessions``), shared by every server process: logout deletes it in all of them, a restart keeps
it. The fingerprint must match the coder's current hash (changing a password ends that coder's sessions,
and ``qualflow coders add`` deletes their rows too).

One module, one concern: the HTTP surface of the review app (routes, middleware, security
headers, sessions); the pages' data live in :mod:`review.views` and decisions in
:mod:`pipeline.project.decisions`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.errors import InputError, NotFoundError
from pipeline.project import adjudication, decisions, independent
from pipeline.project.core import Project
from pipeline.project.decisions import DuplicateCodingError, ForbiddenError
from pipeline.store.schema import CoderRow
from review import views
from review.auth import (
    authenticate,
    is_loopback,
    load_or_create_secret,
    new_csrf_token,
    session_fingerprint,
    tokens_match,
)
from review.guards import ApiAuthGate, BodyLimit, SecureCookies
from review.sessions import SessionTable
from review.throttle import LoginThrottle, ThrottlePolicy

HERE = Path(__file__).parent
SESSION_COOKIE = "qualflow_session"
SESSION_MAX_AGE = 14 * 24 * 3600
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (
        b"permissions-policy",
        b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    ),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class LoginRequiredError(Exception):
    """No valid session: the caller is sent to /login."""


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token."""


class OriginError(Exception):
    """A state-changing request sent from another site (its ``Origin`` is not the app's)."""

    def __init__(self, origin: str, host: str) -> None:
        super().__init__(origin, host)
        self.origin = origin
        self.host = host


@dataclass(frozen=True)
class Who:
    """The acting coder of a request: their id and the password fingerprint of their session.

    ``fingerprint`` is ``None`` in single-user mode (no login, no password).
    """

    id: int
    fingerprint: str | None


class SecurityHeaders:
    """Pure ASGI middleware adding the headers in :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, wrapped)


class DecideBody(BaseModel):
    action: str
    new_code: str | None = None
    revision: int | None = None


class CodingBody(BaseModel):
    source: str
    start: int
    end: int
    code: str
    memo: str | None = Field(default=None, max_length=decisions.MAX_MEMO)


class MemoBody(BaseModel):
    memo: str | None = Field(default=None, max_length=decisions.MAX_MEMO)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return str(token)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's ``Origin`` header (when sent) names the server it was sent to (``Host``).

    Only host and port are compared, so a TLS-terminating proxy in front of the app does not matter.

    >>> same_origin(None, "127.0.0.1:8000"), same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    (True, True)
    >>> same_origin("http://evil.example", "127.0.0.1:8000"), same_origin("null", "127.0.0.1:8000")
    (False, False)
    """
    if origin is None:
        return True
    if not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


async def require_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request from another origin, or whose token is not the session's."""
    origin = request.headers.get("origin")
    if not same_origin(origin, request.headers.get("host")):
        raise OriginError(str(origin), request.headers.get("host", ""))
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not tokens_match(request.session.get("csrf"), given):
        raise CsrfError()


def create_app(project_dir: Path, *, single_user: str | None = None, host: str = "127.0.0.1") -> FastAPI:
    """The review app for the project in ``project_dir``.

    Parameters
    ----------
    project_dir : a qualflow project folder (``qualflow.toml``).
    single_user : no-login local mode: every request acts as this coder (created as a lead if new).
    host : the address the server binds. When it is loopback (always in single-user mode) only requests
        whose ``Host`` header is a loopback name are answered (else 400): a web page whose domain is made
        to resolve to 127.0.0.1 (DNS rebinding) cannot read the app.
    """
    check_bind(host, single_user)
    project = Project.open(Path(project_dir))
    secret = load_or_create_secret(project.cache_dir)
    policy = project.config.review.policy
    independent_review = policy == "independent"
    # independent review hides the others' codings from coders, as blind mode does (leads see all)
    blind = bool(project.config.review.blind) or independent_review
    rcfg = project.config.review
    throttle = LoginThrottle(
        project.store,
        ThrottlePolicy(
            rcfg.login_failures_per_account,
            rcfg.login_failures_per_client,
            float(rcfg.login_lockout_max_seconds),
        ),
    )
    single_user_id: int | None = None
    if single_user is not None:
        with project.store.transaction() as s:
            row = s.scalar(select(CoderRow).where(CoderRow.name == single_user))
            if row is None:
                row = CoderRow(name=single_user, kind="human", role="lead")
                s.add(row)
                s.flush()
            elif row.kind != "human":
                raise InputError(
                    f"{single_user!r} is a model coder; choose a person's name for --single-user"
                )
            single_user_id = row.id

    app = FastAPI(
        title="qualflow review",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # no OpenTelemetry spans, metrics or exporters: nothing about a transcript leaves the process,
        # whatever OTEL_* / FASTAPI_OTEL_AUTO_CONFIGURE say, and requests skip the instrumentation
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.state.project = project
    # live sessions: rows of review_sessions in the project database, shared by every server process
    live = SessionTable(project.store, SESSION_MAX_AGE)
    app.state.sessions = live
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @contextmanager
    def tx() -> Iterator[Session]:
        with project.store.transaction() as session:
            yield session

    # One writer at a time: SQLite has a single write lock, and a thread that finds it taken sleeps in
    # SQLite's busy handler (1, 2, 5, 10, ... ms back-off). Queueing writers on a Python lock instead
    # hands the lock over the moment it is released.
    write_lock = threading.Lock()

    @contextmanager
    def write_tx() -> Iterator[Session]:
        with write_lock, project.store.transaction() as session:
            yield session

    def live_session(request: Request) -> Who | None:
        """The session's coder when its session id is live, else ``None``.

        One primary-key read of ``review_sessions`` per request: the answer is kept in the request's
        scope, so the API gate and the route's dependency share it.
        """
        scope = request.scope
        if "qualflow.who" in scope:
            return scope["qualflow.who"]  # type: ignore[no-any-return]
        data = request.session
        cid, sid, fp = data.get("coder_id"), data.get("sid"), data.get("fp")
        who = None
        if (
            isinstance(cid, int)
            and isinstance(sid, str)
            and isinstance(fp, str)
            and live.coder_of(sid) == cid
        ):
            who = Who(cid, fp)
        scope["qualflow.who"] = who
        return who

    def end_session(request: Request) -> None:
        sid = request.session.get("sid")
        if isinstance(sid, str):
            live.end(sid)
        request.scope["qualflow.who"] = None
        request.session.clear()

    def start_session(request: Request, row: CoderRow) -> None:
        request.session.clear()  # a fresh session: no fixation
        sid = live.start(row.id)
        request.scope.pop("qualflow.who", None)
        request.session["coder_id"] = row.id
        request.session["sid"] = sid
        request.session["fp"] = session_fingerprint(secret, row.password_hash)
        request.session["csrf"] = new_csrf_token()

    def current(request: Request) -> Who:  # a database read: in the thread pool, not on the event loop
        if single_user_id is not None:
            return Who(single_user_id, None)
        who = live_session(request)
        if who is None:
            raise LoginRequiredError()
        return who

    def check_fingerprint(who: Who, password_hash: str | None) -> None:
        if who.fingerprint is not None and not tokens_match(
            who.fingerprint, session_fingerprint(secret, password_hash)
        ):
            raise LoginRequiredError()  # the password changed since this session began

    def load_coder(session: Session, who: Who) -> CoderRow:
        row = session.get(CoderRow, who.id)
        if row is None or row.kind != "human":
            raise LoginRequiredError()
        check_fingerprint(who, row.password_hash)
        return row

    def load_coder_light(session: Session, who: Who) -> CoderRow:
        """The coder as a detached row holding id, name, kind and role (one core SELECT, no ORM load)."""
        c = CoderRow.__table__.c
        found = (
            session.connection()
            .execute(select(c.name, c.kind, c.role, c.password_hash).where(c.id == who.id))
            .one_or_none()
        )
        if found is None or found.kind != "human":
            raise LoginRequiredError()
        check_fingerprint(who, found.password_hash)
        return CoderRow(id=who.id, name=found.name, kind=found.kind, role=found.role)

    def page(
        request: Request, template: str, coder: CoderRow | None, status: int = 200, **ctx: Any
    ) -> Response:
        context = {
            "coder": coder,
            "csrf": csrf_token(request),
            "flash": request.session.pop("flash", None),
            "blind": blind,
            "policy": policy,
            "single_user": single_user_id is not None,
            "path": request.url.path,
            **ctx,
        }
        return templates.TemplateResponse(request, template, context, status_code=status)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def problem(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return HTMLResponse(
            templates.get_template("error.html").render(status=status, message=message), status_code=status
        )

    @app.exception_handler(LoginRequiredError)
    async def _login(request: Request, exc: LoginRequiredError) -> Response:
        end_session(request)  # a revoked or stale cookie is dropped from the browser too
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError) -> Response:
        return problem(request, 403, "missing or wrong CSRF token; reload the page and try again")

    @app.exception_handler(OriginError)
    async def _origin(request: Request, exc: OriginError) -> Response:
        return problem(
            request, 403, f"refused a request sent from {exc.origin!r}, not from this app ({exc.host!r})"
        )

    @app.exception_handler(ForbiddenError)
    async def _forbidden(request: Request, exc: ForbiddenError) -> Response:
        return problem(request, 403, str(exc))

    @app.exception_handler(DuplicateCodingError)
    async def _duplicate(request: Request, exc: DuplicateCodingError) -> Response:
        if wants_json(request):
            return JSONResponse({"error": str(exc), "coding_id": exc.coding_id}, status_code=409)
        return problem(request, 409, str(exc))

    @app.exception_handler(InputError)
    async def _bad(request: Request, exc: InputError) -> Response:
        return problem(request, 400, str(exc))

    @app.exception_handler(NotFoundError)
    async def _missing(request: Request, exc: NotFoundError) -> Response:
        return problem(request, 404, str(exc))

    # ------------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        if single_user_id is not None or live_session(request) is not None:
            return RedirectResponse("/queue", status_code=303)
        return page(request, "login.html", None, error=None, name="")

    @app.post("/login", dependencies=[Depends(require_csrf)])
    def login(request: Request, name: str = Form(...), password: str = Form(...)) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = throttle.wait_seconds(name, client)
        if wait:
            throttle.log.warning(
                "login refused (throttled): name %r from %s, %d s left", name[:80], client, wait
            )
            refused = page(
                request,
                "login.html",
                None,
                status=429,
                error=f"too many failed logins; try again in {wait} s",
                name=name,
            )
            refused.headers["retry-after"] = str(wait)
            return refused
        with tx() as s:
            row = authenticate(s, name.strip(), password)
            if row is not None:
                start_session(request, row)
        if row is None:
            throttle.failed(name, client)
            return page(request, "login.html", None, status=401, error="wrong name or password", name=name)
        throttle.succeeded(name, client)
        return RedirectResponse("/queue", status_code=303)

    @app.post("/logout", dependencies=[Depends(current), Depends(require_csrf)])
    def logout(request: Request) -> Response:
        end_session(request)
        return RedirectResponse("/login", status_code=303)

    # ------------------------------------------------------------------ pages

    @app.get("/")
    def home(request: Request, who: Who = Depends(current)) -> Response:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(
        request: Request,
        source: str = "",
        code: str = "",
        model: str = "",
        who: Who = Depends(current),
    ) -> Response:
        with tx() as s:
            coder = load_coder(s, who)
            scope = independent.coder_scope(s, coder) if independent_review else None
            data = views.queue_view(
                s,
                source=source or None,
                code=code or None,
                model=model or None,
                keep=scope.keeps if scope else None,
                revisions=scope.revisions if scope else None,
            )
            codes = views.current_codes(s)
        return page(request, "queue.html", coder, q=data, codes=codes)

    @app.get("/sources", response_class=HTMLResponse)
    def sources(request: Request, who: Who = Depends(current)) -> Response:
        with tx() as s:
            coder = load_coder(s, who)
            rows = views.sources_view(s, coder=coder, blind=blind)
        return page(request, "sources.html", coder, sources=rows)

    @app.get("/sources/{name}", response_class=HTMLResponse)
    def transcript(request: Request, name: str, who: Who = Depends(current)) -> Response:
        with tx() as s:
            coder = load_coder(s, who)
            data = views.transcript_view(s, project.config, name, coder=coder, blind=blind)
            codes = views.current_codes(s)
        return page(request, "transcript.html", coder, t=data, codes=codes)

    @app.get("/candidates", response_class=HTMLResponse)
    def candidates(request: Request, who: Who = Depends(current)) -> Response:
        with tx() as s:
            coder = load_coder(s, who)
            data = views.candidates_view(s)
            codes = views.current_codes(s)
        return page(request, "candidates.html", coder, c=data, codes=codes)

    @app.post("/candidates/{candidate_id}/{action}", dependencies=[Depends(current), Depends(require_csrf)])
    def resolve_candidate(
        request: Request,
        candidate_id: int,
        action: str,
        name: str = Form(""),
        definition: str = Form(""),
        code: str = Form(""),
        who: Who = Depends(current),
    ) -> Response:
        with write_tx() as s:
            lead = load_coder(s, who)
            r = decisions.resolve_candidate(
                s, candidate_id, lead, action, name=name or None, definition=definition, code=code or None
            )
        if r.applied:
            what = {"accept": f"accepted as new code '{r.code}'", "merge": f"merged into '{r.code}'"}
            msg = f"candidate {candidate_id} {what.get(action, 'rejected')} ({r.members_decided} segments)"
        else:
            msg = f"candidate {candidate_id}: {r.message}"
        request.session["flash"] = msg
        return RedirectResponse("/candidates", status_code=303)

    @app.get("/codebook", response_class=HTMLResponse)
    def codebook(request: Request, who: Who = Depends(current)) -> Response:
        with tx() as s:
            coder = load_coder(s, who)
            data = views.codebook_view(s)
        return page(request, "codebook.html", coder, cb=data)

    @app.post("/codebook", dependencies=[Depends(current), Depends(require_csrf)])
    def codebook_add(
        request: Request,
        name: str = Form(...),
        description: str = Form(""),
        parent: str = Form(""),
        who: Who = Depends(current),
    ) -> Response:
        with write_tx() as s:
            lead = load_coder(s, who)
            decisions.add_code(s, lead, name=name, description=description, parent=parent or None)
        request.session["flash"] = f"code '{name.strip()}' added: a new codebook version"
        return RedirectResponse("/codebook", status_code=303)

    @app.get("/adjudicate", response_class=HTMLResponse)
    def adjudicate_page(request: Request, round: str = "", who: Who = Depends(current)) -> Response:
        with tx() as s:
            lead = load_coder(s, who)
            decisions._lead(lead)
        data, units = adjudication.units_to_adjudicate(project, round or None)
        agreement = adjudication.consensus_agreement(project, data, n_boot=0)
        a = {
            "round": data.round.name,
            "coders": data.coders,
            "units": units,
            "done": sum(1 for u in units if u.adjudication),
            "consensus": agreement,
            "coefficients": adjudication.COEFFICIENTS,
        }
        return page(request, "adjudicate.html", lead, a=a)

    @app.post("/adjudicate", dependencies=[Depends(current), Depends(require_csrf)])
    def adjudicate(
        request: Request,
        source: str = Form(...),
        start: int = Form(...),
        end: int = Form(...),
        choice: str = Form(...),
        memo: str = Form(""),
        round: str = Form(""),
        who: Who = Depends(current),
    ) -> Response:
        with write_lock:
            with tx() as s:
                lead = load_coder(s, who)
                decisions._lead(lead)
                lead_name = lead.name
            r = adjudication.adjudicate(
                project,
                lead_name,
                source=source,
                start=start,
                end=end,
                choice=choice,
                memo=memo or None,
                round_name=round or None,
            )
        request.session["flash"] = (
            f"{source} {start}-{end}: consensus {', '.join(r['codes']) or '(no code)'} ({choice})"
            + (
                f"; round {r['round']} is closed: its stored vs-consensus agreement is updated"
                if r.get("round_closed")
                else ""
            )
        )
        return RedirectResponse(f"/adjudicate?round={round}" if round else "/adjudicate", status_code=303)

    # ------------------------------------------------------------------ JSON actions

    @app.post(
        "/api/suggestions/{suggestion_id}/decide", dependencies=[Depends(current), Depends(require_csrf)]
    )
    def decide(suggestion_id: int, body: DecideBody, who: Who = Depends(current)) -> Response:
        with write_tx() as s:
            coder = load_coder_light(s, who)
            how = independent.decide_independent if independent_review else decisions.decide
            r = how(s, suggestion_id, coder, body.action, body.new_code, body.revision)
        return JSONResponse(
            {
                "decision_id": r.decision_id,
                "suggestion_id": r.suggestion_id,
                "action": r.action,
                "applied": r.applied,
                "previous_state": r.previous_state,
                "state": r.state,
                "revision": r.revision,
                "coding_id": r.coding_id,
                "message": r.message,
            },
            status_code=200 if r.applied else 409,
        )

    @app.post("/api/codings", dependencies=[Depends(current), Depends(require_csrf)])
    def add_coding(body: CodingBody, who: Who = Depends(current)) -> Response:
        with write_tx() as s:
            coder = load_coder(s, who)
            row = decisions.add_coding(
                s, coder, source=body.source, start=body.start, end=body.end, code=body.code, memo=body.memo
            )
            out = {"id": row.id, "start": row.start, "end": row.end, "code": row.code, "coder": coder.name}
        return JSONResponse(out, status_code=201)

    @app.post("/api/codings/{coding_id}/memo", dependencies=[Depends(current), Depends(require_csrf)])
    def set_memo(coding_id: int, body: MemoBody, who: Who = Depends(current)) -> Response:
        with write_tx() as s:
            coder = load_coder(s, who)
            row = decisions.set_memo(s, coding_id, coder, body.memo)
            out = {"id": row.id, "memo": row.memo}
        return JSONResponse(out)

    @app.post("/api/codings/{coding_id}/retract", dependencies=[Depends(current), Depends(require_csrf)])
    def retract(coding_id: int, who: Who = Depends(current)) -> Response:
        with write_tx() as s:
            coder = load_coder(s, who)
            row = decisions.retract_coding(s, coding_id, coder)
            out = {"id": row.id, "active": row.active}
        return JSONResponse(out)

    app.add_middleware(
        ApiAuthGate,
        authenticated=lambda scope: single_user_id is not None or live_session(Request(scope)) is not None,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="strict",
        https_only=False,
    )
    if single_user_id is not None or is_loopback(host):
        allowed = list(dict.fromkeys([*LOOPBACK_HOSTS, host.strip().lower()]))
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed, www_redirect=False)
    app.add_middleware(SecureCookies, always=bool(rcfg.behind_https_proxy))
    app.add_middleware(BodyLimit, max_bytes=int(rcfg.max_body_bytes))
    app.add_middleware(SecurityHeaders)
    return app


def check_bind(host: str, single_user: str | None) -> None:
    """Refuse a non-loopback ``host`` in single-user (no-login) mode, and a ``single_user`` that is no
    person's name (``consensus``, which records adjudications and never logs in, or a ``model:`` coder).

    >>> check_bind("0.0.0.0", None); check_bind("127.0.0.1", "ana")
    >>> check_bind("0.0.0.0", "ana")
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: --single-user has no login, so it binds only loopback (127.0.0.1, ::1, localhost), not '0.0.0.0'; drop --host or log in with passwords instead
    >>> check_bind("127.0.0.1", "consensus")
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: --single-user 'consensus': that coder records the adjudications of rounds and never logs in; give a person's name
    """
    if single_user is not None:
        from pipeline.project.rounds import CONSENSUS

        name = single_user.strip()
        if name == CONSENSUS:
            raise InputError(
                f"--single-user {single_user!r}: that coder records the adjudications of rounds and never "
                "logs in; give a person's name"
            )
        if name.startswith("model:"):
            raise InputError(f"--single-user {single_user!r} is a model coder; choose a person's name")
        if not name or any(ch in name for ch in "\n\r\t"):
            raise InputError(f"--single-user {single_user!r}: give a person's name on one line")
    if single_user is not None and not is_loopback(host):
        raise InputError(
            "--single-user has no login, so it binds only loopback (127.0.0.1, ::1, localhost), "
            f"not {host!r}; drop --host or log in with passwords instead"
        )


def uvicorn_options() -> dict[str, Any]:
    """Settings that make uvicorn faster: no access log; uvloop and httptools when installed.

    uvloop and httptools are optional speed-ups (``pip install uvloop httptools``); without them uvicorn
    uses asyncio and h11, which work the same, only slower.
    """
    from importlib.util import find_spec

    return {
        "access_log": False,
        "loop": "uvloop" if find_spec("uvloop") is not None else "asyncio",
        "http": "httptools" if find_spec("httptools") is not None else "h11",
    }


ENV_PROJECT = "QUALFLOW_REVIEW_PROJECT"
ENV_HOST = "QUALFLOW_REVIEW_HOST"
ENV_SINGLE_USER = "QUALFLOW_REVIEW_SINGLE_USER"


def serve(
    project_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    single_user: str | None = None,
    workers: int = 1,
) -> None:
    """Run the review app with uvicorn until interrupted: one process, or ``workers`` processes.

    Sessions and login throttling live in the project database, so the worker processes share them
    (a logout in one is a logout in all). The database is migrated and the session secret created once,
    here, before the workers start; each worker then builds its app with :func:`app_from_env`.
    """
    import os

    import uvicorn

    check_bind(host, single_user)
    if not 0 < port < 65536:
        raise InputError(f"port {port} is not in 1..65535")
    if not 1 <= workers <= 64:
        raise InputError(f"--workers {workers} is not in 1..64")
    if workers == 1:
        app = create_app(project_dir, single_user=single_user, host=host)
        tune_gc()
        uvicorn.run(app, host=host, port=port, workers=1, log_level="info", **uvicorn_options())
        return
    project = Project.open(Path(project_dir))  # migrations run once, not in N racing workers
    load_or_create_secret(project.cache_dir)
    project.close()
    os.environ[ENV_PROJECT] = str(Path(project_dir).resolve())
    os.environ[ENV_HOST] = host
    if single_user is not None:
        os.environ[ENV_SINGLE_USER] = single_user
    else:
        os.environ.pop(ENV_SINGLE_USER, None)
    uvicorn.run(
        "review.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        **uvicorn_options(),
    )


def app_from_env() -> FastAPI:
    """The app of one worker process of ``serve(workers=N)`` (settings from the environment)."""
    import os

    app = create_app(
        Path(os.environ[ENV_PROJECT]),
        single_user=os.environ.get(ENV_SINGLE_USER),
        host=os.environ.get(ENV_HOST, "127.0.0.1"),
    )
    tune_gc()
    return app


def tune_gc() -> None:
    """Fewer, later garbage collections for the server process (a page allocates many small objects).

    The objects alive after start-up (modules, templates, the app) are frozen out of collection, and
    the first generation is collected every 50,000 allocations instead of 700: this removes most of
    the pauses that made the slowest transcript pages several times slower than the median.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
