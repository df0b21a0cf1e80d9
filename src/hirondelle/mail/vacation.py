"""Vacation replies: RFC 8621 §8 (VacationResponse) honoured at delivery, with the
rules of RFC 3834 (automatic responses) and RFC 5230 §4 (Sieve vacation) against loops
and noise.

A message gets a reply only when all of these hold:

- the response is enabled and now is within [fromDate, toDate) (RFC 8621 §8);
- it has an envelope sender, which is not a robot: not empty, not ``MAILER-DAEMON``,
  not ``owner-*`` or ``*-request`` (RFC 3834 §2, RFC 5230 §4.6), nor the account itself;
- it is not automatic or bulk: no ``Auto-Submitted`` other than ``no`` (RFC 3834 §5),
  no ``Precedence: bulk/list/junk``, no ``List-*`` field (RFC 2369, RFC 2919);
- one of the account's addresses is in To, Cc, Bcc or Resent-To/Cc/Bcc (RFC 5230 §4.5:
  mail that reached the user through a list or a Bcc of someone else is not answered);
- the sender has not been answered within the last :data:`REPLY_INTERVAL_DAYS` days under
  the same response (RFC 3834 §2; a changed response starts afresh).

The reply (RFC 3834 §3) goes to the envelope sender with a null reverse-path, carries
``Auto-Submitted: auto-replied``, ``In-Reply-To`` and ``References``, and is sent through
the one submission path (:class:`~hirondelle.mail.submission.Transport`: DKIM, queue).
It runs after delivery has returned, so it never delays the delivery's reply.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy.engine import Connection

from hirondelle.errors import Refused
from hirondelle.mail.addresses import normalize_address
from hirondelle.mail.submission import Routing, Transport
from hirondelle.mime import ParsedMessage
from hirondelle.mime.addresses import decoded_addresses, parse_address_list
from hirondelle.store import directory
from hirondelle.store import vacation as vacation_store
from hirondelle.store.database import Database, WriteContext, now_us
from hirondelle.store.directory import Account
from hirondelle.store.vacation import Vacation

log = logging.getLogger(__name__)

#: RFC 5230 §4.1: the default (and recommended minimum) of ``:days`` is 7.
REPLY_INTERVAL_DAYS = 7
_DAY_US = 86_400 * 1_000_000

_LIST_FIELDS = frozenset(
    {
        "list-id",
        "list-help",
        "list-unsubscribe",
        "list-subscribe",
        "list-post",
        "list-owner",
        "list-archive",
    }
)
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")


def one_line(text: str) -> str:
    """``text`` with every line break Python knows (CR, LF, but also VT, FF, FS, GS, RS,
    NEL, U+2028/9, which the header generator refuses) made a space."""
    return re.sub("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+", " ", text).strip()


def _writable_ids(ids: tuple[str, ...]) -> list[str]:
    """The ids of ``ids`` that can be written back as RFC 5322 §3.6.4 msg-ids: printable
    ASCII without brackets. The parser keeps whatever came between ``<`` and ``>``, line
    breaks other than CR/LF (RS, NEL, U+2028...) included, which the header generator
    refuses; such an id cannot thread anyway."""
    return [i for i in ids if re.fullmatch(r"[!-;=?-~]+", i)]


def is_robot_sender(address: str) -> bool:
    """RFC 3834 §2 and RFC 5230 §4.6: senders that are programs, never answered."""
    if not address or "@" not in address:
        return True
    local = address.rsplit("@", 1)[0].lower()
    return (
        local == "mailer-daemon"
        or local.startswith("owner-")
        or local.endswith("-request")
        or local in ("postmaster", "listserv", "majordomo")
    )


def is_automatic(parsed: ParsedMessage) -> bool:
    """RFC 3834 §5 Auto-Submitted, Precedence bulk/list/junk, any List-* field."""
    if parsed.auto_submitted is not None or parsed.list_id is not None:
        return True
    for name, value in parsed.headers:
        lowered = name.strip().lower()
        if lowered in _LIST_FIELDS:
            return True
        if lowered == "precedence" and value.strip().lower() in ("bulk", "list", "junk"):
            return True
        if lowered == "auto-submitted" and value.split(";", 1)[0].strip().lower() != "no":
            return True
    return False


def addressed_to(parsed: ParsedMessage, addresses: set[str]) -> bool:
    """RFC 5230 §4.5: one of ``addresses`` (normalized) is a visible recipient."""
    found: list[str] = [a.email for a in (*parsed.to, *parsed.cc, *parsed.bcc)]
    for name, value in parsed.headers:
        if name.strip().lower() in ("resent-to", "resent-cc", "resent-bcc"):
            items = parse_address_list(value.encode("utf-8", "surrogateescape"))
            found.extend(a.email for a in decoded_addresses(items))
    for email in found:
        try:
            normalized = normalize_address(email)
        except Refused:
            continue
        base = normalized.split("+", 1)[0] + "@" + normalized.rsplit("@", 1)[1]
        if normalized in addresses or base in addresses:
            return True
    return False


def is_active(vacation: Vacation, now: int) -> bool:
    """RFC 8621 §8: enabled, and now within [fromDate, toDate)."""
    if not vacation.is_enabled:
        return False
    if vacation.from_date is not None and now < vacation.from_date:
        return False
    return not (vacation.to_date is not None and now >= vacation.to_date)


def build_reply(
    account: Account, vacation: Vacation, parsed: ParsedMessage, recipient: str
) -> bytes:
    """RFC 3834 §3: the reply message (without Message-ID and Date: submission adds
    them, then signs)."""
    message = EmailMessage(policy=SMTP)
    local, _, domain = account.address.partition("@")
    message["From"] = Address(one_line(account.display_name or ""), local, domain)
    rlocal, _, rdomain = recipient.partition("@")
    message["To"] = Address("", rlocal, rdomain)
    # RFC 3834 §3.1.5: the original subject prefixed with "Auto:", unless one is set.
    subject = vacation.subject or f"Auto: {parsed.subject}".strip()
    message["Subject"] = one_line(subject)
    message["Auto-Submitted"] = "auto-replied"
    message_ids = _writable_ids(parsed.message_id)
    if message_ids:
        # RFC 3834 §3.1.3, §3.1.4: the reply threads with the message it answers.
        message["In-Reply-To"] = f"<{message_ids[0]}>"
        references = [*_writable_ids(parsed.references), message_ids[0]]
        message["References"] = " ".join(f"<{r}>" for r in references[-20:])
    text = vacation.text_body
    if text is None and vacation.html_body is None:
        text = ""
    if text is not None:
        message.set_content(text)
        if vacation.html_body is not None:
            message.add_alternative(vacation.html_body, subtype="html")
    else:
        message.set_content(vacation.html_body or "", subtype="html")
    return message.as_bytes()


class VacationResponder:
    """Answers delivered messages for accounts whose VacationResponse is active.

    :meth:`delivered` is what :class:`~hirondelle.mail.delivery.MailService` calls after
    a delivery is durable; the work runs in a task of its own.
    """

    def __init__(self, database: Database, transport: Transport) -> None:
        self.database = database
        self.transport = transport
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self, parsed: ParsedMessage, *, mail_from: str) -> bool:
        """RFC 3834 §2, §5: never an answer to a robot or to automatic or bulk mail."""
        return not (is_robot_sender(mail_from) or is_automatic(parsed))

    def interested(self, conn: Connection, account_ids: list[int]) -> list[int]:
        """In the delivery's transaction: the accounts whose response is enabled (almost
        always none; the dates and the rest are checked after commit)."""
        return list(vacation_store.enabled_among(conn, account_ids))

    def delivered(self, parsed: ParsedMessage, account_ids: list[int], *, mail_from: str) -> None:
        if not account_ids or not self.wants(parsed, mail_from=mail_from):
            return
        task = asyncio.get_running_loop().create_task(self._respond(parsed, account_ids, mail_from))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait for the replies in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _respond(self, parsed: ParsedMessage, account_ids: list[int], mail_from: str) -> None:
        try:
            sender = normalize_address(mail_from)
        except Refused:
            return
        now = now_us()

        def read(conn: Connection) -> list[tuple[Account, Vacation]]:
            found = []
            for account_id, vacation in vacation_store.enabled_among(conn, account_ids).items():
                account = directory.get_account_by_id(conn, account_id)
                if account is not None and not account.disabled and is_active(vacation, now):
                    found.append((account, vacation))
            return found

        for account, vacation in await self.database.read(read):
            try:
                await self._reply(account, vacation, parsed, sender, now)
            except Exception:
                # A reply is a courtesy: its failure must not surface in delivery.
                log.exception("vacation reply from account %s failed", account.id)

    async def _reply(
        self, account: Account, vacation: Vacation, parsed: ParsedMessage, sender: str, now: int
    ) -> None:
        own = await self.transport.allowed_senders(account)
        if sender in own or not addressed_to(parsed, own):
            return

        def claim(ctx: WriteContext) -> bool:
            return vacation_store.claim_reply(
                ctx,
                account_id=account.id,
                sender=sender,
                generation=vacation.generation,
                now=now,
                interval_us=REPLY_INTERVAL_DAYS * _DAY_US,
            )

        if not await self.database.write(claim):
            return
        raw = build_reply(account, vacation, parsed, sender)
        prepared = await self.transport.prepare_submission(account, raw)
        resolution = await self.transport.check_recipient(sender, may_relay=True)
        routing = Routing()
        routing.add(resolution)
        # A null reverse-path (as RFC 3834 recommends for responses): the reply itself is
        # never answered nor bounced back into a loop.
        await self.transport.dispatch(prepared, routing, mail_from="", account_id=account.id)
