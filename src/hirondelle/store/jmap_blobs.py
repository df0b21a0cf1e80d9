"""Store side of JMAP blobs: uploads (RFC 8620 §6.1) and which blobs an account may read.

An account may read a blob it uploaded or one that is the content of one of its
emails; anything else is "not found", whoever else holds it (no existence leak).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import emails, schema
from hirondelle.store.blobs import BlobRef
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.schema_jmap import jmap_uploads

# RFC 8620 §6.1: an upload not referenced otherwise may be deleted "after at least an
# hour"; a day leaves room for a slow composer.
UPLOAD_LIFETIME_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class ReadableBlob:
    hash: str
    size: int
    type: str | None  # the upload's type; None for an email's content (message/rfc822)


def insert_upload(ctx: WriteContext, account_id: int, blob: BlobRef, content_type: str) -> None:
    """Record an upload (the blob file is already durable); holds one blob reference."""
    emails.reference_blob(ctx.conn, blob)
    ctx.conn.execute(
        jmap_uploads.insert().values(
            account_id=account_id,
            blob_hash=blob.hash,
            size=blob.size,
            type=content_type[:255],
            created_at=now_us(),
        )
    )


def expire_uploads(ctx: WriteContext, *, before: int) -> int:
    """Drop uploads older than ``before`` and release their blob references."""
    rows = ctx.conn.execute(
        sa.select(jmap_uploads.c.id, jmap_uploads.c.blob_hash)
        .where(jmap_uploads.c.created_at < before)
        .limit(1000)
    ).all()
    if not rows:
        return 0
    ctx.conn.execute(jmap_uploads.delete().where(jmap_uploads.c.id.in_([r[0] for r in rows])))
    emails.release_blobs(ctx.conn, [r[1] for r in rows])
    return len(rows)


def readable_blob(conn: Connection, account_id: int, blob_hash: str) -> ReadableBlob | None:
    """The blob if ``account_id`` uploaded it or has an email with that content."""
    upload = conn.execute(
        sa.select(jmap_uploads.c.size, jmap_uploads.c.type)
        .where(jmap_uploads.c.account_id == account_id, jmap_uploads.c.blob_hash == blob_hash)
        .order_by(jmap_uploads.c.id.desc())
        .limit(1)
    ).first()
    if upload is not None:
        return ReadableBlob(blob_hash, int(upload[0]), str(upload[1]))
    e = schema.emails
    size = conn.execute(
        sa.select(e.c.size).where(e.c.account_id == account_id, e.c.blob_hash == blob_hash).limit(1)
    ).scalar()
    if size is not None:
        return ReadableBlob(blob_hash, int(size), None)
    return None
