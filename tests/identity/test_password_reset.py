"""Password-reset links: one-time, one hour, token hashed at rest, the policy applied,
sessions ended; on both backends. The `hirondelle account reset-link` and
`second-factor` commands run as the real console script (SQLite)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from hirondelle.config import load_settings
from hirondelle.identity.authentication import Outcome
from hirondelle.identity.password_policy import WeakPassword
from hirondelle.identity.password_reset import InvalidResetToken
from hirondelle.services import Services, open_services
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.directory import Account
from hirondelle.store.schema_web_sessions import password_resets
from tests.cli.conftest import BOB, BOB_PASSWORD, base, data, initialised, login, run_cli
from tests.identity.conftest import ALICE, PASSWORD

__all__ = ["base", "data", "initialised"]  # the fixtures, for pytest

NEW_PASSWORD = "swallows fly south"


def token_of(url: str) -> str:
    match = re.fullmatch(
        r"https://mail\.example\.test/reset-password#token=([A-Za-z0-9_-]{43})", url
    )
    assert match is not None, url
    return match.group(1)


async def outcome(services: Services, password: str) -> Outcome:
    result = await services.authenticator.authenticate(ALICE, password, protocol="imap")
    return result.outcome


async def test_a_link_sets_the_password_once(services: Services, alice: Account) -> None:
    link = await services.password_resets.create_link("Alice@Example.Test")
    assert link.address == ALICE
    token = token_of(link.url)
    rows = await services.database.read(
        lambda conn: conn.execute(sa.select(password_resets)).mappings().all()
    )
    assert len(rows) == 1 and token not in " ".join(str(v) for v in rows[0].values())
    assert link.expires_at - rows[0]["created_at"] == 3600 * 10**6

    assert await services.password_resets.reset(token, NEW_PASSWORD) == ALICE
    assert await outcome(services, NEW_PASSWORD) is Outcome.SUCCESS
    assert await outcome(services, PASSWORD) is Outcome.FAILED
    with pytest.raises(InvalidResetToken):
        await services.password_resets.reset(token, "yet another passphrase")
    assert await outcome(services, NEW_PASSWORD) is Outcome.SUCCESS


async def test_a_weak_password_is_refused_and_does_not_spend_the_link(
    services: Services, alice: Account
) -> None:
    token = token_of((await services.password_resets.create_link(ALICE)).url)
    with pytest.raises(WeakPassword) as short:
        await services.password_resets.reset(token, "short")
    assert short.value.rule == "too-short"
    with pytest.raises(WeakPassword) as common:
        await services.password_resets.reset(token, "motdepasse123")
    assert common.value.rule == "common"
    await services.password_resets.reset(token, NEW_PASSWORD)


async def test_an_expired_link_is_refused(services: Services, alice: Account) -> None:
    token = token_of((await services.password_resets.create_link(ALICE)).url)

    def expire(ctx: WriteContext) -> None:
        ctx.conn.execute(password_resets.update().values(expires_at=now_us() - 1))

    await services.database.write(expire)
    with pytest.raises(InvalidResetToken):
        await services.password_resets.reset(token, NEW_PASSWORD)
    assert await outcome(services, PASSWORD) is Outcome.SUCCESS


async def test_using_one_link_spends_the_others_and_ends_sessions(
    services: Services, alice: Account
) -> None:
    first = token_of((await services.password_resets.create_link(ALICE)).url)
    second = token_of((await services.password_resets.create_link(ALICE)).url)
    cookie, _session = await services.web_sessions.create(
        alice, stay_signed_in=True, remote="", user_agent=""
    )
    await services.password_resets.reset(second, NEW_PASSWORD)
    assert await services.web_sessions.resolve(cookie, remote="") is None
    with pytest.raises(InvalidResetToken):
        await services.password_resets.reset(first, "yet another passphrase")


@pytest.mark.parametrize("token", ["", "nope", "a" * 43, "a" * 43 + "\n", "\x00" * 43])
async def test_unknown_or_malformed_tokens_are_refused(
    services: Services, alice: Account, token: str
) -> None:
    with pytest.raises(InvalidResetToken):
        await services.password_resets.reset(token, NEW_PASSWORD)


# -- the commands -------------------------------------------------------------------------


def test_reset_link_command_prints_a_working_link(data: Path) -> None:
    # The configuration `init` wrote has no public_url: links start with https://HOSTNAME.
    result = run_cli("--data", data, "account", "reset-link", BOB)
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("https://mx.example.test/reset-password#token="), result.describe()
    assert re.search(r"valid until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", result.stdout)

    async def use() -> None:
        services = open_services(load_settings(data, environ={}))
        try:
            await services.password_resets.reset(url.rsplit("#token=", 1)[1], NEW_PASSWORD)
        finally:
            services.close()

    asyncio.run(use())
    assert asyncio.run(login(data, BOB, NEW_PASSWORD)) is Outcome.SUCCESS
    assert asyncio.run(login(data, BOB, BOB_PASSWORD)) is Outcome.FAILED


def test_reset_link_for_an_unknown_account_fails_cleanly(data: Path) -> None:
    result = run_cli("--data", data, "account", "reset-link", "nobody@example.test", expect=1)
    assert result.error_line == "error: no account nobody@example.test"


def test_second_factor_list_and_remove_commands(data: Path) -> None:
    async def enrol() -> int:
        services = open_services(load_settings(data, environ={}))
        try:
            bob = await services.accounts.get_account(BOB)
            enrolment = await services.second_factors.begin_totp(bob)
            await services.second_factors.confirm_totp(bob, pyotp.TOTP(enrolment.secret).now())
            (factor,) = await services.second_factors.factors(bob.id)
            return factor.id
        finally:
            services.close()

    factor_id = asyncio.run(enrol())
    assert asyncio.run(login(data, BOB, BOB_PASSWORD)) is Outcome.APP_PASSWORD_REQUIRED
    listed = run_cli("--data", data, "account", "second-factor", "list", BOB)
    assert re.search(rf"^\s*{factor_id}\s+totp\s+Authenticator app\s", listed.stdout, re.M)
    assert "10 recovery codes left" in listed.stdout
    removed = run_cli("--data", data, "account", "second-factor", "remove", BOB, str(factor_id))
    assert f"second factor {factor_id} of {BOB} removed" in removed.stdout
    assert asyncio.run(login(data, BOB, BOB_PASSWORD)) is Outcome.SUCCESS
    again = run_cli(
        "--data", data, "account", "second-factor", "remove", BOB, str(factor_id), expect=1
    )
    assert again.error_line == f"error: no second factor {factor_id}"
