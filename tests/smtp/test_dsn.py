"""RFC 3461 DSN end to end: the parameters on the wire (smtplib), kept with queued
mail, honoured by the queue worker against a fake remote MX without DSN and against a
DSN-capable one (our own MX listener), and the RFC 3464 fields they put in notices."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import smtplib

from hirondelle.mail.queue import QueueWorker, Route, StaticRouter
from hirondelle.services import Services
from tests.messages import simple_message
from tests.smtp.conftest import (
    PASSWORD,
    FakeMX,
    Servers,
    mailbox_messages,
    make_account,
)
from tests.smtp.test_queue import _age_queue, worker_for


def submit(
    servers: Servers,
    recipients: list[str],
    *,
    mail_options: list[str],
    rcpt_options: list[str],
    body: str = "Just a short note.\r\n",
) -> dict[str, tuple[int, bytes]]:
    """Submit as alice over implicit TLS with smtplib's DSN options (blocking)."""
    raw = simple_message(sender="alice@example.test", to=", ".join(recipients), body=body)
    with smtplib.SMTP_SSL("127.0.0.1", servers.submissions, context=servers.client_tls()) as c:
        c.login("alice@example.test", PASSWORD)
        return c.sendmail("alice@example.test", recipients, raw, mail_options, rcpt_options)


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def test_ehlo_advertises_dsn_on_every_listener(services: Services, servers: Servers) -> None:
    def ehlo(port: int, lmtp: bool) -> bool:
        client = smtplib.LMTP("127.0.0.1", port) if lmtp else smtplib.SMTP("127.0.0.1", port)
        with client:
            client.ehlo()
            return client.has_extn("dsn")

    assert await asyncio.to_thread(ehlo, servers.mx, False)
    assert await asyncio.to_thread(ehlo, servers.submission, False)
    assert await asyncio.to_thread(ehlo, servers.lmtp, True)


async def test_malformed_parameters_get_501_554(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")

    def exchange() -> list[tuple[int, bytes]]:
        replies = []
        with smtplib.SMTP("127.0.0.1", servers.mx) as client:
            client.ehlo()
            for mail in ("RET=ALL", "RET=FULL RET=HDRS", "ENVID=a+2b", "ENVID=a=b"):
                replies.append(client.mail("carol@elsewhere.test", [mail]))
                client.rset()
            ok = client.mail("carol@elsewhere.test", ["RET=HDRS", "ENVID=x+2By", "SIZE=100"])
            assert ok[0] == 250, ok
            for rcpt in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,SUCCESS", "NOTIFY=",
                         "ORCPT=bob@x", "ORCPT=rfc822;a+0", "ORCPT=rfc822;"):  # fmt: skip
                replies.append(client.rcpt("alice@example.test", [rcpt]))
            # aiosmtpd's own refusal of parameters nobody knows stays.
            unknown = client.rcpt("alice@example.test", ["XFOO=1"])
            assert unknown[0] == 555, unknown
            good = client.rcpt("alice@example.test", ["notify=success", "ORCPT=rfc822;a+2Bb@x"])
            assert good[0] == 250, good
        return replies

    for code, text in await asyncio.to_thread(exchange):
        assert code == 501 and text.startswith(b"5.5.4 "), (code, text)


