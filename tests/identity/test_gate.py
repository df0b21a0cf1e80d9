"""The login gate at service level, on both backends: rate limits and lockout, the
known-good address bypass, app passwords, the second-factor rule, the verification
cache and the audit log."""

from __future__ import annotations

import asyncio

import pytest

from hirondelle.identity import passwords
from hirondelle.identity.app_passwords import looks_like_app_password
from hirondelle.identity.authentication import Authenticator, Outcome
from hirondelle.services import Services
from hirondelle.store import audit
from hirondelle.store.directory import Account
from tests.identity.conftest import ALICE, PASSWORD, add_second_factor

ATTACKER = "192.0.2.66"
HOME = "198.51.100.7"


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts argon2 verifications (the expensive work the gate must avoid)."""
    calls: list[str] = []
    real = passwords.verify_password_sync

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password_sync", counting)
    return calls


async def login(
    services: Services,
    secret: str = PASSWORD,
    *,
    address: str = ALICE,
    protocol: str = "imap",
    remote: str = HOME,
    expect: Outcome = Outcome.SUCCESS,
) -> int:
    result = await services.authenticator.authenticate(
        address, secret, protocol=protocol, remote=remote, client_id="test"
    )
    assert result.outcome is expect, result
    return result.retry_after


async def test_right_password_succeeds_and_is_audited(services: Services, alice: Account) -> None:
    await login(services)
    rows = await services.database.read(lambda c: audit.query(c, address=ALICE))
    assert [(r.outcome, r.remote, r.client_id, r.account_id) for r in rows] == [
        ("success", HOME, "test", alice.id)
    ]


async def test_account_locked_after_failures_refuses_without_argon2(
    services: Services, alice: Account, argon2_calls: list[str]
) -> None:
    for _ in range(5):
        await login(services, "wrong", remote=ATTACKER, expect=Outcome.FAILED)
    before = len(argon2_calls)
    retry_after = await login(services, PASSWORD, remote="203.0.113.9", expect=Outcome.RATE_LIMITED)
    assert 55 <= retry_after <= 60
    assert len(argon2_calls) == before
    rows = await services.database.read(lambda c: audit.query(c, address=ALICE, limit=1))
    assert (rows[0].outcome, rows[0].reason) == ("rate-limited", "rate-limited")


async def test_known_good_address_bypasses_account_lockout(
    services: Services, alice: Account
) -> None:
    await login(services, remote=HOME)
    for _ in range(5):
        await login(services, "wrong", remote=ATTACKER, expect=Outcome.FAILED)
    await login(services, remote=ATTACKER, expect=Outcome.RATE_LIMITED)
    await login(services, remote=HOME)


async def test_address_limit_applies_across_accounts_and_to_unknown_ones(
    services: Services, alice: Account
) -> None:
    for n in range(8):
        await login(
            services, "x", address=f"nobody{n}@example.test", remote=ATTACKER, expect=Outcome.FAILED
        )
    await login(
        services, address="other@example.test", remote=ATTACKER, expect=Outcome.RATE_LIMITED
    )


async def test_address_limit_holds_even_for_a_known_good_address(
    services: Services, alice: Account
) -> None:
    await login(services, remote=ATTACKER)
    for n in range(8):
        await login(
            services, "x", address=f"n{n}@example.test", remote=ATTACKER, expect=Outcome.FAILED
        )
    await login(services, remote=ATTACKER, expect=Outcome.RATE_LIMITED)


async def test_lockouts_double_up_to_the_ceiling(services: Services, alice: Account) -> None:
    limiter = services.authenticator.limiter
    clock = [1000.0]
    limiter.clock = lambda: clock[0]  # type: ignore[attr-defined]
    waits = []
    for _ in range(4):
        for _ in range(5):
            limiter.record_failure("bob@example.test", "")
        waits.append(limiter.retry_after("bob@example.test", "192.0.2.1"))
        clock[0] += waits[-1]
    assert waits == [60.0, 120.0, 240.0, 240.0]


async def test_failures_outside_the_window_do_not_count(services: Services) -> None:
    limiter = services.authenticator.limiter
    clock = [1000.0]
    limiter.clock = lambda: clock[0]  # type: ignore[attr-defined]
    for _ in range(4):
        limiter.record_failure("bob@example.test", "")
    clock[0] += 601
    assert not limiter.record_failure("bob@example.test", "")
    assert limiter.retry_after("bob@example.test", "") == 0


async def test_disabled_account_fails_like_a_wrong_password(
    services: Services, alice: Account
) -> None:
    await services.accounts.update_account(ALICE, disabled=True)
    await login(services, expect=Outcome.FAILED)


async def test_cache_hit_skips_argon2(
    services: Services, alice: Account, argon2_calls: list[str]
) -> None:
    await login(services, protocol="dav")
    first = len(argon2_calls)
    for _ in range(20):
        await login(services, protocol="dav")
    assert first == 1 and len(argon2_calls) == first


async def test_password_change_invalidates_the_cache(
    services: Services, alice: Account, argon2_calls: list[str]
) -> None:
    await login(services)
    await services.accounts.set_password(ALICE, "a brand new password")
    await login(services, expect=Outcome.FAILED)
    await login(services, "a brand new password")


async def test_lockout_drops_cached_verifications(services: Services, alice: Account) -> None:
    await login(services)
    assert len(services.authenticator.cache) == 1
    for _ in range(5):
        await login(services, "wrong", remote=ATTACKER, expect=Outcome.FAILED)
    assert len(services.authenticator.cache) == 0


async def test_cache_never_holds_the_secret(services: Services, alice: Account) -> None:
    await login(services)
    entries = services.authenticator.cache._entries  # what is stored
    assert all(PASSWORD.encode() not in key for key in entries)


async def test_app_password_is_shown_once_and_works_for_its_protocols(
    services: Services, alice: Account
) -> None:
    app_password, secret = await services.app_passwords.add(ALICE, "Phone", ["imap", "smtp"])
    assert looks_like_app_password(secret)
    assert secret not in app_password.hash
    await login(services, secret, protocol="imap")
    await login(services, secret.upper(), protocol="smtp")
    await login(services, secret, protocol="pop3", expect=Outcome.FAILED)
    await login(services, secret, protocol="dav", expect=Outcome.FAILED)
    [listed] = await services.app_passwords.list(ALICE)
    assert (listed.label, listed.protocols, listed.last_used_remote) == (
        "Phone",
        ("imap", "smtp"),
        HOME,
    )
    assert listed.last_used_at is not None


async def test_revoked_app_password_is_refused_even_when_cached(
    services: Services, alice: Account
) -> None:
    app_password, secret = await services.app_passwords.add(ALICE, "Laptop", ["dav"])
    await login(services, secret, protocol="dav")
    await services.app_passwords.revoke(ALICE, app_password.id)
    await login(services, secret, protocol="dav", expect=Outcome.FAILED)
    assert await services.app_passwords.list(ALICE) == []
    [revoked] = await services.app_passwords.list(ALICE, include_revoked=True)
    assert revoked.revoked_at is not None


async def test_second_factor_refuses_main_password_on_client_protocols(
    services: Services, alice: Account
) -> None:
    await add_second_factor(services, alice)
    for protocol in ("imap", "pop3", "smtp", "dav"):
        await login(services, protocol=protocol, expect=Outcome.APP_PASSWORD_REQUIRED)
    await login(services, "wrong", protocol="imap", expect=Outcome.FAILED)
    # The web asks for the second factor itself: the password step is not a login yet.
    await login(services, protocol="web", expect=Outcome.SECOND_FACTOR_REQUIRED)
    _, secret = await services.app_passwords.add(ALICE, "Phone", ["imap"])
    await login(services, secret, protocol="imap")


async def test_audit_prune_keeps_recent_rows(services: Services, alice: Account) -> None:
    await login(services)
    assert await services.authenticator.prune_audit() == 0
    old = audit.AuditEntry(1, "imap", "", "", ALICE, alice.id, "failed", "bad-password")
    await services.database.write(lambda ctx: audit.record(ctx, old))
    assert await services.authenticator.prune_audit() == 1
    rows = await services.database.read(lambda c: audit.query(c, address=ALICE))
    assert [r.outcome for r in rows] == ["success"]


async def test_parallel_guesses_cannot_outrun_the_lockout(
    services: Services, alice: Account, argon2_calls: list[str]
) -> None:
    results = await asyncio.gather(
        *(
            services.authenticator.authenticate(
                ALICE, f"guess {n}", protocol="imap", remote=ATTACKER
            )
            for n in range(50)
        )
    )
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.FAILED) <= 5
    assert outcomes.count(Outcome.RATE_LIMITED) >= 45
    assert len(argon2_calls) <= 5


async def test_known_good_address_survives_a_restart_through_the_audit_log(
    services: Services, alice: Account
) -> None:
    await login(services, remote=HOME)
    # A restarted node: a fresh limiter and cache, the same store.
    services.authenticator = Authenticator(services.database, services.settings.identity)
    for _ in range(5):
        await login(services, "wrong", remote=ATTACKER, expect=Outcome.FAILED)
    await login(services, remote="203.0.113.50", expect=Outcome.RATE_LIMITED)
    await login(services, remote=HOME)


async def test_app_password_guesses_cost_one_argon2_whatever_their_number(
    services: Services, alice: Account, argon2_calls: list[str]
) -> None:
    secrets = [(await services.app_passwords.add(ALICE, f"D{n}", ["imap"]))[1] for n in range(3)]
    argon2_calls.clear()
    await login(services, "abcd-efgh-jkmn-pqrs", expect=Outcome.FAILED)
    await login(
        services, "abcd-efgh-jkmn-pqrs", address="nobody@example.test", expect=Outcome.FAILED
    )
    assert len(argon2_calls) == 2
    argon2_calls.clear()
    await login(services, secrets[2])
    assert len(argon2_calls) == 2  # the main password, then the one app password


async def test_proven_password_refusals_do_not_count_as_guesses(
    services: Services, alice: Account
) -> None:
    await services.accounts.update_account(ALICE, switches={"imap": False})
    for _ in range(12):
        await login(services, remote=ATTACKER, expect=Outcome.PROTOCOL_DISABLED)
    await login(services, remote=ATTACKER, protocol="pop3")


@pytest.mark.parametrize(
    ("address", "secret"),
    [
        ("", ""),
        ("@", "x"),
        (ALICE, "\x00"),
        (ALICE, "\udc80 lone surrogate"),
        ("\udc80@example.test", PASSWORD),
        ("a" * 5000 + "@example.test", "b" * 5000),
        (ALICE + "\x00", PASSWORD),
        ("ÄLICE@EXAMPLE.TEST", PASSWORD),
    ],
)
async def test_malformed_credentials_fail_cleanly(
    services: Services, alice: Account, address: str, secret: str
) -> None:
    await login(services, secret, address=address, expect=Outcome.FAILED)
    [row] = await services.authenticator.attempts(limit=1)
    assert row.address.isprintable() and row.outcome == "failed"


async def test_parallel_correct_logins_all_get_in(services: Services, alice: Account) -> None:
    """Regression: logins being checked counted as failures, so a client opening many
    connections at once (or users behind one NAT address) was told "too many failed
    logins" although nothing had failed. Now the extra attempts wait for the ones in
    flight instead of being refused."""
    results = await asyncio.gather(
        *(
            services.authenticator.authenticate(ALICE, PASSWORD, protocol="imap", remote=HOME)
            for _ in range(40)
        )
    )
    assert [r.outcome for r in results] == [Outcome.SUCCESS] * 40
