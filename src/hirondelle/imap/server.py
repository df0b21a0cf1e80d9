"""The IMAP listeners: ``imap`` (port 143, STARTTLS) and ``imaps`` (port 993, implicit
TLS, RFC 8314).

Each accepted connection gets a :class:`Connection` (the byte stream: TLS upgrade,
RFC 4978 COMPRESS=DEFLATE, bounded reads, writes drained with backpressure) and a
:class:`~hirondelle.imap.session.Session` (the state machine). One task per client;
a slow or hostile client only ever waits on its own socket.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import logging
import ssl
import zlib
from typing import TYPE_CHECKING

from hirondelle.imap.commands import load as load_commands
from hirondelle.imap.selected import RecentColumns
from hirondelle.imap.session import Session
from hirondelle.mail.mailboxes import MailboxService
from hirondelle.mail.messages import MessageService

if TYPE_CHECKING:
    from hirondelle.node import Listener, ListenerContext

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
#: Inflated input handed to the parser at once (RFC 4978: a small compressed packet
#: must not expand into unbounded memory).
INFLATE_CHUNK = 256 * 1024
#: Buffered output above which a writer waits for the socket (backpressure).
DRAIN_THRESHOLD = 256 * 1024


class Connection:
    """The byte stream of one client."""

    # No per-instance __dict__: one of these per connection (2,000 idle sessions).
    __slots__ = (
        "_deflate",
        "_inflate",
        "_pending_output",
        "reader",
        "secure",
        "writer",
    )

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, secure: bool
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.secure = secure
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._pending_output = 0

    async def read(self) -> bytes:
        inflate = self._inflate
        if inflate is None:
            return await self.reader.read(READ_SIZE)
        while True:
            if inflate.unconsumed_tail:
                return inflate.decompress(inflate.unconsumed_tail, INFLATE_CHUNK)
            data = await self.reader.read(READ_SIZE)
            if not data:
                return b""
            try:
                out = inflate.decompress(data, INFLATE_CHUNK)
            except zlib.error as error:
                raise ConnectionError(f"bad compressed data: {error}") from None
            if out:
                return out

    def write(self, data: bytes) -> None:
        if self._deflate is not None:
            data = self._deflate.compress(data)
        self.writer.write(data)
        self._pending_output += len(data)

    async def drain(self) -> None:
        if self._deflate is not None:
            self.writer.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
        self._pending_output = 0
        await self.writer.drain()

    async def maybe_drain(self) -> None:
        """Wait for the socket once enough output is buffered (long FETCH responses)."""
        if self._pending_output >= DRAIN_THRESHOLD:
            await self.drain()

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """RFC 9051 §6.2.1: the TLS negotiation begins right after the tagged OK."""
        await self.writer.drain()
        await self.writer.start_tls(context)
        self.secure = True

    def start_compression(self, buffered: bytes) -> bytes:
        """RFC 4978 §3: everything after the tagged OK is deflated, both ways; returns
        the inflated form of what the client already sent compressed."""
        self._inflate = zlib.decompressobj(-15)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        if not buffered:
            return b""
        try:
            return self._inflate.decompress(buffered, INFLATE_CHUNK)
        except zlib.error as error:
            raise ConnectionError(f"bad compressed data: {error}") from None

    async def close(self) -> None:
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


async def start(context: ListenerContext) -> Listener:
    """node.FRONT_ENDS start function for ``imap`` and ``imaps``."""
    from hirondelle.node import Listener  # node imports this module for FRONT_ENDS

    load_commands()
    services = context.services
    mailboxes = MailboxService(services.database)
    messages = MessageService(services.database, services.mail)
    sessions: set[asyncio.Task[None]] = set()
    recent = RecentColumns()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions.add(task)
        peer = writer.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, tuple) else ""
        connection = Connection(reader, writer, secure=context.implicit_tls)
        session = Session(
            services,
            connection,
            tls=context.tls,
            remote=remote,
            mailboxes=mailboxes,
            messages=messages,
            recent=recent,
        )
        try:
            await session.run()
        except asyncio.CancelledError:
            # The listener is stopping: RFC 9051 §7.1.5 BYE before the connection closes.
            with contextlib.suppress(Exception):
                connection.write(session.encoder.bye("Server shutting down"))
                await asyncio.wait_for(connection.drain(), 1)
        except Exception:
            log.exception("IMAP connection from %s ended with an error", remote)
        finally:
            sessions.discard(task)
            await connection.close()

    server = await asyncio.start_server(
        serve,
        sock=context.sock,
        ssl=context.tls if context.implicit_tls else None,
        limit=READ_SIZE,
    )

    async def stop() -> None:
        server.close()
        for task in list(sessions):
            task.cancel()
        if sessions:
            await asyncio.wait(list(sessions), timeout=5)
        await server.wait_closed()

    host, port = context.sock.getsockname()[:2]
    return Listener(name=context.name, host=host, port=port, stop=stop)
