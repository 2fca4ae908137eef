"""Segment membership over time: evaluations, current members, transitions; fitted scores.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "segment_evaluations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column(
            "evaluated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="the evaluation's 'now'",
        ),
        sa.Column(
            "rule_hash",
            sa.String(length=64),
            nullable=False,
            comment="sha256 of the compiled rule text",
        ),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("exited", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_evaluations")),
    )
    op.create_index(
        op.f("ix_segment_evaluations_segment_evaluated_at"),
        "segment_evaluations",
        ["segment", "evaluated_at"],
    )
    op.create_table(
        "segment_members",
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column(
            "since",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the customer last entered",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_members_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment", "customer_id", name=op.f("pk_segment_members")),
    )
    op.create_index(op.f("ix_segment_members_customer_id"), "segment_members", ["customer_id"])
    op.create_table(
        "segment_transitions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluation_id", _ID, nullable=False),
        sa.CheckConstraint(
            "change IN ('enter', 'exit')", name=op.f("ck_segment_transitions_change")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_transitions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["segment_evaluations.id"],
            name=op.f("fk_segment_transitions_evaluation_id_segment_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_transitions")),
    )
    op.create_index(
        op.f("ix_segment_transitions_segment_at"), "segment_transitions", ["segment", "at"]
    )
    op.create_index(
        op.f("ix_segment_transitions_customer_id_at"),
        "segment_transitions",
        ["customer_id", "at"],
    )
    op.create_index(
        op.f("ix_segment_transitions_evaluation_id"), "segment_transitions", ["evaluation_id"]
    )
    op.create_table(
        "customer_scores",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column(
            "name",
            sa.String(length=32),
            nullable=False,
            comment="a model-fitted score, e.g. clv",
        ),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_scores_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "name", name=op.f("pk_customer_scores")),
    )


def downgrade() -> None:
    op.drop_table("customer_scores")
    op.drop_index(op.f("ix_segment_transitions_evaluation_id"))
    op.drop_index(op.f("ix_segment_transitions_customer_id_at"))
    op.drop_index(op.f("ix_segment_transitions_segment_at"))
    op.drop_table("segment_transitions")
    op.drop_index(op.f("ix_segment_members_customer_id"))
    op.drop_table("segment_members")
    op.drop_index(op.f("ix_segment_evaluations_segment_evaluated_at"))
    op.drop_table("segment_evaluations")
