"""The outbound queue: mail for other servers, kept in SQL until it is delivered or
returned (RFC 5321 §4.5.4 retry strategy, §5 address resolution).

- :class:`OutboundQueue` adds messages (after which the caller may answer 250) and is
  what ``hirondelle queue list|retry|delete`` use.
- :class:`QueueWorker`, started by the node, claims due recipients, groups them per
  domain and sends over one connection per domain (opportunistic STARTTLS, RFC 3207),
  through the domain's MX hosts (dnspython's asyncio resolver, falling back to the
  domain's own address when it has no MX, RFC 5321 §5.1; a null MX, RFC 7505, is a
  permanent failure), or through a smarthost (``[smtp] relay``).
- A 5xx reply is permanent: the sender gets a delivery status notification
  (``mail/dsn.py``). A 4xx reply or a network error is temporary: the recipient is
  retried after ``retry_initial_seconds``, doubling up to 4 hours, until
  ``queue_lifetime_seconds`` have passed; after ``delay_warning_seconds`` the sender gets
  one delay notice.
- RFC 3461: each recipient's NOTIFY decides which notices go (none for NEVER; the
  default is FAILURE,DELAY). A remote server that offers DSN gets RET, ENVID, NOTIFY and
  ORCPT passed on and sends any later notice itself (§5.2.2); one that does not gets the
  sender a "relayed" notice for NOTIFY=SUCCESS recipients once it accepted the message.
- RFC 8689 (REQUIRETLS): a message received with ``MAIL FROM ... REQUIRETLS`` goes only
  over STARTTLS with a certificate that verifies against the trusted roots for the MX
  name, to a next hop that offers REQUIRETLS (and gets the option passed on, §4.2.1);
  a host that does not qualify is left for the next MX, and when none qualifies the
  message is returned with status 5.7.30 (§5). MTA-STS and DANE are not implemented,
  so the MX name itself is taken from DNS as it comes (§4.2.1 asks for DNSSEC or
  MTA-STS there). A message with a ``TLS-Required: No`` header field (§3, §4.2.2) is
  sent in clear text when the STARTTLS negotiation with a host fails, rather than
  waiting for it to be repaired. Notices about a REQUIRETLS message carry only its
  header section and are themselves sent with REQUIRETLS (§5).

Delivery is at-least-once: a worker that dies after the remote 250 and before the
queue row is removed sends that recipient again after the claim's lease (the same
trade-off as every MTA; RFC 5321 §6.1 accepts duplicates, never loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import ssl
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Protocol

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.resolver

from hirondelle import tls
from hirondelle.config import Settings
from hirondelle.errors import Refused
from hirondelle.mail import dsn
from hirondelle.mail.delivery import MailService
from hirondelle.mail.recipients import resolve
from hirondelle.store import queue as queue_store
from hirondelle.store.blobs import FileBlobStore
from hirondelle.store.database import Database, WriteContext, now_us
from hirondelle.store.queue import QueuedRecipient

log = logging.getLogger(__name__)

MAX_RETRY_INTERVAL_SECONDS = 4 * 3600
# How long a claimed recipient is reserved for the worker that claimed it.
CLAIM_LEASE_SECONDS = 600
CLAIM_BATCH = 100


class TlsPolicy(StrEnum):
    """How a queued message may travel (RFC 8689), kept in ``queue_messages.tls_policy``."""

    #: STARTTLS when offered, any certificate (RFC 7435 opportunistic security).
    OPPORTUNISTIC = ""
    #: ``MAIL FROM ... REQUIRETLS`` (§4.2.1): verified TLS and REQUIRETLS at every hop.
    REQUIRED = "required"
    #: ``TLS-Required: No`` (§4.2.2): clear text when TLS cannot be negotiated.
    NOT_REQUIRED = "not-required"


_TLS_REQUIRED_NO = re.compile(rb"(?im)^TLS-Required:[ \t]*No[ \t]*\r?$")


def tls_policy_of(raw: bytes, *, requiretls: bool) -> TlsPolicy:
    """RFC 8689 §4.1: the REQUIRETLS option wins and the header field is then ignored;
    otherwise a ``TLS-Required: No`` field in the header section relaxes the policy."""
    if requiretls:
        return TlsPolicy.REQUIRED
    if _TLS_REQUIRED_NO.search(dsn.header_block(raw)):
        return TlsPolicy.NOT_REQUIRED
    return TlsPolicy.OPPORTUNISTIC


class TemporaryFailure(Exception):
    """Try again later (DNS timeout, connection refused, a 4xx reply)."""


class PermanentFailure(Exception):
    """Give up and tell the sender (no such domain, null MX, a 5xx reply)."""

    def __init__(self, message: str, *, status: str = "5.0.0") -> None:
        super().__init__(message)
        self.status = status


class TlsUnmet(Exception):
    """A host that cannot carry a REQUIRETLS message (RFC 8689 §4.2.1): no STARTTLS, a
    certificate that does not verify, or no REQUIRETLS after STARTTLS."""


class StartTlsFailed(aiosmtplib.SMTPException):
    """The STARTTLS negotiation with a host failed (refused, TLS alert, cut short)."""


class _Tls(Enum):
    """How one connection to a host uses TLS."""

    OPPORTUNISTIC = "opportunistic"
    VERIFIED = "verified"  # RFC 8689 §4.2.1
    CLEAR = "clear"  # RFC 8689 §4.2.2 fallback, after STARTTLS failed


@dataclass(frozen=True, slots=True)
class Route:
    """One host to try: ``host`` is what to connect to (an address once DNS has been
    asked), ``name`` the MX name it came from (for logs and the DSN's Remote-MTA)."""

    host: str
    port: int = 25
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.host


class Router(Protocol):
    """Where to send mail for a domain, best first."""

    async def routes(self, domain: str) -> list[Route]: ...


class MxRouter:
    """RFC 5321 §5.1 through DNS with dnspython's asyncio resolver (the loop never
    blocks; ``resolver`` defaults to the system's, a test points one at its own
    server): MX records by preference, equal ones in random order; no MX means the
    domain itself (the implicit MX); a null MX (RFC 7505 §3) refuses all mail. Each
    host's addresses are asked of the same resolver, IPv4 first, then IPv6."""

    def __init__(
        self,
        *,
        port: int = 25,
        timeout: float = 10.0,
        resolver: dns.asyncresolver.Resolver | None = None,
    ) -> None:
        self.port = port
        self.timeout = timeout
        self._resolver = resolver

    @property
    def resolver(self) -> dns.asyncresolver.Resolver:
        # The system's is read (/etc/resolv.conf) on first use, not when a node starts
        # a worker that may only ever use a smarthost.
        if self._resolver is None:
            self._resolver = dns.asyncresolver.get_default_resolver()
        return self._resolver

    async def routes(self, domain: str) -> list[Route]:
        try:
            answer = await self.resolver.resolve(domain, "MX", lifetime=self.timeout)
        except dns.resolver.NXDOMAIN:
            raise PermanentFailure(f"domain {domain} does not exist", status="5.1.2") from None
        except dns.resolver.NoAnswer:
            # RFC 5321 §5.1: no MX, the domain itself is the implicit MX.
            records = [(0, domain)]
        except dns.exception.DNSException as error:
            raise TemporaryFailure(f"DNS lookup of {domain} MX failed: {error}") from None
        else:
            records = [(r.preference, r.exchange.to_text(True)) for r in answer]
            if any(host in ("", ".") for _, host in records):
                # RFC 7505 §3: a null MX says the domain accepts no mail (and must be
                # the only record; with others beside it, the domain is misconfigured,
                # and it said no).
                raise PermanentFailure(f"{domain} accepts no mail (null MX)", status="5.1.10")
            random.shuffle(records)
            records.sort(key=lambda record: record[0])
        routes: list[Route] = []
        failures: list[str] = []
        for _, host in records:
            for address in await self._addresses(host, failures):
                routes.append(Route(address, self.port, host))
        if routes:
            return routes
        if failures:
            raise TemporaryFailure("; ".join(failures))
        # Every lookup answered, and no host has an address (RFC 5321 §5.1: an error).
        raise PermanentFailure(f"no mail server address for {domain}", status="5.4.4")

    async def _addresses(self, host: str, failures: list[str]) -> list[str]:
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, kind, lifetime=self.timeout)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as error:
                failures.append(f"DNS lookup of {host} {kind} failed: {error}")
                continue
            found.extend(record.to_text() for record in answer)
        return found


