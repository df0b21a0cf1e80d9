"""One node: every listener of the configuration in one asyncio process.

Each listener binds its socket first (so port 0 resolves to a real port), starts
accepting, and only then is announced with ``listening NAME HOST:PORT``: a script that
waits for that line can connect at once.

Protocol front ends register here as they are built; a listener configured for a front
end this version does not have is refused at start-up with a clear message rather than
silently ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from hirondelle import tls
from hirondelle.config import Endpoint, Settings
from hirondelle.identity import housekeeping
from hirondelle.imap import server as imap_server
from hirondelle.jmap import push_sender
from hirondelle.mail.queue import QueueWorker
from hirondelle.pop3 import server as pop3_server
from hirondelle.services import Services, open_services
from hirondelle.smtp import server as smtp_server
from hirondelle.web.app import create_app

log = logging.getLogger(__name__)


class ListenerUnavailable(Exception):
    pass


@dataclass
class ListenerContext:
    """What a front end gets to start one listener."""

    name: str
    sock: socket.socket
    services: Services
    # The server TLS context (hirondelle.tls policy), for implicit TLS and STARTTLS.
    tls: ssl.SSLContext | None
    # Whether this listener speaks TLS from the first byte (imaps, pop3s, https...).
    implicit_tls: bool
    # Every listener of the node, name -> "host:port" (for status pages, greetings).
    addresses: dict[str, str]


@dataclass
class Listener:
    name: str
    host: str
    port: int
    stop: Callable[[], Awaitable[None]]

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def bind(endpoint: Endpoint) -> socket.socket:
    """A listening TCP socket for ``endpoint`` (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when it
    # sees that proto, and without it Nagle's algorithm holds the second of two
    # pipelined replies until the client's delayed ACK (40 ms a round trip).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((endpoint.host, endpoint.port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise ListenerUnavailable(
            f"cannot listen on {endpoint}: {error.strerror or error}"
        ) from None
    return sock


StartListener = Callable[[ListenerContext], Awaitable[Listener]]


@dataclass(frozen=True)
class FrontEnd:
    """How a listener name is served: the front end's start function, and whether the
    listener is implicit TLS. Front ends register below as they are built."""

    start: StartListener
    implicit_tls: bool


async def _start_http_listener(context: ListenerContext) -> Listener:
    app = create_app(context.services, listeners=context.addresses)
    return await _start_http(
        context.name, context.sock, app, context.tls if context.implicit_tls else None
    )


