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
from review.auth import add_coder, check_role


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
    with project.store.transaction() as session:
        row, created = add_coder(session, name, role=role, password=password)
        what = "added" if created else "updated"
        return f"{what} {row.role} {row.name!r}; they log in at `qualflow review`"
