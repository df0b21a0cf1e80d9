"""swaks (Debian's, 20201014) as the client for what it can express: STARTTLS and the
EHLO that follows it, AUTH on submission, added header fields, pipelining.

This swaks has no option for the RFC 3461 DSN parameters (NOTIFY, RET, ENVID, ORCPT)
nor for BDAT (RFC 3030), and puts nothing after the path of MAIL FROM or RCPT TO, so
REQUIRETLS, DSN and CHUNKING are driven with smtplib and raw sockets in
test_requiretls.py, test_dsn.py and test_chunking.py."""

from __future__ import annotations

import asyncio

from hirondelle.mail.queue import QueueWorker
from hirondelle.services import Services
from tests.smtp.conftest import PASSWORD, DnsTable, Servers, mailbox_messages, make_account


async def swaks(*arguments: str) -> str:
    """Run swaks; its transcript. The test fails when swaks reports a failure."""
    process = await asyncio.create_subprocess_exec(
        "swaks",
        "--server", "127.0.0.1",
        "--helo", "client.elsewhere.test",
        "--timeout", "20",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text
    return text


def ehlo_keywords(transcript: str) -> list[list[str]]:
    """The keywords of each EHLO reply in a swaks transcript ("<-  250-KEYWORD" lines,
    "<~ " once TLS is on)."""
    replies: list[list[str]] = []
    current: list[str] | None = None
    for line in transcript.splitlines():
        sent = line[:3].strip()
        if sent in ("->", "~>"):
            current = [] if line[3:].strip().upper().startswith("EHLO") else None
            if current is not None:
                replies.append(current)
        elif sent in ("<-", "<~") and current is not None:
            reply = line[3:].strip()
            if reply[:3] == "250":
                current.append(reply[4:].split(" ")[0].upper())
    return replies


async def test_swaks_sees_requiretls_only_after_starttls(servers: Servers) -> None:
    transcript = await swaks(
        "--port", str(servers.mx), "--tls", "--quit-after", "EHLO"
    )  # fmt: skip
    before, after = ehlo_keywords(transcript)
    assert "STARTTLS" in before and "REQUIRETLS" not in before
    assert "REQUIRETLS" in after and "STARTTLS" not in after


async def test_swaks_submission_with_tls_required_no_is_queued_relaxed(
    services: Services, servers: Servers
) -> None:
    await make_account(services, "alice@example.test")
    await swaks(
        "--port", str(servers.submission),
        "--tls",
        "--auth", "PLAIN",
        "--auth-user", "alice@example.test",
        "--auth-password", PASSWORD,
        "--from", "alice@example.test",
        "--to", "bob@remote.test",
        "--add-header", "TLS-Required: No",
        "--pipeline",
    )  # fmt: skip
    entries = await QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
    ).queue.entries()
    assert [(e.address, e.tls_policy) for e in entries] == [("bob@remote.test", "not-required")]


async def test_swaks_message_failing_dmarc_quarantine_lands_in_junk(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add("sender.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_table.add("_dmarc.sender.test", "TXT", "v=DMARC1; p=quarantine")
    alice = await make_account(services, "alice@example.test")
    await swaks(
        "--port", str(servers.mx),
        "--from", "dan@sender.test",
        "--to", "alice@example.test",
        "--header", "From: Dan <dan@sender.test>",
        "--header", "Subject: quarantine me",
    )  # fmt: skip
    assert await mailbox_messages(services, alice) == []
    [junk] = await mailbox_messages(services, alice, "junk")
    assert b"Subject: quarantine me" in junk and b"policy.dmarc=quarantine" in junk
