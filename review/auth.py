"""Coders, passwords, session secrets, CSRF tokens and the loopback rule of the review app.

Passwords are hashed with argon2id (``argon2-cffi``'s :class:`PasswordHasher`); the session cookie is
signed with a secret generated once into ``<project>/.qualflow/secret_key`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from pipeline.store.schema import CoderRow, CodingRow, DecisionRow, ReviewSessionRow

ROLES: tuple[str, ...] = ("coder", "lead")
SECRET_FILE = "secret_key"
MIN_PASSWORD = 8


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salted; a PHC string such as ``$argon2id$v=19$...``)."""
    return str(_hasher().hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (``False`` for a coder without a password)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not password_hash:
        return False
    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else an :class:`InputError` naming the valid roles."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {list(ROLES)}")
    return role


def add_coder(session: Session, name: str, *, role: str, password: str) -> tuple[CoderRow, bool]:
    """Create the human coder ``name`` with ``role`` and ``password``, or set them on an existing one.

    An existing human coder (for example one whose codings were imported from a CSV) keeps its
    codings and gets the new role and password. Returns the row and whether it was created.
    """
    check_role(role)
    name = name.strip()
    if not name or any(ch in name for ch in "\n\r\t") or name.startswith("model:"):
        raise InputError(
            f"coder name {name!r} is not usable; give a one-line name that does not start with 'model:'"
        )
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password for {name!r} is too short; use at least {MIN_PASSWORD} characters")
    from pipeline.project.rounds import CONSENSUS

    if name == CONSENSUS:
        raise InputError(
            f"{name!r} records the adjudications of rounds and never logs in; choose another name"
        )
    row = session.scalar(select(CoderRow).where(CoderRow.name == name))
    created = row is None
    if row is None:
        row = CoderRow(name=name, kind="human", role=role)
        session.add(row)
    elif row.kind != "human":
        raise InputError(f"{name!r} is a model coder; choose another name")
    row.role = role
    row.password_hash = hash_password(password)
    session.flush()
    if not created:  # a new password ends the coder's sessions in every server process
        from review.sessions import end_coder_sessions

        end_coder_sessions(session, row.id)
    return row, created


def authenticate(session: Session, name: str, password: str) -> CoderRow | None:
    """The human coder ``name`` if ``password`` is theirs, else ``None`` (same answer for unknown names)."""
    row = session.scalar(select(CoderRow).where(CoderRow.name == name, CoderRow.kind == "human"))
    if row is None:
        _hasher().hash(password)  # spend the same time as a real check
        return None
    return row if verify_password(row.password_hash, password) else None


