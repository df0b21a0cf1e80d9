"""JMAP binary data (RFC 8620 §6): which blobs an account can read, and uploads.

Whole blobs have the id ``G<sha256>`` (:mod:`hirondelle.jmap.ids`) and are streamed from
the blob store. Other modules may add blob ids of their own (e.g. one MIME part of an
email) with :func:`resolver`; such blobs are returned as bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hirondelle.jmap import ids
from hirondelle.services import Services
from hirondelle.store import jmap_blobs
from hirondelle.store.database import WriteContext, now_us


@dataclass(frozen=True, slots=True)
class Blob:
    """A blob an account may read: either whole (``hash``, streamed from the blob store)
    or derived (``data``, e.g. a decoded attachment)."""

    size: int
    type: str | None
    hash: str | None = None
    data: bytes | None = None


BlobResolver = Callable[[Services, int, str], Awaitable[Blob | None]]
_RESOLVERS: list[BlobResolver] = []


def resolver(function: BlobResolver) -> BlobResolver:
    """Register a resolver for blob ids other than ``G<sha256>``; it returns None for ids
    that are not its own or not readable by the account."""
    _RESOLVERS.append(function)
    return function


async def find(services: Services, account_id: int, blob_id: str) -> Blob | None:
    """The blob ``blob_id`` if ``account_id`` may read it."""
    digest = ids.blob_hash(blob_id)
    if digest is not None:
        found = await services.database.read(
            lambda conn: jmap_blobs.readable_blob(conn, account_id, digest)
        )
        if found is None:
            return None
        return Blob(size=found.size, type=found.type, hash=found.hash)
    for candidate in _RESOLVERS:
        blob = await candidate(services, account_id, blob_id)
        if blob is not None:
            return blob
    return None


async def upload(services: Services, account_id: int, data: bytes, content_type: str) -> str:
    """RFC 8620 §6.1: store ``data`` durably for ``account_id``; returns the blob id.

    The file is fsynced and renamed (FileBlobStore.put), then the upload row is
    committed: the caller answers 201 only after both.
    """
    ref = await services.blobs.put(data)
    before = now_us() - jmap_blobs.UPLOAD_LIFETIME_US

    def write(ctx: WriteContext) -> None:
        jmap_blobs.insert_upload(ctx, account_id, ref, content_type)
        jmap_blobs.expire_uploads(ctx, before=before)

    await services.database.write(write)
    return ids.blob(ref.hash)
