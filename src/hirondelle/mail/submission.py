"""Accepting mail for transport: recipient checks, sender identity, and the hand-off to
delivery or the outbound queue.

Every SMTP listener (MX, LMTP, submission) asks the same questions here, so the rules
exist once:

- :meth:`Transport.check_recipient` (RFC 5321 §3.3 RCPT): local domain or not (relaying
  only for authenticated users), unknown address, recipient over quota (checked again
  at delivery, because the quota may fill between RCPT and DATA);
- :meth:`Transport.check_sender` (RFC 6409 §6.1): a user may send only as one of the
  account's addresses or aliases (with any ``+tag``), in the envelope and in ``From:``;
- :meth:`Transport.prepare_submission` (RFC 6409 §8.1, §8.3): adds ``Message-ID`` and
  ``Date`` when missing, then DKIM-signs for the ``From:`` domain;
- :meth:`Transport.dispatch`: local recipients are delivered through
  :meth:`MailService.deliver` (the one delivery path), remote ones queued; only when
  both have returned is the message durable and may the protocol answer 250. Mail
  that failed DMARC under ``p=quarantine`` goes into each account's Junk mailbox
  instead (RFC 7489 §6.3).
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from hirondelle.errors import Reason, Refused
from hirondelle.mail import dsn
from hirondelle.mail.addresses import normalize_address, split_address, without_subaddress
from hirondelle.mail.delivery import DeliveryOutcome, MailService
from hirondelle.mail.dkim import DkimService
from hirondelle.mail.dsn import header_block
from hirondelle.mail.queue import OutboundQueue, TlsPolicy, tls_policy_of
from hirondelle.mail.recipients import LocalRecipient, Resolution, resolve
from hirondelle.store import directory, mailboxes, recipient_lookup
from hirondelle.store.database import Database
from hirondelle.store.directory import Account
from hirondelle.store.recipient_lookup import RecipientAccount


def header_values(raw: bytes, name: str) -> list[str]:
    """The unfolded values of every ``name:`` field of the header section."""
    text = header_block(raw).decode("utf-8", "surrogateescape")
    unfolded = re.sub(r"\r?\n[ \t]", " ", text)
    prefix = name.lower() + ":"
    return [
        line[len(prefix) :].strip()
        for line in unfolded.splitlines()
        if line.lower().startswith(prefix)
    ]


def prepend_headers(raw: bytes, fields: Sequence[tuple[str, str]]) -> bytes:
    """``raw`` with ``Name: value`` lines added on top (trace fields go first, RFC 5321
    §4.4)."""
    lines = b"".join(f"{name}: {value}\r\n".encode() for name, value in fields)
    return lines + raw


@dataclass(slots=True)
class Routing:
    """Where an accepted message goes: local accounts and remote addresses."""

    account_ids: list[int] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)

    def add(self, resolution: Resolution) -> None:
        for local in resolution.local:
            if local.account_id not in self.account_ids:
                self.account_ids.append(local.account_id)
        for address in resolution.external:
            if address not in self.remote:
                self.remote.append(address)


@dataclass(frozen=True, slots=True)
class Dispatched:
    outcomes: list[DeliveryOutcome]
    queued: list[str]
    #: The outbound queue's message id when some recipients were queued.
    queue_id: int | None = None

    def refused(self) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.refused is not None]


class Transport:
    """The rules SMTP, LMTP and submission share (see the module docstring)."""

    def __init__(
        self,
        *,
        database: Database,
        mail: MailService,
        queue: OutboundQueue,
        dkim: DkimService,
        hostname: str,
    ) -> None:
        self.database = database
        self.mail = mail
        self.queue = queue
        self.dkim = dkim
        self.hostname = hostname
        self._recipient_reads = _RecipientReads(database)

    async def check_recipient(self, address: str, *, may_relay: bool) -> Resolution:
        """RFC 5321 §3.3 RCPT: what ``address`` resolves to, or Refused with INVALID
        (malformed), FORBIDDEN (relaying), NOT_FOUND (unknown) or OVER_QUOTA."""
        normalized = normalize_address(address)
        resolution, accounts = await self._recipient_reads.lookup(normalized)
        if not resolution.is_local_domain and not may_relay:
            raise Refused(Reason.FORBIDDEN, "relay denied")
        if resolution.unknown:
            raise Refused(Reason.NOT_FOUND, f"no mailbox here by that name: {normalized}")
        usable = [a for a in accounts if not a.disabled]
        if resolution.local and not usable and not resolution.external:
            raise Refused(Reason.NOT_FOUND, f"no mailbox here by that name: {normalized}")
        if usable and all(
            a.quota_bytes is not None and a.used_bytes >= a.quota_bytes for a in usable
        ):
            raise Refused(Reason.OVER_QUOTA, f"mailbox full: {normalized}")
        return resolution

    async def allowed_senders(self, account: Account) -> set[str]:
        """The account's address and every alias that leads to it."""

        def read(conn: Connection) -> set[str]:
            allowed = {account.address}
            for alias in directory.list_aliases(conn):
                if alias.address.startswith("@"):
                    continue  # a catch-all is not an identity to send as
                expanded = resolve(conn, alias.address)
                if any(local.account_id == account.id for local in expanded.local):
                    allowed.add(alias.address)
            return allowed

        return await self.database.read(read)

    async def check_sender(self, account: Account, address: str) -> str:
        """RFC 6409 §6.1: the envelope sender must be the user's own; returns it
        normalized. A null reverse-path is refused from a user (it is for bounces)."""
        try:
            normalized = normalize_address(address)
        except Refused:
            raise Refused(Reason.FORBIDDEN, f"you may not send as {address!r}") from None
        allowed = await self.allowed_senders(account)
        base = without_subaddress(normalized)
        if normalized not in allowed and (base is None or base not in allowed):
            raise Refused(Reason.FORBIDDEN, f"{account.address} may not send as {normalized}")
        return normalized

    async def prepare_submission(self, account: Account, raw: bytes) -> bytes:
        """Check ``From:``, add missing Message-ID/Date, DKIM-sign (RFC 6409 §8)."""
        from_values = header_values(raw, "from")
        addresses = [a for _, a in email.utils.getaddresses(from_values) if a]
        if not addresses:
            raise Refused(Reason.FORBIDDEN, "the message has no From: address")
        allowed = await self.allowed_senders(account)
        for address in addresses:
            try:
                normalized = normalize_address(address)
            except Refused:
                raise Refused(Reason.FORBIDDEN, f"you may not send as {address!r}") from None
            base = without_subaddress(normalized)
            if normalized not in allowed and (base is None or base not in allowed):
                raise Refused(Reason.FORBIDDEN, f"{account.address} may not send as {normalized}")
        added: list[tuple[str, str]] = []
        if not header_values(raw, "message-id"):
            # RFC 5322 §3.6.4: globally unique; random left part, our host name right.
            added.append(("Message-ID", f"<{secrets.token_hex(12)}@{self.hostname}>"))
        if not header_values(raw, "date"):
            added.append(("Date", email.utils.formatdate(time.time(), localtime=False)))
        prepared = prepend_headers(raw, added) if added else raw
        _, domain = split_address(normalize_address(addresses[0]))
        return await self.dkim.sign(prepared, domain)

    async def dispatch(
        self,
        raw: bytes,
        routing: Routing,
        *,
        mail_from: str,
        account_id: int | None = None,
        mail_parameters: dsn.MailParameters | None = None,
        recipient_parameters: Mapping[str, dsn.RecipientParameters] | None = None,
        requiretls: bool = False,
        quarantine: bool = False,
    ) -> Dispatched:
        """Deliver to the local accounts and queue the remote addresses. Returns when
        both are durable. The RFC 3461 parameters go with the queued recipients, and
        the RFC 8689 policy (REQUIRETLS, or a ``TLS-Required: No`` field) with the
        message."""
        if not routing.account_ids:
            outcomes: list[DeliveryOutcome] = []
        elif quarantine:
            outcomes = await self._deliver_to_junk(raw, routing.account_ids)
        else:
            outcomes = await self.mail.deliver(raw, routing.account_ids, mail_from=mail_from)
        queue_id = None
        if routing.remote:
            queue_id = await self.queue.enqueue(
                raw,
                mail_from=mail_from,
                recipients=routing.remote,
                account_id=account_id,
                mail_parameters=mail_parameters,
                recipient_parameters=recipient_parameters,
                tls_policy=tls_policy_of(raw, requiretls=requiretls),
            )
        return Dispatched(outcomes, list(routing.remote), queue_id)

    async def _deliver_to_junk(
        self, raw: bytes, account_ids: Sequence[int]
    ) -> list[DeliveryOutcome]:
        """RFC 7489 §6.3 ``p=quarantine``: the message goes into each account's Junk
        mailbox (role ``junk``; the Inbox for an account that has none). Suspicious
        mail earns no auto-reply and is not read as an iMIP message, so it is filed
        with :meth:`MailService.append`, which does neither (the blob is still stored
        once: it is content-addressed)."""
        ids = list(dict.fromkeys(account_ids))

        def read(conn: Connection) -> dict[int, int]:
            found = {}
            for account_id in ids:
                junk = mailboxes.get_mailbox_by_role(conn, account_id, "junk")
                if junk is not None:
                    found[account_id] = junk.id
            return found

        junk_ids = await self.database.read(read)

        async def file(account_id: int, mailbox_id: int) -> DeliveryOutcome:
            try:
                stored = await self.mail.append(
                    account_id=account_id, mailbox_id=mailbox_id, raw=raw
                )
            except Refused as refused:
                return DeliveryOutcome(account_id, refused=refused)
            return DeliveryOutcome(account_id, stored=stored)

        outcomes = list(await asyncio.gather(*(file(a, m) for a, m in junk_ids.items())))
        without = [a for a in ids if a not in junk_ids]
        if without:
            outcomes += await self.mail.deliver(raw, without)
        return outcomes

    async def return_refusals(
        self,
        raw: bytes,
        *,
        mail_from: str,
        refusals: Sequence[tuple[str, Refused]],
        requiretls: bool = False,
    ) -> None:
        """RFC 5321 §6.1: once a message is accepted, a recipient it cannot reach gets
        the sender a notice (RFC 3464) instead of silence."""
        statuses = [
            dsn.RecipientStatus(
                address=address,
                action="failed",
                status="5.2.2" if refused.reason is Reason.OVER_QUOTA else "5.0.0",
                diagnostic=f"X-Hirondelle; {refused.message}",
            )
            for address, refused in refusals
        ]
        report = dsn.build_report(
            reporting_host=self.hostname,
            sender=mail_from,
            original=raw,
            recipients=statuses,
            arrival=time.time(),
        )
        await self.queue.return_to_sender(
            mail_from, report, mail=self.mail, tls_policy=_notice_policy(requiretls)
        )

    async def return_delivered(
        self,
        raw: bytes,
        *,
        mail_from: str,
        delivered: Sequence[tuple[str, dsn.RecipientParameters, dsn.Action]],
        mail_parameters: dsn.MailParameters,
        requiretls: bool = False,
    ) -> None:
        """RFC 3461 §4.1 NOTIFY=SUCCESS: one notice (RFC 3464 §2.3.3) for the recipients
        that asked for one, each with its action: "delivered" into a local mailbox, or
        "expanded" when the address is an alias that forwards to several recipients."""
        statuses = [
            dsn.RecipientStatus(
                address=address,
                action=action,
                status="2.0.0",
                diagnostic="",
                orcpt=params.orcpt,
            )
            for address, params, action in delivered
            if params.wants("SUCCESS")
        ]
        if not statuses or not mail_from:
            return
        report = dsn.build_report(
            reporting_host=self.hostname,
            sender=mail_from,
            original=raw,
            recipients=statuses,
            arrival=time.time(),
            envid=mail_parameters.envid,
        )
        await self.queue.return_to_sender(
            mail_from, report, mail=self.mail, tls_policy=_notice_policy(requiretls)
        )

    async def save_sent_copy(self, account: Account, raw: bytes) -> None:
        """RFC 6409 leaves the Sent copy to the client; done here only for accounts that
        asked (``save_sent_copy``), since IMAP clients upload their own."""
        sent = await self.database.read(
            lambda conn: mailboxes.get_mailbox_by_role(conn, account.id, "sent")
        )
        if sent is None:
            return
        await self.mail.append(
            account_id=account.id, mailbox_id=sent.id, raw=raw, keywords=["$seen"]
        )


