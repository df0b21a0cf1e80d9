"""SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) verdicts on the MX, recorded in
Authentication-Results (RFC 8601), with a DNS table instead of the Internet."""

from __future__ import annotations

import aiosmtplib
import dkim
import pytest

from hirondelle.mail import dkim as dkim_keys
from hirondelle.services import Services
from hirondelle.store import schema
from hirondelle.store.queue import DkimKey
from tests.messages import simple_message
from tests.smtp.conftest import DnsTable, Servers, mailbox_messages, make_account

SENDER_DOMAIN = "sender.test"


def signing_key(dns: DnsTable) -> DkimKey:
    generated = dkim_keys.generate_key(dkim_keys.ED25519)
    key = DkimKey(
        SENDER_DOMAIN, "s1", generated.algorithm, generated.private_key, generated.public_key, 0
    )
    name, value = dkim_keys.dns_record(key)
    dns.add(name, "TXT", value)
    return key


def message_from_sender() -> bytes:
    return simple_message(sender=f"Dan <dan@{SENDER_DOMAIN}>")


async def receive(services: Services, servers: Servers, raw: bytes, *, expect: int = 250) -> bytes:
    alice = await make_account(services, "alice@example.test")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        if expect == 250:
            await client.sendmail(f"dan@{SENDER_DOMAIN}", ["alice@example.test"], raw)
        else:
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await client.sendmail(f"dan@{SENDER_DOMAIN}", ["alice@example.test"], raw)
            assert refused.value.code == expect, refused.value
            return refused.value.message.encode()
    finally:
        client.close()
    [stored] = await mailbox_messages(services, alice)
    return stored


def results_field(stored: bytes) -> str:
    head = stored.split(b"\r\n\r\n")[0].decode()
    unfolded = head.replace("\r\n\t", " ").replace("\r\n ", " ")
    # Ours; a forwarder's (under an ARC set) names its own authserv-id.
    [line] = [
        x
        for x in unfolded.split("\r\n")
        if x.startswith("Authentication-Results:") and "forwarder.test;" not in x
    ]
    return line


