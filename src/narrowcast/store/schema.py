"""The tables of the customer store, as SQLAlchemy Core objects.

This module is what the code queries; the migrations under ``migrations/``
are what builds a database, and ``tests/store/test_migrations.py`` proves the
two agree. Change both together.

Index design (the segment compiler relies on these):

* ``ix_events_customer_type_ts`` (customer_id, type, ts) answers "events of
  type T for customer C within a window" — every per-customer aggregate.
* ``ix_events_type_ts`` (type, ts) answers "all events of type T within a
  window" — store-wide aggregates and planning scans.
* ``uq_events_event_id`` makes re-importing the same events a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL: indexable and compact; plain JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcInstant(TypeDecorator[datetime]):
    """An aware instant, stored in UTC.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones and SQLAlchemy
    would silently drop the offset, so the value is converted to UTC first and
    read back as UTC. A naive datetime is a bug in the caller and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def sqlite_instant(value: datetime) -> str:
    """The text SQLite stores for an aware instant (what ``UtcInstant`` writes)."""
    # isoformat is several times faster than strftime on the import hot path, and
    # an instant already in UTC (as importers produce) skips the conversion.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


Instant = UtcInstant()

CUSTOMER_TYPES = ("individual", "corporate", "government")
CHANNELS = ("email", "push", "sms", "in_app", "web")
PURPOSES = ("marketing", "transactional")
SUPPRESSION_REASONS = ("unsubscribed", "hard_bounce", "spam_complaint", "manual")
PLATFORMS = ("ios", "android", "web")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


customers = Table(
    "customers",
    metadata,
    Column("id", String(128), primary_key=True, comment="the shop's own customer id"),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("birth_date", Date),
    Column("gender", String(32)),
    Column("country", String(2), comment="ISO 3166-1 alpha-2"),
    Column("region", String(100)),
    Column("city", String(100)),
    Column("neighborhood", String(100)),
    Column("timezone", String(64), comment="IANA zone, e.g. Europe/Madrid"),
    Column("locale", String(16), comment="BCP 47, e.g. es-ES"),
    Column("customer_type", String(16), nullable=False, server_default="individual"),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("attributes", Json, nullable=False, comment="every other column the shop sends"),
    CheckConstraint(_one_of("customer_type", CUSTOMER_TYPES), name="customer_type"),
    Index(None, "email"),
    Index(None, "country", "region", "city", "neighborhood"),
)

attribute_keys = Table(
    "attribute_keys",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value_type", String(16), nullable=False, comment="number | text | bool | date"),
    Column("first_seen_at", Instant, nullable=False),
)

device_tokens = Table(
    "device_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("platform", String(16), nullable=False),
    Column("token", String(4096), nullable=False, unique=True),
    Column("created_at", Instant, nullable=False),
    Column("last_seen_at", Instant, nullable=False),
    Column("invalidated_at", Instant, comment="set when the provider says the token is dead"),
    CheckConstraint(_one_of("platform", PLATFORMS), name="platform"),
)

