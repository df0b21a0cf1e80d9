"""The one login gate: outcomes the client sees, and the audit row written every time."""

from __future__ import annotations

import pytest

from hirondelle.identity.authentication import Outcome
from hirondelle.services import Services
from hirondelle.store import audit

PASSWORD = "correct horse battery"


@pytest.fixture
async def gate(services: Services) -> Services:
    await services.accounts.add_domain("example.test")
    await services.accounts.add_account("alice@example.test", password=PASSWORD)
    return services


async def entries(services: Services) -> list[audit.AuditEntry]:
    return await services.database.read(lambda c: audit.query(c))


async def test_success_is_audited(gate: Services) -> None:
    result = await gate.authenticator.authenticate(
        "Alice@Example.test", PASSWORD, protocol="imap", remote="192.0.2.7", client_id="Thunderbird"
    )
    assert result.ok and result.account is not None
    assert result.account.address == "alice@example.test"
    (entry,) = await entries(gate)
    assert (entry.protocol, entry.remote, entry.client_id, entry.outcome) == (
        "imap",
        "192.0.2.7",
        "Thunderbird",
        "success",
    )


@pytest.mark.parametrize(
    ("address", "password", "reason"),
    [
        ("alice@example.test", "wrong password!", "bad-password"),
        ("nobody@example.test", PASSWORD, "unknown-account"),
        ("not an address", PASSWORD, "unknown-account"),
    ],
)
async def test_failures_look_alike_to_the_client(
    gate: Services, address: str, password: str, reason: str
) -> None:
    result = await gate.authenticator.authenticate(
        address, password, protocol="imap", remote="198.51.100.1"
    )
    assert result.outcome is Outcome.FAILED
    assert result.account is None
    (entry,) = await entries(gate)
    assert entry.outcome == "failed" and entry.reason == reason


async def test_disabled_account_fails_like_a_bad_password(gate: Services) -> None:
    await gate.accounts.update_account("alice@example.test", disabled=True)
    result = await gate.authenticator.authenticate("alice@example.test", PASSWORD, protocol="imap")
    assert result.outcome is Outcome.FAILED
    assert (await entries(gate))[0].reason == "account-disabled"


async def test_protocol_switch_is_told_only_after_the_right_password(gate: Services) -> None:
    # POP3 is off by default for new accounts.
    right = await gate.authenticator.authenticate("alice@example.test", PASSWORD, protocol="pop3")
    assert right.outcome is Outcome.PROTOCOL_DISABLED
    wrong = await gate.authenticator.authenticate(
        "alice@example.test", "guess guess guess", protocol="pop3"
    )
    assert wrong.outcome is Outcome.FAILED
    await gate.accounts.update_account("alice@example.test", switches={"pop3": True, "imap": False})
    assert (
        await gate.authenticator.authenticate("alice@example.test", PASSWORD, protocol="pop3")
    ).ok
    imap = await gate.authenticator.authenticate("alice@example.test", PASSWORD, protocol="imap")
    assert imap.outcome is Outcome.PROTOCOL_DISABLED


async def test_jmap_obeys_the_web_switch(gate: Services) -> None:
    await gate.accounts.update_account("alice@example.test", switches={"web": False})
    result = await gate.authenticator.authenticate("alice@example.test", PASSWORD, protocol="jmap")
    assert result.outcome is Outcome.PROTOCOL_DISABLED


async def test_password_change_takes_effect(gate: Services) -> None:
    await gate.accounts.set_password("alice@example.test", "a new long password")
    assert not (
        await gate.authenticator.authenticate("alice@example.test", PASSWORD, protocol="imap")
    ).ok
    assert (
        await gate.authenticator.authenticate(
            "alice@example.test", "a new long password", protocol="imap"
        )
    ).ok


async def test_account_without_password_cannot_log_in(gate: Services) -> None:
    await gate.accounts.add_account("bob@example.test", password=None)
    result = await gate.authenticator.authenticate("bob@example.test", "", protocol="imap")
    assert result.outcome is Outcome.FAILED
