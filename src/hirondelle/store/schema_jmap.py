"""JMAP core: uploads and what JMAP needs beyond the mail tables (issue 7).

Tables are defined on :data:`hirondelle.store.schema.metadata`; migration 0009 creates them.

An upload (RFC 8620 §6.1) is a blob of the content-addressed store (``blobs``, which it
holds one reference to) made visible to one account; its blob id is the SHA-256, the
same id the content has inside an email. Uploads that nothing used are dropped after
:data:`hirondelle.store.jmap_blobs.UPLOAD_LIFETIME_US`.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

jmap_uploads = sa.Table(
    "jmap_uploads",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    account_id_column(nullable=False),
    sa.Column("blob_hash", sa.String(64), sa.ForeignKey("blobs.hash"), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # The Content-Type the client gave (RFC 8620 §6.1 "type"), at most 255 characters.
    sa.Column("type", sa.String(255), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
    sa.Index("ix_jmap_uploads_account_id_blob_hash", "account_id", "blob_hash"),
)

__all__ = ["jmap_uploads"]
