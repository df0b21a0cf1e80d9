"""Fixtures for the webmail's tests: the real Vite build of webapp/, made once per run into a
temporary directory (never into the source tree), and a node serving it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hirondelle.config import ListenSettings, Settings
from hirondelle.node import Node
from hirondelle.web import assets

WEBAPP = assets.SOURCE_TREE_BUILD.parent


@pytest.fixture(scope="session")
def webapp_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``vite build`` of the current sources (scripts/setup.sh installs Node's packages)."""
    npm = shutil.which("npm")
    if npm is None or not (WEBAPP / "node_modules").is_dir():
        pytest.skip("Node or webapp/node_modules missing: scripts/setup.sh installs them")
    out = tmp_path_factory.mktemp("webapp") / "dist"
    subprocess.run(
        [npm, "exec", "--", "vite", "build", "--outDir", str(out), "--logLevel", "error"],
        cwd=WEBAPP,
        check=True,
        capture_output=True,
        timeout=180,
    )
    return out


async def start_node(settings: Settings, webapp: Path) -> Node:
    listen = ListenSettings.model_validate({"http": "127.0.0.1:0"})
    server = settings.server.model_copy(update={"webapp": str(webapp)})
    node = Node(settings.model_copy(update={"listen": listen, "server": server}))
    await node.start()
    return node


def base_url(node: Node) -> str:
    listener = next(item for item in node.listeners if item.name == "http")
    return f"http://{listener.address}"


@pytest.fixture
async def webmail_node(settings: Settings, webapp_build: Path) -> AsyncIterator[Node]:
    node = await start_node(settings, webapp_build)
    try:
        yield node
    finally:
        await node.stop()
