"""Logged-in sessions of the review app, kept in the project database.

The signed cookie carries a random session id; the ``review_sessions`` table holds its SHA-256 with the
coder and the expiry. Every server process (``qualflow review --workers N``, or several instances
behind a proxy on one PostgreSQL database) reads the same table, so a logout in one process is a logout
in all of them, and a restart logs nobody out. Changing a coder's password deletes their rows
(:func:`end_coder_sessions`, called by :func:`review.auth.add_coder`).
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipeline.store import Store
from pipeline.store.schema import ReviewSessionRow

_T = ReviewSessionRow.__table__


def token_hash(sid: str) -> str:
    """The stored form of a session id (its SHA-256, hex).

    >>> len(token_hash("abc")), token_hash("abc") == token_hash("abc"), token_hash("abc") == token_hash("abd")
    (64, True, False)
    """
    return hashlib.sha256(sid.encode()).hexdigest()


def end_coder_sessions(session: Session, coder_id: int) -> int:
    """Delete every session of one coder (in the caller's transaction); returns how many."""
    result = session.execute(
        delete(ReviewSessionRow).where(ReviewSessionRow.coder_id == coder_id),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


class SessionTable:
    """Start, look up and end sessions in the project database."""

    def __init__(self, store: Store, max_age: float) -> None:
        self.store = store
        self.max_age = max_age

    def start(self, coder_id: int, now: float | None = None) -> str:
        """A new session for ``coder_id``; returns the session id for the cookie (expired rows go)."""
        now = time.time() if now is None else now
        sid = secrets.token_urlsafe(32)
        with self.store.transaction() as s:
            s.execute(delete(ReviewSessionRow).where(ReviewSessionRow.expires_at < now))
            s.add(
                ReviewSessionRow(
                    token_hash=token_hash(sid),
                    coder_id=coder_id,
                    created_at=now,
                    expires_at=now + self.max_age,
                )
            )
        return sid

    def coder_of(self, sid: str, now: float | None = None) -> int | None:
        """The coder of a live session id, else ``None`` (one primary-key read)."""
        now = time.time() if now is None else now
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(_T.c.coder_id, _T.c.expires_at).where(_T.c.token_hash == token_hash(sid))
            ).one_or_none()
        if row is None or row.expires_at < now:
            return None
        return int(row.coder_id)

    def end(self, sid: str) -> None:
        with self.store.transaction() as s:
            s.execute(delete(ReviewSessionRow).where(ReviewSessionRow.token_hash == token_hash(sid)))

    def count(self) -> int:
        from sqlalchemy import func

        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_T)).scalar_one())