async def test_local_delivery_with_notify_success_sends_a_delivered_notice(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    refused = await asyncio.to_thread(
        submit,
        servers,
        ["bob@example.test"],
        mail_options=["RET=HDRS", "ENVID=QQ+2B314159"],
        rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;Bob+2Bx@example.test"],
    )
    assert refused == {}
    assert len(await mailbox_messages(services, bob)) == 1
    [notice] = await mailbox_messages(services, alice)
    status = notice.decode()
    assert "Action: delivered" in status and "Status: 2.0.0" in status
    assert "Original-Envelope-Id: QQ+314159" in status
    assert "Original-Recipient: rfc822; Bob+x@example.test" in status
    assert "Final-Recipient: rfc822; bob@example.test" in status


async def test_local_delivery_without_notify_success_sends_nothing(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await asyncio.to_thread(
        submit, servers, ["bob@example.test"], mail_options=[], rcpt_options=["NOTIFY=FAILURE"]
    )
    assert await mailbox_messages(services, alice) == []


async def test_parameters_are_queued_and_notify_never_silences_a_failure(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await asyncio.to_thread(
        submit,
        servers,
        ["ghost@remote.test"],
        mail_options=["ENVID=env1", "RET=FULL"],
        rcpt_options=["NOTIFY=NEVER", "ORCPT=rfc822;ghost@remote.test"],
    )
    worker = worker_for(services, fake_mx)
    [queued] = await worker.queue.entries()
    assert (queued.envid, queued.ret, queued.notify, queued.orcpt) == (
        "env1",
        "FULL",
        "NEVER",
        "rfc822;ghost@remote.test",
    )
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"
    await worker.run_once()
    assert await worker.queue.entries() == []
    assert await mailbox_messages(services, alice) == []


async def test_failure_notice_honours_ret_full_and_hdrs(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"
    for ret in ("FULL", "HDRS"):
        await asyncio.to_thread(
            submit,
            servers,
            ["ghost@remote.test"],
            mail_options=[f"RET={ret}", f"ENVID=id-{ret}"],
            rcpt_options=["ORCPT=rfc822;ghost+2Bold@remote.test"],
            body=f"The body of {ret}.\r\n",
        )
        await worker_for(services, fake_mx).run_once()
    full, headers_only = (parse(n) for n in await mailbox_messages(services, alice))
    _, status, returned = full.iter_parts()
    assert returned.get_content_type() == "message/rfc822"
    assert b"The body of FULL." in returned.as_bytes()
    assert "Original-Envelope-Id: id-FULL" in status.as_string()
    assert "Original-Recipient: rfc822; ghost+old@remote.test" in status.as_string()
    _, status, returned = headers_only.iter_parts()
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"The body of HDRS." not in returned.as_bytes()
    assert "Original-Envelope-Id: id-HDRS" in status.as_string()


async def test_delay_warning_only_when_asked(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await asyncio.to_thread(
        submit, servers, ["bob@remote.test"], mail_options=[], rcpt_options=["NOTIFY=FAILURE"]
    )
    await asyncio.to_thread(
        submit, servers, ["carl@remote.test"], mail_options=[], rcpt_options=["NOTIFY=DELAY"]
    )
    fake_mx.replies += ["451 4.3.0 Busy", "451 4.3.0 Busy"]
    await _age_queue(services, seconds=120)
    await worker_for(services, fake_mx, delay_warning_seconds=60).run_once()
    [notice] = await mailbox_messages(services, alice)
    assert b"Action: delayed" in notice
    assert b"carl@remote.test" in notice and b"bob@remote.test" not in notice


async def test_success_to_a_server_without_dsn_is_relayed(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await asyncio.to_thread(
        submit,
        servers,
        ["bob@remote.test", "carl@remote.test"],
        mail_options=["ENVID=e42"],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
    )
    await worker_for(services, fake_mx).run_once()
    [envelope] = fake_mx.received
    assert not any("NOTIFY" in o for o in envelope.rcpt_options + envelope.mail_options)
    [notice] = await mailbox_messages(services, alice)
    status = notice.decode()
    assert status.count("Action: relayed") == 2 and "Original-Envelope-Id: e42" in status
    assert "Delivery Notification: Relayed" in parse(notice)["Subject"]


async def test_parameters_pass_on_to_a_server_with_dsn(
    services: Services, servers: Servers
) -> None:
    """The "remote" domain is served by our own MX listener, which offers DSN: it gets
    RET/ENVID/NOTIFY/ORCPT and sends the "delivered" notice itself; we send none."""
    alice = await make_account(services, "alice@example.test")
    await asyncio.to_thread(
        submit,
        servers,
        ["bob@remote.test"],
        mail_options=["ENVID=pass+2Bon", "RET=HDRS"],
        rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob+2Bold@remote.test"],
    )
    # Queued while remote.test was not ours; now our MX listener stands for it.
    bob = await make_account(services, "bob@remote.test")
    worker = QueueWorker(
        database=services.database,
        blobs=services.blobs,
        mail=services.mail,
        settings=services.settings,
        router=StaticRouter({"remote.test": [Route("127.0.0.1", servers.mx)]}),
    )
    assert await worker.run_once() == 1
    assert len(await mailbox_messages(services, bob)) == 1
    [notice] = await mailbox_messages(services, alice)
    status = notice.decode()
    assert status.count("Action: delivered") == 1 and "relayed" not in status
    assert "Original-Envelope-Id: pass+on" in status
    assert "Original-Recipient: rfc822; bob+old@remote.test" in status


async def test_parameters_after_helo_are_refused(services: Services, servers: Servers) -> None:
    await make_account(services, "alice@example.test")

    def exchange() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", servers.mx) as client:
            client.helo("client.elsewhere.test")
            client.putcmd("mail", "FROM:<carol@elsewhere.test> RET=HDRS")
            return client.getreply()

    code, _ = await asyncio.to_thread(exchange)
    assert code == 501, "RFC 1869: no parameters without EHLO"


async def test_lmtp_notify_success_for_one_of_two_recipients(
    services: Services, servers: Servers
) -> None:
    carol = await make_account(services, "carol@example.test")
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")

    def exchange() -> dict[str, tuple[int, bytes]]:
        raw = simple_message(sender="carol@example.test", to="alice@example.test")
        with smtplib.LMTP("127.0.0.1", servers.lmtp) as client:
            client.ehlo()  # smtplib's LMTP sends LHLO
            client.mail("carol@example.test", ["ENVID=lmtp1"])
            assert client.rcpt("alice@example.test", ["NOTIFY=SUCCESS"])[0] == 250
            assert client.rcpt("bob@example.test", ["NOTIFY=NEVER"])[0] == 250
            code, _ = client.data(raw)
            assert code == 250
            # RFC 2033 §4.2: the second recipient's reply follows.
            return {"bob": client.getreply()}

    replies = await asyncio.to_thread(exchange)
    assert replies["bob"][0] == 250
    assert len(await mailbox_messages(services, alice)) == 1
    assert len(await mailbox_messages(services, bob)) == 1
    [notice] = await mailbox_messages(services, carol)
    status = notice.decode()
    assert "Final-Recipient: rfc822; alice@example.test" in status
    assert "bob@example.test" not in status and "Original-Envelope-Id: lmtp1" in status


async def test_full_return_of_an_8bit_message_is_labelled(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"
    await asyncio.to_thread(
        submit,
        servers,
        ["ghost@remote.test"],
        mail_options=["RET=FULL"],
        rcpt_options=[],
        body="Déjà vu.\r\n",
    )
    await worker_for(services, fake_mx).run_once()
    [notice] = await mailbox_messages(services, alice)
    _, _, returned = parse(notice).iter_parts()
    assert returned.get_content_type() == "message/rfc822"
    assert returned["Content-Transfer-Encoding"] == "8bit"
    assert "Déjà vu." in notice.decode()


async def test_alias_to_a_remote_address_gets_the_rcpt_as_orcpt(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await services.aliases.add("team@example.test", ["ghost@remote.test"])
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"

    def send() -> None:
        raw = simple_message(sender="alice@example.test", to="team@example.test")
        with smtplib.SMTP_SSL(
            "127.0.0.1", servers.submissions, context=servers.client_tls()
        ) as client:
            client.login("alice@example.test", PASSWORD)
            client.sendmail("alice@example.test", ["team@example.test"], raw)

    await asyncio.to_thread(send)
    [queued] = await worker_for(services, fake_mx).queue.entries()
    assert queued.orcpt == "rfc822;team@example.test"
    await worker_for(services, fake_mx).run_once()
    [notice] = await mailbox_messages(services, alice)
    status = notice.decode()
    assert "Original-Recipient: rfc822; team@example.test" in status
    assert "Final-Recipient: rfc822; ghost@remote.test" in status


# -- RFC 3464 §2.3.3 "expanded": aliases and catch-alls with several targets -------------


async def test_alias_to_several_accounts_gets_an_expanded_notice(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    bob = await make_account(services, "bob@example.test")
    carl = await make_account(services, "carl@example.test")
    await services.aliases.add("team@example.test", ["bob@example.test", "carl@example.test"])
    await asyncio.to_thread(
        submit,
        servers,
        ["team@example.test"],
        mail_options=["ENVID=exp1"],
        rcpt_options=["NOTIFY=SUCCESS"],
    )
    assert len(await mailbox_messages(services, bob)) == 1
    assert len(await mailbox_messages(services, carl)) == 1
    [notice] = await mailbox_messages(services, alice)
    status = notice.decode()
    assert "Final-Recipient: rfc822; team@example.test" in status
    assert "Action: expanded" in status and "Action: delivered" not in status
    assert "Status: 2.0.0" in status and "Original-Envelope-Id: exp1" in status
    assert "Delivery Notification: Expanded" in parse(notice)["Subject"]


async def test_catch_all_expanded_beside_a_direct_recipient_delivered_in_one_notice(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await make_account(services, "carl@example.test")
    await services.aliases.add("@example.test", ["bob@example.test", "carl@example.test"])
    await asyncio.to_thread(
        submit,
        servers,
        ["anyone@example.test", "bob@example.test"],
        mail_options=[],
        rcpt_options=["NOTIFY=SUCCESS"],
    )
    [notice] = await mailbox_messages(services, alice)
    _, status, _ = parse(notice).iter_parts()
    blocks = status.as_string().split("\n\n")
    by_recipient = {
        line.split("; ", 1)[1]: block
        for block in blocks
        for line in block.splitlines()
        if line.startswith("Final-Recipient:")
    }
    assert "Action: expanded" in by_recipient["anyone@example.test"]
    assert "Action: delivered" in by_recipient["bob@example.test"]
    text = notice.decode()
    assert "redistribuent" in text and "redistribute" in text
    assert "a été remis" in text and "was delivered" in text


async def test_single_target_alias_is_delivered_not_expanded(
    services: Services, servers: Servers
) -> None:
    alice = await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await services.aliases.add("boss@example.test", ["bob@example.test"])
    await asyncio.to_thread(
        submit, servers, ["boss@example.test"], mail_options=[], rcpt_options=["NOTIFY=SUCCESS"]
    )
    [notice] = await mailbox_messages(services, alice)
    assert b"Action: delivered" in notice and b"Action: expanded" not in notice


async def test_expanded_alias_with_a_remote_target_reports_only_its_failure_later(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await services.aliases.add("team@example.test", ["bob@example.test", "ghost@remote.test"])
    await asyncio.to_thread(
        submit,
        servers,
        ["team@example.test"],
        mail_options=[],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
    )
    [expanded] = await mailbox_messages(services, alice)
    assert b"Action: expanded" in expanded
    worker = worker_for(services, fake_mx)
    [queued] = await worker.queue.entries()
    assert queued.notify == "FAILURE", "SUCCESS was answered by the expanded notice"
    assert queued.orcpt == "rfc822;team@example.test"
    # Accepted by a server without DSN: no "relayed" notice on top of "expanded".
    await worker.run_once()
    assert len(fake_mx.received) == 1
    assert len(await mailbox_messages(services, alice)) == 1


async def test_expanded_alias_remote_target_failure_still_comes_back(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await services.aliases.add("team@example.test", ["bob@example.test", "ghost@remote.test"])
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"
    await asyncio.to_thread(
        submit,
        servers,
        ["team@example.test"],
        mail_options=[],
        rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
    )
    await worker_for(services, fake_mx).run_once()
    expanded, failed = await mailbox_messages(services, alice)
    assert b"Action: expanded" in expanded
    assert b"Action: failed" in failed and b"Final-Recipient: rfc822; ghost@remote.test" in failed


async def test_expanded_alias_with_notify_success_only_passes_never_on(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await services.aliases.add("team@example.test", ["bob@example.test", "ghost@remote.test"])
    fake_mx.rcpt_replies["ghost@remote.test"] = "550 5.1.1 No such user here"
    await asyncio.to_thread(
        submit, servers, ["team@example.test"], mail_options=[], rcpt_options=["NOTIFY=SUCCESS"]
    )
    worker = worker_for(services, fake_mx)
    [queued] = await worker.queue.entries()
    assert queued.notify == "NEVER", "only SUCCESS was asked, and it was answered"
    await worker.run_once()
    [expanded] = await mailbox_messages(services, alice)
    assert b"Action: expanded" in expanded


async def test_single_remote_target_alias_is_relayed_by_a_server_without_dsn(
    services: Services, servers: Servers, fake_mx: FakeMX
) -> None:
    alice = await make_account(services, "alice@example.test")
    await services.aliases.add("friend@example.test", ["ghost@remote.test"])
    await asyncio.to_thread(
        submit, servers, ["friend@example.test"], mail_options=[], rcpt_options=["NOTIFY=SUCCESS"]
    )
    assert await mailbox_messages(services, alice) == [], "not expanded: nothing yet"
    await worker_for(services, fake_mx).run_once()
    [notice] = await mailbox_messages(services, alice)
    status = notice.decode()
    assert "Action: relayed" in status and "Action: expanded" not in status
    assert "Original-Recipient: rfc822; friend@example.test" in status
    assert "Final-Recipient: rfc822; ghost@remote.test" in status
