"""codings.stored_at: when a coding was written into this project

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-12 10:00:00

``created_at`` is when the coding was made, which a REFI-QDA project file carries from the tool it was
made in (``creationDateTime``). A coding round counts the codings stored during it, so it needs the
time of storing: a project file coded months ago and imported during a round belongs to that round.
Existing codings were stored when they were made, as far as the database knows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("codings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE codings SET stored_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("codings", schema=None) as batch_op:
        batch_op.drop_column("stored_at")
