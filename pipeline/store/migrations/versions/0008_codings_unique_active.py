"""codings: at most one active coding per (source, start, end, code, coder)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-13 10:00:00

The application looked for an identical active coding before storing one, but two concurrent requests
(a double click, two browser tabs, several reviewers on PostgreSQL) could both pass that look-up and
both insert. A partial unique index over the active codings now refuses the second insert; retracted
codings (``active = false``) stay out of it, so history keeps any number of them.

Identical active codings stored before this migration are resolved first: the oldest (lowest id, the
first stored) stays active and gets the distinct non-empty memos of the others joined to its own (a
blank line between, as ``pipeline.project.codings.join_memos`` joins them); the others are retracted.
An adjudication that lists a retracted coding (``coding_ids``, ``settled_coding_ids``) lists the kept
one instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "uq_codings_active"
KEY = ("source_id", "start", "end", "code", "coder_id")

_codings = sa.table(
    "codings",
    sa.column("id", sa.Integer),
    sa.column("source_id", sa.Integer),
    sa.column("start", sa.Integer),
    sa.column("end", sa.Integer),
    sa.column("code", sa.String),
    sa.column("coder_id", sa.Integer),
    sa.column("memo", sa.Text),
    sa.column("active", sa.Boolean),
)
_adjudications = sa.table(
    "adjudications",
    sa.column("id", sa.Integer),
    sa.column("coding_ids", sa.JSON),
    sa.column("settled_coding_ids", sa.JSON),
)


def _join_memos(memo: str | None, other: str | None) -> str | None:
    """``pipeline.project.codings.join_memos`` as of this migration (a copy: a migration must not change
    when the application's code does)."""
    other = (other or "").strip() or None
    if other is None:
        return memo
    if memo and f"\n\n{other}\n\n" in f"\n\n{memo.strip()}\n\n":
        return memo
    return f"{memo.strip()}\n\n{other}" if memo and memo.strip() else other


def _resolve_duplicates(conn: sa.Connection) -> dict[int, int]:
    """Retract every active coding identical to an older active one, joining its memo into the older
    one; returns retracted id -> kept id."""
    c = _codings.c
    key = [c[k] for k in KEY]
    groups = conn.execute(sa.select(*key).where(c.active).group_by(*key).having(sa.func.count() > 1)).all()
    kept_for: dict[int, int] = {}
    for group in groups:
        rows = conn.execute(
            sa.select(c.id, c.memo)
            .where(c.active, *[col == value for col, value in zip(key, group, strict=True)])
            .order_by(c.id)
        ).all()
        keep, memo = rows[0].id, rows[0].memo
        for row in rows[1:]:
            memo = _join_memos(memo, row.memo)
            kept_for[row.id] = keep
        retracted = [row.id for row in rows[1:]]
        conn.execute(sa.update(_codings).where(c.id.in_(retracted)).values(active=False))
        if memo != rows[0].memo:
            conn.execute(sa.update(_codings).where(c.id == keep).values(memo=memo))
    return kept_for


def _repoint_adjudications(conn: sa.Connection, kept_for: dict[int, int]) -> None:
    """Adjudications list the kept coding where they listed a retracted duplicate of it."""

    def repoint(ids: list[int] | None) -> list[int]:
        out: list[int] = []
        for i in ids or []:
            i = kept_for.get(int(i), int(i))
            if i not in out:
                out.append(i)
        return out

    a = _adjudications.c
    for row in conn.execute(sa.select(a.id, a.coding_ids, a.settled_coding_ids)).all():
        coding_ids, settled = repoint(row.coding_ids), repoint(row.settled_coding_ids)
        if coding_ids != list(row.coding_ids or []) or settled != list(row.settled_coding_ids or []):
            conn.execute(
                sa.update(_adjudications)
                .where(a.id == row.id)
                .values(coding_ids=coding_ids, settled_coding_ids=settled)
            )


def upgrade() -> None:
    conn = op.get_bind()
    kept_for = _resolve_duplicates(conn)
    if kept_for:
        _repoint_adjudications(conn, kept_for)
    op.create_index(
        INDEX,
        "codings",
        list(KEY),
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )


def downgrade() -> None:
    # the duplicates the upgrade retracted stay retracted (their memos are in the kept codings)
    op.drop_index(INDEX, table_name="codings")
