"""Second factors at the service level, on both backends: TOTP (RFC 6238) enrolment,
window and replay refusal; recovery codes; WebAuthn registration and assertions from a
software authenticator (tests/identity/softkey.py), signature counter, several keys."""

from __future__ import annotations

import json

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.errors import Refused
from hirondelle.identity.authentication import Outcome
from hirondelle.identity.second_factor import RECOVERY_CODES, hash_code, totp_code_step
from hirondelle.services import Services
from hirondelle.store import credentials
from hirondelle.store.database import now_us
from hirondelle.store.directory import Account
from tests.identity.softkey import SoftKey

ORIGIN = "https://mail.example.test"  # the tests' [server] hostname, no public_url
RP_ID = "mail.example.test"
NOW = 1_800_000_000.0  # a fixed time, at the start of a 30 s step


@pytest.fixture
def clock(services: Services) -> list[float]:
    now = [NOW]
    services.second_factors.clock = lambda: now[0]
    return now


async def enrol_totp(services: Services, account: Account) -> tuple[str, list[str]]:
    enrolment = await services.second_factors.begin_totp(account)
    code = pyotp.TOTP(enrolment.secret).at(services.second_factors.clock())
    return enrolment.secret, await services.second_factors.confirm_totp(account, code)


async def test_totp_enrolment_gives_uri_qr_and_needs_a_first_code(
    services: Services, alice: Account, clock: list[float]
) -> None:
    enrolment = await services.second_factors.begin_totp(alice)
    assert enrolment.otpauth_uri == pyotp.TOTP(enrolment.secret).provisioning_uri(
        name="alice@example.test", issuer_name="Hirondelle"
    )
    assert enrolment.qr_svg.startswith("<svg") and "path" in enrolment.qr_svg
    # Not a factor until confirmed: the main password still works everywhere.
    assert not await services.database.read(
        lambda conn: credentials.has_second_factor(conn, alice.id)
    )
    with pytest.raises(Refused, match="wrong code"):
        await services.second_factors.confirm_totp(alice, "000000")
    codes = await services.second_factors.confirm_totp(alice, pyotp.TOTP(enrolment.secret).at(NOW))
    assert len(codes) == RECOVERY_CODES == len(set(codes))
    assert await services.database.read(lambda conn: credentials.has_second_factor(conn, alice.id))
    assert [f.kind for f in await services.second_factors.factors(alice.id)] == ["totp"]
    assert await services.second_factors.methods(alice.id) == ["totp", "recovery"]


async def test_a_second_totp_is_refused_until_the_first_is_removed(
    services: Services, alice: Account, clock: list[float]
) -> None:
    await enrol_totp(services, alice)
    with pytest.raises(Refused, match="already set"):
        await services.second_factors.begin_totp(alice)
    (factor,) = await services.second_factors.factors(alice.id)
    await services.second_factors.remove(alice.id, factor.id)
    assert await services.second_factors.factors(alice.id) == []
    # With the last factor go the recovery codes.
    assert await services.second_factors.remaining_recovery_codes(alice.id) == 0
    await services.second_factors.begin_totp(alice)


async def test_totp_accepts_one_step_either_side_and_each_code_once(
    services: Services, alice: Account, clock: list[float]
) -> None:
    secret, _codes = await enrol_totp(services, alice)
    totp = pyotp.TOTP(secret)
    clock[0] = NOW + 300
    assert not await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300 - 60))
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300 - 30))
    # The same code again is a replay, and so is any code of an earlier step.
    assert not await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300 - 30))
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300))
    assert not await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300 - 30))
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300 + 30))
    assert not await services.second_factors.verify_totp(alice.id, totp.at(NOW + 300 + 60))


async def test_the_confirming_code_cannot_be_used_again_to_sign_in(
    services: Services, alice: Account, clock: list[float]
) -> None:
    secret, _codes = await enrol_totp(services, alice)
    assert not await services.second_factors.verify_totp(alice.id, pyotp.TOTP(secret).at(NOW))


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６", " " * 6])
def test_malformed_totp_codes_match_no_step(code: str) -> None:
    assert totp_code_step(pyotp.random_base32(), code, NOW) is None


