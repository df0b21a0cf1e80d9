"""A tiny reader for the IMAP data the parser renders (RFC 9051 §4 and §9): parenthesised
lists, NIL, numbers, quoted strings and literals. Raises ValueError on anything else, so a
successful read proves the bytes are balanced, well-formed IMAP syntax.
"""

from __future__ import annotations

from typing import TypeAlias

Item: TypeAlias = "bytes | int | list[Item] | None"


def read_imap(data: bytes) -> Item:
    """Read exactly one IMAP value that spans all of ``data``."""
    item, position = _read(data, 0, depth=0)
    if position != len(data):
        raise ValueError(f"trailing data at {position}: {data[position : position + 20]!r}")
    return item


def _read(data: bytes, position: int, *, depth: int) -> tuple[Item, int]:
    if depth > 200:
        raise ValueError("nesting too deep")
    if position >= len(data):
        raise ValueError("unexpected end")
    byte = data[position]
    if byte == 0x28:  # (
        items: list[Item] = []
        position += 1
        if position < len(data) and data[position] == 0x29:
            raise ValueError("empty list")
        while True:
            item, position = _read(data, position, depth=depth + 1)
            items.append(item)
            if position >= len(data):
                raise ValueError("unclosed list")
            if data[position] == 0x29:
                return items, position + 1
            if data[position] == 0x20:
                position += 1
            elif data[position] != 0x28:  # "(body)(body)" has no separator
                raise ValueError(f"bad separator at {position}")
    if byte == 0x22:  # quoted
        out = bytearray()
        position += 1
        while position < len(data):
            current = data[position]
            if current == 0x5C:
                escaped = data[position + 1 : position + 2]
                if escaped not in (b"\\", b'"'):
                    raise ValueError("bad escape")
                out += escaped
                position += 2
                continue
            if current == 0x22:
                return bytes(out), position + 1
            if current in (0x00, 0x0A, 0x0D) or current >= 0x80:
                raise ValueError("forbidden octet in quoted string")
            out.append(current)
            position += 1
        raise ValueError("unterminated quoted string")
    if byte == 0x7B:  # {n}\r\n literal
        close = data.find(b"}\r\n", position)
        if close < 0 or not data[position + 1 : close].isdigit():
            raise ValueError("bad literal")
        size = int(data[position + 1 : close])
        start = close + 3
        if start + size > len(data):
            raise ValueError("short literal")
        value = data[start : start + size]
        if b"\x00" in value:
            raise ValueError("NUL in literal")
        return value, start + size
    if data.startswith(b"NIL", position):
        return None, position + 3
    end = position
    while end < len(data) and 0x30 <= data[end] <= 0x39:
        end += 1
    if end == position:
        raise ValueError(f"unexpected {data[position : position + 10]!r} at {position}")
    return int(data[position:end]), end