# Listener name -> front end. A [listen] key without an entry here is refused at start.
FRONT_ENDS: dict[str, FrontEnd] = {
    "http": FrontEnd(_start_http_listener, implicit_tls=False),
    "https": FrontEnd(_start_http_listener, implicit_tls=True),
    "imap": FrontEnd(imap_server.start, implicit_tls=False),
    "imaps": FrontEnd(imap_server.start, implicit_tls=True),
    "pop3": FrontEnd(pop3_server.start, implicit_tls=False),
    "pop3s": FrontEnd(pop3_server.start, implicit_tls=True),
    "smtp": FrontEnd(smtp_server.start_smtp, implicit_tls=False),
    "submission": FrontEnd(smtp_server.start_submission, implicit_tls=False),
    "submissions": FrontEnd(smtp_server.start_submission, implicit_tls=True),
    "lmtp": FrontEnd(smtp_server.start_lmtp, implicit_tls=False),
}


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.listeners: list[Listener] = []
        self.queue_worker: QueueWorker | None = None
        self._stopping = asyncio.Event()
        # The certificate every TLS listener serves; reloaded from its files on SIGHUP.
        self.tls: tls.ReloadableServerContext | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._prestart: asyncio.Task[None] | None = None

    def check_listeners(self) -> None:
        missing = [name for name in self.settings.listen.enabled() if name not in FRONT_ENDS]
        if missing:
            raise ListenerUnavailable(
                "this version of Hirondelle has no "
                + ", ".join(missing)
                + " server yet; remove "
                + ("that key" if len(missing) == 1 else "those keys")
                + " from [listen]"
            )

    async def start(self, *, announce: Callable[[Listener], None] = lambda _listener: None) -> None:
        self.check_listeners()
        self.services = open_services(self.settings)
        try:
            enabled = self.settings.listen.enabled()
            server_tls = self._server_tls(enabled)
            tls.limit_read_buffers()
            sockets = {name: bind(endpoint) for name, endpoint in enabled.items()}
            addresses = {name: _address(sock) for name, sock in sockets.items()}
            for name, sock in sockets.items():
                front_end = FRONT_ENDS[name]
                listener = await front_end.start(
                    ListenerContext(
                        name=name,
                        sock=sock,
                        services=self.services,
                        tls=server_tls,
                        implicit_tls=front_end.implicit_tls,
                        addresses=addresses,
                    )
                )
                self.listeners.append(listener)
                announce(listener)
            # Mail transport: the outbound queue worker (sends what submission queued).
            self.queue_worker = QueueWorker(
                database=self.services.database,
                blobs=self.services.blobs,
                mail=self.services.mail,
                settings=self.settings,
            )
            self.queue_worker.start()
            # Audit log and login-limit pruning (now, then daily), LDAP sync.
            await housekeeping.prune(self.services)
            self._housekeeping = asyncio.create_task(housekeeping.run(self.services))
            # JMAP push subscriptions (RFC 8620 §7.2): loaded, and what they missed sent.
            await push_sender.dispatcher_of(self.services).start()
            # The parse workers come up beside the listeners, not at the first message.
            self._prestart = asyncio.create_task(self._start_parse_workers())
        except BaseException:
            await self.stop()
            raise

    async def _start_parse_workers(self) -> None:
        assert self.services is not None
        try:
            await self.services.mail.parse_workers.prestart()
        except Exception:
            # Not fatal: a parse starts a worker when it needs one, or fails alone.
            log.exception("the parse workers could not be started")

    def _server_tls(self, enabled: dict[str, Endpoint]) -> ssl.SSLContext | None:
        """The TLS context every listener gets (STARTTLS needs it on plain ports too).
        Without a certificate, plain listeners run without STARTTLS; implicit-TLS ones
        cannot run at all."""
        try:
            self.tls = tls.ReloadableServerContext.from_settings(self.settings)
            return self.tls.context
        except (OSError, ssl.SSLError) as error:
            needing = [name for name in enabled if FRONT_ENDS[name].implicit_tls]
            if needing:
                raise ListenerUnavailable(
                    f"cannot load the TLS certificate {self.settings.certificate_path()} "
                    f"for {', '.join(needing)}: {getattr(error, 'strerror', None) or error}"
                ) from None
            log.warning("no usable TLS certificate (%s): STARTTLS is not offered", error)
            return None

    def reload_tls(self) -> bool:
        """Load the certificate and key files again (SIGHUP): new connections get the new
        certificate, open ones keep theirs. A broken pair is refused with a log line and
        the current certificate stays in service. True when the new one is in service."""
        if self.tls is None:
            log.warning("SIGHUP: no TLS certificate was loaded at start; restart to add one")
            return False
        try:
            self.tls.reload()
        except (OSError, ssl.SSLError, ValueError) as error:
            log.error(
                "SIGHUP: the certificate %s or key %s cannot be used (%s); the current "
                "certificate stays in service",
                self.settings.certificate_path(),
                self.settings.key_path(),
                getattr(error, "strerror", None) or error,
            )
            return False
        info = tls.certificate_info(self.settings.certificate_path())
        log.info(
            "SIGHUP: certificate reloaded: %s, valid until %s, SHA-256 %s",
            info.subject,
            info.not_after.isoformat(),
            info.fingerprint_sha256,
        )
        return True

    async def stop(self) -> None:
        if self._prestart is not None:
            self._prestart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prestart
            self._prestart = None
        if self.services is not None:
            await push_sender.dispatcher_of(self.services).stop()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
            self._housekeeping = None
        if self.queue_worker is not None:
            await self.queue_worker.stop()
            self.queue_worker = None
        for listener in reversed(self.listeners):
            try:
                await listener.stop()
            except Exception:
                log.exception("stopping %s", listener.name)
        self.listeners.clear()
        if self.services is not None:
            # Vacation replies of the last deliveries finish before the store closes.
            await self.services.vacation.idle()
            self.services.close()
            self.services = None

    async def serve_until_signalled(
        self,
        *,
        announce: Callable[[Listener], None] = lambda _listener: None,
        after_start: Callable[[Node], None] | None = None,
    ) -> None:
        """Start, serve until SIGTERM or SIGINT, stop. The signal handlers are in place
        before the first listener is announced and stay until the node has stopped: a
        supervisor may signal as soon as it reads "listening" (while the node still
        prunes the audit log or loads push subscriptions) or signal twice, and the node
        still stops cleanly instead of dying from the signal's default action."""
        with self._signals_handled():
            try:
                await self.start(announce=announce)
                # The serving process only: in a process that starts nodes again and
                # again (the tests), frozen objects would pile up.
                _settle_garbage_collector()
                if after_start is not None:
                    after_start(self)
                await self._stopping.wait()
            finally:
                await self.stop()

    async def run_until_signalled(self) -> None:
        """Serve an already started node until SIGTERM or SIGINT, then stop it."""
        with self._signals_handled():
            try:
                await self._stopping.wait()
            finally:
                await self.stop()

    @contextlib.contextmanager
    def _signals_handled(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_tls)
        try:
            yield
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)


def _settle_garbage_collector() -> None:
    """Freeze what start-up made (modules, SQLAlchemy's tables and compiled statements,
    configuration: about 150,000 objects that live as long as the process) out of the
    cyclic collector's sight. Each full collection walked all of them: about 60 ms with
    the event loop stopped, every few seconds under load, mostly triggered while
    unpickling the parse workers' results. Later objects are collected as before."""
    gc.collect()
    gc.freeze()


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# How long stopping the node lets HTTP responses in progress finish before cancelling them.
HTTP_SHUTDOWN_GRACE_SECONDS = 5


async def _start_http(
    name: str, sock: socket.socket, app: Starlette, context: ssl.SSLContext | None
) -> Listener:
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        # Long-lived responses (JMAP EventSource, RFC 8620 §7.3) never end by themselves:
        # without a bound, stopping the node waits for every such client to go away.
        # Clients reconnect to another node, or to this one when it is back.
        timeout_graceful_shutdown=HTTP_SHUTDOWN_GRACE_SECONDS,
    )
    config.load()
    # The one TLS policy of hirondelle.tls, not uvicorn's own defaults.
    config.ssl = context
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    # Set when the listener stops: long-lived responses (EventSource) end themselves then,
    # cleanly, instead of being cancelled after the grace period.
    stopping = asyncio.Event()
    app.state.stopping = stopping
    await server.startup(sockets=[sock])
    main_loop = asyncio.create_task(server.main_loop())

    async def stop() -> None:
        stopping.set()
        server.should_exit = True
        await main_loop
        await server.shutdown(sockets=[sock])
        sock.close()

    host, port = sock.getsockname()[:2]
    return Listener(name=name, host=host, port=port, stop=stop)
