"""The login limits hold across the nodes of a cluster: two nodes (two sets of services
with their own in-process limiters) on one store, on both backends. Limits as in
tests/identity/conftest.py: 5 failures per account, 8 per address, 60 s first lockout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hirondelle.config import Settings
from hirondelle.identity.authentication import AuthResult, Outcome
from hirondelle.services import Services, open_services
from hirondelle.store import login_limits
from hirondelle.store.database import now_us
from hirondelle.store.directory import Account
from tests.identity.conftest import ALICE, PASSWORD, make_account

ATTACKER = "192.0.2.66"
HOME = "198.51.100.7"


@pytest.fixture
async def other_node(identity_settings: Settings, services: Services) -> AsyncIterator[Services]:
    """A second node on the same store (``services`` is the first; it migrated it)."""
    opened = open_services(identity_settings, upgrade_schema=False)
    try:
        yield opened
    finally:
        opened.close()


async def attempt(
    services: Services, secret: str, *, address: str = ALICE, remote: str = ATTACKER
) -> AuthResult:
    return await services.authenticator.authenticate(
        address, secret, protocol="imap", remote=remote, client_id="test"
    )


async def test_failures_on_two_nodes_add_up_to_a_lockout(
    services: Services, other_node: Services, alice: Account
) -> None:
    for n in range(3):
        assert (await attempt(services, f"guess {n}")).outcome is Outcome.FAILED
    for n in range(2):
        assert (await attempt(other_node, f"guess {n}", remote="192.0.2.67")).outcome is (
            Outcome.FAILED
        )
    # The fifth failure (on the second node) locked the account: the first node, which
    # saw only three, refuses too, even the right password from a new address.
    result = await attempt(services, PASSWORD, remote="203.0.113.9")
    assert result.outcome is Outcome.RATE_LIMITED
    assert 55 <= result.retry_after <= 60


async def test_an_address_locked_on_one_node_is_refused_on_the_other(
    services: Services, other_node: Services
) -> None:
    for n in range(8):
        node = services if n % 2 else other_node
        result = await attempt(node, "x", address=f"user{n}@example.test")
        assert result.outcome is Outcome.FAILED
    for node in (services, other_node):
        result = await attempt(node, "x", address="someone@example.test")
        assert result.outcome is Outcome.RATE_LIMITED


async def test_the_real_user_still_gets_in_on_any_node(
    services: Services, other_node: Services, alice: Account
) -> None:
    assert (await attempt(services, PASSWORD, remote=HOME)).ok
    for n in range(5):
        await attempt(other_node, f"guess {n}")
    assert (await attempt(other_node, PASSWORD)).outcome is Outcome.RATE_LIMITED
    # From the address it logged in from before, on the node that did not see it.
    assert (await attempt(other_node, PASSWORD, remote=HOME)).ok
    assert (await attempt(services, PASSWORD, remote=HOME)).ok


async def test_a_restarted_node_keeps_the_lockout(
    identity_settings: Settings, services: Services, alice: Account
) -> None:
    for n in range(5):
        await attempt(services, f"guess {n}")
    restarted = open_services(identity_settings, upgrade_schema=False)
    try:
        result = await attempt(restarted, PASSWORD, remote="203.0.113.9")
        assert result.outcome is Outcome.RATE_LIMITED
    finally:
        restarted.close()


async def test_lockouts_double_when_they_recur(
    services: Services, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store doubles a recurring lockout (60 s, then 120 s) like the in-process
    limiter; a success clears the account's failures there too."""
    shared = services.authenticator.shared_limits
    now = now_us()

    async def fail(offset_s: int) -> dict[str, int]:
        return await services.database.write(
            lambda ctx: login_limits.record_failure(
                ctx, ALICE, ATTACKER, now + offset_s * 1_000_000, shared
            )
        )

    for _ in range(4):
        assert await fail(0) == {}
    assert (await fail(0))["account"] == now + 60_000_000
    for _ in range(4):
        await fail(100)
    assert (await fail(100))["account"] == now + 100_000_000 + 120_000_000
    await fail(200)
    await services.database.write(lambda ctx: login_limits.record_success(ctx, ALICE))
    for _ in range(4):
        assert "account" not in await fail(200)


async def test_brute_force_over_two_nodes_is_slowed_and_the_user_gets_in(
    services: Services, other_node: Services, alice: Account
) -> None:
    """200 guesses from one address, alternating between the nodes: only the first
    ones are even checked; the real user, from another address, still gets in."""
    bob = await make_account(services, "bob@example.test")
    outcomes = []
    for n in range(200):
        node = services if n % 2 else other_node
        outcomes.append((await attempt(node, f"guess {n}", address=bob.address)).outcome)
    assert outcomes.count(Outcome.FAILED) <= 8
    assert outcomes.count(Outcome.RATE_LIMITED) >= 192
    assert (await attempt(other_node, PASSWORD, remote=HOME)).ok
    assert (await attempt(services, PASSWORD, address=bob.address, remote=HOME)).outcome is (
        Outcome.RATE_LIMITED  # bob's account is locked, and HOME never logged in as bob
    )


async def test_pruning_forgets_old_failures(services: Services, alice: Account) -> None:
    shared = services.authenticator.shared_limits
    old = now_us() - shared.window_us - 1

    await services.database.write(
        lambda ctx: login_limits.record_failure(ctx, ALICE, ATTACKER, old, shared)
    )
    removed = await services.database.write(lambda ctx: login_limits.prune(ctx, now_us(), shared))
    assert removed == 2  # the account's and the address's
