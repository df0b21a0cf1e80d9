"""Tables of JMAP push (RFC 8620 §7): push subscriptions. Owned by the JMAP push work."""

from __future__ import annotations

from hirondelle.store.schema import metadata as metadata