class StaticRouter:
    """Fixed routes per domain (a test's fake remote MX, or a split-horizon setup)."""

    def __init__(self, routes: Mapping[str, Sequence[Route]]) -> None:
        self._routes = {domain.lower(): list(found) for domain, found in routes.items()}

    async def routes(self, domain: str) -> list[Route]:
        found = self._routes.get(domain.lower())
        if not found:
            raise PermanentFailure(f"no route to {domain}", status="5.1.2")
        return found


class RelayRouter:
    """Everything through one smarthost (``[smtp] relay``)."""

    def __init__(self, host: str, port: int) -> None:
        self._route = Route(host, port)

    async def routes(self, domain: str) -> list[Route]:
        return [self._route]


class OutboundQueue:
    """Adding to and administering the queue."""

    def __init__(self, database: Database, blobs: FileBlobStore) -> None:
        self.database = database
        self.blobs = blobs

    async def enqueue(
        self,
        raw: bytes,
        *,
        mail_from: str,
        recipients: Sequence[str],
        account_id: int | None = None,
        mail_parameters: dsn.MailParameters | None = None,
        recipient_parameters: Mapping[str, dsn.RecipientParameters] | None = None,
        tls_policy: TlsPolicy = TlsPolicy.OPPORTUNISTIC,
    ) -> int:
        """Store ``raw`` durably and queue it; returns after commit (so 250 is safe)."""
        message = mail_parameters or dsn.MailParameters()
        per_recipient = {
            address: (params.notify, params.orcpt)
            for address, params in (recipient_parameters or {}).items()
        }
        blob = await self.blobs.put(raw)
        return await self.database.write(
            lambda ctx: queue_store.enqueue(
                ctx,
                blob=blob,
                mail_from=mail_from,
                recipients=recipients,
                account_id=account_id,
                ret=message.ret,
                envid=message.envid,
                dsn_parameters=per_recipient,
                tls_policy=tls_policy.value,
            )
        )

    async def entries(self) -> list[QueuedRecipient]:
        return await self.database.read(queue_store.list_recipients)

    async def retry(self, message_ids: Sequence[int] | None = None) -> int:
        """Make queued recipients due now (all, or those of ``message_ids``)."""
        now = now_us()
        return await self.database.write(
            lambda ctx: queue_store.retry_now(ctx, message_ids, now=now)
        )

    async def delete(self, message_ids: Sequence[int]) -> int:
        """Drop messages from the queue without telling anyone; how many recipients."""

        def write(ctx: WriteContext) -> int:
            ids = queue_store.recipient_ids_of(ctx.conn, message_ids)
            return queue_store.remove_recipients(ctx, ids)

        return await self.database.write(write)

    async def return_to_sender(
        self,
        sender: str,
        report: bytes,
        *,
        mail: MailService,
        tls_policy: TlsPolicy = TlsPolicy.OPPORTUNISTIC,
    ) -> None:
        """Deliver a notice: a local sender gets it in the Inbox at once, a remote one by
        mail with the null reverse-path (RFC 5321 §4.5.5). A null sender gets nothing.
        A notice about a REQUIRETLS message goes with REQUIRETLS too (RFC 8689 §5)."""
        if not sender:
            log.warning("a delivery notice for the null sender was dropped")
            return
        try:
            resolution = await self.database.read(lambda conn: resolve(conn, sender))
        except Refused:
            log.warning("cannot return a notice to %r: not an address", sender)
            return
        if resolution.local:
            await mail.deliver(report, [local.account_id for local in resolution.local])
        if resolution.external:
            required = tls_policy is TlsPolicy.REQUIRED
            await self.enqueue(
                report,
                mail_from="",
                recipients=resolution.external,
                tls_policy=TlsPolicy.REQUIRED if required else TlsPolicy.OPPORTUNISTIC,
            )