_RecipientRead = tuple[Resolution, list[RecipientAccount]]


def _read_recipient(conn: Connection, normalized: str) -> _RecipientRead:
    """What RCPT needs to know of ``normalized``: its resolution and the accounts it
    leads to."""
    # The common case, an account's own address, in one prepared statement (about a
    # third of the server's store-reader CPU per message went to the general
    # resolution, see docs/performance.md).
    found = recipient_lookup.account_by_address(conn, normalized)
    if found is not None:
        direct = Resolution(
            address=normalized,
            is_local_domain=True,
            local=[LocalRecipient(found.id, found.address)],
        )
        return direct, [found]
    resolution = resolve(conn, normalized)
    accounts = [
        RecipientAccount(
            id=account.id,
            address=account.address,
            disabled=account.disabled,
            quota_bytes=account.quota_bytes,
            used_bytes=account.used_bytes,
        )
        for local in resolution.local
        if (account := directory.get_account_by_id(conn, local.account_id)) is not None
    ]
    return resolution, accounts


class _RecipientReads:
    """The RCPT lookups asked for in one turn of the event loop, read together in one
    store read (one reader-thread hop and one transaction instead of one each: with
    many connections, several RCPTs arrive in the same turn).

    Each lookup still reads a snapshot taken after it was asked for and before it is
    answered, as its own read would; a lookup that raises fails alone, a read that
    fails fails every lookup of its batch."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[str, asyncio.Future[_RecipientRead]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def lookup(self, normalized: str) -> _RecipientRead:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A batch left by another (finished) event loop is not this one's.
            self._loop, self._pending = loop, []
        future: asyncio.Future[_RecipientRead] = loop.create_future()
        self._pending.append((normalized, future))
        if len(self._pending) == 1:
            # Runs after the callbacks already due in this turn, which may add theirs.
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        task = asyncio.ensure_future(self._read(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _read(self, batch: list[tuple[str, asyncio.Future[_RecipientRead]]]) -> None:
        def read(conn: Connection) -> list[_RecipientRead | Exception | None]:
            found: list[_RecipientRead | Exception | None] = []
            for normalized, _ in batch:
                try:
                    found.append(_read_recipient(conn, normalized))
                except Exception as error:  # that lookup's own failure, given to it
                    found.append(error)
                    if conn.dialect.name == "postgresql":
                        # The error aborted PostgreSQL's transaction: every later
                        # statement in it would fail too. The lookups not made yet
                        # (None) are read again in a new batch.
                        found.extend([None] * (len(batch) - len(found)))
                        break
            return found

        results: list[_RecipientRead | Exception | None]
        try:
            results = await self.database.read(read)
        except Exception as error:
            results = [error] * len(batch)
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        again: list[tuple[str, asyncio.Future[_RecipientRead]]] = []
        for (normalized, future), result in zip(batch, results, strict=True):
            if future.done():  # its RCPT was cancelled (the client left)
                continue
            if result is None:
                again.append((normalized, future))
            elif isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        if again:
            if not self._pending:
                asyncio.get_running_loop().call_soon(self._flush)
            self._pending.extend(again)


def _notice_policy(requiretls: bool) -> TlsPolicy:
    # RFC 8689 §5: a notice about a REQUIRETLS message goes with REQUIRETLS.
    return TlsPolicy.REQUIRED if requiretls else TlsPolicy.OPPORTUNISTIC
