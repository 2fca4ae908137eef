"""Foundation: customers, attribute keys, device tokens, consent, suppressions, events.

Revision ID: 0001
Revises: -
Create Date: 2026-11-23 15:32:39.551444
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attribute_keys",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column(
            "value_type",
            sa.String(length=16),
            nullable=False,
            comment="number | text | bool | date",
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attribute_keys")),
    )
    op.create_table(
        "customers",
        sa.Column(
            "id", sa.String(length=128), nullable=False, comment="the shop's own customer id"
        ),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=32), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True, comment="ISO 3166-1 alpha-2"),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("neighborhood", sa.String(length=100), nullable=True),
        sa.Column(
            "timezone", sa.String(length=64), nullable=True, comment="IANA zone, e.g. Europe/Madrid"
        ),
        sa.Column("locale", sa.String(length=16), nullable=True, comment="BCP 47, e.g. es-ES"),
        sa.Column(
            "customer_type", sa.String(length=16), server_default="individual", nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
            comment="every other column the shop sends",
        ),
        sa.CheckConstraint(
            "customer_type IN ('individual', 'corporate', 'government')",
            name=op.f("ck_customers_customer_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_index(
        op.f("ix_customers_country_region_city_neighborhood"),
        "customers",
        ["country", "region", "city", "neighborhood"],
        unique=False,
    )
    op.create_index(op.f("ix_customers_email"), "customers", ["email"], unique=False)

    op.create_table(
        "event_properties",
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("property", sa.String(length=100), nullable=False),
        sa.Column(
            "value_type",
            sa.String(length=16),
            nullable=False,
            comment="number|text|bool|list|object",
        ),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("type", "property", name=op.f("pk_event_properties")),
    )
    op.create_table(
        "suppressions",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "address",
            sa.String(length=4096),
            nullable=False,
            comment="email (lower-case), phone, token",
        ),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'push', 'sms', 'in_app', 'web')",
            name=op.f("ck_suppressions_channel"),
        ),
        sa.CheckConstraint(
            "reason IN ('unsubscribed', 'hard_bounce', 'spam_complaint', 'manual')",
            name=op.f("ck_suppressions_reason"),
        ),
        sa.PrimaryKeyConstraint("channel", "address", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "consents",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column(
            "source", sa.String(length=200), nullable=False, comment="where the consent was given"
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'push', 'sms', 'in_app', 'web')", name=op.f("ck_consents_channel")
        ),
        sa.CheckConstraint(
            "purpose IN ('marketing', 'transactional')", name=op.f("ck_consents_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_consents_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "channel", "purpose", name=op.f("pk_consents")),
    )
    op.create_table(
        "device_tokens",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=4096), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "invalidated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="set when the provider says the token is dead",
        ),
        sa.CheckConstraint(
            "platform IN ('ios', 'android', 'web')", name=op.f("ck_device_tokens_platform")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_device_tokens_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_device_tokens_token")),
    )
    op.create_index(
        op.f("ix_device_tokens_customer_id"), "device_tokens", ["customer_id"], unique=False
    )

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "event_id",
            sa.String(length=128),
            nullable=True,
            comment="the sender's id; duplicates skipped",
        ),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column(
            "ts", sa.DateTime(timezone=True), nullable=False, comment="when it happened, UTC"
        ),
        sa.Column(
            "value",
            sa.Float(),
            nullable=True,
            comment="properties.value as a number, for fast aggregates",
        ),
        sa.Column(
            "properties", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_events_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_index(
        "ix_events_customer_type_ts", "events", ["customer_id", "type", "ts"], unique=False
    )
    op.create_index("ix_events_type_ts", "events", ["type", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_type_ts")
    op.drop_index("ix_events_customer_type_ts")

    op.drop_table("events")
    op.drop_index(op.f("ix_device_tokens_customer_id"))

    op.drop_table("device_tokens")
    op.drop_table("consents")
    op.drop_table("suppressions")
    op.drop_table("event_properties")
    op.drop_index(op.f("ix_customers_email"))
    op.drop_index(op.f("ix_customers_country_region_city_neighborhood"))

    op.drop_table("customers")
    op.drop_table("attribute_keys")