@dataclass(frozen=True, slots=True)
class _Result:
    recipient: QueuedRecipient
    code: int  # SMTP reply code, 0 for a network or DNS failure
    text: str
    status: str
    remote: str
    # Accepted by a server without DSN: the notices are ours to send (RFC 3461 §5.2.2.4).
    relayed: bool = False

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class QueueWorker:
    """Sends what is due, then sleeps until the next due time or ``poll_interval``
    (polling lets every node see what other nodes queued)."""

    def __init__(
        self,
        *,
        database: Database,
        blobs: FileBlobStore,
        mail: MailService,
        settings: Settings,
        router: Router | None = None,
        poll_interval: float = 1.0,
        connect_timeout: float = 30.0,
        verified_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.mail = mail
        self.settings = settings
        smtp = settings.smtp
        if router is not None:
            self.router: Router = router
        elif smtp.relay is not None:
            self.router = RelayRouter(smtp.relay.host, smtp.relay.port)
        else:
            self.router = MxRouter()
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        # RFC 8689 §4.2.1: REQUIRETLS hops are verified against the system's trusted
        # roots (a test gives a context that trusts its own CA).
        self.verified_tls = verified_tls or tls.client_context()
        self.queue = OutboundQueue(database, blobs)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="outbound-queue")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbound queue run failed; retrying in %ss", self.poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_interval)

    # -- one pass ----------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim every due recipient and try it; returns how many were tried."""
        now = now_us()
        # A read first: an idle queue costs no write transaction (and no fsync).
        due = await self.database.read(queue_store.next_due)
        if due is None or due > now:
            return 0
        claimed = await self.database.write(
            lambda ctx: queue_store.claim_due(
                ctx, now=now, lease_us=CLAIM_LEASE_SECONDS * 1_000_000, limit=CLAIM_BATCH
            )
        )
        if not claimed:
            return 0
        by_domain: dict[str, list[QueuedRecipient]] = defaultdict(list)
        for recipient in claimed:
            by_domain[recipient.domain].append(recipient)
        results = await asyncio.gather(
            *(self._send_domain(domain, group) for domain, group in by_domain.items())
        )
        for group_results in results:
            await self._record(group_results)
        return len(claimed)

    async def _send_domain(self, domain: str, group: list[QueuedRecipient]) -> list[_Result]:
        """RFC 5321 §5.1: try each route in order; one connection carries every message
        of the domain (connection reuse), REQUIRETLS messages one of their own."""
        try:
            routes = await self.router.routes(domain)
        except PermanentFailure as failure:
            return [_Result(r, 550, str(failure), failure.status, "") for r in group]
        except TemporaryFailure as failure:
            return [_Result(r, 0, str(failure), "4.4.3", "") for r in group]
        by_policy: dict[str, list[QueuedRecipient]] = defaultdict(list)
        for recipient in group:
            by_policy[recipient.tls_policy].append(recipient)
        results: list[_Result] = []
        for policy, recipients in by_policy.items():
            results += await self._send_routes(routes, recipients, TlsPolicy(policy))
        return results

    async def _send_routes(
        self, routes: list[Route], group: list[QueuedRecipient], policy: TlsPolicy
    ) -> list[_Result]:
        last_error = "no route"
        unmet: list[str] = []
        for route in routes:
            mode = _Tls.VERIFIED if policy is TlsPolicy.REQUIRED else _Tls.OPPORTUNISTIC
            try:
                return await self._send_over(route, group, mode)
            except TlsUnmet as error:
                # RFC 8689 §4.2.1: this host cannot carry the message; the next may.
                unmet.append(f"{route.label}: {error}")
                log.info("outbound: REQUIRETLS: %s", unmet[-1])
                continue
            except (OSError, TimeoutError, aiosmtplib.SMTPException) as error:
                last_error = f"{route.label}:{route.port}: {error}"
                log.info("outbound: %s", last_error)
                if not (policy is TlsPolicy.NOT_REQUIRED and isinstance(error, StartTlsFailed)):
                    continue
            # RFC 8689 §4.2.2: "TLS-Required: No", and STARTTLS failed: clear text.
            try:
                return await self._send_over(route, group, _Tls.CLEAR)
            except (OSError, TimeoutError, aiosmtplib.SMTPException) as error:
                last_error = f"{route.label}:{route.port}: {error}"
                log.info("outbound: %s", last_error)
        if unmet and len(unmet) == len(routes):
            # RFC 8689 §5: no host qualifies, a permanent failure (5.7.30).
            reason = "REQUIRETLS support required (RFC 8689): " + "; ".join(unmet)
            return [_Result(r, 550, reason, "5.7.30", "") for r in group]
        return [_Result(r, 0, last_error, "4.4.1", "") for r in group]

    async def _send_over(
        self, route: Route, group: list[QueuedRecipient], mode: _Tls
    ) -> list[_Result]:
        smtp_settings = self.settings.smtp
        authenticating = smtp_settings.relay is not None and bool(smtp_settings.relay_username)
        if mode is _Tls.CLEAR and authenticating:
            raise aiosmtplib.SMTPException("no clear text to a smarthost that gets a password")
        client = aiosmtplib.SMTP(
            hostname=route.host,
            port=route.port,
            local_hostname=self.settings.server.hostname,
            timeout=self.connect_timeout,
            # A smarthost that gets our password must offer TLS with a valid certificate
            # (aiosmtplib's STARTTLS at connect); other hosts get theirs below.
            start_tls=authenticating and mode is _Tls.OPPORTUNISTIC,
            validate_certs=authenticating,
            use_tls=False,
        )
        await client.connect()
        results: list[_Result] = []
        try:
            if mode is _Tls.VERIFIED:
                await self._require_tls(client, route)
            elif mode is _Tls.OPPORTUNISTIC and not authenticating:
                await _opportunistic_tls(client)
            if client.is_ehlo_or_helo_needed:
                # After STARTTLS the extensions are forgotten until the next EHLO
                # (RFC 3207 §4.2), and the SMTPUTF8 and DSN choices below read them.
                await client.ehlo()
            if authenticating:
                await client.login(smtp_settings.relay_username, smtp_settings.relay_password)
            by_message: dict[int, list[QueuedRecipient]] = defaultdict(list)
            for recipient in group:
                by_message[recipient.message_id].append(recipient)
            for recipients in by_message.values():
                results.extend(
                    await self._send_message(
                        client, route, recipients, requiretls=mode is _Tls.VERIFIED
                    )
                )
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        return results

    async def _require_tls(self, client: aiosmtplib.SMTP, route: Route) -> None:
        """RFC 8689 §4.2.1: STARTTLS, a certificate that verifies for the MX name, then
        REQUIRETLS in the EHLO reply after TLS; :class:`TlsUnmet` otherwise."""
        await client.ehlo()
        if not client.supports_extension("starttls"):
            raise TlsUnmet("the server does not offer STARTTLS")
        try:
            await client.starttls(server_hostname=route.label, tls_context=self.verified_tls)
        except (ssl.SSLError, ssl.CertificateError) as error:
            raise TlsUnmet(f"TLS negotiation or certificate verification failed: {error}") from None
        except aiosmtplib.SMTPResponseException as error:
            raise TlsUnmet(f"STARTTLS refused: {error.code} {error.message}") from None
        await client.ehlo()
        if not client.supports_extension("requiretls"):
            raise TlsUnmet("the server does not offer REQUIRETLS")

    async def _send_message(
        self,
        client: aiosmtplib.SMTP,
        route: Route,
        recipients: list[QueuedRecipient],
        *,
        requiretls: bool,
    ) -> list[_Result]:
        first = recipients[0]
        remote = route.label
        raw = await self.blobs.get(first.blob_hash)
        options: list[str] = []
        encoding = "ascii"
        addresses = [first.mail_from, *(r.address for r in recipients)]
        if not all(address.isascii() for address in addresses):
            # RFC 6531 §3.5: an internationalized address needs SMTPUTF8 at the next
            # hop; without it the message cannot be delivered, now or later.
            if not client.supports_extension("smtputf8"):
                reason = "the receiving server does not support SMTPUTF8 (RFC 6531)"
                return [_Result(r, 553, reason, "5.6.7", remote) for r in recipients]
            options.append("SMTPUTF8")
            encoding = "utf-8"
        if not raw.isascii() and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")  # RFC 6152
        if requiretls:
            options.append("REQUIRETLS")  # RFC 8689 §4.2.1
        # RFC 3461 §5.2.2: the parameters go on to a server that offers DSN.
        passing_dsn = client.supports_extension("dsn")
        if passing_dsn:
            if first.ret:
                options.append(f"RET={first.ret}")
            if first.envid:
                options.append(f"ENVID={dsn.encode_xtext(first.envid)}")
        try:
            await client.mail(first.mail_from, options=options, encoding=encoding)
        except aiosmtplib.SMTPResponseException as error:
            await _reset(client)
            return [
                _Result(r, error.code, error.message, _status(error), remote) for r in recipients
            ]
        accepted: list[QueuedRecipient] = []
        results: list[_Result] = []
        for recipient in recipients:
            try:
                await client.rcpt(
                    recipient.address,
                    options=_rcpt_options(recipient) if passing_dsn else [],
                    encoding=encoding,
                )
            except aiosmtplib.SMTPResponseException as error:
                results.append(
                    _Result(recipient, error.code, error.message, _status(error), remote)
                )
            else:
                accepted.append(recipient)
        if not accepted:
            await _reset(client)
            return results
        try:
            response = await client.data(raw)
        except aiosmtplib.SMTPResponseException as error:
            await _reset(client)
            return results + [
                _Result(r, error.code, error.message, _status(error), remote) for r in accepted
            ]
        return results + [
            _Result(r, response.code, response.message, "2.0.0", remote, relayed=not passing_dsn)
            for r in accepted
        ]

    async def _record(self, results: list[_Result]) -> None:
        now = now_us()
        lifetime = self.settings.smtp.queue_lifetime_seconds * 1_000_000
        warn_after = self.settings.smtp.delay_warning_seconds * 1_000_000
        done: list[int] = []
        failed: list[_Result] = []
        relayed: list[_Result] = []
        for result in results:
            recipient = result.recipient
            if result.delivered:
                log.info("outbound: %s delivered via %s", recipient.address, result.remote)
                done.append(recipient.id)
                if result.relayed and _wants(recipient, "SUCCESS"):
                    relayed.append(result)
            elif result.permanent:
                log.info("outbound: %s failed: %s", recipient.address, result.text)
                done.append(recipient.id)
                failed.append(result)
            elif now - recipient.created_at >= lifetime:
                # RFC 3463 X.4.7: delivery time expired; final, so class 5 (RFC 3464).
                log.info("outbound: %s expired: %s", recipient.address, result.text)
                done.append(recipient.id)
                failed.append(dataclasses.replace(result, status="5.4.7"))
        delayed = [
            r
            for r in results
            if not r.delivered
            and r.recipient.id not in done
            and not r.recipient.delay_warned
            and now - r.recipient.created_at >= warn_after
        ]
        # Notices first: once the rows are gone, so is the original message.
        await self._notify([r for r in failed if _wants(r.recipient, "FAILURE")], action="failed")
        await self._notify([r for r in delayed if _wants(r.recipient, "DELAY")], action="delayed")
        await self._notify(relayed, action="relayed")
        warned = {r.recipient.id for r in delayed}
        # Kept for EmailSubmission deliveryStatus once the rows are gone (issue 7).
        outcomes = {
            (r.recipient.message_id, r.recipient.address): queue_store.Outcome(
                r.delivered, _reply(r)
            )
            for r in results + failed
            if r.recipient.id in done
        }

        def write(ctx: WriteContext) -> None:
            for result in results:
                if result.recipient.id in done:
                    continue
                interval = min(
                    self.settings.smtp.retry_initial_seconds * 2**result.recipient.attempts,
                    MAX_RETRY_INTERVAL_SECONDS,
                )
                queue_store.reschedule(
                    ctx,
                    result.recipient.id,
                    next_attempt_at=now + interval * 1_000_000,
                    error=_diagnostic(result),
                    delay_warned=True if result.recipient.id in warned else None,
                )
            queue_store.remove_recipients(ctx, done)
            queue_store.record_outcomes(ctx, outcomes, now=now)

        await self.database.write(write)

    async def _notify(self, results: list[_Result], *, action: dsn.Action) -> None:
        """RFC 3464 notices to each sender, one per message."""
        by_message: dict[int, list[_Result]] = defaultdict(list)
        for result in results:
            by_message[result.recipient.message_id].append(result)
        for group in by_message.values():
            first = group[0].recipient
            if not first.mail_from:
                log.warning("outbound: a notification could not be delivered; dropped")
                continue
            original = await self.blobs.get(first.blob_hash)
            policy = TlsPolicy(first.tls_policy)
            required = policy is TlsPolicy.REQUIRED
            status = [
                dsn.RecipientStatus(
                    address=r.recipient.address,
                    action=action,
                    status=_notice_status(r, action),
                    diagnostic=_diagnostic(r),
                    remote_mta=r.remote,
                    orcpt=r.recipient.orcpt,
                )
                for r in group
            ]
            report = dsn.build_report(
                reporting_host=self.settings.server.hostname,
                sender=first.mail_from,
                original=original,
                recipients=status,
                arrival=first.created_at / 1_000_000,
                envid=first.envid,
                # RFC 8689 §5: as if RET=HDRS, whatever the sender asked.
                ret="HDRS" if required else first.ret,
            )
            await self.queue.return_to_sender(
                first.mail_from, report, mail=self.mail, tls_policy=policy
            )


