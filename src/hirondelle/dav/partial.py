"""RFC 4791 §9.6.1-§9.6.4 and §7.6: partial retrieval of calendar data.

A ``C:calendar-data`` holding ``C:comp`` returns only the selected components and
properties. The selection works on the content lines (RFC 5545 §3.1) rather than on a
parsed object: what is kept is returned octet for octet as stored, and an object that
the parser would normalise (or reject) is answered as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 5545 §3.1: lines of more than 75 octets SHOULD be folded.
_FOLD = 75


@dataclass(frozen=True, slots=True)
class CompSelection:
    """RFC 4791 §9.6.1: ``<!ELEMENT comp ((allprop | prop*), (allcomp | comp*))>``.

    Read literally: without ``allprop`` and without ``prop``, no property is returned;
    without ``allcomp`` and without ``comp``, no sub-component.
    """

    name: str
    allprop: bool = False
    props: tuple[tuple[str, bool], ...] = ()  # (upper-case name, novalue)
    allcomp: bool = False
    comps: tuple[CompSelection, ...] = ()

    def prop(self, name: str) -> tuple[bool, bool]:
        """(kept, novalue) for a property of this component."""
        if self.allprop:
            return True, False
        for wanted, novalue in self.props:
            if wanted == name:
                return True, novalue
        return False, False

    def child(self, name: str) -> CompSelection | None:
        if self.allcomp:
            return CompSelection(name, allprop=True, allcomp=True)
        for comp in self.comps:
            if comp.name == name:
                return comp
        return None


def _logical_lines(text: str) -> list[list[str]]:
    """RFC 5545 §3.1: physical lines grouped by content line (unfolding)."""
    groups: list[list[str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and groups:
            groups[-1].append(line)
        elif line:
            groups.append([line])
    return groups


def _name(unfolded: str) -> str:
    end = len(unfolded)
    for sep in (";", ":"):
        at = unfolded.find(sep)
        if at != -1:
            end = min(end, at)
    return unfolded[:end].upper()


def _without_value(unfolded: str) -> str:
    """RFC 4791 §9.6.4 novalue="yes": the name and parameters, an empty value. The
    value starts at the first colon outside a quoted parameter value (RFC 5545 §3.1)."""
    quoted = False
    for index, char in enumerate(unfolded):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return unfolded[: index + 1]
    return unfolded + ":"


def _fold(line: str) -> list[str]:
    """RFC 5545 §3.1: fold at 75 octets, never inside a UTF-8 sequence."""
    out: list[str] = []
    current = ""
    size = 0
    limit = _FOLD
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, _FOLD
        current += char
        size += width
    out.append(current)
    return out


def select(text: str, selection: CompSelection) -> str:
    """The parts of the iCalendar ``text`` chosen by ``selection`` (whose name is
    VCALENDAR); CRLF line ends, folded lines kept as stored."""
    out: list[str] = []
    # One entry per open component: its selection, or None when it is left out (and so
    # is everything inside it).
    stack: list[CompSelection | None] = []
    for group in _logical_lines(text):
        unfolded = group[0] + "".join(part[1:] for part in group[1:])
        name = _name(unfolded)
        value = unfolded.split(":", 1)[1].strip().upper() if ":" in unfolded else ""
        if name == "BEGIN":
            if not stack:
                current = selection if value == selection.name else None
            else:
                parent = stack[-1]
                current = parent.child(value) if parent is not None else None
            stack.append(current)
            if current is not None:
                out.extend(group)
            continue
        if name == "END":
            if stack and stack.pop() is not None:
                out.extend(group)
            continue
        if not stack or stack[-1] is None:
            continue
        kept, novalue = stack[-1].prop(name)
        if not kept:
            continue
        out.extend(_fold(_without_value(unfolded)) if novalue else group)
    return "\r\n".join(out) + "\r\n" if out else ""
