"""LDAP accounts against a real slapd: search and bind, bind as user, StartTLS and LDAPS
with the test CA, first-login provisioning, the sync that disables departed people, and
an IMAP login of a directory user."""

from __future__ import annotations

import asyncio
import imaplib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from hirondelle import tls
from hirondelle.cli.main import main as cli
from hirondelle.config import ListenSettings, Settings
from hirondelle.errors import Refused
from hirondelle.identity.authentication import AuthResult, Outcome
from hirondelle.identity.ldap import LdapDirectory, sync_accounts
from hirondelle.mail.addresses import normalize_address
from hirondelle.node import Node
from hirondelle.services import Services, open_services
from tests.certificates import LocalCA
from tests.identity.conftest import add_second_factor
from tests.identity.slapd import (
    CAROL_PASSWORD,
    DAVE_PASSWORD,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
    slapd,
)
from tests.identity.test_protocols import Target, login_sync

__all__ = ["slapd"]  # the fixture, imported for the tests below

CAROL = "carol@example.test"


def ldap_settings(settings: Settings, server: Slapd, **ldap: Any) -> Settings:
    values: dict[str, Any] = {
        "urls": server.url,
        "start_tls": True,
        "ca_file": str(server.ca_file),
        "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD,
        "base_dn": PEOPLE,
        "timeout_seconds": 5,
    }
    values.update(ldap)
    data = settings.model_dump(mode="json")
    data["identity"]["source"] = "ldap"
    data["ldap"] = values
    data["listen"] = {}
    return Settings.model_validate(data)


@pytest.fixture
async def ldap_services(settings: Settings, slapd: Slapd) -> AsyncIterator[Services]:
    opened = open_services(ldap_settings(settings, slapd))
    try:
        await opened.accounts.add_domain("example.test")
        yield opened
    finally:
        opened.close()


async def login(
    services: Services, address: str, password: str, remote: str = "192.0.2.7"
) -> AuthResult:
    return await services.authenticator.authenticate(
        address, password, protocol="imap", remote=remote
    )


async def last_reason(services: Services) -> str:
    return (await services.authenticator.attempts(limit=1))[0].reason


# --------------------------------------------------------------------------- logins


async def test_search_and_bind_creates_the_account_on_first_login(
    ldap_services: Services,
) -> None:
    with pytest.raises(Exception, match="no account"):
        await ldap_services.accounts.get_account(CAROL)
    result = await login(ldap_services, "Carol@Example.test", CAROL_PASSWORD)
    assert result.outcome is Outcome.SUCCESS
    assert result.account is not None and result.account.address == CAROL
    account = await ldap_services.accounts.get_account(CAROL)
    assert account.display_name == "Carol Dupont"
    assert account.password_hash is None  # the password stays in the directory
    # The alias in a local domain was created; the one in a foreign domain was not.
    aliases = {a.address: a.targets for a in await ldap_services.aliases.list()}
    assert aliases == {"c.dupont@example.test": (CAROL,)}
    resolution = await ldap_services.aliases.resolve("c.dupont@example.test")
    assert [r.address for r in resolution.local] == [CAROL]
    # The account got the default mailboxes and can receive mail.
    names = await ldap_services.database.read(
        lambda conn: [
            row[0]
            for row in conn.exec_driver_sql(
                "SELECT name FROM mailboxes WHERE account_id = ?"
                if conn.dialect.name == "sqlite"
                else "SELECT name FROM mailboxes WHERE account_id = %s",
                (account.id,),
            )
        ]
    )
    assert "INBOX" in names
    # A second login finds the same account (no duplicate, no error).
    again = await login(ldap_services, CAROL, CAROL_PASSWORD)
    assert again.ok and again.account is not None and again.account.id == account.id


