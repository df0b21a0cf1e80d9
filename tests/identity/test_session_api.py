"""The webmail's session API over real HTTP (httpx against a running node), on both
backends, checked against the contract in docs/architecture.md "Session API": status
codes, JSON bodies, cookie attributes, CSRF, no-store, the second-factor flows (TOTP,
recovery code, WebAuthn from a software authenticator) and password reset."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyotp
import pytest

from hirondelle import tls
from hirondelle.config import ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.services import Services
from hirondelle.store.directory import Account
from tests.identity.conftest import ALICE, PASSWORD, make_account
from tests.identity.softkey import SoftKey, b64url

ORIGIN = "https://mail.example.test"
RP_ID = "mail.example.test"
UA = "Mozilla/5.0 (test) Firefox/130.0"


@pytest.fixture
async def web_node(identity_settings: Settings) -> AsyncIterator[Node]:
    listen = ListenSettings.model_validate({"http": "127.0.0.1:0"})
    running = Node(identity_settings.model_copy(update={"listen": listen}))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def web(web_node: Node) -> Services:
    assert web_node.services is not None
    return web_node.services


@pytest.fixture
async def alice_web(web: Services) -> Account:
    return await make_account(web)


@pytest.fixture
def base_url(web_node: Node) -> str:
    (listener,) = web_node.listeners
    return f"http://127.0.0.1:{listener.port}"


def client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers={"User-Agent": UA}, timeout=10)


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client(base_url) as c:
        yield c


async def sign_in(
    http: httpx.AsyncClient,
    *,
    password: str = PASSWORD,
    stay: bool = False,
    expect: int = 200,
    address: str = ALICE,
) -> tuple[httpx.Response, dict[str, Any]]:
    response = await http.post(
        "/api/session", json={"address": address, "password": password, "staySignedIn": stay}
    )
    assert response.status_code == expect, response.text
    assert response.headers["cache-control"] == "no-store"
    return response, response.json()


def cookie_attributes(response: httpx.Response) -> list[str]:
    (header,) = response.headers.get_list("set-cookie")
    return [part.strip() for part in header.split(";")]


async def test_sign_in_sets_a_browser_session_cookie(
    http: httpx.AsyncClient, alice_web: Account
) -> None:
    response, body = await sign_in(http)
    assert body["status"] == "signed-in"
    assert body["account"] == {
        "address": ALICE,
        "name": "",
        "accountId": f"A{alice_web.id}",
    }
    assert body["webOffline"] is True
    assert len(body["csrfToken"]) == 64
    attributes = cookie_attributes(response)
    assert attributes[0].startswith("hirondelle_session=") and len(attributes[0]) == 19 + 43
    assert set(attributes[1:]) == {"Path=/", "HttpOnly", "SameSite=Strict"}  # no Max-Age
    current = await http.get("/api/session")
    assert current.status_code == 200
    assert current.headers["cache-control"] == "no-store"
    assert current.json() == {k: body[k] for k in ("account", "csrfToken", "webOffline")}


async def test_stay_signed_in_keeps_the_cookie_30_days(
    http: httpx.AsyncClient, alice_web: Account
) -> None:
    response, _body = await sign_in(http, stay=True)
    assert "Max-Age=2592000" in cookie_attributes(response)


async def test_wrong_password_unknown_account_and_web_switched_off_look_the_same(
    http: httpx.AsyncClient, web: Services, alice_web: Account
) -> None:
    _r, wrong = await sign_in(http, password="not the password", expect=401)
    _r, unknown = await sign_in(http, address="nobody@example.test", expect=401)
    await web.accounts.update_account(ALICE, switches={"web": False})
    _r, switched_off = await sign_in(http, expect=401)
    assert wrong == unknown == switched_off == {"error": "invalid-credentials"}
    assert (await http.get("/api/session")).status_code == 401


async def test_repeated_failures_are_rate_limited_with_retry_after(
    http: httpx.AsyncClient, alice_web: Account
) -> None:
    for _ in range(5):  # account_failures in tests/identity/conftest.py
        await sign_in(http, password="guess guess guess", expect=401)
    response, body = await sign_in(http, expect=429)
    assert body["error"] == "rate-limited"
    assert body["retryAfter"] >= 1
    assert response.headers["retry-after"] == str(body["retryAfter"])


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b'{"address": 5, "password": "x"}', "application/json"),
        (b'{"address": "a@b.c", "password": "x", "staySignedIn": "yes"}', "application/json"),
        (b'{"address": "a@b.c", "password": "x"}', "text/plain"),
        (b"address=a&password=b", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
    ],
)
async def test_malformed_bodies_get_400(
    http: httpx.AsyncClient, alice_web: Account, content: bytes, content_type: str
) -> None:
    response = await http.post(
        "/api/session", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid-request"}


async def test_sign_out_needs_the_csrf_token_and_clears_the_cookie(
    http: httpx.AsyncClient, alice_web: Account
) -> None:
    _r, body = await sign_in(http)
    refused = await http.delete("/api/session")
    assert refused.status_code == 403 and refused.json() == {"error": "csrf"}
    wrong = await http.delete("/api/session", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert (await http.get("/api/session")).status_code == 200
    done = await http.delete("/api/session", headers={"X-CSRF-Token": body["csrfToken"]})
    assert done.status_code == 204
    assert "Max-Age=0" in cookie_attributes(done)
    assert done.headers["cache-control"] == "no-store"
    assert (await http.get("/api/session")).status_code == 401


async def test_a_stolen_cookie_is_useless_after_sign_out(
    base_url: str, http: httpx.AsyncClient, alice_web: Account
) -> None:
    response, body = await sign_in(http)
    token = response.cookies["hirondelle_session"]
    await http.delete("/api/session", headers={"X-CSRF-Token": body["csrfToken"]})
    async with client(base_url) as thief:
        thief.cookies.set("hirondelle_session", token)
        assert (await thief.get("/api/session")).status_code == 401


async def test_sessions_are_listed_and_one_can_end_another(
    base_url: str, http: httpx.AsyncClient, alice_web: Account
) -> None:
    _r, mine = await sign_in(http)
    async with client(base_url) as other:
        await sign_in(other)
        listed = await http.get("/api/sessions")
        assert listed.status_code == 200
        sessions = listed.json()["sessions"]
        assert len(sessions) == 2
        assert sorted(s["current"] for s in sessions) == [False, True]
        for s in sessions:
            assert s["remote"] == "127.0.0.1" and s["userAgent"] == UA
            assert s["created"].endswith("Z") and s["lastSeen"].endswith("Z")
        (theirs,) = [s for s in sessions if not s["current"]]
        no_csrf = await http.delete(f"/api/sessions/{theirs['id']}")
        assert no_csrf.status_code == 403
        ended = await http.delete(
            f"/api/sessions/{theirs['id']}", headers={"X-CSRF-Token": mine["csrfToken"]}
        )
        assert ended.status_code == 204
        assert (await other.get("/api/session")).status_code == 401
        assert (await http.get("/api/session")).status_code == 200
        again = await http.delete(
            f"/api/sessions/{theirs['id']}", headers={"X-CSRF-Token": mine["csrfToken"]}
        )
        assert again.status_code == 404


async def test_session_endpoints_need_a_session(http: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/sessions"),
        ("DELETE", "/api/sessions/1"),
        ("GET", "/api/second-factors"),
        ("POST", "/api/second-factor/totp"),
        ("DELETE", "/api/second-factor/1"),
        ("POST", "/api/second-factor/webauthn/options"),
    ]:
        response = await http.request(method, path, headers={"X-CSRF-Token": "x"})
        assert response.status_code == 401, path
        assert response.json() == {"error": "unauthenticated"}


async def test_a_password_change_signs_the_browser_out(
    http: httpx.AsyncClient, web: Services, alice_web: Account
) -> None:
    await sign_in(http)
    await web.accounts.set_password(ALICE, "a brand new passphrase")
    assert (await http.get("/api/session")).status_code == 401


# -- second factor ---------------------------------------------------------------------------


async def enrol_totp(http: httpx.AsyncClient, csrf: str) -> tuple[pyotp.TOTP, list[str]]:
    assert (await http.post("/api/second-factor/totp")).status_code == 403  # no CSRF token
    started = await http.post("/api/second-factor/totp", headers={"X-CSRF-Token": csrf})
    assert started.status_code == 200, started.text
    enrolment = started.json()
    assert set(enrolment) == {"secret", "otpauthUri", "qrSvg"}
    assert enrolment["otpauthUri"].startswith("otpauth://totp/Hirondelle:alice%40example.test?")
    assert enrolment["qrSvg"].startswith("<svg")
    totp = pyotp.TOTP(enrolment["secret"])
    confirmed = await http.post(
        "/api/second-factor/totp/confirm",
        json={"code": totp.now()},
        headers={"X-CSRF-Token": csrf},
    )
    assert confirmed.status_code == 200, confirmed.text
    return totp, confirmed.json()["recoveryCodes"]


async def pending_sign_in(http: httpx.AsyncClient, methods: list[str]) -> str:
    response, body = await sign_in(http)
    assert "set-cookie" not in response.headers
    assert body["status"] == "second-factor"
    assert body["methods"] == methods
    pending = body["pending"]
    assert isinstance(pending, str) and len(pending) == 43
    return pending


async def test_totp_second_factor_flow(
    base_url: str, http: httpx.AsyncClient, alice_web: Account
) -> None:
    _r, body = await sign_in(http)
    totp, codes = await enrol_totp(http, body["csrfToken"])
    assert len(codes) == 10
    factors = (await http.get("/api/second-factors")).json()
    assert [f["kind"] for f in factors["factors"]] == ["totp"]
    assert factors["recoveryCodesLeft"] == 10

    async with client(base_url) as browser:
        pending = await pending_sign_in(browser, ["totp", "recovery"])
        assert (await browser.get("/api/session")).status_code == 401
        wrong = await browser.post(
            "/api/session/second-factor", json={"pending": pending, "totp": "000000"}
        )
        assert wrong.status_code == 401 and wrong.json() == {"error": "invalid-credentials"}
        # The next step's code: the current one was spent by the confirmation.
        code = totp.at(time.time() + 30)
        right = await browser.post(
            "/api/session/second-factor", json={"pending": pending, "totp": code}
        )
        assert right.status_code == 200, right.text
        assert right.json()["status"] == "signed-in"
        assert "HttpOnly" in cookie_attributes(right)
        assert (await browser.get("/api/session")).status_code == 200
        # The pending token served once; the code too.
        reused = await browser.post(
            "/api/session/second-factor", json={"pending": pending, "totp": code}
        )
        assert reused.status_code == 401
        replay_pending = await pending_sign_in(browser, ["totp", "recovery"])
        replay = await browser.post(
            "/api/session/second-factor", json={"pending": replay_pending, "totp": code}
        )
        assert replay.status_code == 401


async def test_recovery_code_flow(http: httpx.AsyncClient, alice_web: Account) -> None:
    _r, body = await sign_in(http)
    _totp, codes = await enrol_totp(http, body["csrfToken"])
    pending = await pending_sign_in(http, ["totp", "recovery"])
    ok = await http.post(
        "/api/session/second-factor", json={"pending": pending, "recoveryCode": codes[0]}
    )
    assert ok.status_code == 200 and ok.json()["status"] == "signed-in"
    pending = await pending_sign_in(http, ["totp", "recovery"])
    spent = await http.post(
        "/api/session/second-factor", json={"pending": pending, "recoveryCode": codes[0]}
    )
    assert spent.status_code == 401
    ok = await http.post(
        "/api/session/second-factor", json={"pending": pending, "recoveryCode": codes[1]}
    )
    assert ok.status_code == 200


async def test_guessing_codes_with_a_known_password_is_held_back(
    base_url: str, http: httpx.AsyncClient, alice_web: Account
) -> None:
    """Someone who has the password cannot guess codes without end by signing in again
    (a correct password does not reset the count of wrong codes), and cannot lock the
    real user out from the address where she completed a second factor before."""
    _r, body = await sign_in(http)
    totp, codes = await enrol_totp(http, body["csrfToken"])
    pending = await pending_sign_in(http, ["totp", "recovery"])
    real = await http.post(
        "/api/session/second-factor", json={"pending": pending, "recoveryCode": codes[0]}
    )
    assert real.status_code == 200
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=base_url, transport=transport) as attacker:
        statuses = []
        for _ in range(3):  # each sign-in allows at most 5 tries; the limit is 5 in all
            pending = await pending_sign_in(attacker, ["totp", "recovery"])
            for _ in range(3):
                response = await attacker.post(
                    "/api/session/second-factor", json={"pending": pending, "totp": "123456"}
                )
                statuses.append(response.status_code)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
        assert response.json()["error"] == "rate-limited"
        assert response.headers["retry-after"] == str(response.json()["retryAfter"])
        # Even the right code is held back now, from there.
        held = await attacker.post(
            "/api/session/second-factor",
            json={"pending": pending, "totp": totp.at(time.time() + 30)},
        )
        assert held.status_code == 429
    pending = await pending_sign_in(http, ["totp", "recovery"])
    still = await http.post(
        "/api/session/second-factor", json={"pending": pending, "recoveryCode": codes[1]}
    )
    assert still.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pending": "x"},
        {"pending": "x", "totp": "1", "recoveryCode": "2"},
        {"pending": 5, "totp": "123456"},
        {"pending": "x", "webauthn": "not an object"},
    ],
)
async def test_malformed_second_factor_requests_get_400(
    http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await http.post("/api/session/second-factor", json=body)
    assert response.status_code == 400 and response.json() == {"error": "invalid-request"}


async def test_webauthn_registration_and_sign_in_over_http(
    base_url: str, http: httpx.AsyncClient, alice_web: Account
) -> None:
    _r, body = await sign_in(http)
    csrf = {"X-CSRF-Token": body["csrfToken"]}
    key = SoftKey(origin=ORIGIN, rp_id=RP_ID)
    options = await http.post("/api/second-factor/webauthn/options", headers=csrf)
    assert options.status_code == 200, options.text
    creation = options.json()
    assert creation["rp"]["id"] == RP_ID
    registered = await http.post(
        "/api/second-factor/webauthn",
        json={"credential": key.register(creation), "label": "Laptop"},
        headers=csrf,
    )
    assert registered.status_code == 200, registered.text
    assert registered.json()["label"] == "Laptop"
    assert len(registered.json()["recoveryCodes"]) == 10

    async with client(base_url) as browser:
        pending = await pending_sign_in(browser, ["webauthn", "recovery"])
        request_options = await browser.post(
            "/api/session/webauthn/options", json={"pending": pending}
        )
        assert request_options.status_code == 200
        requested = request_options.json()
        assert requested["rpId"] == RP_ID
        assert [c["id"] for c in requested["allowCredentials"]] == [registered_id(key)]
        # One challenge, one try: a forged assertion spends it.
        forged = await browser.post(
            "/api/session/second-factor",
            json={"pending": pending, "webauthn": key.assert_(requested, tamper=True)},
        )
        assert forged.status_code == 401
        again = await browser.post(
            "/api/session/second-factor",
            json={"pending": pending, "webauthn": key.assert_(requested)},
        )
        assert again.status_code == 401
        requested = (
            await browser.post("/api/session/webauthn/options", json={"pending": pending})
        ).json()
        signed_in = await browser.post(
            "/api/session/second-factor",
            json={"pending": pending, "webauthn": key.assert_(requested)},
        )
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["status"] == "signed-in"


def registered_id(key: SoftKey) -> str:
    return b64url(key.credential_id)


async def test_removing_the_factor_through_the_api(
    http: httpx.AsyncClient, alice_web: Account
) -> None:
    _r, body = await sign_in(http)
    csrf = {"X-CSRF-Token": body["csrfToken"]}
    await enrol_totp(http, body["csrfToken"])
    (factor,) = (await http.get("/api/second-factors")).json()["factors"]
    assert (await http.delete(f"/api/second-factor/{factor['id']}")).status_code == 403
    removed = await http.delete(f"/api/second-factor/{factor['id']}", headers=csrf)
    assert removed.status_code == 204
    missing = await http.delete(f"/api/second-factor/{factor['id']}", headers=csrf)
    assert missing.status_code == 404
    _r, again = await sign_in(http)
    assert again["status"] == "signed-in"


# -- password reset --------------------------------------------------------------------------


async def test_password_reset_over_http(
    http: httpx.AsyncClient, web: Services, alice_web: Account
) -> None:
    await sign_in(http)
    link = await web.password_resets.create_link(ALICE)
    token = link.url.rsplit("#token=", 1)[1]
    short = await http.post("/api/password-reset", json={"token": token, "password": "short"})
    assert short.status_code == 400
    assert short.json() == {"error": "weak-password", "reason": "too-short", "minLength": 10}
    common = await http.post(
        "/api/password-reset", json={"token": token, "password": "password123"}
    )
    assert common.json() == {"error": "weak-password", "reason": "common", "minLength": 10}
    done = await http.post(
        "/api/password-reset", json={"token": token, "password": "swallows fly south"}
    )
    assert done.status_code == 204
    assert (await http.get("/api/session")).status_code == 401  # sessions ended
    used = await http.post(
        "/api/password-reset", json={"token": token, "password": "swallows fly north"}
    )
    assert used.status_code == 400 and used.json() == {"error": "invalid-token"}
    _r, body = await sign_in(http, password="swallows fly south")
    assert body["status"] == "signed-in"


async def test_password_reset_with_a_garbage_token(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/password-reset", json={"token": "../../etc", "password": "swallows fly south"}
    )
    assert response.status_code == 400 and response.json() == {"error": "invalid-token"}
    assert json.loads(response.text) == {"error": "invalid-token"}


async def test_over_tls_the_cookie_is_secure(identity_settings: Settings) -> None:
    tls.generate_self_signed(
        identity_settings.certificate_path(), identity_settings.key_path(), hostname="localhost"
    )
    listen = ListenSettings.model_validate({"https": "127.0.0.1:0"})
    node = Node(identity_settings.model_copy(update={"listen": listen}))
    await node.start()
    try:
        assert node.services is not None
        await make_account(node.services)
        (listener,) = node.listeners
        context = tls.client_context(cafile=identity_settings.certificate_path())
        async with httpx.AsyncClient(
            base_url=f"https://localhost:{listener.port}", verify=context
        ) as secure:
            response, body = await sign_in(secure, stay=True)
            assert body["status"] == "signed-in"
            assert {"Secure", "HttpOnly", "SameSite=Strict", "Max-Age=2592000"} <= set(
                cookie_attributes(response)
            )
            out = await secure.delete("/api/session", headers={"X-CSRF-Token": body["csrfToken"]})
            assert {"Secure", "Max-Age=0"} <= set(cookie_attributes(out))
    finally:
        await node.stop()


async def test_parallel_guesses_are_not_all_checked(
    base_url: str, http: httpx.AsyncClient, web: Services, alice_web: Account
) -> None:
    _r, body = await sign_in(http)
    await enrol_totp(http, body["csrfToken"])
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=base_url, transport=transport) as attacker:
        pendings = [await pending_sign_in(attacker, ["totp", "recovery"]) for _ in range(4)]
        responses = await asyncio.gather(
            *(
                attacker.post(
                    "/api/session/second-factor",
                    json={"pending": pendings[i % 4], "totp": f"{i:06d}"},
                )
                for i in range(40)
            )
        )
    assert {r.status_code for r in responses} <= {401, 429}
    assert 429 in {r.status_code for r in responses}
    attempts = await web.authenticator.attempts(address=ALICE)
    steps = [
        # The second steps ("second-factor totp"), not the password steps
        # ("second-factor-pending"): few of them checked, every one turned away by the
        # limits audited as such.
        a
        for a in attempts
        if a.reason.startswith("second-factor ") and a.remote == "127.0.0.2"
    ]
    held_back = [a for a in steps if a.outcome == "rate-limited"]
    assert len(held_back) == sum(r.status_code == 429 for r in responses)
    checked = [a for a in steps if a.outcome != "rate-limited"]
    assert 1 <= len(checked) <= 5  # account_failures in these tests
