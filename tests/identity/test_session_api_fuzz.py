"""Hostile input to the session API over real HTTP (hypothesis): whatever JSON (or not
JSON) arrives, the answer is a 4xx with a JSON error, never a 500 or a hang, and no
session is created. The node runs on its own loop in a thread so that hypothesis can
drive a synchronous client."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.config import ListenSettings, Settings
from hirondelle.node import Node
from tests.identity.conftest import make_account

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
FIELDS = [
    "address",
    "password",
    "staySignedIn",
    "pending",
    "totp",
    "recoveryCode",
    "webauthn",
    "token",
    "code",
    "credential",
    "label",
]
BODIES = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=5),
    st.fixed_dictionaries(
        {
            "pending": st.text(
                alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=43, max_size=43
            )
        },
        optional={"webauthn": JSON, "totp": st.text(max_size=8)},
    ),
)
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=43, max_size=43)
BODIES = BODIES | st.fixed_dictionaries({"token": TOKEN, "password": st.text()})
PATHS = [
    "/api/session",
    "/api/session/second-factor",
    "/api/session/webauthn/options",
    "/api/password-reset",
]


@pytest.fixture
def threaded_node(identity_settings: Settings) -> Iterator[str]:
    listen = ListenSettings.model_validate({"http": "127.0.0.1:0"})
    node = Node(identity_settings.model_copy(update={"listen": listen}))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="session-api-node", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(node.start(), loop).result(60)
        assert node.services is not None
        asyncio.run_coroutine_threadsafe(make_account(node.services), loop).result(60)
        (listener,) = node.listeners
        yield f"http://127.0.0.1:{listener.port}"
    finally:
        asyncio.run_coroutine_threadsafe(node.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(path=st.sampled_from(PATHS), body=BODIES, raw=st.booleans())
def test_any_body_gets_a_json_4xx(threaded_node: str, path: str, body: Any, raw: bool) -> None:
    content = json.dumps(body).encode() if not raw else json.dumps(body).encode()[:-1]
    with httpx.Client(base_url=threaded_node, timeout=10) as client:
        response = client.post(path, content=content, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert response.headers["cache-control"] == "no-store"
        assert isinstance(response.json()["error"], str)
        assert "set-cookie" not in response.headers
