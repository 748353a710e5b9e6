"""Move a project database to another server: every table's rows, in dependency order, with a count.

``copy_database(SRC, DST)`` is what ``qualflow db copy`` runs, typically from a one-person project's
SQLite file to the team's PostgreSQL database:

1. the source must be at the newest schema (``qualflow db upgrade`` first);
2. the target must hold no qualflow rows (a fresh, empty database); it is migrated to the newest schema;
3. every table of :mod:`pipeline.store.schema` is copied in foreign-key order, keeping primary keys,
   in one target transaction (all or nothing), read from one source transaction (a consistent snapshot);
4. on PostgreSQL each ``id`` sequence is moved past the largest copied id, so new rows get fresh ids;
5. the rows of each table are counted on both sides (:class:`TableCount`).

Revision helpers :func:`current_revision` / :func:`head_revision` serve ``qualflow db upgrade`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text

from pipeline.errors import InputError
from pipeline.store import MIGRATIONS, Store
from pipeline.store.schema import Base

BATCH = 2000


@dataclass(frozen=True)
class TableCount:
    """Rows of one table in the source and, after the copy, in the target."""

    table: str
    source: int
    target: int

    @property
    def equal(self) -> bool:
        return self.source == self.target


def head_revision() -> str:
    """The newest migration's revision id."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database behind ``engine`` (``None``: not a qualflow database yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def tables() -> list[Table]:
    """The project tables in foreign-key order (a table after every table it points to)."""
    return list(Base.metadata.sorted_tables)


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _rows(conn: Connection, table: Table) -> Iterator[list[dict[str, Any]]]:
    order = list(table.primary_key.columns)
    result = conn.execution_options(yield_per=BATCH).execute(select(table).order_by(*order))
    for part in result.mappings().partitions(BATCH):
        yield [dict(r) for r in part]


def _reset_sequences(conn: Connection) -> None:
    for table in tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not pk[0].autoincrement or pk[0].type.python_type is not int:
            continue
        col = pk[0].name
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                f'COALESCE((SELECT MAX("{col}") FROM "{table.name}"), 0) + 1, false)'
            ),
            {"t": table.name, "c": col},
        )


def _nonempty_target(engine: Engine) -> list[str]:
    present = set(inspect(engine).get_table_names())
    full = []
    with engine.connect() as conn:
        for table in tables():
            if table.name in present and count_rows(conn, table):
                full.append(table.name)
    return full


def _require_sqlite_file(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (connecting would create an empty one)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        if not Path(u.database).exists():
            raise InputError(f"no SQLite database at {u.database}; check the source URL")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def copy_database(
    source_url: str, target_url: str, *, progress: Callable[[str], None] | None = None
) -> list[TableCount]:
    """Copy every row of the project database at ``source_url`` into the empty one at ``target_url``.

    Returns the per-table counts (source and target); raises :class:`InputError` when the source is not
    at the newest schema, the target already holds rows, or the counts differ afterwards.
    """
    say = progress or (lambda _m: None)
    if source_url == target_url:
        raise InputError("the source and the target are the same database")
    _require_sqlite_file(source_url)
    src, dst = Store(source_url), Store(target_url)
    try:
        head = head_revision()
        rev = current_revision(src.engine)
        if rev is None:
            raise InputError(f"{_safe_url(source_url)} is not a qualflow database (no schema revision)")
        if rev != head:
            raise InputError(
                f"the source database is at schema {rev}, not the newest ({head}); "
                "run `qualflow db upgrade` in its project first"
            )
        full = _nonempty_target(dst.engine)
        if full:
            raise InputError(
                f"the target database already holds rows (tables {', '.join(full)}); "
                "copy into a fresh, empty database"
            )
        dst.migrate()
        say(f"schema {head} created in {_safe_url(target_url)}")
        with src.engine.connect() as sconn, sconn.begin(), dst.engine.begin() as dconn:
            for table in tables():
                n = 0
                for batch in _rows(sconn, table):
                    dconn.execute(table.insert(), batch)
                    n += len(batch)
                say(f"{table.name}: {n} rows")
            if dst.engine.dialect.name == "postgresql":
                _reset_sequences(dconn)
        with src.engine.connect() as sconn, dst.engine.connect() as dconn:
            counts = [TableCount(t.name, count_rows(sconn, t), count_rows(dconn, t)) for t in tables()]
        bad = [c for c in counts if not c.equal]
        if bad:
            raise InputError(
                "row counts differ after the copy: "
                + ", ".join(f"{c.table} {c.source} vs {c.target}" for c in bad)
            )
        return counts
    finally:
        src.dispose()
        dst.dispose()


def upgrade_database(url: str) -> tuple[str | None, str]:
    """Migrate the database at ``url`` to the newest schema; returns (revision before, revision after)."""
    store = Store(url)
    try:
        before = current_revision(store.engine)
        store.migrate()
        return before, head_revision()
    finally:
        store.dispose()


__all__ = [
    "TableCount",
    "copy_database",
    "count_rows",
    "current_revision",
    "head_revision",
    "tables",
    "upgrade_database",
]