async def test_recovery_codes_work_once_each_and_ignore_case_and_dashes(
    services: Services, alice: Account, clock: list[float]
) -> None:
    _secret, codes = await enrol_totp(services, alice)
    assert await services.second_factors.use_recovery_code(alice.id, codes[0])
    assert not await services.second_factors.use_recovery_code(alice.id, codes[0])
    retyped = codes[1].upper().replace("-", " ")
    assert await services.second_factors.use_recovery_code(alice.id, retyped)
    assert not await services.second_factors.use_recovery_code(alice.id, "abcd-efgh-jkmn-pqrs")
    assert await services.second_factors.remaining_recovery_codes(alice.id) == RECOVERY_CODES - 2
    new = await services.second_factors.new_recovery_codes(alice.id)
    assert not await services.second_factors.use_recovery_code(alice.id, codes[2])
    assert await services.second_factors.use_recovery_code(alice.id, new[0])


async def register(services: Services, account: Account, key: SoftKey, label: str) -> int:
    _token, session = await services.web_sessions.create(
        account, stay_signed_in=False, remote="127.0.0.1", user_agent="test"
    )
    options = json.loads(
        await services.second_factors.webauthn_registration_options(account, session.id)
    )
    assert options["rp"] == {"id": RP_ID, "name": "Hirondelle"}
    resolved = await services.web_sessions.resolve(_token, remote="127.0.0.1")
    assert resolved is not None and resolved.registration_challenge is not None
    assert resolved.registration_challenge.split(".")[0] == options["challenge"]
    factor, _codes = await services.second_factors.register_webauthn(
        account, session.id, resolved.registration_challenge, key.register(options), label
    )
    return factor.id


async def sign_in_with(services: Services, account: Account, key: SoftKey, **kw: object) -> bool:
    options_json, challenge = await services.second_factors.webauthn_authentication_options(
        account.id
    )
    options = json.loads(options_json)
    assert options["challenge"] == challenge
    return await services.second_factors.verify_webauthn(
        account.id,
        challenge,
        key.assert_(options, **kw),  # type: ignore[arg-type]
    )


async def test_webauthn_registration_and_assertions(services: Services, alice: Account) -> None:
    key = SoftKey(origin=ORIGIN, rp_id=RP_ID)
    _token, session = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="127.0.0.1", user_agent="test"
    )
    options = json.loads(
        await services.second_factors.webauthn_registration_options(alice, session.id)
    )
    resolved = await services.web_sessions.resolve(_token, remote="127.0.0.1")
    assert resolved is not None
    factor, codes = await services.second_factors.register_webauthn(
        alice, session.id, resolved.registration_challenge, key.register(options), "Laptop"
    )
    assert factor.kind == "webauthn" and factor.label == "Laptop"
    assert len(codes) == RECOVERY_CODES  # the first factor brings recovery codes
    assert await services.second_factors.methods(alice.id) == ["webauthn", "recovery"]
    # The challenge was spent: the same response cannot register again.
    with pytest.raises(Refused):
        await services.second_factors.register_webauthn(
            alice, session.id, None, key.register(options), "Again"
        )
    assert await sign_in_with(services, alice, key)
    assert await sign_in_with(services, alice, key)
    (listed,) = await services.second_factors.factors(alice.id)
    assert listed.label == "Laptop" and listed.last_used_at is not None


async def test_webauthn_refuses_a_counter_that_does_not_grow(
    services: Services, alice: Account
) -> None:
    key = SoftKey(origin=ORIGIN, rp_id=RP_ID)
    await register(services, alice, key, "Key")
    assert await sign_in_with(services, alice, key, count=5)
    assert not await sign_in_with(services, alice, key, count=5)  # a cloned key
    assert not await sign_in_with(services, alice, key, count=3)
    assert await sign_in_with(services, alice, key, count=6)


async def test_webauthn_refuses_bad_signature_origin_and_challenge(
    services: Services, alice: Account
) -> None:
    key = SoftKey(origin=ORIGIN, rp_id=RP_ID)
    await register(services, alice, key, "Key")
    assert not await sign_in_with(services, alice, key, tamper=True)
    assert not await sign_in_with(services, alice, key, origin="https://evil.example")
    options_json, _challenge = await services.second_factors.webauthn_authentication_options(
        alice.id
    )
    _other, challenge = await services.second_factors.webauthn_authentication_options(alice.id)
    assertion = key.assert_(json.loads(options_json))
    assert not await services.second_factors.verify_webauthn(alice.id, challenge, assertion)
    for hostile in (None, "text", {}, {"id": 5}, {"id": "x"}, {"id": assertion["id"]}):
        assert not await services.second_factors.verify_webauthn(alice.id, challenge, hostile)


