"""The node serves the webmail's build over real HTTP: hashed assets cached for a year, the
shell and the service worker revalidated, a strict Content-Security-Policy on every answer,
and the status page at "/" when no webmail is built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hirondelle.config import ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.web import assets

ASSET = "index-AbCd1234.js"
SHELL = (
    "<!doctype html><html><head>"
    f'<script type="module" crossorigin src="/assets/{ASSET}"></script>'
    '<link rel="stylesheet" href="/assets/index-Ef56.css"></head><body></body></html>'
)


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build as Vite lays it out (the serving rules, independent of Node being here)."""
    directory = tmp_path / "dist"
    (directory / "assets").mkdir(parents=True)
    (directory / "index.html").write_text(SHELL)
    (directory / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (directory / "assets" / ASSET).write_text("console.log('hirondelle');\n")
    (directory / "assets" / "index-Ef56.css").write_text("body{margin:0}\n")
    (tmp_path / "secret.txt").write_text("outside the build")
    return directory


async def running(settings: Settings, webapp: Path) -> Node:
    listen = ListenSettings.model_validate({"http": "127.0.0.1:0"})
    server = settings.server.model_copy(update={"webapp": str(webapp)})
    node = Node(settings.model_copy(update={"listen": listen, "server": server}))
    await node.start()
    return node


@pytest.fixture
async def node(settings: Settings, build: Path) -> AsyncIterator[Node]:
    started = await running(settings, build)
    try:
        yield started
    finally:
        await started.stop()


def base(node: Node) -> str:
    listener = next(item for item in node.listeners if item.name == "http")
    return f"http://{listener.address}"


def assert_strict_csp(response: httpx.Response) -> None:
    policy = csp_directives(response.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert not any("unsafe-eval" in value for values in policy.values() for value in values)
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_shell_is_revalidated_under_a_strict_csp(node: Node) -> None:
    async with httpx.AsyncClient(base_url=base(node)) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.text == SHELL
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert_strict_csp(response)


async def test_application_paths_serve_the_shell(node: Node) -> None:
    async with httpx.AsyncClient(base_url=base(node)) as client:
        for path in ("/reset-password", "/mail/inbox/42", "/settings"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.text == SHELL, path


async def test_hashed_assets_are_immutable(node: Node) -> None:
    async with httpx.AsyncClient(base_url=base(node)) as client:
        script = await client.get(f"/assets/{ASSET}")
        style = await client.get("/assets/index-Ef56.css")
    assert script.status_code == 200
    assert script.text == "console.log('hirondelle');\n"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert_strict_csp(script)
    assert style.headers["content-type"] == "text/css; charset=utf-8"


async def test_text_assets_are_sent_gzipped_when_accepted(node: Node) -> None:
    async with httpx.AsyncClient(base_url=base(node)) as client:
        zipped = await client.get(f"/assets/{ASSET}", headers={"Accept-Encoding": "gzip"})
        again = await client.get(f"/assets/{ASSET}", headers={"Accept-Encoding": "gzip"})
        plain = await client.get(
            f"/assets/{ASSET}", headers={"Accept-Encoding": "gzip;q=0, identity"}
        )
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.text == again.text == plain.text == "console.log('hirondelle');\n"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in plain.headers


def test_accept_encoding_parsing() -> None:
    assert assets.accepts_gzip("gzip, deflate, br")
    assert assets.accepts_gzip("br;q=1.0, GZIP;q=0.5")
    assert assets.accepts_gzip("*")
    assert not assets.accepts_gzip("gzip;q=0")
    assert not assets.accepts_gzip("gzip;q=zero")
    assert not assets.accepts_gzip("identity")
    assert not assets.accepts_gzip("")


async def test_service_worker_has_a_stable_revalidated_url(node: Node) -> None:
    async with httpx.AsyncClient(base_url=base(node)) as client:
        response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"


async def test_unknown_and_outside_paths_are_404(node: Node) -> None:
    async with httpx.AsyncClient(base_url=base(node)) as client:
        missing = await client.get("/assets/index-Zzzz.js")
        traversal = await client.get("/assets/..%2Fsecret.txt")
        nested = await client.get("/assets/../secret.txt")
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "no-store"
    assert traversal.status_code == 404
    assert "outside the build" not in traversal.text
    assert nested.status_code == 404


async def test_without_a_build_root_is_the_status_page(settings: Settings, tmp_path: Path) -> None:
    node = await running(settings, tmp_path / "nothing-built")
    try:
        async with httpx.AsyncClient(base_url=base(node)) as client:
            response = await client.get("/")
            asset = await client.get(f"/assets/{ASSET}")
    finally:
        await node.stop()
    assert response.status_code == 200
    assert "Hirondelle is running" in response.text
    assert asset.status_code == 404


def test_the_real_build_refers_only_to_hashed_assets(webapp_build: Path) -> None:
    """Vite's output has the layout the server expects: no inline script in index.html,
    every script and style sheet under /assets/ with a content hash, sw.js at the top."""
    build = assets.find_build(str(webapp_build))
    assert build is not None
    html = build.index.read_text()
    assert "<script>" not in html and '<script type="module">' not in html
    referenced = [name for name in build.assets if f"/assets/{name}" in html]
    assert any(name.endswith(".js") for name in referenced)
    assert all("-" in name.rsplit(".", 1)[0] for name in referenced)
    assert build.service_worker.is_file()
