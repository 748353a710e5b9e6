"""The project database: engine, migrations and one-transaction sessions.

``Store(url)`` works with any SQLAlchemy URL; SQLite (the default) gets WAL mode and foreign keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite connections get WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest migration."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def savepoint(session: Session) -> Iterator[SessionTransaction]:
    """``session.begin_nested()`` (a SAVEPOINT: an error inside rolls back only what it wrote, the
    transaction goes on) that is also a savepoint *inside* the transaction on SQLite.

    Python's sqlite3 module begins a transaction only before an INSERT, UPDATE or DELETE; a SAVEPOINT
    issued before any of those opens a transaction of its own, which its RELEASE commits, so what it
    wrote would survive a rollback of the whole unit of work. Here a transaction is begun first, as the
    module would have begun it before the first write.
    """
    session.flush()
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:  # type: ignore[attr-defined]
            conn.exec_driver_sql("BEGIN")
    with session.begin_nested() as nested:
        yield nested


class Store:
    """A project database. Use :meth:`transaction` for every unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        upgrade(self.engine)

    def is_initialised(self) -> bool:
        return "alembic_version" in inspect(self.engine).get_table_names()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose writes commit together at the end, or not at all on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