@dataclass(frozen=True)
class CoderInfo:
    """One line of ``qualflow coders list``: a coder, whether they can log in, and what they did.

    ``kind`` is ``human``, ``model`` (a model version's codings) or ``consensus`` (a round's
    adjudications); ``codings`` counts the active codings, ``decisions`` the decision log's entries,
    ``sessions`` the open (unexpired) review-app sessions. Last logins are not stored.
    """

    name: str
    kind: str
    role: str
    can_log_in: bool
    codings: int
    decisions: int
    sessions: int


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_coder` did: the coder, the sessions it ended, the codings and decisions kept."""

    name: str
    role: str
    sessions: int
    codings: int
    decisions: int
    already: bool  # the coder could not log in before either


def _kind(row: CoderRow) -> str:
    from pipeline.project.rounds import CONSENSUS

    if row.kind != "human":
        return "model"
    return "consensus" if row.name == CONSENSUS else "human"


def _counts(session: Session, column, *where) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """``coder id -> rows`` of ``column``'s table (one grouped count)."""
    rows = session.execute(select(column, func.count()).where(*where).group_by(column)).all()
    return {int(cid): int(n) for cid, n in rows}


def list_coders(session: Session, now: float | None = None) -> list[CoderInfo]:
    """Every coder, people first (by name), then the consensus and model coders."""
    now = time.time() if now is None else now
    rows = list(session.scalars(select(CoderRow).order_by(CoderRow.name)))
    codings = _counts(session, CodingRow.coder_id, CodingRow.active.is_(True))
    decisions = _counts(session, DecisionRow.coder_id)
    sessions = _counts(session, ReviewSessionRow.coder_id, ReviewSessionRow.expires_at >= now)
    order = {"human": 0, "consensus": 1, "model": 2}
    infos = [
        CoderInfo(
            name=r.name,
            kind=kind,
            role=r.role if kind == "human" else "-",
            can_log_in=kind == "human" and bool(r.password_hash),
            codings=codings.get(r.id, 0),
            decisions=decisions.get(r.id, 0),
            sessions=sessions.get(r.id, 0),
        )
        for r, kind in ((r, _kind(r)) for r in rows)
    ]
    return sorted(infos, key=lambda i: order[i.kind])


def remove_coder(session: Session, name: str) -> Removed:
    """Take away ``name``'s login: clear their password and end every session of theirs at once.

    Their codings, decisions, assignments and adjudications stay (history and agreement need them);
    ``qualflow coders add NAME`` with a password lets them in again. Refuses model coders, the
    ``consensus`` coder, and the last lead who can log in (someone must manage the codebook and
    adjudicate; make another lead first).
    """
    from review.sessions import end_coder_sessions

    row = session.scalar(select(CoderRow).where(CoderRow.name == name))
    if row is None:
        raise InputError(f"no coder {name!r}; `qualflow coders list` shows them")
    kind = _kind(row)
    if kind != "human":
        raise InputError(f"{name!r} is the {kind} coder, not a person; it never logs in and stays")
    already = not row.password_hash
    if row.role == "lead" and not already:
        other_leads = session.scalar(
            select(func.count()).where(
                CoderRow.kind == "human",
                CoderRow.role == "lead",
                CoderRow.password_hash.is_not(None),
                CoderRow.password_hash != "",
                CoderRow.id != row.id,
            )
        )
        if not other_leads:
            raise InputError(
                f"{name!r} is the only lead who can log in; make another lead first "
                "(`qualflow coders add NAME --role lead`)"
            )
    row.password_hash = None
    session.flush()
    ended = end_coder_sessions(session, row.id)
    codings = session.scalar(
        select(func.count()).where(CodingRow.coder_id == row.id, CodingRow.active.is_(True))
    )
    decisions = session.scalar(select(func.count()).where(DecisionRow.coder_id == row.id))
    return Removed(row.name, row.role, ended, int(codings or 0), int(decisions or 0), already)


def load_or_create_secret(cache_dir: Path) -> str:
    """The session-signing secret in ``cache_dir/secret_key``, created (mode 0600) on first use."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(48))
    os.chmod(path, 0o600)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < 32:
        raise InputError(
            f"{path} holds a secret shorter than 32 characters; delete the file to make a new one"
        )
    return secret


def new_csrf_token() -> str:
    """A fresh random CSRF token (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; ``False`` when either token is missing.

    >>> tokens_match("abc", "abc"), tokens_match("abc", "abd"), tokens_match(None, None)
    (True, False, False)
    """
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def session_fingerprint(secret: str, password_hash: str | None) -> str:
    """A short keyed fingerprint of a coder's password hash, kept in the session cookie.

    A session whose fingerprint no longer matches the coder's current hash (the password was changed with
    ``qualflow coders add`` again) is no session. Keyed with the app's secret, so the (readable) cookie
    tells nothing about the hash. 16 hex characters.

    >>> a, b = session_fingerprint("k" * 32, "$argon2id$one"), session_fingerprint("k" * 32, "$argon2id$two")
    >>> len(a), a == b, a == session_fingerprint("k" * 32, "$argon2id$one")
    (16, False, True)
    """
    digest = hmac.new(secret.encode(), (password_hash or "").encode(), hashlib.sha256).hexdigest()
    return digest[:16]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1 or ``localhost``).

    >>> [is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "localhost", "0.0.0.0", "10.0.0.2", "")]
    [True, True, True, True, False, False, False]
    """
    host = host.strip()
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