async def test_simultaneous_first_logins_make_one_account(
    ldap_services: Services, settings: Settings, slapd: Slapd
) -> None:
    """Two nodes (and several connections on each) log Carol in for the first time at
    once: every login succeeds, and there is one account with one alias."""
    other = open_services(ldap_settings(settings, slapd), upgrade_schema=False)
    try:
        results = await asyncio.gather(
            *(
                login(node, CAROL, CAROL_PASSWORD, remote=f"192.0.2.{n}")
                for n in range(6)
                for node in (ldap_services, other)
            )
        )
        assert all(result.ok for result in results), results
        assert len({result.account.id for result in results if result.account}) == 1
        assert [a.address for a in await ldap_services.accounts.list_accounts()] == [CAROL]
        assert [a.address for a in await ldap_services.aliases.list()] == ["c.dupont@example.test"]
    finally:
        other.close()


async def test_wrong_password_unknown_person_and_empty_password(ldap_services: Services) -> None:
    result = await login(ldap_services, CAROL, "not the password")
    assert result.outcome is Outcome.FAILED
    assert await last_reason(ldap_services) == "unknown-account"
    assert [a.address for a in await ldap_services.accounts.list_accounts()] == []

    assert (await login(ldap_services, "nobody@example.test", "whatever")).outcome is (
        Outcome.FAILED
    )
    # An empty password would be an "unauthenticated bind" (RFC 4513 §5.1.2).
    assert (await login(ldap_services, CAROL, "")).outcome is Outcome.FAILED

    # Once the account exists, a wrong password is a bad password like any other.
    assert (await login(ldap_services, CAROL, CAROL_PASSWORD)).ok
    assert (await login(ldap_services, CAROL, "not the password")).outcome is Outcome.FAILED
    assert await last_reason(ldap_services) == "bad-password"


async def test_filter_metacharacters_match_nobody(ldap_services: Services) -> None:
    """The typed address is escaped (RFC 4515): a wildcard cannot pick Carol's entry."""
    for address in ("*@example.test", "c*@example.test", "carol@example.tes*"):
        result = await login(ldap_services, address, CAROL_PASSWORD)
        assert result.outcome is Outcome.FAILED, address
    assert await ldap_services.accounts.list_accounts() == []


async def test_bind_as_user(settings: Settings, slapd: Slapd) -> None:
    configured = ldap_settings(
        settings,
        slapd,
        bind_dn="",
        bind_password="",
        user_dn_template=f"uid={{local}},{PEOPLE}",
    )
    services = open_services(configured)
    try:
        await services.accounts.add_domain("example.test")
        assert (await login(services, "dave@example.test", "wrong")).outcome is Outcome.FAILED
        result = await login(services, "dave@example.test", DAVE_PASSWORD)
        assert result.ok and result.account is not None
        assert result.account.display_name == "Dave Martin"
        # A DN metacharacter in the typed local part is escaped (RFC 4514), not parsed.
        assert (await login(services, "dave,ou=x@example.test", DAVE_PASSWORD)).outcome is (
            Outcome.FAILED
        )
    finally:
        services.close()


async def test_ldaps_with_the_test_ca(settings: Settings, slapd: Slapd) -> None:
    services = open_services(ldap_settings(settings, slapd, urls=slapd.ldaps_url, start_tls=False))
    try:
        await services.accounts.add_domain("example.test")
        assert (await login(services, CAROL, CAROL_PASSWORD)).ok
    finally:
        services.close()


async def test_starttls_with_an_untrusted_certificate_is_unavailable(
    settings: Settings, slapd: Slapd, tmp_path: Path
) -> None:
    """Another CA: the handshake fails, the password is never sent, the client is told
    to come back later, and the attempt does not count as a guess."""
    other_ca = LocalCA.create(tmp_path / "other", "Some other CA").cafile
    services = open_services(ldap_settings(settings, slapd, ca_file=str(other_ca)))
    try:
        await services.accounts.add_domain("example.test")
        for _ in range(8):
            result = await login(services, CAROL, CAROL_PASSWORD)
            assert result.outcome is Outcome.UNAVAILABLE
            assert result.retry_after == 30
            assert await last_reason(services) == "directory-unavailable"
        assert services.authenticator.limiter.retry_after(CAROL, "192.0.2.7") == 0
    finally:
        services.close()