async def test_registration_from_another_origin_is_refused(
    services: Services, alice: Account
) -> None:
    key = SoftKey(origin="https://evil.example", rp_id=RP_ID)
    with pytest.raises(Refused, match="refused"):
        await register(services, alice, key, "Phished")
    assert await services.second_factors.factors(alice.id) == []


async def test_several_labelled_keys_each_sign_in_and_are_removed_alone(
    services: Services, alice: Account
) -> None:
    laptop, phone = SoftKey(origin=ORIGIN, rp_id=RP_ID), SoftKey(origin=ORIGIN, rp_id=RP_ID)
    first = await register(services, alice, laptop, "Laptop")
    await register(services, alice, phone, "Phone")
    assert [f.label for f in await services.second_factors.factors(alice.id)] == [
        "Laptop",
        "Phone",
    ]
    assert await sign_in_with(services, alice, laptop)
    assert await sign_in_with(services, alice, phone)
    await services.second_factors.remove(alice.id, first)
    assert not await sign_in_with(services, alice, laptop)
    assert await sign_in_with(services, alice, phone)
    with pytest.raises(Refused):
        await services.second_factors.remove(alice.id, first)


async def test_a_stale_registration_challenge_is_refused(
    services: Services, alice: Account
) -> None:
    key = SoftKey(origin=ORIGIN, rp_id=RP_ID)
    _token, session = await services.web_sessions.create(
        alice, stay_signed_in=False, remote="", user_agent=""
    )
    options = json.loads(
        await services.second_factors.webauthn_registration_options(alice, session.id)
    )
    stale = f"{options['challenge']}.{now_us() - 1}"
    with pytest.raises(Refused, match="too long"):
        await services.second_factors.register_webauthn(
            alice, session.id, stale, key.register(options), "Late"
        )
    assert await services.second_factors.factors(alice.id) == []


@given(st.text(max_size=20))
def test_any_text_is_at_most_one_totp_step(code: str) -> None:
    step = totp_code_step("JBSWY3DPEHPK3PXP", code, NOW)
    current = int(NOW) // 30
    assert step is None or (
        current - 1 <= step <= current + 1 and code.replace(" ", "").strip().isdigit()
    )


@given(st.text(max_size=80))
def test_any_text_hashes_as_a_recovery_code(code: str) -> None:
    digest = hash_code(code)
    assert len(digest) == 64
    assert hash_code(code.upper().replace("-", " ")) == digest or not code.isascii()


async def test_the_password_step_alone_makes_no_address_known_good(
    services: Services, alice: Account, clock: list[float]
) -> None:
    """Regression: a correct password with the second factor still owed counted as a
    successful login, so whoever held only the password made their address a known-good
    one (let through a lockout) and cleared the account's failure count."""
    secret, _codes = await enrol_totp(services, alice)
    auth = services.authenticator
    thief, owner = "203.0.113.9", "192.0.2.1"

    # The owner completes both steps from home; the thief only the password step.
    first = await services.web_sessions.sign_in(
        alice.address, "correct horse battery", stay_signed_in=False, remote=owner, user_agent="t"
    )
    assert first.pending
    clock[0] += 30
    done = await services.web_sessions.second_factor(
        first.pending, totp=pyotp.TOTP(secret).at(clock[0]), remote=owner, user_agent="t"
    )
    assert done.token
    stolen = await auth.authenticate(
        alice.address, "correct horse battery", protocol="web", remote=thief
    )
    assert stolen.outcome is Outcome.SECOND_FACTOR_REQUIRED and not stolen.ok
    assert (await auth.attempts(address=alice.address))[0].outcome == "second-factor-required"

    for n in range(5):  # identity conftest: 5 failures lock the account out
        await auth.authenticate(alice.address, "wrong", protocol="web", remote=f"198.51.100.{n}")

    at_thief = await auth.authenticate(
        alice.address, "correct horse battery", protocol="web", remote=thief
    )
    assert at_thief.outcome is Outcome.RATE_LIMITED
    at_owner = await auth.authenticate(
        alice.address, "correct horse battery", protocol="web", remote=owner
    )
    assert at_owner.outcome is Outcome.SECOND_FACTOR_REQUIRED
