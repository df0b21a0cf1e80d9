"""Tables of the blob write path (issues 3 and 4). Owned by the store write-path work."""

from __future__ import annotations

from hirondelle.store.schema import metadata as metadata
