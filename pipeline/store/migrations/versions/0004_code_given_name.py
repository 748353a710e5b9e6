"""codes.given_name: the name as written when a code's key is its path

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 10:00:00.000000

Codes are keyed by name where the name is unique in the codebook and by path (``theme/Other``)
where it is not (issue 16). ``codes.name`` keeps holding the key, so every stored coding, suggestion
and decision (which reference codes by that string) stays valid and the unique constraint on
(codebook_version_id, name) still holds; only codes whose key is a path need their own name kept.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('given_name', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('codes', schema=None) as batch_op:
        batch_op.drop_column('given_name')
