"""rounds: coding rounds, assignments, per-coder decisions (independent review), adjudications

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("codebook_version_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["codebook_version_id"],
            ["codebook_versions.id"],
            name=op.f("fk_rounds_codebook_version_id_codebook_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rounds")),
        sa.UniqueConstraint("name", name=op.f("uq_rounds_name")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("segment_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["coder_id"], ["coders.id"], name=op.f("fk_assignments_coder_id_coders")),
        sa.ForeignKeyConstraint(["round_id"], ["rounds.id"], name=op.f("fk_assignments_round_id_rounds")),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name=op.f("fk_assignments_source_id_sources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint("round_id", "coder_id", "source_id", name="uq_assignments_round_coder_source"),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assignments_round_id"), ["round_id"], unique=False)
    op.create_table(
        "coder_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("suggestion_id", sa.Integer(), nullable=False),
        sa.Column("coder_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["coder_id"], ["coders.id"], name=op.f("fk_coder_decisions_coder_id_coders")),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_coder_decisions_decision_id_decisions")
        ),
        sa.ForeignKeyConstraint(
            ["suggestion_id"], ["suggestions.id"], name=op.f("fk_coder_decisions_suggestion_id_suggestions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coder_decisions")),
        sa.UniqueConstraint("suggestion_id", "coder_id", name="uq_coder_decisions_suggestion_coder"),
    )
    with op.batch_alter_table("coder_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coder_decisions_coder_id"), ["coder_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coder_decisions_suggestion_id"), ["suggestion_id"], unique=False)
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=64), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("coding_ids", sa.JSON(), nullable=False),
        sa.Column("settled_coding_ids", sa.JSON(), nullable=False),
        sa.Column("settled_decision_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["coders.id"], name=op.f("fk_adjudications_lead_id_coders")),
        sa.ForeignKeyConstraint(["round_id"], ["rounds.id"], name=op.f("fk_adjudications_round_id_rounds")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_adjudications_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjudications")),
        sa.UniqueConstraint("round_id", "source_id", "start", "end", name="uq_adjudications_round_unit"),
    )
    with op.batch_alter_table("adjudications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_adjudications_round_id"), ["round_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("adjudications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adjudications_round_id"))
    op.drop_table("adjudications")
    with op.batch_alter_table("coder_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coder_decisions_suggestion_id"))
        batch_op.drop_index(batch_op.f("ix_coder_decisions_coder_id"))
    op.drop_table("coder_decisions")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_round_id"))
    op.drop_table("assignments")
    op.drop_table("rounds")
