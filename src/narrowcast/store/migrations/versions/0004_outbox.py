"""Planning and dispatch: campaign runs, the outbox, deliveries, and paused channels.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)
_STATES = (
    "'planned', 'claimed', 'sending', 'sent', 'retry', 'failed', 'suppressed', "
    "'expired', 'holdout', 'unknown', 'canceled'"
)


def upgrade() -> None:
    op.create_table(
        "campaign_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column(
            "key",
            sa.String(length=200),
            nullable=False,
            comment="the occurrence, e.g. its ISO instant",
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurrence", _AT, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("planned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("holdout", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dropped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("finished_at", _AT, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('scheduled', 'trigger', 'manual')", name=op.f("ck_campaign_runs_kind")
        ),
        sa.CheckConstraint(
            "state IN ('planning', 'planned', 'failed')", name=op.f("ck_campaign_runs_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_runs")),
        sa.UniqueConstraint("campaign", "key", name=op.f("uq_campaign_runs_campaign_key")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column(
            "dedupe_key",
            sa.String(length=300),
            nullable=False,
            comment="one message per campaign occurrence (or trigger) and customer",
        ),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column(
            "channel", sa.String(length=32), nullable=True, comment="NULL for the holdout group"
        ),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("send_at", _AT, nullable=False),
        sa.Column("expires_at", _AT, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", _AT, nullable=True),
        sa.Column(
            "trigger_at",
            _AT,
            nullable=True,
            comment="the event or segment entry that triggered it",
        ),
        sa.Column(
            "choice_probability",
            sa.Float(),
            nullable=True,
            comment="probability of the chosen channel and time",
        ),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.Column("sent_at", _AT, nullable=True),
        sa.CheckConstraint(f"state IN ({_STATES})", name=op.f("ck_outbox_state")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_outbox_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["campaign_runs.id"],
            name=op.f("fk_outbox_run_id_campaign_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index(
        op.f("ix_outbox_state_channel_send_at"), "outbox", ["state", "channel", "send_at"]
    )
    op.create_index(
        op.f("ix_outbox_customer_id_created_at"), "outbox", ["customer_id", "created_at"]
    )
    op.create_index(op.f("ix_outbox_campaign_customer_id"), "outbox", ["campaign", "customer_id"])
    op.create_index(op.f("ix_outbox_run_id"), "outbox", ["run_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("outbox_id", _ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", _AT, nullable=False),
        sa.Column("finished_at", _AT, nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="sent | transient | permanent | …",
        ),
        sa.Column("error_class", sa.String(length=100), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_deliveries_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_outbox_id"), "deliveries", ["outbox_id"])
    op.create_table(
        "channel_pauses",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column(
            "reason",
            sa.Text(),
            nullable=False,
            comment="what the provider said; shown by status",
        ),
        sa.Column("since", _AT, nullable=False),
        sa.Column(
            "paused_by",
            sa.String(length=100),
            nullable=False,
            comment="the worker that paused it",
        ),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_pauses")),
    )


def downgrade() -> None:
    op.drop_table("channel_pauses")
    op.drop_index(op.f("ix_deliveries_outbox_id"))
    op.drop_table("deliveries")
    for index in (
        "run_id",
        "campaign_customer_id",
        "customer_id_created_at",
        "state_channel_send_at",
    ):
        op.drop_index(op.f(f"ix_outbox_{index}"))
    op.drop_table("outbox")
    op.drop_table("campaign_runs")
