"""``qualflow db``: migrate a project's database, and move a project to another database server."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ProjectOpt, app, console, project_dir

db_app = typer.Typer(
    help="The project database: migrate it, or copy it to another server (e.g. SQLite to PostgreSQL).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(project: ProjectOpt = None) -> None:
    """Migrate the project's database (database_url in qualflow.toml) to the newest schema."""
    from pipeline.config import load_config, resolve_sqlite_url
    from pipeline.store.copy import upgrade_database

    root = project_dir(project)
    url = resolve_sqlite_url(load_config(root).database_url, root)
    before, after = upgrade_database(url)
    if before == after:
        console().print(f"database already at the newest schema ({after})", markup=False)
    else:
        console().print(f"database migrated: {before or 'empty'} -> {after}", markup=False)


@db_app.command("copy")
def copy(
    source: Annotated[
        str, typer.Argument(help="SQLAlchemy URL to copy from, e.g. sqlite:////path/qualflow.db")
    ],
    target: Annotated[
        str,
        typer.Argument(
            help="SQLAlchemy URL of an empty database to copy into, e.g. postgresql+psycopg://user@host/db"
        ),
    ],
) -> None:
    """Copy every row of a project database into an empty one, then count each table on both sides."""
    from pipeline.store.copy import copy_database

    err = console(stderr=True)
    counts = copy_database(source, target, progress=lambda m: err.print(m, markup=False))
    out = console()
    out.print(f"{'table':<20} {'source':>9} {'target':>9}", markup=False)
    for c in counts:
        out.print(
            f"{c.table:<20} {c.source:>9} {c.target:>9}{'' if c.equal else '  DIFFERENT'}", markup=False
        )
    total = sum(c.source for c in counts)
    out.print(
        f"copied {total} rows in {len(counts)} tables; every count equal. "
        "Point the project at the new database: database_url in qualflow.toml",
        markup=False,
    )
