"""Commands valid in any state, and the small session-wide ones.

RFC 9051 §6.1.1 CAPABILITY, §6.1.2 NOOP, §6.1.3 LOGOUT, §6.3.1 ENABLE (RFC 5161),
§6.3.10 NAMESPACE; RFC 2971 ID; RFC 4978 COMPRESS=DEFLATE; RFC 3501 §6.4.1 CHECK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hirondelle import __version__
from hirondelle.imap.commands import ANY, AUTHENTICATED, SELECTED, Bad, Done, No, State, handles
from hirondelle.imap.proto import commands as c
from hirondelle.store.mailboxes import DELIMITER

if TYPE_CHECKING:
    from hirondelle.imap.session import Session

#: RFC 5161 §4 / RFC 9051 §6.3.1: what ENABLE can turn on (QRESYNC implies CONDSTORE,
#: RFC 7162 §3.2.3).
ENABLEABLE = ("IMAP4REV2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT")


@handles(c.Capability, ANY)
async def capability(session: Session, command: c.Capability) -> Done:
    """RFC 9051 §6.1.1."""
    session.write(session.encoder.capability(session.capabilities()))
    return Done()


@handles(c.Noop, ANY)
async def noop(session: Session, command: c.Noop) -> Done:
    """RFC 9051 §6.1.2: the untagged updates come from the session's sync."""
    if session.selected is not None:
        await session.sync(allow_expunge=True)
    return Done()


@handles(c.Check, SELECTED)
async def check(session: Session, command: c.Check) -> Done:
    """RFC 3501 §6.4.1 CHECK: every write is already durable; a NOOP."""
    await session.sync(allow_expunge=True)
    return Done()


@handles(c.Logout, ANY)
async def logout(session: Session, command: c.Logout) -> Done:
    """RFC 9051 §6.1.3: BYE, then the tagged OK, then the server closes."""
    session.write(session.encoder.bye("Logging out"))
    session.deselect()
    session.state = State.LOGOUT
    return Done()


@handles(c.Id, ANY)
async def id_(session: Session, command: c.Id) -> Done:
    """RFC 2971 §3.1: remember the client's name for the audit log; say ours."""
    if command.parameters:
        fields = {k.lower(): v for k, v in command.parameters}
        name = " ".join(v for v in (fields.get("name"), fields.get("version")) if v)
        session.client_id = name[:200]
    session.write(
        session.encoder.id([("name", "Hirondelle"), ("version", __version__), ("vendor", None)])
    )
    return Done()


@handles(c.Enable, AUTHENTICATED)
async def enable(session: Session, command: c.Enable) -> Done:
    """RFC 5161 §3.1: ENABLED lists what this command newly enabled."""
    newly: list[str] = []
    for name in command.capabilities:
        wanted = [name] if name != "QRESYNC" else ["CONDSTORE", "QRESYNC"]
        if name not in ENABLEABLE:
            continue
        for item in wanted:
            if item not in session.enabled:
                session.enabled.add(item)
                if item == name:
                    newly.append("IMAP4rev2" if item == "IMAP4REV2" else item)
    if session.enabled & {"IMAP4REV2", "UTF8=ACCEPT"}:
        # RFC 9051 §6.3.1 / RFC 6855 §3: names and strings are UTF-8 from now on.
        session.encoder.utf8 = True
        session.parser.utf8_names = True
    session.write(session.encoder.enabled(newly))
    return Done()


@handles(c.Namespace, AUTHENTICATED)
async def namespace(session: Session, command: c.Namespace) -> Done:
    """RFC 9051 §6.3.10: one personal namespace, no others."""
    session.write(session.encoder.namespace([("", DELIMITER)], None, None))
    return Done()


@handles(c.Compress, AUTHENTICATED)
async def compress(session: Session, command: c.Compress) -> Done:
    """RFC 4978 §3: OK, then DEFLATE both ways."""
    if command.mechanism != "DEFLATE":
        raise Bad(f"Unknown compression mechanism {command.mechanism}")
    if session.compressed:
        raise No("Compression is already active", "COMPRESSIONACTIVE")
    session.write(session.encoder.ok(command.tag, "DEFLATE active"))
    await session.connection.drain()
    buffered = session.parser.take_buffer()
    session.compressed = True
    inflated = session.connection.start_compression(buffered)
    if inflated:
        session.pending_events.extend(session.parser.feed(inflated))
    return Done(silent=True)
