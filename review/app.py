"""The coders' review app: FastAPI, server-rendered Jinja2 pages, a little JavaScript, no CDN.

``create_app(project_dir)`` builds the app; ``serve(project_dir, host, port)`` runs it with uvicorn.
Every page but ``/login`` (and the static files it needs) requires a session; every POST needs the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.errors import InputError, NotFoundError
from pipeline.project import Project
from pipeline.store.schema import CoderRow
from review import decisions, views
from review.auth import authenticate, is_loopback, load_or_create_secret, new_csrf_token, tokens_match
from review.decisions import ForbiddenError

HERE = Path(__file__).parent
SESSION_COOKIE = "qualflow_session"
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
]


class LoginRequiredError(Exception):
    """No valid session: the caller is sent to /login."""


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token."""


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


async def require_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request whose token does not match the session's."""
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not tokens_match(request.session.get("csrf"), given):
        raise CsrfError()


def create_app(project_dir: Path, *, single_user: str | None = None) -> FastAPI:
    """The review app for the project in ``project_dir``.

    Parameters
    ----------
    project_dir : a qualflow project folder (``qualflow.toml``).
    single_user : no-login local mode: every request acts as this coder (created as a lead if new).
    """
    project = Project.open(Path(project_dir))
    secret = load_or_create_secret(project.cache_dir)
    blind = bool(project.config.review.blind)
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

    app = FastAPI(title="qualflow review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.project = project
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

    async def coder_id(request: Request) -> int:  # async: no thread-pool hop for a cookie lookup
        if single_user_id is not None:
            return single_user_id
        cid = request.session.get("coder_id")
        if not isinstance(cid, int):
            raise LoginRequiredError()
        return cid

    def load_coder(session: Session, cid: int) -> CoderRow:
        row = session.get(CoderRow, cid)
        if row is None or row.kind != "human":
            raise LoginRequiredError()
        return row

    def load_coder_light(session: Session, cid: int) -> CoderRow:
        """The coder as a detached row holding id, name, kind and role (one core SELECT, no ORM load)."""
        c = CoderRow.__table__.c
        found = session.connection().execute(select(c.name, c.kind, c.role).where(c.id == cid)).one_or_none()
        if found is None or found.kind != "human":
            raise LoginRequiredError()
        return CoderRow(id=cid, name=found.name, kind=found.kind, role=found.role)

    def page(
        request: Request, template: str, coder: CoderRow | None, status: int = 200, **ctx: Any
    ) -> Response:
        context = {
            "coder": coder,
            "csrf": csrf_token(request),
            "flash": request.session.pop("flash", None),
            "blind": blind,
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
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError) -> Response:
        return problem(request, 403, "missing or wrong CSRF token; reload the page and try again")

    @app.exception_handler(ForbiddenError)
    async def _forbidden(request: Request, exc: ForbiddenError) -> Response:
        return problem(request, 403, str(exc))

    @app.exception_handler(InputError)
    async def _bad(request: Request, exc: InputError) -> Response:
        return problem(request, 400, str(exc))

    @app.exception_handler(NotFoundError)
    async def _missing(request: Request, exc: NotFoundError) -> Response:
        return problem(request, 404, str(exc))

    # ------------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        if single_user_id is not None or isinstance(request.session.get("coder_id"), int):
            return RedirectResponse("/queue", status_code=303)
        return page(request, "login.html", None, error=None, name="")

    @app.post("/login", dependencies=[Depends(require_csrf)])
    def login(request: Request, name: str = Form(...), password: str = Form(...)) -> Response:
        with tx() as s:
            row = authenticate(s, name.strip(), password)
            cid = row.id if row is not None else None
        if cid is None:
            return page(request, "login.html", None, status=401, error="wrong name or password", name=name)
        request.session.clear()  # a fresh session: no fixation
        request.session["coder_id"] = cid
        request.session["csrf"] = new_csrf_token()
        return RedirectResponse("/queue", status_code=303)

    @app.post("/logout", dependencies=[Depends(coder_id), Depends(require_csrf)])
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ------------------------------------------------------------------ pages

    @app.get("/")
    def home(request: Request, cid: int = Depends(coder_id)) -> Response:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(
        request: Request,
        source: str = "",
        code: str = "",
        model: str = "",
        cid: int = Depends(coder_id),
    ) -> Response:
        with tx() as s:
            coder = load_coder(s, cid)
            data = views.queue_view(s, source=source or None, code=code or None, model=model or None)
            codes = views.current_codes(s)
        return page(request, "queue.html", coder, q=data, codes=codes)

    @app.get("/sources", response_class=HTMLResponse)
    def sources(request: Request, cid: int = Depends(coder_id)) -> Response:
        with tx() as s:
            coder = load_coder(s, cid)
            rows = views.sources_view(s, coder=coder, blind=blind)
        return page(request, "sources.html", coder, sources=rows)

    @app.get("/sources/{name}", response_class=HTMLResponse)
    def transcript(request: Request, name: str, cid: int = Depends(coder_id)) -> Response:
        with tx() as s:
            coder = load_coder(s, cid)
            data = views.transcript_view(s, project.config, name, coder=coder, blind=blind)
            codes = views.current_codes(s)
        return page(request, "transcript.html", coder, t=data, codes=codes)

    @app.get("/candidates", response_class=HTMLResponse)
    def candidates(request: Request, cid: int = Depends(coder_id)) -> Response:
        with tx() as s:
            coder = load_coder(s, cid)
            data = views.candidates_view(s)
            codes = views.current_codes(s)
        return page(request, "candidates.html", coder, c=data, codes=codes)

    @app.post("/candidates/{candidate_id}/{action}", dependencies=[Depends(coder_id), Depends(require_csrf)])
    def resolve_candidate(
        request: Request,
        candidate_id: int,
        action: str,
        name: str = Form(""),
        definition: str = Form(""),
        code: str = Form(""),
        cid: int = Depends(coder_id),
    ) -> Response:
        with write_tx() as s:
            lead = load_coder(s, cid)
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
    def codebook(request: Request, cid: int = Depends(coder_id)) -> Response:
        with tx() as s:
            coder = load_coder(s, cid)
            data = views.codebook_view(s)
        return page(request, "codebook.html", coder, cb=data)

    @app.post("/codebook", dependencies=[Depends(coder_id), Depends(require_csrf)])
    def codebook_add(
        request: Request,
        name: str = Form(...),
        description: str = Form(""),
        parent: str = Form(""),
        cid: int = Depends(coder_id),
    ) -> Response:
        with write_tx() as s:
            lead = load_coder(s, cid)
            decisions.add_code(s, lead, name=name, description=description, parent=parent or None)
        request.session["flash"] = f"code '{name.strip()}' added: a new codebook version"
        return RedirectResponse("/codebook", status_code=303)

    # ------------------------------------------------------------------ JSON actions

    @app.post(
        "/api/suggestions/{suggestion_id}/decide", dependencies=[Depends(coder_id), Depends(require_csrf)]
    )
    def decide(suggestion_id: int, body: DecideBody, cid: int = Depends(coder_id)) -> Response:
        with write_tx() as s:
            coder = load_coder_light(s, cid)
            r = decisions.decide(s, suggestion_id, coder, body.action, body.new_code, body.revision)
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

    @app.post("/api/codings", dependencies=[Depends(coder_id), Depends(require_csrf)])
    def add_coding(body: CodingBody, cid: int = Depends(coder_id)) -> Response:
        with write_tx() as s:
            coder = load_coder(s, cid)
            row = decisions.add_coding(
                s, coder, source=body.source, start=body.start, end=body.end, code=body.code, memo=body.memo
            )
            out = {"id": row.id, "start": row.start, "end": row.end, "code": row.code, "coder": coder.name}
        return JSONResponse(out, status_code=201)

    @app.post("/api/codings/{coding_id}/memo", dependencies=[Depends(coder_id), Depends(require_csrf)])
    def set_memo(coding_id: int, body: MemoBody, cid: int = Depends(coder_id)) -> Response:
        with write_tx() as s:
            coder = load_coder(s, cid)
            row = decisions.set_memo(s, coding_id, coder, body.memo)
            out = {"id": row.id, "memo": row.memo}
        return JSONResponse(out)

    @app.post("/api/codings/{coding_id}/retract", dependencies=[Depends(coder_id), Depends(require_csrf)])
    def retract(coding_id: int, cid: int = Depends(coder_id)) -> Response:
        with write_tx() as s:
            coder = load_coder(s, cid)
            row = decisions.retract_coding(s, coding_id, coder)
            out = {"id": row.id, "active": row.active}
        return JSONResponse(out)

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=14 * 24 * 3600,
        same_site="strict",
        https_only=False,
    )
    app.add_middleware(SecurityHeaders)
    return app


def check_bind(host: str, single_user: str | None) -> None:
    """Refuse a non-loopback ``host`` in single-user (no-login) mode.

    >>> check_bind("0.0.0.0", None); check_bind("127.0.0.1", "ana")
    >>> check_bind("0.0.0.0", "ana")
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: --single-user has no login, so it binds only loopback (127.0.0.1, ::1, localhost), not '0.0.0.0'; drop --host or log in with passwords instead
    """
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


def serve(
    project_dir: Path, host: str = "127.0.0.1", port: int = 8000, single_user: str | None = None
) -> None:
    """Run the review app with uvicorn (one worker) until interrupted."""
    import uvicorn

    check_bind(host, single_user)
    if not 0 < port < 65536:
        raise InputError(f"port {port} is not in 1..65535")
    app = create_app(project_dir, single_user=single_user)
    tune_gc()
    uvicorn.run(app, host=host, port=port, workers=1, log_level="info", **uvicorn_options())


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
