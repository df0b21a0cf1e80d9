"""The mail transport commands: ``hirondelle queue``, ``hirondelle dkim``, ``hirondelle dns``.

- ``queue list|retry|delete``: the outbound queue (``mail/queue.py``);
- ``dkim generate DOMAIN``: a new RSA 2048 and a new Ed25519 selector (RFC 6376, RFC
  8463), printed as the DNS records to publish;
- ``dns DOMAIN``: every record the domain needs: MX, SPF (RFC 7208), DKIM, DMARC (RFC
  7489) and the SRV records of RFC 6186 / RFC 8314 §5.1 that let clients find the
  submission, IMAP and POP3 services.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from hirondelle.cli.main import console, fail, format_time, handle_errors, run
from hirondelle.config import Settings
from hirondelle.mail.addresses import normalize_domain
from hirondelle.mail.dkim import DkimService, dns_record
from hirondelle.mail.queue import OutboundQueue
from hirondelle.services import Services
from hirondelle.store.queue import DkimKey

# RFC 1035 §3.3.14: one TXT character-string holds at most 255 octets.
TXT_CHUNK = 255


def zone_txt(value: str) -> str:
    """``value`` as a zone-file TXT string, split into 255-octet pieces (RSA keys)."""
    chunks = [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def records_to_publish(domain: str, settings: Settings, keys: list[DkimKey]) -> list[str]:
    """Zone-file lines for ``domain`` served by this server."""
    host = settings.server.hostname
    listen = settings.listen
    lines = [
        f"{domain}. MX 10 {host}.",
        f'{domain}. TXT "v=spf1 mx -all"',
        f'_dmarc.{domain}. TXT "v=DMARC1; p=quarantine; adkim=s; aspf=s"',
    ]
    for key in keys:
        name, value = dns_record(key)
        lines.append(f"{name}. TXT {zone_txt(value)}")
    # RFC 6186 §3 and RFC 8314 §5.1: SRV per service; "0 0 0 ." says "not offered".
    services = (
        ("submissions", listen.submissions, 465),
        ("submission", listen.submission, 587),
        ("imaps", listen.imaps, 993),
        ("imap", listen.imap, 143),
        ("pop3s", listen.pop3s, 995),
        ("pop3", listen.pop3, 110),
    )
    for service, endpoint, standard in services:
        if endpoint is None:
            lines.append(f"_{service}._tcp.{domain}. SRV 0 0 0 .")
        else:
            port = endpoint.port or standard
            lines.append(f"_{service}._tcp.{domain}. SRV 0 1 {port} {host}.")
    return lines


# -- queue ----------------------------------------------------------------------------


@click.group()
def queue() -> None:
    """The outbound queue: mail waiting for other servers."""


@queue.command("list")
@click.pass_obj
@handle_errors
def queue_list(data: Path) -> None:
    entries = run(data, lambda s: OutboundQueue(s.database, s.blobs).entries())
    if not entries:
        console.print("the queue is empty")
        return
    table = Table("id", "from", "to", "size", "queued", "attempts", "next", "last error", box=None)
    for entry in entries:
        table.add_row(
            str(entry.message_id),
            entry.mail_from or "<>",
            entry.address,
            str(entry.size),
            format_time(entry.created_at),
            str(entry.attempts),
            format_time(entry.next_attempt_at),
            entry.last_error,
        )
    console.print(table)


@queue.command("retry")
@click.argument("message_ids", metavar="[ID]...", nargs=-1, type=int)
@click.pass_obj
@handle_errors
def queue_retry(data: Path, message_ids: tuple[int, ...]) -> None:
    """Try now: the given messages, or every message."""
    count = run(
        data,
        lambda s: OutboundQueue(s.database, s.blobs).retry(list(message_ids) or None),
    )
    console.print(f"{count} recipient(s) due now")


@queue.command("delete")
@click.argument("message_ids", metavar="ID...", nargs=-1, type=int, required=True)
@click.pass_obj
@handle_errors
def queue_delete(data: Path, message_ids: tuple[int, ...]) -> None:
    """Drop messages from the queue without notifying their senders."""
    count = run(data, lambda s: OutboundQueue(s.database, s.blobs).delete(list(message_ids)))
    if count == 0:
        raise fail("no such message in the queue")
    console.print(f"{count} recipient(s) removed from the queue")


# -- dkim -----------------------------------------------------------------------------


@click.group()
def dkim() -> None:
    """DKIM signing keys (RFC 6376, RFC 8463)."""


@dkim.command("generate")
@click.argument("domain_name", metavar="DOMAIN")
@click.pass_obj
@handle_errors
def dkim_generate(data: Path, domain_name: str) -> None:
    """New RSA 2048 and Ed25519 selectors for DOMAIN; prints their DNS records."""
    stamp = datetime.now(UTC).strftime("%Y%m%d")

    async def generate(services: Services) -> list[DkimKey]:
        return await DkimService(services.database).generate(domain_name, stamp=stamp)

    keys = run(data, generate)
    for key in keys:
        name, value = dns_record(key)
        console.print(f"{name}. TXT {zone_txt(value)}", highlight=False, soft_wrap=True)


@dkim.command("list")
@click.argument("domain_name", metavar="DOMAIN")
@click.pass_obj
@handle_errors
def dkim_list(data: Path, domain_name: str) -> None:
    keys = run(data, lambda s: DkimService(s.database).keys(domain_name))
    table = Table("selector", "algorithm", "created", box=None)
    for key in keys:
        table.add_row(key.selector, key.algorithm, format_time(key.created_at))
    console.print(table)


# -- dns ------------------------------------------------------------------------------


@click.command("dns")
@click.argument("domain_name", metavar="DOMAIN")
@click.pass_obj
@handle_errors
def dns(data: Path, domain_name: str) -> None:
    """The DNS records to publish for DOMAIN (zone-file syntax)."""
    domain = normalize_domain(domain_name)

    async def collect(services: Services) -> list[str]:
        keys = await DkimService(services.database).keys(domain)
        return records_to_publish(domain, services.settings, keys)

    for line in run(data, collect):
        console.print(line, highlight=False, soft_wrap=True)


# What `hirondelle` registers (typed here: mypy cannot infer decorated objects across the
# import cycle with cli/main.py).
COMMANDS: list[click.Command] = [queue, dkim, dns]