async def test_directory_down_is_a_temporary_failure(settings: Settings, slapd: Slapd) -> None:
    services = open_services(
        ldap_settings(settings, slapd, urls="ldap://127.0.0.1:9 ldap://127.0.0.1:7")
    )
    try:
        await services.accounts.add_domain("example.test")
        started = time.monotonic()
        result = await login(services, CAROL, CAROL_PASSWORD)
        assert time.monotonic() - started < 3  # refused connections: no waiting
        assert result.outcome is Outcome.UNAVAILABLE
        assert await last_reason(services) == "directory-unavailable"
    finally:
        services.close()


DIRECTORY_DOWN = {
    "imap": "[UNAVAILABLE] The account directory does not answer; try again later / "
    "l'annuaire des comptes ne répond pas ; réessayez plus tard",
    "pop3": "-ERR [SYS/TEMP] the account directory does not answer; try again later / "
    "l'annuaire des comptes ne repond pas ; reessayez plus tard",
    "smtp": "454 4.7.0 The account directory does not answer, try again later",
}


async def test_directory_down_is_told_as_such_by_every_front_end(
    settings: Settings, slapd: Slapd
) -> None:
    """Not "too many failed logins": IMAP NO [UNAVAILABLE] (RFC 5530), POP3 -ERR
    [SYS/TEMP] (RFC 3206), SMTP 454 4.7.0 (RFC 4954 §6), HTTP 503 with Retry-After
    (RFC 9110 §15.6.4), to real clients."""
    configured = ldap_settings(settings, slapd, urls="ldap://127.0.0.1:9")
    listen = ListenSettings.model_validate(
        {
            "imaps": "127.0.0.1:0",
            "pop3s": "127.0.0.1:0",
            "submissions": "127.0.0.1:0",
            "http": "127.0.0.1:0",
        }
    )
    configured = configured.model_copy(update={"listen": listen})
    tls.generate_self_signed(
        configured.certificate_path(), configured.key_path(), hostname="localhost"
    )
    node = Node(configured)
    await node.start()
    try:
        assert node.services is not None
        await node.services.accounts.add_domain("example.test")
        context = tls.client_context(cafile=configured.certificate_path())
        ports = {x.name: x.port for x in node.listeners}
        for protocol, listener in (("imap", "imaps"), ("pop3", "pop3s"), ("smtp", "submissions")):
            # Twice: the second time is not taken for a guess either.
            for _ in range(2):
                reply = await asyncio.to_thread(
                    login_sync,
                    protocol,
                    Target(ports[listener], context),
                    CAROL,
                    CAROL_PASSWORD,
                    "127.0.0.1",
                )
                assert reply == DIRECTORY_DOWN[protocol]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['http']}") as http:
            jmap = await http.get("/jmap/session", auth=(CAROL, CAROL_PASSWORD))
            assert jmap.status_code == 503
            assert jmap.headers["retry-after"] == "30"
            assert "The account directory does not answer" in jmap.text
            web = await http.post(
                "/api/session", json={"address": CAROL, "password": CAROL_PASSWORD}
            )
            assert web.status_code == 503, web.text
            assert web.headers["retry-after"] == "30"
            assert web.json()["error"] == "directory-unavailable"
    finally:
        await node.stop()


async def test_second_url_is_tried_when_the_first_is_down(settings: Settings, slapd: Slapd) -> None:
    services = open_services(ldap_settings(settings, slapd, urls=f"ldap://127.0.0.1:9 {slapd.url}"))
    try:
        await services.accounts.add_domain("example.test")
        assert (await login(services, CAROL, CAROL_PASSWORD)).ok
    finally:
        services.close()


