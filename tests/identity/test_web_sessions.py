"""Web sessions at the service level, on both backends: tokens hashed at rest, the 12 h /
30 day absolute lifetimes, last-seen, listing and revoking, and every session ended by a
password change or by disabling the account or its web access."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.identity.web_sessions import (
    SESSION_SECONDS,
    STAY_SIGNED_IN_SECONDS,
    csrf_token_of,
    new_token,
    parse_token,
    token_hash,
)
from hirondelle.services import Services
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.directory import Account
from hirondelle.store.schema_web_sessions import web_sessions
from tests.identity.conftest import ALICE, make_account


async def test_a_session_resolves_and_its_token_is_stored_hashed(
    services: Services, alice: Account
) -> None:
    token, session = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="192.0.2.1", user_agent="Firefox"
    )
    resolved = await services.web_sessions.resolve(token, remote="192.0.2.1")
    assert resolved is not None
    assert resolved.account.address == ALICE and resolved.id == session.id
    assert resolved.csrf_token == session.csrf_token == csrf_token_of(token) != token
    rows = await services.database.read(
        lambda conn: conn.execute(sa.select(web_sessions)).mappings().all()
    )
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0].values())
    assert token not in stored
    assert rows[0]["token_hash"] == token_hash(token)
    assert token_hash(token) != hashlib.sha256(token.encode()).hexdigest()  # labelled


async def test_lifetimes_are_12_hours_or_30_days_from_sign_in(
    services: Services, alice: Account
) -> None:
    before = now_us()
    _t, short = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="", user_agent=""
    )
    _t, long = await services.web_sessions.create(
        alice, stay_signed_in=True, remote="", user_agent=""
    )
    assert (
        before + SESSION_SECONDS * 10**6 <= short.expires_at <= now_us() + SESSION_SECONDS * 10**6
    )
    assert long.expires_at - long.created_at == STAY_SIGNED_IN_SECONDS * 10**6
    assert not short.stay_signed_in and long.stay_signed_in


async def expire(services: Services, session_id: int) -> None:
    def write(ctx: WriteContext) -> None:
        ctx.conn.execute(
            web_sessions.update()
            .where(web_sessions.c.id == session_id)
            .values(expires_at=now_us() - 1)
        )

    await services.database.write(write)


async def test_an_expired_session_is_gone_however_often_it_was_used(
    services: Services, alice: Account
) -> None:
    token, session = await services.web_sessions.create(
        alice, stay_signed_in=True, remote="", user_agent=""
    )
    assert await services.web_sessions.resolve(token, remote="") is not None
    await expire(services, session.id)
    assert await services.web_sessions.resolve(token, remote="") is None
    assert await services.web_sessions.sessions(alice.id) == []


async def test_last_seen_and_remote_follow_the_browser(services: Services, alice: Account) -> None:
    token, session = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="192.0.2.1", user_agent="Firefox/130"
    )
    await services.web_sessions.resolve(token, remote="198.51.100.7")
    (info,) = await services.web_sessions.sessions(alice.id, current=session.id)
    assert info.remote == "198.51.100.7"
    assert info.user_agent == "Firefox/130"
    assert info.current and info.last_seen_at >= info.created_at


async def test_list_and_revoke_one_session(services: Services, alice: Account) -> None:
    bob = await make_account(services, "bob@example.test")
    first, one = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="a", user_agent="one"
    )
    second, two = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="b", user_agent="two"
    )
    listed = await services.web_sessions.sessions(alice.id, current=two.id)
    assert {s.id for s in listed} == {one.id, two.id}
    assert [s.current for s in listed if s.id == two.id] == [True]
    # Bob cannot end Alice's session: the same answer as for no such session.
    assert not await services.web_sessions.revoke(bob.id, one.id)
    assert await services.web_sessions.revoke(alice.id, one.id)
    assert await services.web_sessions.resolve(first, remote="") is None
    assert await services.web_sessions.resolve(second, remote="") is not None
    assert not await services.web_sessions.revoke(alice.id, one.id)


async def test_a_password_change_ends_every_session(services: Services, alice: Account) -> None:
    tokens = [
        (await services.web_sessions.create(alice, stay_signed_in=s, remote="", user_agent=""))[0]
        for s in (False, True)
    ]
    await services.accounts.set_password(ALICE, "a brand new passphrase")
    for token in tokens:
        assert await services.web_sessions.resolve(token, remote="") is None


@pytest.mark.parametrize("change", ["disabled", "web switched off"])
async def test_a_disabled_account_or_web_access_ends_sessions(
    services: Services, alice: Account, change: str
) -> None:
    token, _session = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="", user_agent=""
    )
    if change == "disabled":
        await services.accounts.update_account(ALICE, disabled=True)
    else:
        await services.accounts.update_account(ALICE, switches={"web": False})
    assert await services.web_sessions.resolve(token, remote="") is None


async def test_sign_out_ends_the_session(services: Services, alice: Account) -> None:
    token, _session = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="", user_agent=""
    )
    await services.web_sessions.sign_out(token)
    assert await services.web_sessions.resolve(token, remote="") is None


async def test_unknown_and_malformed_tokens_resolve_to_nothing(
    services: Services, alice: Account
) -> None:
    await services.web_sessions.create(alice, stay_signed_in=False, remote="", user_agent="")
    for token in (new_token(), "", "x", "\x00" * 43, "é" * 43, "a" * 44):
        assert await services.web_sessions.resolve(token, remote="") is None


def test_tokens_have_256_bits_in_43_characters() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(parse_token(t) == t for t in tokens)


@given(st.text(max_size=100))
def test_parse_token_accepts_only_43_base64url_characters(text: str) -> None:
    parsed = parse_token(text)
    ok = len(text) == 43 and all(c.isascii() and (c.isalnum() or c in "-_") for c in text)
    assert (parsed == text) if ok else (parsed is None)


def test_a_trailing_newline_is_not_part_of_a_token() -> None:
    token = new_token()
    assert parse_token(token + "\n") is None
