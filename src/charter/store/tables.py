"""The database schema, as SQLAlchemy Core tables.

This is the schema the code reads and writes; the Alembic revisions in ``migrations/versions``
build it, and a test checks that the two agree. Change both together: edit a table here, then
add a revision (see docs/store.md).

Every table but ``store_meta`` has an integer ``seq`` (or ``id``) key that grows with each
insert: it gives "creation order" without trusting clocks, and keeps the caller's string ids
as a plain unique column. Strings are unbounded (VARCHAR without a length on PostgreSQL,
TEXT on SQLite) so both backends accept exactly the same values; the API bounds lengths.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Names for every constraint, so later migrations can alter them by name (SQLite needs it)."""

# A key that never runs out: SQLite's INTEGER PRIMARY KEY is already 64-bit (and only that
# exact type autoincrements there); PostgreSQL gets BIGSERIAL.
BigKey = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC, read back as UTC on both backends.

    SQLite has no timezone type, so the value goes in as naive UTC there; PostgreSQL gets a
    TIMESTAMPTZ. Naive datetimes are refused: the store cannot know their zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

store_meta = Table(
    "store_meta",
    metadata,
    Column("name", String(), primary_key=True),
    Column("value", Text(), nullable=False),
)
"""Facts about the store itself, e.g. a token that tells whether the secret key is right."""

store_identity = Table(
    "store_identity",
    metadata,
    Column("store_id", String(), primary_key=True),
    Column("generation", BigInteger(), nullable=False),
)
"""One row: which store this database is, and its generation (see identity.py)."""