async def test_a_malformed_filter_is_a_temporary_failure(settings: Settings, slapd: Slapd) -> None:
    services = open_services(ldap_settings(settings, slapd, user_filter="(mail={address}"))
    try:
        await services.accounts.add_domain("example.test")
        result = await login(services, CAROL, CAROL_PASSWORD)
        assert result.outcome is Outcome.UNAVAILABLE
        assert await last_reason(services) == "directory-unavailable"
    finally:
        services.close()


async def test_address_in_no_local_domain_is_refused(settings: Settings, slapd: Slapd) -> None:
    services = open_services(ldap_settings(settings, slapd))
    try:
        # example.test is not a local domain here.
        assert (await login(services, CAROL, CAROL_PASSWORD)).outcome is Outcome.FAILED
        assert await last_reason(services) == "directory-not-local"
        assert await services.accounts.list_accounts() == []
    finally:
        services.close()


async def test_app_passwords_stay_local(ldap_services: Services) -> None:
    assert (await login(ldap_services, CAROL, CAROL_PASSWORD)).ok
    _, secret = await ldap_services.app_passwords.add(CAROL, "Phone", ["imap"])
    result = await login(ldap_services, CAROL, secret)
    assert result.ok
    assert (await login(ldap_services, CAROL, secret.upper() + "x")).outcome is Outcome.FAILED


# --------------------------------------------------------------------------- sync


async def test_sync_disables_departed_people_and_refreshes_the_others(
    ldap_services: Services, slapd: Slapd
) -> None:
    assert (await login(ldap_services, CAROL, CAROL_PASSWORD)).ok
    assert (await login(ldap_services, "dave@example.test", DAVE_PASSWORD)).ok
    ldap = ldap_services.authenticator.directory
    assert isinstance(ldap, LdapDirectory)

    # Dave leaves; Carol is renamed and loses her alias.
    slapd.delete(f"uid=dave,{PEOPLE}")
    slapd.modify(
        ldif=f"dn: uid=carol,{PEOPLE}\nchangetype: modify\nreplace: displayName\n"
        "displayName: Carol Durand\n-\ndelete: mailLocalAddress\n"
    )
    report = await sync_accounts(ldap_services.database, ldap)
    assert (report.refreshed, report.disabled, report.enabled) == (1, 1, 0)
    dave = await ldap_services.accounts.get_account("dave@example.test")
    assert dave.disabled
    carol = await ldap_services.accounts.get_account(CAROL)
    assert not carol.disabled and carol.display_name == "Carol Durand"
    assert await ldap_services.aliases.list() == []
    # Dave's password no longer opens anything (the directory refuses the bind, and
    # the account is disabled even for a cached verification or an app password).
    assert (await login(ldap_services, "dave@example.test", DAVE_PASSWORD)).outcome is (
        Outcome.FAILED
    )

    # Dave comes back: the sync that disabled him enables him again.
    slapd.add(
        f"dn: uid=dave,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: dave\ncn: Dave\nsn: Martin\n"
        f"displayName: Dave Martin\nmail: dave@example.test\nuserPassword: {DAVE_PASSWORD}\n"
    )
    report = await sync_accounts(ldap_services.database, ldap)
    assert report.enabled == 1
    assert not (await ldap_services.accounts.get_account("dave@example.test")).disabled
    assert (await login(ldap_services, "dave@example.test", DAVE_PASSWORD)).ok


async def test_sync_leaves_an_administrators_choices_alone(
    ldap_services: Services, slapd: Slapd
) -> None:
    assert (await login(ldap_services, CAROL, CAROL_PASSWORD)).ok
    await ldap_services.accounts.update_account(CAROL, disabled=True)
    ldap = ldap_services.authenticator.directory
    assert isinstance(ldap, LdapDirectory)
    report = await sync_accounts(ldap_services.database, ldap)
    assert report.enabled == 0
    assert (await ldap_services.accounts.get_account(CAROL)).disabled
    # Nor does a login re-enable an account an administrator disabled.
    assert (await login(ldap_services, CAROL, CAROL_PASSWORD)).outcome is Outcome.FAILED
    assert await last_reason(ldap_services) == "account-disabled"


