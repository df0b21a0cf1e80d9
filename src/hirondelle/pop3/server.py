"""The POP3 listeners: ``pop3`` (port 110, STLS) and ``pop3s`` (port 995, implicit TLS,
RFC 8314).

Each connection gets a :class:`hirondelle.pop3.session.Session` over a
:class:`StreamTransport`; the session never sees the socket. Unexpected errors end the
one connection, are logged, and leave the listener running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import TYPE_CHECKING

from hirondelle.pop3.maildrop import node_maildrops
from hirondelle.pop3.session import IDLE_TIMEOUT_SECONDS, LineTooLong, Session

if TYPE_CHECKING:
    from hirondelle.node import Listener, ListenerContext

log = logging.getLogger(__name__)

# How much of an over-long line is read (and thrown away) before the connection is
# closed: a client that never sends a line ending must not keep the session forever.
MAX_DISCARD = 1024 * 1024
READ_SIZE = 64 * 1024


class StreamTransport:
    """A session's connection over asyncio streams, with its own line buffer (so that
    STLS can drop input that was pipelined after it)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tls: ssl.SSLContext | None,
        tls_active: bool,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._tls = tls
        self._buffer = bytearray()
        self.tls_active = tls_active
        self.tls_available = tls is not None
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""

    async def read_line(self, limit: int) -> bytes | None:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                if newline + 1 > limit:
                    del self._buffer[: newline + 1]
                    raise LineTooLong
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line.removesuffix(b"\r")
            if len(self._buffer) > limit:
                await self._skip_line(len(self._buffer))
                raise LineTooLong
            data = await self._reader.read(READ_SIZE)
            if not data:
                return None
            self._buffer += data

    async def _skip_line(self, skipped: int) -> None:
        """Throw away the rest of an over-long line."""
        self._buffer.clear()
        while skipped <= MAX_DISCARD:
            data = await self._reader.read(READ_SIZE)
            if not data:
                raise ConnectionResetError("end of input inside an over-long line")
            newline = data.find(b"\n")
            if newline >= 0:
                self._buffer += data[newline + 1 :]
                return
            skipped += len(data)
        raise ConnectionAbortedError("line without end")

    def write(self, data: bytes) -> None:
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    async def start_tls(self) -> None:
        assert self._tls is not None
        if self._buffer:
            # RFC 2595 §4 forbids pipelining after STLS; this input came in clear and
            # must not be taken as if it had been protected.
            log.info("pop3: %d octets after STLS from %s discarded", len(self._buffer), self.peer)
            self._buffer.clear()
        await self._writer.start_tls(self._tls)
        self.tls_active = True


async def start(
    context: ListenerContext, *, idle_timeout: float = IDLE_TIMEOUT_SECONDS
) -> Listener:
    """Start a ``pop3`` or ``pop3s`` listener on the context's bound socket."""
    # Imported here: node.py imports this module to register the front end.
    from hirondelle.node import Listener

    if context.implicit_tls and context.tls is None:
        raise ValueError(f"{context.name} needs a TLS certificate")
    services = context.services
    shared = node_maildrops(services.database)
    sessions: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            sessions.add(task)
        transport = StreamTransport(
            reader, writer, tls=context.tls, tls_active=context.implicit_tls
        )
        try:
            session = Session(
                transport,
                services,
                shared=shared,
                idle_timeout=idle_timeout,
            )
            await session.run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass  # the client went away or broke TLS: nothing to answer
        except Exception:
            log.exception("pop3 session with %s ended by an unexpected error", transport.peer)
        finally:
            if task is not None:
                sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(
        serve, sock=context.sock, ssl=context.tls if context.implicit_tls else None
    )

    async def stop() -> None:
        server.close()
        for task in list(sessions):
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()

    host, port = context.sock.getsockname()[:2]
    return Listener(name=context.name, host=host, port=port, stop=stop)