async def test_spf_pass_dkim_pass_dmarc_pass(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add(SENDER_DOMAIN, "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns_table.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", "v=DMARC1; p=reject")
    signed = dkim_keys.sign(message_from_sender(), [signing_key(dns_table)])
    field = results_field(await receive(services, servers, signed))
    assert field.startswith("Authentication-Results: mail.example.test;")
    assert "spf=pass" in field and "dkim=pass" in field and "dmarc=pass" in field
    assert f"header.d={SENDER_DOMAIN}" in field


async def test_spf_fail_without_signature_under_p_reject_is_refused(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add(SENDER_DOMAIN, "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_table.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", "v=DMARC1; p=reject")
    message = await receive(services, servers, message_from_sender(), expect=550)
    assert message.startswith(b"5.7.1")
    assert SENDER_DOMAIN.encode() in message


async def test_dmarc_failure_under_p_none_is_delivered_and_recorded(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add(SENDER_DOMAIN, "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_table.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", "v=DMARC1; p=none")
    field = results_field(await receive(services, servers, message_from_sender()))
    assert "spf=fail" in field and "dkim=none" in field and "dmarc=fail" in field


async def test_a_tampered_body_fails_dkim(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    signed = dkim_keys.sign(message_from_sender(), [signing_key(dns_table)])
    tampered = signed.replace(b"Just a short note.", b"Send money please.")
    field = results_field(await receive(services, servers, tampered))
    assert "dkim=fail" in field


async def test_no_records_at_all_gives_none_verdicts(services: Services, servers: Servers) -> None:
    field = results_field(await receive(services, servers, message_from_sender()))
    assert "spf=none" in field and "dkim=none" in field


async def test_a_forged_results_field_with_our_name_is_removed(
    services: Services, servers: Servers
) -> None:
    forged = (
        b"Authentication-Results: mail.example.test; dkim=pass header.d=bank.test\r\n"
        + message_from_sender()
    )
    stored = await receive(services, servers, forged)
    assert b"header.d=bank.test" not in stored


async def test_dmarc_failure_under_p_quarantine_is_filed_into_junk(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add(SENDER_DOMAIN, "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_table.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", "v=DMARC1; p=quarantine")
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        refused, _ = await client.sendmail(
            f"dan@{SENDER_DOMAIN}", ["alice@example.test", "bob@example.test"],
            message_from_sender(),
        )  # fmt: skip
    finally:
        client.close()
    assert refused == {}
    for account in (alice, bob):
        assert await mailbox_messages(services, account) == [], "not in the Inbox"
        [stored] = await mailbox_messages(services, account, "junk")
        field = results_field(stored)
        assert "dmarc=fail" in field and "policy.dmarc=quarantine" in field
        assert "reason=" in field and "treated as junk" in field


async def test_dmarc_pass_under_p_quarantine_stays_in_the_inbox(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add(SENDER_DOMAIN, "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns_table.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", "v=DMARC1; p=quarantine")
    field = results_field(await receive(services, servers, message_from_sender()))
    assert "dmarc=pass" in field and "Junk" not in field


async def test_quarantined_mail_for_an_account_without_junk_goes_to_the_inbox(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    dns_table.add(SENDER_DOMAIN, "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_table.add(f"_dmarc.{SENDER_DOMAIN}", "TXT", "v=DMARC1; p=quarantine")
    alice = await make_account(services, "alice@example.test")
    await services.database.write(
        lambda ctx: ctx.conn.execute(
            schema.mailboxes.update()
            .where(schema.mailboxes.c.account_id == alice.id, schema.mailboxes.c.role == "junk")
            .values(role=None)
        )
    )
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=servers.mx, start_tls=False)
    await client.connect()
    try:
        await client.sendmail(f"dan@{SENDER_DOMAIN}", ["alice@example.test"], message_from_sender())
    finally:
        client.close()
    [stored] = await mailbox_messages(services, alice)
    assert "treated as junk" in results_field(stored)


# -- ARC (RFC 8617): the chain is validated and its status recorded ----------------------


def arc_sealed(dns: DnsTable) -> bytes:
    """A message from sender.test that forwarder.test received, recorded its verdicts
    for and sealed with one ARC set (i=1), with the sealing key published."""
    generated = dkim_keys.generate_key(dkim_keys.RSA)
    key = DkimKey(
        "forwarder.test", "arc1", generated.algorithm, generated.private_key,
        generated.public_key, 0,
    )  # fmt: skip
    name, value = dkim_keys.dns_record(key)
    dns.add(name, "TXT", value)
    received = (
        b"Authentication-Results: forwarder.test; spf=pass smtp.mailfrom=dan@sender.test\r\n"
        + message_from_sender()
    )
    seal = dkim.arc_sign(
        received, b"arc1", b"forwarder.test", generated.private_key.encode(), b"forwarder.test"
    )
    return b"".join(seal) + received


async def test_a_valid_arc_chain_is_recorded_as_pass(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    field = results_field(await receive(services, servers, arc_sealed(dns_table)))
    assert "arc=pass (i=1)" in field
    assert "header.as-d=forwarder.test" in field and "smtp.remote-ip=127.0.0.1" in field


async def test_a_message_changed_after_sealing_fails_arc(
    services: Services, servers: Servers, dns_table: DnsTable
) -> None:
    tampered = arc_sealed(dns_table).replace(b"Just a short note.", b"Send money please.")
    field = results_field(await receive(services, servers, tampered))
    assert "arc=fail" in field and "reason=" in field


async def test_a_seal_whose_key_is_not_published_fails_arc(
    services: Services, servers: Servers
) -> None:
    field = results_field(await receive(services, servers, arc_sealed(DnsTable())))
    assert "arc=fail" in field


async def test_no_arc_headers_is_arc_none(services: Services, servers: Servers) -> None:
    field = results_field(await receive(services, servers, message_from_sender()))
    assert "arc=none" in field
