"""A throwaway PostgreSQL server for the test suite (the PostgreSQL half of the ``db_url`` fixture).

In order of preference:

1. ``QUALFLOW_TEST_POSTGRES_URL`` (for example ``postgresql+psycopg://me@127.0.0.1:5432/postgres``): a
   server you run; the tests create and drop their own databases on it (the role needs CREATEDB).
2. A cluster of its own: a fresh data directory in a temporary folder, ``initdb -A trust``, a private port
   on 127.0.0.1, no Unix socket, ``pg_ctl start``; stopped and deleted at exit. The server refuses to run
   as root, so as root the data directory is given to the ``postgres`` user (Debian's package creates it)
   and ``initdb``/``pg_ctl`` run as that user.

When neither is possible (no ``initdb``: ``apt-get install postgresql``; no psycopg:
``pip install -e '.[postgres]'``) :func:`unavailable` says why in one line and the PostgreSQL half skips.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

ENV_URL = "QUALFLOW_TEST_POSTGRES_URL"
HOW = (
    "PostgreSQL tests skipped: {why}; to run them install the server (`apt-get install postgresql`, "
    "or put initdb on PATH) and `pip install -e '.[postgres]'`, or set QUALFLOW_TEST_POSTGRES_URL"
)


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout
        cand = Path(out.strip())
        if (cand / "initdb").exists():
            return cand
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            return cand
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A PostgreSQL server the tests may create databases on; ``url(db)`` gives a SQLAlchemy URL."""

    def __init__(self, base_url: str, stop: list[str] | None = None, data: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")  # without the database name
        self._stop = stop
        self._data = data
        self._engine = None

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def _admin(self):  # type: ignore[no-untyped-def]
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        return self._engine

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (a copy of ``template`` when given) and return its URL."""
        from sqlalchemy import text

        name = name or "t_" + uuid.uuid4().hex[:16]
        tmpl = f" TEMPLATE {template}" if template else ""
        with self._admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{tmpl}'))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        from sqlalchemy import text

        with self._admin().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._stop:
            subprocess.run(self._stop, capture_output=True, check=False, timeout=60)
            self._stop = None
        if self._data is not None:
            shutil.rmtree(self._data.parent, ignore_errors=True)
            self._data = None


def unavailable() -> str | None:
    """Why no PostgreSQL server can be had here (one line), or ``None`` when one can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return HOW.format(why="psycopg is not installed")
    if os.environ.get(ENV_URL):
        return None
    if _bindir() is None:
        return HOW.format(why="no initdb found (neither on PATH nor via pg_config --bindir)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return HOW.format(why="running as root and there is no `postgres` user to run the server")
    return None


def start() -> Cluster:
    """Start (or connect to) the server described in the module docstring."""
    env_url = os.environ.get(ENV_URL)
    if env_url:
        return Cluster(env_url.rsplit("/", 1)[0] if env_url.count("/") > 2 else env_url)
    bindir = _bindir()
    assert bindir is not None
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="qualflow-pg-"))
    data = folder / "data"
    port = _free_port()
    user = "postgres" if as_root else pwd.getpwuid(os.geteuid()).pw_name

    def run_as(cmd: list[str]) -> list[str]:
        if as_root:
            return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        return cmd

    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    subprocess.run(
        run_as(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", user, "-E", "UTF8", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    )
    subprocess.run(
        run_as(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    stop = run_as([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    cluster = Cluster(f"postgresql+psycopg://{user}@127.0.0.1:{port}", stop, data)
    atexit.register(cluster.stop)  # also when the session fixture's finaliser never runs
    deadline = time.monotonic() + 30
    while True:  # pg_ctl -w waited; one real connection confirms it
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return cluster


def point_project_at(project_dir: Path, url: str) -> None:
    """Set ``database_url`` in ``project_dir/qualflow.toml`` to ``url``."""
    from pipeline.config import CONFIG_NAME, dumps_config, load_config

    cfg = load_config(project_dir)
    cfg.database_url = url
    (project_dir / CONFIG_NAME).write_text(dumps_config(cfg), encoding="utf-8")