def _wants(recipient: QueuedRecipient, keyword: str) -> bool:
    return dsn.RecipientParameters(recipient.notify, recipient.orcpt).wants(keyword)


def _rcpt_options(recipient: QueuedRecipient) -> list[str]:
    """RFC 3461 §4.1-4.2 RCPT parameters, as received (ORCPT re-encoded as xtext)."""
    options = [f"NOTIFY={recipient.notify}"] if recipient.notify else []
    if recipient.orcpt:
        addr_type, _, address = recipient.orcpt.partition(";")
        options.append(f"ORCPT={addr_type};{dsn.encode_xtext(address)}")
    return options


def _notice_status(result: _Result, action: dsn.Action) -> str:
    if action == "failed":
        return result.status
    return "4.4.7" if action == "delayed" else "2.0.0"


async def _opportunistic_tls(client: aiosmtplib.SMTP) -> None:
    """Opportunistic STARTTLS (RFC 3207): used when offered, without insisting on a
    certificate that matches (MX names rarely do; RFC 7435)."""
    await client.ehlo()
    if not client.supports_extension("starttls"):
        return
    try:
        await client.starttls(validate_certs=False)
    except (
        ssl.SSLError,
        aiosmtplib.SMTPResponseException,
        aiosmtplib.SMTPServerDisconnected,
    ) as error:
        raise StartTlsFailed(f"STARTTLS failed: {error}") from error


async def _reset(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.rset()


def _status(error: aiosmtplib.SMTPResponseException) -> str:
    """The enhanced status code of a reply (RFC 3463), or one implied by its class."""
    words = error.message.split(maxsplit=1)
    if words and words[0].count(".") == 2 and words[0][0] in "245":
        return words[0]
    return "5.0.0" if error.code >= 500 else "4.0.0"


def _reply(result: _Result) -> str:
    """The final SMTP reply of a recipient: the remote's, or one made of the enhanced
    status when there was none (network failure until expiry)."""
    if result.code:
        return f"{result.code} {result.text}"
    return f"{554 if result.status.startswith('5') else 451} {result.status} {result.text}"


def _diagnostic(result: _Result) -> str:
    if result.code:
        return f"smtp; {result.code} {result.text}"
    return f"X-Hirondelle; {result.text}"
