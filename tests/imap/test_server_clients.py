"""The server as imap-tools and aioimaplib see it: the everyday operations of a mail
client, end to end."""

from __future__ import annotations

import asyncio
import datetime

import aioimaplib
from imap_tools import AND, MailBox, MailMessageFlags

from tests.imap.conftest import ADDRESS, PASSWORD, ImapServer
from tests.messages import simple_message


def _mailbox(imap: ImapServer) -> MailBox:
    return MailBox(imap.host, imap.tls_port, ssl_context=imap.client_context()).login(
        ADDRESS, PASSWORD
    )


def test_imap_tools_folders(imap: ImapServer) -> None:
    with _mailbox(imap) as mailbox:
        mailbox.folder.create("Clients/Acme")
        names = {f.name for f in mailbox.folder.list()}
        assert {"INBOX", "Sent", "Clients", "Clients/Acme"} <= names
        mailbox.folder.rename("Clients/Acme", "Clients/Acme Corp")
        assert mailbox.folder.exists("Clients/Acme Corp")
        status = mailbox.folder.status("INBOX")
        assert status["MESSAGES"] == 0
        mailbox.folder.delete("Clients/Acme Corp")
        assert not mailbox.folder.exists("Clients/Acme Corp")


def test_imap_tools_fetch_flag_move_delete(imap: ImapServer) -> None:
    imap.deliver(simple_message(subject="Quarterly report", body="Numbers inside\r\n"))
    imap.deliver(simple_message(subject="Lunch?"))
    with _mailbox(imap) as mailbox:
        messages = list(mailbox.fetch(AND(subject="report"), mark_seen=False))
        assert [m.subject for m in messages] == ["Quarterly report"]
        assert messages[0].text == "Numbers inside\r\n"
        assert messages[0].from_ == "carol@elsewhere.test"
        uid = messages[0].uid
        assert uid is not None
        mailbox.flag(uid, MailMessageFlags.FLAGGED, True)
        flagged = list(mailbox.fetch(AND(flagged=True), headers_only=True))
        assert [m.uid for m in flagged] == [uid]
        mailbox.move(uid, "Archive")
        assert [m.subject for m in mailbox.fetch()] == ["Lunch?"]
        mailbox.delete([m.uid for m in mailbox.fetch()])  # type: ignore[misc]
        assert list(mailbox.fetch()) == []
        mailbox.folder.set("Archive")
        assert [m.subject for m in mailbox.fetch()] == ["Quarterly report"]


def test_imap_tools_append_and_copy(imap: ImapServer) -> None:
    with _mailbox(imap) as mailbox:
        mailbox.append(
            simple_message(subject="Draft note"),
            "Drafts",
            dt=datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC),
            flag_set=[MailMessageFlags.DRAFT],
        )
        mailbox.folder.set("Drafts")
        messages = list(mailbox.fetch())
        assert messages[0].subject == "Draft note"
        assert MailMessageFlags.DRAFT in messages[0].flags
        mailbox.copy([m.uid for m in messages], "INBOX")  # type: ignore[misc]
        mailbox.folder.set("INBOX")
        assert [m.subject for m in mailbox.fetch()] == ["Draft note"]


def test_imap_tools_idle_sees_delivery(imap: ImapServer) -> None:
    with _mailbox(imap) as mailbox:
        mailbox.idle.start()
        imap.deliver(simple_message())
        responses = mailbox.idle.poll(timeout=5)
        mailbox.idle.stop()
        assert any(b"EXISTS" in r for r in responses)


async def _aioimaplib_session(imap: ImapServer) -> None:
    client = aioimaplib.IMAP4_SSL(
        host=imap.host, port=imap.tls_port, ssl_context=imap.client_context(), timeout=20
    )
    await client.wait_hello_from_server()
    response = await client.login(ADDRESS, PASSWORD)
    assert response.result == "OK", response
    response = await client.select("INBOX")
    assert response.result == "OK"
    assert b"1 EXISTS" in response.lines
    response = await client.fetch("1", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert response.result == "OK"
    assert any(
        b"Subject: Async" in line for line in response.lines if isinstance(line, bytes | bytearray)
    )
    response = await client.uid("store", "1", "+FLAGS", "(\\Seen)")
    assert response.result == "OK"
    response = await client.search("SEEN")
    assert response.result == "OK" and response.lines[0] == b"1"
    idle = await client.idle_start(timeout=10)
    await asyncio.to_thread(imap.deliver, simple_message(subject="Second"))
    pushed = await client.wait_server_push()
    client.idle_done()
    await asyncio.wait_for(idle, 10)
    assert any(b"2 EXISTS" in line for line in pushed)
    response = await client.uid("copy", "1", "Archive")
    assert response.result == "OK"
    response = await client.logout()
    assert response.result == "OK"


def test_aioimaplib_login_select_fetch_store_search_idle_copy(imap: ImapServer) -> None:
    imap.deliver(simple_message(subject="Async"))
    asyncio.run(_aioimaplib_session(imap))
