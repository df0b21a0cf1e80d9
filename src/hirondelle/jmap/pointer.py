"""JSON Pointer as JMAP uses it: ResultReference paths and /set patches.

RFC 6901 JSON Pointer, with RFC 8620 §3.7's extension: a ``*`` token applied to an array
maps the rest of the path over every item and flattens arrays in the results. RFC 8620
§5.3 PatchObject: keys are pointers (without the leading ``/``) into the object, every
part but the last must exist, ``null`` resets a property.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any


class PointerError(ValueError):
    """The path does not resolve in the document."""


def _unescape(token: str) -> str:
    # RFC 6901 §4: "~1" before "~0", so that "~01" becomes "~1".
    return token.replace("~1", "/").replace("~0", "~")


def tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PointerError(f"pointer {path!r} does not start with '/'")
    return [_unescape(token) for token in path[1:].split("/")]


def _index(token: str, length: int) -> int:
    if not token.isascii() or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PointerError(f"{token!r} is not an array index")
    position = int(token)
    if position >= length:
        raise PointerError(f"index {position} is past the end")
    return position


def evaluate(document: Any, path: str) -> Any:
    """RFC 8620 §3.7: the value at ``path`` in ``document``, ``*`` included."""
    return _evaluate(document, tokens(path))


def _evaluate(value: Any, parts: list[str]) -> Any:
    for position, token in enumerate(parts):
        if isinstance(value, list):
            if token == "*":
                rest = parts[position + 1 :]
                results: list[Any] = []
                for item in value:
                    found = _evaluate(item, rest)
                    if isinstance(found, list):
                        results.extend(found)
                    else:
                        results.append(found)
                return results
            value = value[_index(token, len(value))]
        elif isinstance(value, dict):
            if token not in value:
                raise PointerError(f"no member {token!r}")
            value = value[token]
        else:
            raise PointerError(f"cannot descend into a {type(value).__name__} with {token!r}")
    return value


class PatchError(ValueError):
    """An invalid PatchObject (RFC 8620 §5.3 ``invalidPatch``)."""


def apply_patch(document: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with the PatchObject applied.

    A path whose parent is missing, that goes through an array, or that is the prefix of
    another path of the same patch, is an :class:`PatchError`. A ``null`` value removes
    the member (the caller reads a missing member as the property's default).
    """
    paths = [(key, tokens("/" + key)) for key in patch]
    keys = sorted(patch)
    for first, second in itertools.pairwise(keys):
        if second.startswith(first + "/"):
            raise PatchError(f"{first!r} and {second!r} overlap")
    result = copy.deepcopy(document)
    for key, parts in paths:
        if not parts or any(part == "" for part in parts[:1]):
            raise PatchError(f"empty path {key!r}")
        target: Any = result
        for part in parts[:-1]:
            if not isinstance(target, dict) or part not in target or target[part] is None:
                raise PatchError(f"{key!r}: {part!r} does not exist")
            target = target[part]
        if not isinstance(target, dict):
            raise PatchError(f"{key!r} does not name an object member")
        last = parts[-1]
        value = patch[key]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)
    return result
