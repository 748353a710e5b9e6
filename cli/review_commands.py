"""What ``qualflow review`` and ``qualflow coders add`` do; the CLI wires typer options to these.

Both take an open :class:`pipeline.project.Project` and plain arguments.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TextIO

from pipeline.errors import InputError
from pipeline.project.core import Project
from review.auth import CoderInfo, add_coder, check_role, list_coders, remove_coder


def run_review(
    project: Project,
    *,
    host: str | None = None,
    port: int | None = None,
    single_user: str | None = None,
    workers: int = 1,
) -> None:
    """Serve the review app for ``project`` (host and port default to ``[review]`` in qualflow.toml).

    Raises :class:`InputError` before binding anything when ``single_user`` is set and ``host`` is
    not loopback.
    """
    from review.app import check_bind, serve

    h = host if host is not None else project.config.review.host
    p = port if port is not None else project.config.review.port
    check_bind(h, single_user)
    note = login_note(project) if single_user is None else None
    if note:
        print(f"note: {note}", file=sys.stderr)
    root = project.root
    project.close()
    serve(root, host=h, port=p, single_user=single_user, workers=workers)


def read_password(
    *, password_stdin: bool, stdin: TextIO | None = None, prompt: Callable[[str], str] | None = None
) -> str:
    """The new password: one line from ``stdin`` (``--password-stdin``) or typed twice at a prompt."""
    if password_stdin:
        line = (stdin or sys.stdin).readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin: standard input is empty; pipe the password in")
        return password
    ask = prompt or getpass.getpass
    first = ask("Password: ")
    if ask("Repeat password: ") != first:
        raise InputError("the two passwords differ; run the command again")
    return first


def coders_add(
    project: Project,
    name: str,
    role: str,
    *,
    password_stdin: bool = False,
    stdin: TextIO | None = None,
    prompt: Callable[[str], str] | None = None,
) -> str:
    """Create coder ``name`` with ``role`` (coder or lead), or set a new role and password on them.

    Returns the line to print.
    """
    check_role(role)
    password = read_password(password_stdin=password_stdin, stdin=stdin, prompt=prompt)
    from sqlalchemy import select

    from pipeline.store.schema import CoderRow

    with project.store.transaction() as session:
        before = session.scalar(select(CoderRow.password_hash).where(CoderRow.name == name.strip()))
        row, created = add_coder(session, name, role=role, password=password)
        if created:
            return f"added {row.role} {row.name!r}; they log in at `qualflow review`"
        if not before:  # removed (or imported from a CSV): no login until now
            return f"enabled {row.role} {row.name!r}: they can log in at `qualflow review`"
        return (
            f"updated {row.role} {row.name!r}; their open sessions are ended, "
            "they log in again at `qualflow review` with the new password"
        )


def coders_table(infos: list[CoderInfo]) -> list[str]:
    """``qualflow coders list``: one padded line per coder under a header."""
    head = ("name", "role", "kind", "login", "codings", "decisions", "sessions")
    table = [
        (
            i.name,
            i.role,
            i.kind,
            "yes" if i.can_log_in else "no",
            str(i.codings),
            str(i.decisions),
            str(i.sessions),
        )
        for i in infos
    ]
    widths = [max(len(row[k]) for row in (head, *table)) for k in range(len(head))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (head, *table)
    ]


def coders_list(project: Project, fmt: str = "terminal") -> str:
    """Every coder: role, kind, whether they can log in, active codings, decisions, open sessions
    (``fmt`` terminal: a padded table; json: a list of objects)."""
    import json
    from dataclasses import asdict

    if fmt not in ("terminal", "json"):
        raise InputError(f"--format {fmt!r} is not one of ['terminal', 'json']")
    with project.store.transaction() as session:
        infos = list_coders(session)
    if fmt == "json":
        return json.dumps([asdict(i) for i in infos], indent=2)
    if not infos:
        return "no coders yet: `qualflow coders add NAME` adds one"
    return "\n".join(coders_table(infos))


def login_note(project: Project) -> str | None:
    """What to say when the app would ask for a login nobody has (``None`` when someone can log in)."""
    with project.store.transaction() as session:
        if any(i.can_log_in for i in list_coders(session)):
            return None
    return (
        "nobody can log in yet: give someone a password with `qualflow coders add NAME --role lead`, "
        "or run `qualflow review --single-user NAME` (no login, this machine only)"
    )


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def coders_remove(project: Project, name: str) -> str:
    """Take away a coder's login and end their sessions; their codings and decisions stay.

    Returns the line to print.
    """
    with project.store.transaction() as session:
        r = remove_coder(session, name.strip())
    kept = f"their {_n(r.codings, 'coding')} and {_n(r.decisions, 'decision')} are kept"
    if r.already:
        return f"{r.name!r} already could not log in; {kept}"
    return (
        f"removed {r.role} {r.name!r}: they can no longer log in ({_n(r.sessions, 'open session')} ended); "
        f"{kept}; `qualflow coders add {r.name}` with a password lets them in again"
    )
