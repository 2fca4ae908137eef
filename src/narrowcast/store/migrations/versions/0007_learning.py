"""Outbox rows record how the customer was assigned, for honest evaluation.

``assignment`` says whether the row is treated, in the campaign's holdout, or
in the global control group; ``variant_probability`` is the probability with
which the variant was drawn (the allocation of an adaptive A/B test changes
over time, so uplift per arm needs it for inverse-propensity weighting).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "assignment",
                sa.String(16),
                nullable=True,
                comment="treated | holdout | control (global control group); NULL before 0007",
            )
        )
        batch.add_column(
            sa.Column(
                "variant_probability",
                sa.Float,
                nullable=True,
                comment="probability the variant was drawn with, given treated",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("variant_probability")
        batch.drop_column("assignment")
