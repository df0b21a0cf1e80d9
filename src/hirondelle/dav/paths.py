"""The DAV URL layout (sans-I/O): paths <-> what they name.

``/dav/`` root; ``/dav/principals/<address>/`` principal; ``/dav/<address>/`` calendar and
address book home; ``/dav/<address>/<collection>/`` collections; and
``/dav/<address>/<collection>/<resource>`` resources (RFC 4918 §5, RFC 4791 §4.2,
RFC 6352 §7.1.1 homes, RFC 5397 principals).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

PREFIX = "/dav/"
_SAFE = "@:+!$&'()*,;=-._~"


@dataclass(frozen=True, slots=True)
class Location:
    """``kind``: "root", "principals", "principal", "home", "collection", "resource"."""

    kind: str
    address: str = ""
    collection: str = ""
    resource: str = ""


class BadPath(Exception):
    pass


def parse(path: str) -> Location:
    """A request path (still percent-encoded) as a Location, or BadPath."""
    if not path.startswith(PREFIX) and path not in ("/dav", "/"):
        raise BadPath(path)
    if path in ("/dav", "/", PREFIX):
        return Location("root")
    rest = path[len(PREFIX) :]
    trailing = rest.endswith("/")
    raw_segments = rest.split("/")
    if trailing:
        raw_segments = raw_segments[:-1]
    try:
        segments = [unquote(s, errors="strict") for s in raw_segments]
    except UnicodeDecodeError as exc:
        raise BadPath(path) from exc
    if any(
        not s
        or s in (".", "..")
        or "/" in s
        or len(s) > 1000
        or any(ord(c) < 0x20 or c == "\x7f" for c in s)
        for s in segments
    ):
        # Control characters (NUL among them, which PostgreSQL text refuses) name nothing.
        raise BadPath(path)
    if segments[0] == "principals":
        if len(segments) == 1:
            return Location("principals")
        if len(segments) == 2:
            return Location("principal", address=segments[1].lower())
        raise BadPath(path)
    address = segments[0].lower()
    if len(segments) == 1:
        return Location("home", address=address)
    if len(segments) == 2:
        if trailing:
            return Location("collection", address=address, collection=segments[1])
        # A client may name a collection without the trailing slash; the handler decides.
        return Location("resource", address=address, collection=segments[1], resource="")
    if len(segments) == 3 and not trailing:
        return Location("resource", address=address, collection=segments[1], resource=segments[2])
    raise BadPath(path)


def from_url(url: str) -> Location:
    """The Location of a Destination header or an href (absolute URL or path)."""
    return parse(urlsplit(url).path if "://" in url else url.split("?", 1)[0])


@functools.lru_cache(maxsize=4096)
def _q(segment: str) -> str:
    return quote(segment, safe=_SAFE)


def root() -> str:
    return PREFIX


def principal(address: str) -> str:
    return f"{PREFIX}principals/{_q(address)}/"


def home(address: str) -> str:
    return f"{PREFIX}{_q(address)}/"


def collection(address: str, name: str) -> str:
    return f"{PREFIX}{_q(address)}/{_q(name)}/"


def resource(address: str, collection_name: str, name: str) -> str:
    return f"{PREFIX}{_q(address)}/{_q(collection_name)}/{_q(name)}"
