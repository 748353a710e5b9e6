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
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import InputError
from pipeline.store.schema import CoderRow

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