async def test_a_failed_directory_search_disables_nobody(
    ldap_services: Services, settings: Settings, slapd: Slapd
) -> None:
    assert (await login(ldap_services, CAROL, CAROL_PASSWORD)).ok
    broken = LdapDirectory(ldap_settings(settings, slapd, bind_password="wrong").ldap)
    with pytest.raises(Exception, match="refused bind_dn"):
        await sync_accounts(ldap_services.database, broken)
    assert not (await ldap_services.accounts.get_account(CAROL)).disabled


def write_config(configured: Settings) -> None:
    """DATA/hirondelle.toml for the CLI: the store and the [ldap] section."""
    ldap = configured.ldap.model_dump()
    (configured.data_dir / "hirondelle.toml").write_text(
        f"[server]\nhostname = {json.dumps(configured.server.hostname)}\n"
        f"[store]\ndatabase = {json.dumps(configured.store.database)}\n"
        '[identity]\nsource = "ldap"\n[ldap]\n'
        + "".join(f"{key} = {json.dumps(value)}\n" for key, value in ldap.items())
    )


async def test_cli_ldap_sync(settings: Settings, slapd: Slapd) -> None:
    configured = ldap_settings(settings, slapd)
    services = open_services(configured)
    try:
        await services.accounts.add_domain("example.test")
        assert (await login(services, "dave@example.test", DAVE_PASSWORD)).ok
    finally:
        services.close()
    slapd.delete(f"uid=dave,{PEOPLE}")
    write_config(configured)
    runner = CliRunner()
    outcome = await asyncio.to_thread(
        runner.invoke, cli, ["--data", str(configured.data_dir), "ldap", "sync"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "1 disabled" in outcome.output
    services = open_services(configured)
    try:
        assert (await services.accounts.get_account("dave@example.test")).disabled
    finally:
        services.close()


# --------------------------------------------------------------------------- IMAP


async def test_imap_login_of_a_directory_user(settings: Settings, slapd: Slapd) -> None:
    configured = ldap_settings(settings, slapd)
    configured = configured.model_copy(
        update={"listen": ListenSettings.model_validate({"imaps": "127.0.0.1:0"})}
    )
    tls.generate_self_signed(
        configured.certificate_path(), configured.key_path(), hostname="localhost"
    )
    node = Node(configured)
    await node.start()
    try:
        assert node.services is not None
        await node.services.accounts.add_domain("example.test")
        port = node.listeners[0].port
        context = tls.client_context(cafile=configured.certificate_path())

        def session(password: str) -> tuple[str, list[bytes]]:
            with imaplib.IMAP4_SSL("localhost", port, ssl_context=context) as client:
                try:
                    client.login(CAROL, password)
                except imaplib.IMAP4.error as error:
                    return "NO", [str(error).encode()]
                status, mailboxes = client.list()
                return status, mailboxes

        status, detail = await asyncio.to_thread(session, "wrong password")
        assert status == "NO" and b"AUTHENTICATIONFAILED" in detail[0]
        status, mailboxes = await asyncio.to_thread(session, CAROL_PASSWORD)
        assert status == "OK"
        assert any(b"INBOX" in line for line in mailboxes)
    finally:
        await node.stop()


# --------------------------------------------------------------------------- properties


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    local=st.text(
        alphabet=st.sampled_from("abcdeilorv*()\\,=+#;<>\"' \x00&|!~"), min_size=1, max_size=12
    )
)
def test_no_typed_address_opens_another_entry(slapd: Slapd, settings: Settings, local: str) -> None:
    """Whatever the typed local part, only Carol's own address with her password binds
    as Carol (filter and DN escaping; malformed text fails cleanly, never raises)."""
    address = f"{local}@example.test"
    for configured in (
        ldap_settings(settings, slapd, start_tls=False),
        ldap_settings(settings, slapd, start_tls=False, user_dn_template=f"uid={{local}},{PEOPLE}"),
    ):
        try:
            normalized = normalize_address(address)
        except Refused:
            return  # the gate refuses it before any directory work
        entry = LdapDirectory(configured.ldap).authenticate_blocking(normalized, CAROL_PASSWORD)
        assert (entry is not None) == (normalized == CAROL), (address, entry)


async def test_the_node_syncs_periodically(settings: Settings, slapd: Slapd) -> None:
    configured = ldap_settings(settings, slapd, sync_interval_seconds=1)
    node = Node(configured)
    await node.start()
    try:
        services = node.services
        assert services is not None
        await services.accounts.add_domain("example.test")
        assert (await login(services, "dave@example.test", DAVE_PASSWORD)).ok
        await asyncio.to_thread(slapd.delete, f"uid=dave,{PEOPLE}")
        for _ in range(50):
            await asyncio.sleep(0.1)
            if (await services.accounts.get_account("dave@example.test")).disabled:
                break
        assert (await services.accounts.get_account("dave@example.test")).disabled
    finally:
        await node.stop()


@pytest.mark.parametrize(
    ("ldap", "message"),
    [
        ({"urls": ""}, '[identity] source = "ldap" needs [ldap] urls'),
        ({"base_dn": ""}, '[identity] source = "ldap" needs [ldap] base_dn'),
        ({"urls": "http://ldap.example"}, "is not an ldap:// or ldaps:// URL"),
        ({"user_dn_template": "uid={user},dc=x"}, "only {local}, {domain} and {address}"),
    ],
)
def test_incomplete_ldap_configuration_is_a_clear_error(
    settings: Settings, slapd: Slapd, ldap: dict[str, str], message: str
) -> None:
    configured = ldap_settings(settings, slapd, **ldap)
    write_config(configured)
    outcome = CliRunner().invoke(cli, ["--data", str(configured.data_dir), "ldap", "sync"])
    assert outcome.exit_code == 1
    assert message in outcome.output
    assert "Traceback" not in outcome.output


async def test_second_factor_rule_applies_to_directory_passwords(ldap_services: Services) -> None:
    """With a second factor (kept locally), the directory password leads the web to its
    second step only; mail clients need an app password, as for local accounts."""
    first = await login(ldap_services, CAROL, CAROL_PASSWORD)
    assert first.ok and first.account is not None
    await add_second_factor(ldap_services, first.account)
    result = await login(ldap_services, CAROL, CAROL_PASSWORD)
    assert result.outcome is Outcome.APP_PASSWORD_REQUIRED
    web = await ldap_services.authenticator.authenticate(
        CAROL, CAROL_PASSWORD, protocol="web", remote="192.0.2.7"
    )
    assert web.outcome is Outcome.SECOND_FACTOR_REQUIRED


async def test_login_with_an_alias_when_the_filter_allows_it(
    settings: Settings, slapd: Slapd
) -> None:
    wide = "(&(objectClass=inetOrgPerson)(|(mail={address})(mailLocalAddress={address})))"
    services = open_services(ldap_settings(settings, slapd, user_filter=wide))
    try:
        await services.accounts.add_domain("example.test")
        result = await login(services, "c.dupont@example.test", CAROL_PASSWORD)
        assert result.ok and result.account is not None
        assert result.account.address == CAROL
        ldap = services.authenticator.directory
        assert isinstance(ldap, LdapDirectory)
        report = await sync_accounts(services.database, ldap)
        assert (report.refreshed, report.disabled) == (1, 0)
    finally:
        services.close()
