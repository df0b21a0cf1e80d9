"""web/http_auth: HTTP Basic (RFC 7617) through the one authenticator, the plain-HTTP
rule, and rate limiting answered 429 with Retry-After (RFC 6585 §4)."""

from __future__ import annotations

import base64

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import HTTPConnection

from hirondelle.web import http_auth
from tests.dav.core_helpers import CAL
from tests.dav.interop_helpers import ALICE, PASSWORD, DavNode, dav_node

__all__ = ["dav_node"]


def _connection(scheme: str, server: tuple[str, int] | None) -> HTTPConnection:
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "path": "/dav/",
        "headers": [],
        "query_string": b"",
    }
    return HTTPConnection(scope)


def test_plain_http_only_on_loopback() -> None:
    assert http_auth.is_secure(_connection("https", ("192.0.2.1", 443)))
    assert http_auth.is_secure(_connection("http", ("127.0.0.1", 8080)))
    assert http_auth.is_secure(_connection("http", ("::1", 8080)))
    assert not http_auth.is_secure(_connection("http", ("192.0.2.1", 80)))
    assert not http_auth.is_secure(_connection("http", ("0.0.0.0", 80)))
    assert not http_auth.is_secure(_connection("http", None))


def test_parse_basic() -> None:
    encoded = base64.b64encode("élise@example.test:pa:ss".encode()).decode()
    assert http_auth.parse_basic(f"Basic {encoded}") == ("élise@example.test", "pa:ss")
    assert http_auth.parse_basic("Bearer abc") is None
    assert http_auth.parse_basic("Basic !!!") is None
    assert http_auth.parse_basic("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert http_auth.parse_basic("Basic " + base64.b64encode(b"\xff:\xfe").decode()) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_basic_never_raises(header: str) -> None:
    result = http_auth.parse_basic(header)
    assert result is None or (result[0] and isinstance(result[1], str))


def test_app_password_with_dav_protocol(dav_node: DavNode) -> None:
    services = dav_node.node.services
    assert services is not None
    _imap_only, imap_secret = dav_node.run(services.app_passwords.add(ALICE, "mail", ["imap"]))
    _phone, secret = dav_node.run(services.app_passwords.add(ALICE, "phone", ["dav"]))
    with dav_node.http(ALICE, secret) as client:
        assert client.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 207
    with dav_node.http(ALICE, imap_secret) as client:
        assert client.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 401


def test_repeated_failures_are_rate_limited(dav_node: DavNode) -> None:
    statuses = []
    with httpx.Client(
        base_url=dav_node.base_url, verify=dav_node.ssl_context(), auth=(ALICE, "wrong!")
    ) as client:
        for _ in range(40):
            response = client.request("PROPFIND", CAL, headers={"Depth": "0"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                break
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    # The right password from the same place is refused too while locked out.
    with dav_node.http(ALICE, PASSWORD) as client:
        assert client.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code in (207, 429)


def test_plain_http_listener_on_loopback_accepts_credentials(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The real uvicorn scope of a plain listener on 127.0.0.1 counts as local."""
    import asyncio
    import threading

    from hirondelle.config import ListenSettings
    from hirondelle.node import Node

    listen = ListenSettings.model_validate({"http": "127.0.0.1:0"})
    node = Node(settings.model_copy(update={"listen": listen}))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(node.start(), loop).result(60)
        (listener,) = node.listeners
        services = node.services
        assert services is not None

        async def setup() -> None:
            await services.accounts.add_domain("example.test")
            await services.accounts.add_account(ALICE, password=PASSWORD)

        asyncio.run_coroutine_threadsafe(setup(), loop).result(60)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{listener.port}", auth=(ALICE, PASSWORD)
        ) as client:
            assert client.request("PROPFIND", CAL, headers={"Depth": "0"}).status_code == 207
    finally:
        asyncio.run_coroutine_threadsafe(node.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
