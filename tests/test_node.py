"""A node in-process: listeners on free ports, the status page and health endpoint over
HTTP and HTTPS, and refusals for listeners this version cannot serve."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from hirondelle import tls
from hirondelle.config import Endpoint, ListenSettings, Settings
from hirondelle.node import ListenerUnavailable, Node, bind


@pytest.fixture
def node_settings(settings: Settings) -> Settings:
    tls.generate_self_signed(settings.certificate_path(), settings.key_path(), hostname="localhost")
    listen = ListenSettings.model_validate({"http": "127.0.0.1:0", "https": "127.0.0.1:0"})
    return settings.model_copy(update={"listen": listen})


@pytest.fixture
async def node(node_settings: Settings) -> AsyncIterator[Node]:
    running = Node(node_settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def url(node: Node, name: str, path: str) -> str:
    listener = next(item for item in node.listeners if item.name == name)
    return f"{name}://{listener.address}{path}"


async def test_listeners_get_real_ports(node: Node) -> None:
    assert {listener.name for listener in node.listeners} == {"http", "https"}
    assert all(listener.port > 0 for listener in node.listeners)


async def test_health_over_http(node: Node) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(url(node, "http", "/healthz"))
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_status_page_over_https_speaks_french(node: Node, node_settings: Settings) -> None:
    context = tls.client_context(cafile=node_settings.certificate_path())
    async with httpx.AsyncClient(verify=context) as client:
        response = await client.get(
            url(node, "https", "/").replace("127.0.0.1", "localhost"),
            headers={"Accept-Language": "fr-FR,fr;q=0.9"},
        )
    assert response.status_code == 200
    assert "Hirondelle fonctionne" in response.text
    assert response.headers["content-language"] == "fr"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_https_refuses_tls_1_1(node: Node, node_settings: Settings) -> None:
    context = ssl.create_default_context(cafile=str(node_settings.certificate_path()))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip("this OpenSSL cannot build a TLS 1.1 client")
    async with httpx.AsyncClient(verify=context) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url(node, "https", "/healthz").replace("127.0.0.1", "localhost"))


async def test_stop_closes_the_ports(node_settings: Settings) -> None:
    running = Node(node_settings)
    await running.start()
    address = url(running, "http", "/healthz")
    await running.stop()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(address)


async def test_implicit_tls_without_certificate_is_refused(settings: Settings) -> None:
    config = settings.model_copy(
        update={"listen": ListenSettings.model_validate({"https": "127.0.0.1:0"})}
    )
    with pytest.raises(ListenerUnavailable, match="cannot load the TLS certificate"):
        await Node(config).start()


async def test_accepted_connections_have_nodelay() -> None:
    """Regression: sockets bound with proto 0 made asyncio skip TCP_NODELAY, and
    pipelined replies waited 40 ms for the client's delayed ACK."""
    sock = bind(Endpoint.parse("127.0.0.1:0"))
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("socket")
        nodelay.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(nodelay, 5) != 0
        writer.close()
        await writer.wait_closed()


async def test_a_listener_without_front_end_is_refused(
    node_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A [listen] key whose front end this build lacks stops the start with a clear
    message (every listener exists today: remove one to see the rule work)."""
    from hirondelle import node as node_module

    front_ends = dict(node_module.FRONT_ENDS)
    del front_ends["https"]
    monkeypatch.setattr(node_module, "FRONT_ENDS", front_ends)
    with pytest.raises(ListenerUnavailable, match="no https server yet; remove that key"):
        await Node(node_settings).start()