consents = Table(
    "consents",
    metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("purpose", String(16), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("source", String(200), nullable=False, comment="where the consent was given"),
    Column("updated_at", Instant, nullable=False),
    CheckConstraint(_one_of("channel", CHANNELS), name="channel"),
    CheckConstraint(_one_of("purpose", PURPOSES), name="purpose"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("address", String(4096), primary_key=True, comment="email (lower-case), phone, token"),
    Column("reason", String(32), nullable=False),
    Column("source", String(200), nullable=False),
    Column("created_at", Instant, nullable=False),
    CheckConstraint(_one_of("channel", CHANNELS), name="channel"),
    CheckConstraint(_one_of("reason", SUPPRESSION_REASONS), name="reason"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(128), unique=True, comment="the sender's id; duplicates skipped"),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("ts", Instant, nullable=False, comment="when it happened, UTC"),
    Column("value", Float, comment="properties.value as a number, for fast aggregates"),
    Column("properties", Json, nullable=False),
    Index("ix_events_customer_type_ts", "customer_id", "type", "ts"),
    Index("ix_events_type_ts", "type", "ts"),
)

event_properties = Table(
    "event_properties",
    metadata,
    Column("type", String(64), primary_key=True),
    Column("property", String(100), primary_key=True),
    Column("value_type", String(16), nullable=False, comment="number|text|bool|list|object"),
    Column("first_seen_at", Instant, nullable=False),
)

# --- segments: membership over time (migration 0002) -----------------------------

CHANGES = ("enter", "exit")

segment_evaluations = Table(
    "segment_evaluations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("segment", String(100), nullable=False),
    Column("evaluated_at", Instant, nullable=False, comment="the evaluation's 'now'"),
    Column("rule_hash", String(64), nullable=False, comment="sha256 of the compiled rule text"),
    Column("size", Integer, nullable=False),
    Column("entered", Integer, nullable=False),
    Column("exited", Integer, nullable=False),
    Index(None, "segment", "evaluated_at"),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment", String(100), primary_key=True),
    Column(
        "customer_id",
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("since", Instant, nullable=False, comment="when the customer last entered"),
)

segment_transitions = Table(
    "segment_transitions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("segment", String(100), nullable=False),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("change", String(8), nullable=False),
    Column("at", Instant, nullable=False),
    Column(
        "evaluation_id",
        ForeignKey("segment_evaluations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    CheckConstraint(_one_of("change", CHANGES), name="change"),
    Index(None, "segment", "at"),
    Index(None, "customer_id", "at"),
    Index(None, "evaluation_id"),
)

customer_scores = Table(
    "customer_scores",
    metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(32), primary_key=True, comment="a model-fitted score, e.g. clv"),
    Column("value", Float),
    Column("computed_at", Instant, nullable=False),
)

__all__ = [
    "CHANNELS",
    "CHANGES",
    "CUSTOMER_TYPES",
    "PLATFORMS",
    "PURPOSES",
    "SUPPRESSION_REASONS",
    "attribute_keys",
    "consents",
    "customer_scores",
    "customers",
    "device_tokens",
    "event_properties",
    "events",
    "metadata",
    "segment_evaluations",
    "segment_members",
    "segment_transitions",
    "sqlite_instant",
    "suppressions",
]

# --- channels (migration 0003) ----------------------------------------------------------

PLACEMENTS = ("banner", "modal", "toast")
VISITORS = ("new", "returning", "any")
SURVEYS = ("nps",)

inbox_messages = Table(
    "inbox_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "outbox_id",
        BigInteger,
        nullable=False,
        unique=True,
        comment="the outbox row it came from; a resend is the same row",
    ),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("campaign", String(100), nullable=False),
    Column("variant", String(64)),
    Column("parts", Json, nullable=False, comment="title, body, cta_label, cta_url, image"),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant),
    Column("read_at", Instant),
    Column("clicked_at", Instant),
    Column("dismissed_at", Instant),
    Index(None, "customer_id", "created_at"),
)

web_messages = Table(
    "web_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "outbox_id",
        BigInteger,
        nullable=False,
        unique=True,
        comment="the outbox row it came from; a resend is the same row",
    ),
    Column(
        "customer_id",
        ForeignKey("customers.id", ondelete="CASCADE"),
        comment="NULL: any visitor the targeting matches",
    ),
    Column("campaign", String(100), nullable=False),
    Column("variant", String(64)),
    Column("placement", String(8), nullable=False),
    Column("visitor", String(16), nullable=False, comment="new | returning | any"),
    Column(
        "referrers",
        Json,
        nullable=False,
        comment="referrer classes (search, social, email, direct); empty: any",
    ),
    Column("path", String(500), nullable=False, comment="page path glob; * is every page"),
    Column("survey", String(8), comment="nps, or NULL"),
    Column("parts", Json, nullable=False, comment="title, body, cta_label, cta_url, image"),
    Column("created_at", Instant, nullable=False),
    Column("expires_at", Instant),
    Column("seen_at", Instant),
    Column("clicked_at", Instant),
    Column("dismissed_at", Instant),
    CheckConstraint(_one_of("placement", PLACEMENTS), name="placement"),
    CheckConstraint(_one_of("visitor", VISITORS), name="visitor"),
    CheckConstraint(_one_of("survey", SURVEYS), name="survey"),
    Index(None, "customer_id", "expires_at"),
)

__all__ += ["PLACEMENTS", "SURVEYS", "VISITORS", "inbox_messages", "web_messages"]

# --- planning and dispatch (migration 0004) -----------------------------------------------

RUN_KINDS = ("scheduled", "trigger", "manual")
RUN_STATES = ("planning", "planned", "failed")
OUTBOX_STATES = (
    "planned",
    "claimed",
    "sending",
    "sent",
    "retry",
    "failed",
    "suppressed",
    "expired",
    "holdout",
    "unknown",
    "canceled",
)

campaign_runs = Table(
    "campaign_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("campaign", String(100), nullable=False),
    Column("key", String(200), nullable=False, comment="the occurrence, e.g. its ISO instant"),
    Column("kind", String(16), nullable=False),
    Column("occurrence", Instant, nullable=False),
    Column("state", String(16), nullable=False),
    Column("planned", Integer, nullable=False, server_default="0"),
    Column("holdout", Integer, nullable=False, server_default="0"),
    Column("dropped", Integer, nullable=False, server_default="0"),
    Column("created_at", Instant, nullable=False),
    Column("finished_at", Instant),
    Column("error", Text),
    Column("heartbeat_at", Instant, comment="last sign of life of the worker planning it (0006)"),
    UniqueConstraint("campaign", "key"),
    CheckConstraint(_one_of("kind", RUN_KINDS), name="kind"),
    CheckConstraint(_one_of("state", RUN_STATES), name="state"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("campaign_runs.id", ondelete="CASCADE"), nullable=False),
    Column("campaign", String(100), nullable=False),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column(
        "dedupe_key",
        String(300),
        nullable=False,
        unique=True,
        comment="one message per campaign occurrence (or trigger) and customer",
    ),
    Column("variant", String(64)),
    Column("channel", String(32), comment="NULL for the holdout group"),
    Column("purpose", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("send_at", Instant, nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(100)),
    Column("lease_until", Instant),
    Column("trigger_at", Instant, comment="the event or segment entry that triggered it"),
    Column("choice_probability", Float, comment="probability of the chosen channel and time"),
    Column(
        "assignment",
        String(16),
        comment="treated | holdout | control (global control group); NULL before 0007",
    ),
    Column(
        "variant_probability",
        Float,
        comment="probability the variant was drawn with, given treated",
    ),
    Column("provider", String(32)),
    Column("provider_id", String(200)),
    Column("last_error", Text),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("sent_at", Instant),
    CheckConstraint(_one_of("state", OUTBOX_STATES), name="state"),
    Index(None, "state", "channel", "send_at"),
    Index(None, "customer_id", "created_at"),
    Index(None, "campaign", "customer_id"),
    Index(None, "run_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("outbox_id", ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Instant, nullable=False),
    Column("finished_at", Instant),
    Column("latency_ms", Float),
    Column("channel", String(32), nullable=False),
    Column("provider", String(32)),
    Column("provider_id", String(200)),
    Column("status", String(16), nullable=False, comment="sent | transient | permanent | …"),
    Column("error_class", String(100)),
    Column("error_text", Text),
)

channel_pauses = Table(
    "channel_pauses",
    metadata,
    Column("channel", String(32), primary_key=True),
    Column("reason", Text, nullable=False, comment="what the provider said; shown by status"),
    Column("since", Instant, nullable=False),
    Column("paused_by", String(100), nullable=False, comment="the worker that paused it"),
)

__all__ += [
    "OUTBOX_STATES",
    "channel_pauses",
    "RUN_KINDS",
    "RUN_STATES",
    "campaign_runs",
    "deliveries",
    "outbox",
]

# --- HTTP API (migration 0005) ----------------------------------------------------------------

web_views = Table(
    "web_views",
    metadata,
    Column(
        "web_message_id",
        ForeignKey("web_messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "visitor",
        String(200),
        primary_key=True,
        comment="c:<customer id> for a known customer, v:<visitor id> for an anonymous one",
    ),
    Column("views", Integer, nullable=False, server_default="0"),
    Column("first_seen_at", Instant, nullable=False),
    Column("last_seen_at", Instant, nullable=False),
    Column("clicked_at", Instant),
    Column("dismissed_at", Instant),
    Column("answered_at", Instant, comment="when a survey on it was answered"),
)

__all__ += ["web_views"]