policies = Table(
    "policies",
    metadata,
    Column("seq", Integer(), primary_key=True),
    Column("id", String(), nullable=False, unique=True),
    Column("name", String(), nullable=False, unique=True),
    Column("abbreviation", String(), nullable=False),
    Column("description", Text(), nullable=False),
    Column("owner_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # ``dry-run`` or ``enforce``: whether the policy's execute[...] rows call their actions.
    Column("enforcement", String(), nullable=False, server_default="dry-run"),
)

rules = Table(
    "rules",
    metadata,
    Column("seq", BigKey, primary_key=True),
    Column("id", String(), nullable=False, unique=True),
    Column(
        "policy_id",
        String(),
        ForeignKey("policies.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(), nullable=True),
    Column("rule", Text(), nullable=False),
    Column("comment", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # NULL names are distinct on both backends: unnamed rules never clash.
    UniqueConstraint("policy_id", "name"),
)

library_policies = Table(
    "library_policies",
    metadata,
    Column("seq", Integer(), primary_key=True),
    Column("id", String(), nullable=False, unique=True),
    Column("name", String(), nullable=False, unique=True),
    Column("description", Text(), nullable=False),
    Column("abbreviation", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("rules", Text(), nullable=False),  # JSON list of {"rule", "name"?, "comment"?}
)

datasources = Table(
    "datasources",
    metadata,
    Column("seq", Integer(), primary_key=True),
    Column("id", String(), nullable=False, unique=True),
    Column("name", String(), nullable=False, unique=True),
    Column("driver", String(), nullable=False),
    Column("description", Text(), nullable=False),
    Column("enabled", Boolean(), nullable=False),
    Column("config", Text(), nullable=False),  # JSON, secret fields sealed (secrets.py)
    Column("created_at", UTCDateTime(), nullable=False),
)

push_tables = Table(
    "push_tables",
    metadata,
    Column("seq", BigKey, primary_key=True),
    Column(
        "datasource_id",
        String(),
        ForeignKey("datasources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(), nullable=False),
    # A pushed table is a base snapshot (push_chunks) and the changes written since
    # (push_log), replayed at load and folded into a new base when the log has grown
    # (store/push.py). These count them, so a write knows when to fold without reading.
    Column("base_rows", BigInteger(), nullable=False, server_default=text("0")),
    Column("log_rows", BigInteger(), nullable=False, server_default=text("0")),
    Column("log_entries", BigInteger(), nullable=False, server_default=text("0")),
    # Raised by every new base: a compaction that read an older one does not write.
    Column("version", BigInteger(), nullable=False, server_default=text("0")),
    UniqueConstraint("datasource_id", "name"),
)

# A pushed table's base snapshot: its rows in order, cut into blocks (store/blocks.py).
push_chunks = Table(
    "push_chunks",
    metadata,
    Column(
        "table_seq",
        BigKey,
        ForeignKey("push_tables.seq", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("part", Integer(), primary_key=True),
    Column("data", LargeBinary(), nullable=False),
)

# The changes written to a pushed table since its base, one entry per write, in order.
push_log = Table(
    "push_log",
    metadata,
    Column("seq", BigKey, primary_key=True),
    Column(
        "table_seq",
        BigKey,
        ForeignKey("push_tables.seq", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("inserted", LargeBinary(), nullable=False),  # a block of the rows inserted
    Column("deleted", LargeBinary(), nullable=False),  # a block of the rows deleted
)

violations = Table(
    "violations",
    metadata,
    Column("seq", BigKey, primary_key=True),
    Column("policy", String(), nullable=False),  # the policy's name, as the engine knows it
    Column("table_name", String(), nullable=False),
    Column("row", Text(), nullable=False),  # JSON (rows.py)
    Column("row_key", String(), nullable=False),  # SHA-256 of ``row``: indexable at any size
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Index("ix_violations_policy_table_name", "policy", "table_name"),
    # At most one open interval per row: a second "appeared" cannot open another.
    Index(
        "uq_violations_open",
        "policy",
        "table_name",
        "row_key",
        unique=True,
        sqlite_where=text("resolved_at IS NULL"),
        postgresql_where=text("resolved_at IS NULL"),
    ),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigKey, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(), nullable=False),
    Column("policy", String(), nullable=False),
    Column("rule", Text(), nullable=False),
    Column("row", Text(), nullable=False),  # JSON (rows.py)
    Column("action", String(), nullable=False),
    Column("arguments", Text(), nullable=False),  # JSON object
    Column("mode", String(), nullable=False),
    Column("result", String(), nullable=False),
    Column("detail", Text(), nullable=False),
    Index("ix_audit_policy_id", "policy", "id"),
)

actions = Table(
    "actions",
    metadata,
    Column("id", BigKey, primary_key=True),
    Column("policy", String(), nullable=False),
    Column("table_name", String(), nullable=False),  # execute[<datasource>:<action>]
    Column("datasource", String(), nullable=False),
    Column("action", String(), nullable=False),
    Column("row", Text(), nullable=False),  # JSON (rows.py): the action's positional arguments
    Column("row_key", String(), nullable=False),  # SHA-256 of ``row``
    Column("rule", Text(), nullable=False),
    Column("mode", String(), nullable=False),  # the policy's mode when the row appeared
    # pending (the outbox), done, failed, cancelled, dry-run, capped, rate-limited, baseline
    Column("status", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("derived_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("cleared_at", UTCDateTime(), nullable=True),  # when the row stopped being derived
    Column("detail", Text(), nullable=False),
    Index("ix_actions_status", "status"),
    # One open record per derived row: the row acts once until it clears and reappears.
    Index(
        "uq_actions_open",
        "policy",
        "table_name",
        "row_key",
        unique=True,
        sqlite_where=text("cleared_at IS NULL"),
        postgresql_where=text("cleared_at IS NULL"),
    ),
)
"""Every ``execute[...]`` row that appeared: the derived set, the outbox and its outcome."""

notifications = Table(
    "notifications",
    metadata,
    Column("id", BigKey, primary_key=True),
    Column("event_id", String(), nullable=False),  # sent as X-Charter-Event-Id
    Column("webhook", String(), nullable=False),  # the configured webhook's name
    Column("event", String(), nullable=False),  # violation.appeared / violation.cleared
    Column("policy", String(), nullable=False),
    Column("payload", Text(), nullable=False),  # JSON object
    Column("status", String(), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("errors", Text(), nullable=False),  # JSON list: each failed attempt's error
    UniqueConstraint("event_id", "webhook"),
    Index("ix_notifications_status_webhook_id", "status", "webhook", "id"),
)
"""The webhook outbox: written with the violation change it announces, sent by the sender."""

packs = Table(
    "packs",
    metadata,
    Column("seq", Integer(), primary_key=True),
    Column("id", String(), nullable=False, unique=True),  # the pack's id, e.g. openstack-security
    Column("version", String(), nullable=False),
    Column("parameters", Text(), nullable=False),  # JSON object: parameter -> rows
    Column("policies", Text(), nullable=False),  # JSON list: the policies it made
    Column("enabled_by", String(), nullable=False),
    Column("enabled_at", UTCDateTime(), nullable=False),
)
"""Every enabled pack, with the parameters it was enabled with (see charter.packs)."""

TABLE_NAMES = tuple(metadata.tables)
"""Every table the migrations create (besides Alembic's own ``alembic_version``)."""
