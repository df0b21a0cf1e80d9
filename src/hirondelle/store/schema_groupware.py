"""Calendars and address books: collections, resources, occurrence index, dead properties (issue 5).

Tables are defined on :data:`hirondelle.store.schema.metadata`; migration 0008 creates them.

Design (DESIGN.md "Calendar and contacts model", "The change journal"):

- ``dav_collections``: one row per calendar, address book or schedule inbox/outbox of an
  account (``kind``), named by its URL segment under ``/dav/<address>/``. Its
  ``modseq`` is the modseq of the last change inside it: getctag and the sync-token.
- ``dav_resources``: one iCalendar object (one UID with its overrides) or one vCard, kept
  as the client sent it (``data``) with what queries need in columns: component type, UID
  (unique per collection: the ``no-uid-conflict`` rule is a unique index), strong ETag,
  and the time span of every occurrence.
- ``dav_occurrences``: the time-range index. Every instance of a calendar object
  (recurrences expanded up to a horizon, overrides and EXDATE applied) is one row; a
  CalDAV time-range filter is an index range scan on (collection_id, start). A rule that
  goes past the horizon leaves ``dav_resources.indexed_until`` set: such a resource is
  checked by expansion only when a query reaches beyond that instant.
- ``dav_tombstones``: the href of each deleted resource, so that sync-collection can
  report it (the journal keeps only ids).
- ``dav_properties``: dead properties set by PROPPATCH (RFC 4918 §4.2), on collections;
  ``dav_resource_properties`` (migration 0017): the same on resources.

Journal kinds: ``"Calendar"`` and ``"AddressBook"`` (object_id = collection id),
``"CalendarObject"`` and ``"ContactCard"`` (object_id = resource id, container_id =
collection id). JMAP Calendar/CalendarEvent/AddressBook/ContactCard ids map to the same ids.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

_BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

dav_collections = sa.Table(
    "dav_collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False),
    # "calendar", "addressbook", "inbox" (schedule inbox) or "outbox" (schedule outbox).
    sa.Column("kind", sa.String(16), nullable=False),
    # The URL segment: /dav/<address>/<name>/
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("display_name", sa.Text, nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    # Apple calendar-color ("#RRGGBB" or "#RRGGBBAA") and calendar-order.
    sa.Column("color", sa.String(32), nullable=True),
    sa.Column("sort_order", sa.Integer, nullable=False, default=0),
    # CalDAV calendar-timezone (a VCALENDAR with one VTIMEZONE), for floating times.
    sa.Column("timezone", sa.Text, nullable=True),
    # supported-calendar-component-set, comma-separated ("VEVENT,VTODO,VJOURNAL").
    sa.Column("components", sa.String(100), nullable=False, default=""),
    # The modseq of the last change of this collection or of anything in it.
    sa.Column("modseq", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("account_id", "name"),
    # Ids are never reused (SQLite would reuse the largest after a delete): sync and JMAP
    # name objects by id, and a reused id would make a deletion look like an update.
    sqlite_autoincrement=True,
)

dav_resources = sa.Table(
    "dav_resources",
    metadata,
    sa.Column("id", _BigId, primary_key=True),
    sa.Column(
        "collection_id",
        sa.Integer,
        sa.ForeignKey("dav_collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    account_id_column(nullable=False, index=True),
    # The last URL segment, as the client chose it at PUT.
    sa.Column("name", sa.String(500), nullable=False),
    # "VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY" or "VCARD".
    sa.Column("component", sa.String(16), nullable=False),
    sa.Column("uid", sa.String(1000), nullable=False),
    # Strong ETag: SHA-256 of the stored text, hex.
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    # The iCalendar object or vCard as the client sent it (UTF-8 text).
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("modseq", sa.BigInteger, nullable=False),
    sa.Column("created_modseq", sa.BigInteger, nullable=False),
    # Time span of all occurrences (µs since epoch, UTC); null for an object with no time
    # (a VTODO without dates matches every time range, RFC 4791 §9.9).
    sa.Column("first_start", Timestamp, nullable=True),
    sa.Column("last_end", Timestamp, nullable=True),
    # Occurrences are indexed up to this instant; null when all are; a very low value
    # (groupware.calendar.TIMELESS) for objects without time.
    sa.Column("indexed_until", Timestamp, nullable=True),
    # For scheduling and the webmail: the organizer's address ("" when none), and a
    # display summary (SUMMARY or FN).
    sa.Column("organizer", sa.String(320), nullable=False, default=""),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    # Contacts: names, nicknames, organisation, emails and phones, case-folded, one per
    # line (DESIGN.md: extracted fields), which narrows addressbook-query and later
    # JMAP/webmail searches to the cards that can match before any is parsed.
    sa.Column("search_text", sa.Text, nullable=False, default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("collection_id", "name"),
    sa.UniqueConstraint("collection_id", "uid"),
    # Series indexed only up to a horizon, and objects without time: the candidates a
    # time-range query must check by expansion (a range scan, not a collection scan).
    sa.Index("ix_dav_resources_collection_id_indexed_until", "collection_id", "indexed_until"),
    sqlite_autoincrement=True,
)

dav_occurrences = sa.Table(
    "dav_occurrences",
    metadata,
    sa.Column("id", _BigId, primary_key=True),
    sa.Column(
        "resource_id",
        _BigId,
        sa.ForeignKey("dav_resources.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("collection_id", sa.Integer, nullable=False),
    sa.Column("start", Timestamp, nullable=False),
    sa.Column("end", Timestamp, nullable=False),
    # Whether the instance is transparent or cancelled (free-busy skips them).
    sa.Column("busy", sa.Boolean, nullable=False, default=True),
    sa.Index("ix_dav_occurrences_collection_id_start_end", "collection_id", "start", "end"),
)

dav_tombstones = sa.Table(
    "dav_tombstones",
    metadata,
    sa.Column("id", _BigId, primary_key=True),
    sa.Column(
        "collection_id",
        sa.Integer,
        sa.ForeignKey("dav_collections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("modseq", sa.BigInteger, nullable=False),
    sa.Index("ix_dav_tombstones_collection_id_resource_id", "collection_id", "resource_id"),
    # A name used again drops its tombstone (put_resource).
    sa.Index("ix_dav_tombstones_collection_id_name", "collection_id", "name"),
)

dav_properties = sa.Table(
    "dav_properties",
    metadata,
    sa.Column(
        "collection_id",
        sa.Integer,
        sa.ForeignKey("dav_collections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Clark notation "{namespace}local-name".
    sa.Column("name", sa.String(500), primary_key=True),
    # The property element serialised as XML.
    sa.Column("value", sa.Text, nullable=False),
)

dav_resource_properties = sa.Table(
    "dav_resource_properties",
    metadata,
    sa.Column(
        "resource_id",
        _BigId,
        sa.ForeignKey("dav_resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # As in dav_properties: Clark name, and the element serialised as XML. A PUT keeps
    # the row (RFC 4918 §9.7.1); DELETE, MOVE and COPY handle it in store.groupware.
    sa.Column("name", sa.String(500), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
