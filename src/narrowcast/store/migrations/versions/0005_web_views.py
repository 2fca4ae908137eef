"""HTTP API: who saw, clicked, dismissed or answered each web message.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_views",
        sa.Column("web_message_id", _ID, nullable=False),
        sa.Column(
            "visitor",
            sa.String(length=200),
            nullable=False,
            comment="c:<customer id> for a known customer, v:<visitor id> for an anonymous one",
        ),
        sa.Column("views", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_seen_at", _AT, nullable=False),
        sa.Column("last_seen_at", _AT, nullable=False),
        sa.Column("clicked_at", _AT, nullable=True),
        sa.Column("dismissed_at", _AT, nullable=True),
        sa.Column("answered_at", _AT, nullable=True, comment="when a survey on it was answered"),
        sa.ForeignKeyConstraint(
            ["web_message_id"],
            ["web_messages.id"],
            name=op.f("fk_web_views_web_message_id_web_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("web_message_id", "visitor", name=op.f("pk_web_views")),
    )


def downgrade() -> None:
    op.drop_table("web_views")
