"""Channels: the in-app inbox and targeted web messages, both keyed by their outbox row.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_OUTBOX_COMMENT = "the outbox row it came from; a resend is the same row"
_PARTS_COMMENT = "title, body, cta_label, cta_url, image"


def _engagement(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in names]


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False, comment=_OUTBOX_COMMENT),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("parts", _JSON, nullable=False, comment=_PARTS_COMMENT),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_engagement("expires_at", "read_at", "clicked_at", "dismissed_at"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_inbox_messages_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_inbox_messages_outbox_id")),
    )
    op.create_index(
        op.f("ix_inbox_messages_customer_id_created_at"),
        "inbox_messages",
        ["customer_id", "created_at"],
    )
    op.create_table(
        "web_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False, comment=_OUTBOX_COMMENT),
        sa.Column(
            "customer_id",
            sa.String(length=128),
            nullable=True,
            comment="NULL: any visitor the targeting matches",
        ),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("placement", sa.String(length=8), nullable=False),
        sa.Column("visitor", sa.String(length=16), nullable=False, comment="new | returning | any"),
        sa.Column(
            "referrers",
            _JSON,
            nullable=False,
            comment="referrer classes (search, social, email, direct); empty: any",
        ),
        sa.Column(
            "path", sa.String(length=500), nullable=False, comment="page path glob; * is every page"
        ),
        sa.Column("survey", sa.String(length=8), nullable=True, comment="nps, or NULL"),
        sa.Column("parts", _JSON, nullable=False, comment=_PARTS_COMMENT),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_engagement("expires_at", "seen_at", "clicked_at", "dismissed_at"),
        sa.CheckConstraint(
            "placement IN ('banner', 'modal', 'toast')", name=op.f("ck_web_messages_placement")
        ),
        sa.CheckConstraint(
            "visitor IN ('new', 'returning', 'any')", name=op.f("ck_web_messages_visitor")
        ),
        sa.CheckConstraint("survey IN ('nps')", name=op.f("ck_web_messages_survey")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_web_messages_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_messages")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_web_messages_outbox_id")),
    )
    op.create_index(
        op.f("ix_web_messages_customer_id_expires_at"),
        "web_messages",
        ["customer_id", "expires_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_web_messages_customer_id_expires_at"))
    op.drop_table("web_messages")
    op.drop_index(op.f("ix_inbox_messages_customer_id_created_at"))
    op.drop_table("inbox_messages")
