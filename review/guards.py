"""ASGI guards of the review app that act before any route reads a request body.

- :class:`BodyLimit`: a request body larger than the limit is refused with 413, from its
  ``Content-Length`` before a byte is read, or, for a streamed body, as soon as the count passes it.
- :class:`ApiAuthGate`: ``/api/`` requests without a live session are sent to ``/login`` before the
  JSON body is read (FastAPI reads and parses a body before it runs the route's dependencies).
- :class:`SecureCookies`: ``Secure`` on every cookie when the request came over HTTPS, or always when
  the app is behind an HTTPS proxy (``[review] behind_https_proxy = true``).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    """The request body passed the limit while it was being read."""


async def _send_plain(
    send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse (413) a request whose body is larger than ``max_bytes``, without reading past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return (
            f"request body larger than {self.max_bytes} bytes; the limit is [review] max_body_bytes in "
            "qualflow.toml"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_plain(send, 400, "bad Content-Length header")
                    return
                if declared > self.max_bytes:
                    await _send_plain(send, 413, self._message())
                    return
        seen = 0
        too_big = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, too_big
            if too_big:
                raise BodyTooLargeError()
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    raise BodyTooLargeError()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_big:  # whatever the app answers to a broken body, the answer is 413
                if not started:
                    started = True
                    await _send_plain(send, 413, self._message())
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLargeError:
            if not started:
                await _send_plain(send, 413, self._message())


class ApiAuthGate:
    """Redirect (303 to ``/login``) ``/api/`` requests without a live session before the body is read.

    Must sit inside the session middleware (it reads ``scope["session"]``); ``authenticated(scope)``
    tells whether the request's session is a live one.
    """

    def __init__(self, app: ASGIApp, authenticated: Callable[[Scope], bool]) -> None:
        self.app = app
        self.authenticated = authenticated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path", "").startswith("/api/")
            and not await anyio.to_thread.run_sync(self.authenticated, scope)  # a database read
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/login"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class SecureCookies:
    """Add ``Secure`` to every ``Set-Cookie`` of a request made over HTTPS (or always, ``always=True``)."""

    def __init__(self, app: ASGIApp, always: bool = False) -> None:
        self.app = app
        self.always = always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.always or scope.get("scheme") == "https"):
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"set-cookie" and b"; secure" not in value.lower():
                        value = value + b"; Secure"
                    headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)
