"""Tables of the blob write path (issues 3 and 4); migration 0019 creates them.

``blob_inline`` holds the content of small blobs (at most
:data:`hirondelle.store.blobs.INLINE_LIMIT` bytes by default) inside the SQL database
instead of a file. Such a blob is written by the same transaction that references it
(:func:`hirondelle.store.emails.reference_blob`), so storing a small message costs one
durable write, the commit, instead of a file fsync, a directory fsync and then the
commit in series (docs/architecture.md, "Small blobs live in SQL"). The rows are read
through the same :class:`hirondelle.store.blobs.BlobStore` interface as files.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import metadata

blob_inline = sa.Table(
    "blob_inline",
    metadata,
    sa.Column(
        "hash",
        sa.String(64),
        sa.ForeignKey("blobs.hash", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

__all__ = ["blob_inline"]
