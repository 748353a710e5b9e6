"""coders.guid: the REFI-QDA User guid a project file gave a coder

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:00:00

A ``.qdpx`` names each coding's coder by a User guid. An export wrote every coder with a guid derived
from the name, so NVivo, MAXQDA or ATLAS.ti took a project they had exported, and got back, for a new
user per coder. An import now keeps the guid the file gives a coder, and an export writes it back.
Existing coders have none (their export keeps the derived guid until a file gives them one).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), not the batch mode's copy of the table: that
    # drops ``coders``, which the foreign keys of codings, decisions and others refer to (refused with
    # ``PRAGMA foreign_keys=ON``, as the store connects)
    op.drop_column("coders", "guid")
