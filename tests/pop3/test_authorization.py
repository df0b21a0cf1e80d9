"""The AUTHORIZATION state on raw sockets: exact lines for the greeting, CAPA, the TLS
rules, login outcomes (USER/PASS, AUTH PLAIN), the audit and the IN-USE lock."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
import sqlalchemy as sa

from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store import schema
from hirondelle.store.directory import Account
from tests.pop3.conftest import (
    ADDRESS,
    PASSWORD,
    RawClient,
    client_tls,
    connect,
    make_account,
    protocol_level,
)


def plain_response(user: str = ADDRESS, password: str = PASSWORD, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


# -- greeting, CAPA and TLS rules -----------------------------------------------------


@protocol_level
async def test_greeting_names_the_host(node: Node, cafile: Path) -> None:
    client = await connect(node, cafile, name="pop3")
    await client.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port(node, "pop3"))
    assert await reader.readline() == b"+OK mail.example.test Hirondelle POP3 server ready\r\n"
    writer.close()


def server_port(node: Node, name: str) -> int:
    return next(listener.port for listener in node.listeners if listener.name == name)


@protocol_level
async def test_capa_before_tls_offers_stls_and_no_login(plain: RawClient) -> None:
    capabilities = await plain.multiline("CAPA")
    assert b"STLS" in capabilities
    assert b"USER" not in capabilities
    assert not any(line.startswith(b"SASL") for line in capabilities)
    for expected in (b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"):
        assert expected in capabilities


@protocol_level
async def test_capa_over_tls_offers_user_and_sasl_plain(raw: RawClient) -> None:
    capabilities = await raw.multiline("CAPA")
    assert b"USER" in capabilities
    assert b"SASL PLAIN" in capabilities
    assert b"STLS" not in capabilities
    assert b"IMPLEMENTATION Hirondelle" in capabilities


@protocol_level
async def test_user_before_stls_is_refused_and_tells_to_use_stls(plain: RawClient) -> None:
    reply = await plain.command(f"USER {ADDRESS}", expect="-ERR [SYS/PERM]")
    assert reply == (
        b"-ERR [SYS/PERM] log in only after STLS (TLS is required)"
        b" / connexion seulement apres STLS (TLS est obligatoire)\r\n"
    )


@protocol_level
async def test_pass_and_auth_before_stls_are_refused(plain: RawClient) -> None:
    await plain.command(f"PASS {PASSWORD}", expect="-ERR [SYS/PERM]")
    await plain.command(f"AUTH PLAIN {plain_response()}", expect="-ERR [SYS/PERM]")


async def test_login_after_stls_on_the_plain_port(
    plain: RawClient, alice: Account, cafile: Path
) -> None:
    await plain.starttls(cafile)
    capabilities = await plain.multiline("CAPA")
    assert b"STLS" not in capabilities and b"USER" in capabilities
    await plain.login()
    await plain.command("QUIT")


@protocol_level
async def test_stls_on_pop3s_is_refused(raw: RawClient) -> None:
    reply = await raw.command("STLS", expect="-ERR")
    assert reply.startswith(b"-ERR TLS is already active")


@protocol_level
async def test_commands_pipelined_after_stls_are_discarded(plain: RawClient, cafile: Path) -> None:
    """RFC 2595 §4: input sent in clear after STLS must not be taken as protected."""
    await plain.send(b"STLS\r\nNOOP\r\n")
    assert (await plain.line()).startswith(b"+OK")
    await plain.writer.start_tls(client_tls(cafile), server_hostname="localhost")
    # The next reply answers CAPA: the clear-text NOOP was dropped.
    await plain.command("CAPA")
    assert (await plain.line()) == b"TOP\r\n"


# -- login outcomes -------------------------------------------------------------------


async def test_wrong_password_is_a_generic_auth_error(raw: RawClient, alice: Account) -> None:
    await raw.command(f"USER {ADDRESS}")
    reply = await raw.command("PASS wrong password", expect="-ERR [AUTH]")
    assert reply == b"-ERR [AUTH] authentication failed / echec de l'authentification\r\n"


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(raw: RawClient) -> None:
    await raw.command("USER nobody@example.test")
    assert await raw.command(f"PASS {PASSWORD}", expect="-ERR") == (
        b"-ERR [AUTH] authentication failed / echec de l'authentification\r\n"
    )


async def test_pop3_disabled_is_said_only_after_the_right_password(
    raw: RawClient, services: Services
) -> None:
    await make_account(services, pop3=False)
    await raw.command(f"USER {ADDRESS}")
    await raw.command("PASS not the password", expect="-ERR [AUTH] authentication failed / echec")
    await raw.command(f"USER {ADDRESS}")
    reply = await raw.command(f"PASS {PASSWORD}", expect="-ERR")
    assert (
        reply
        == b"-ERR [AUTH] POP3 is disabled for this account / POP3 est desactive pour ce compte\r\n"
    )


async def test_new_accounts_have_pop3_off_by_default(raw: RawClient, services: Services) -> None:
    await services.accounts.add_domain("example.test")
    await services.accounts.add_account(ADDRESS, password=PASSWORD)
    await raw.command(f"USER {ADDRESS}")
    await raw.command(f"PASS {PASSWORD}", expect="-ERR [AUTH] POP3 is disabled")


async def test_three_failed_logins_close_the_session(raw: RawClient, alice: Account) -> None:
    for _ in range(2):
        await raw.command(f"USER {ADDRESS}")
        await raw.command("PASS nope", expect="-ERR [AUTH]")
    await raw.command(f"USER {ADDRESS}")
    await raw.command(
        "PASS nope",
        expect="-ERR [AUTH] authentication failed; closing"
        " / echec de l'authentification ; fermeture",
    )
    assert await raw.closed()


async def test_pass_without_user_is_refused(raw: RawClient, alice: Account) -> None:
    reply = await raw.command(f"PASS {PASSWORD}", expect="-ERR")
    assert reply.startswith(b"-ERR send USER first")


async def test_pass_must_follow_user_immediately(raw: RawClient, alice: Account) -> None:
    await raw.command(f"USER {ADDRESS}")
    await raw.command("CAPA")
    while await raw.line() != b".\r\n":
        pass
    await raw.command(f"PASS {PASSWORD}", expect="-ERR send USER first")


async def test_password_with_spaces_is_taken_whole(raw: RawClient, alice: Account) -> None:
    assert " " in PASSWORD
    await raw.login()
    assert (await raw.command("STAT")).startswith(b"+OK ")


async def test_auth_plain_with_initial_response(raw: RawClient, alice: Account) -> None:
    await raw.command(f"AUTH PLAIN {plain_response()}")
    await raw.command("STAT")


async def test_auth_plain_with_continuation(raw: RawClient, alice: Account) -> None:
    await raw.command("AUTH PLAIN", expect="+ ")
    await raw.command(plain_response())
    await raw.command("STAT")


async def test_auth_plain_can_be_cancelled(raw: RawClient, alice: Account) -> None:
    await raw.command("AUTH PLAIN", expect="+ ")
    await raw.command("*", expect="-ERR authentication cancelled")
    await raw.login()


async def test_auth_plain_with_bad_base64_is_a_precise_error(
    raw: RawClient, alice: Account
) -> None:
    await raw.command("AUTH PLAIN !!!!", expect="-ERR malformed base64")
    await raw.command("AUTH PLAIN", expect="+ ")
    await raw.command("not-base64", expect="-ERR malformed base64")


async def test_auth_plain_wrong_password(raw: RawClient, alice: Account) -> None:
    await raw.command(
        f"AUTH PLAIN {plain_response(password='wrong')}",
        expect="-ERR [AUTH] authentication failed / echec de l'authentification",
    )


async def test_auth_plain_refuses_acting_as_another_user(raw: RawClient, alice: Account) -> None:
    response = plain_response(authzid="bob@example.test")
    await raw.command(f"AUTH PLAIN {response}", expect="-ERR [AUTH]")


@protocol_level
async def test_auth_without_mechanism_lists_plain(raw: RawClient) -> None:
    await raw.command("AUTH")
    assert await raw.line() == b"PLAIN\r\n"
    assert await raw.line() == b".\r\n"


@protocol_level
async def test_unsupported_mechanism_and_apop_are_refused(raw: RawClient) -> None:
    await raw.command("AUTH CRAM-MD5", expect="-ERR unsupported mechanism")
    await raw.command("APOP alice 0123456789abcdef", expect="-ERR APOP is not supported")


async def test_login_is_audited_as_pop3(raw: RawClient, services: Services, alice: Account) -> None:
    await raw.login()
    rows = await services.database.read(
        lambda c: c.execute(
            sa.select(schema.audit_log.c.protocol, schema.audit_log.c.outcome)
        ).all()
    )
    assert ("pop3", "success") in [tuple(row) for row in rows]


# -- the maildrop lock ------------------------------------------------------------------


async def test_second_session_on_one_maildrop_is_refused_in_use(
    node: Node, raw: RawClient, alice: Account, cafile: Path
) -> None:
    await raw.login()
    second = await connect(node, cafile)
    try:
        await second.command(f"USER {ADDRESS}")
        reply = await second.command(f"PASS {PASSWORD}", expect="-ERR [IN-USE]")
        assert reply == (
            b"-ERR [IN-USE] maildrop already in use by another session"
            b" / boite aux lettres deja utilisee par une autre session\r\n"
        )
        await raw.command("QUIT")
        assert await raw.closed()
        await second.login()
    finally:
        await second.close()


async def test_lock_is_released_when_the_connection_drops(
    node: Node, alice: Account, cafile: Path
) -> None:
    first = await connect(node, cafile)
    await first.login()
    await first.close()
    second = await connect(node, cafile)
    try:
        for _ in range(50):  # the server notices the close asynchronously
            await second.command(f"USER {ADDRESS}")
            reply = await second.command(f"PASS {PASSWORD}", expect="")
            if reply.startswith(b"+OK"):
                break
            assert reply.startswith(b"-ERR [IN-USE]"), reply
            await asyncio.sleep(0.05)
        else:
            pytest.fail("lock never released")
    finally:
        await second.close()


async def test_lock_is_shared_by_pop3_and_pop3s(
    node: Node, raw: RawClient, alice: Account, cafile: Path
) -> None:
    await raw.login()
    other = await connect(node, cafile, name="pop3")
    try:
        await other.starttls(cafile)
        await other.command(f"USER {ADDRESS}")
        await other.command(f"PASS {PASSWORD}", expect="-ERR [IN-USE]")
    finally:
        await other.close()
