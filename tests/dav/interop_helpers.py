"""A running node for the DAV interop tests, driven by real clients (the ``caldav``
library, vdirsyncer, httpx) from the test's own thread.

The node (:class:`hirondelle.node.Node`, an ``https`` listener on a free port, a
self-signed certificate for ``localhost``) runs its own event loop on a thread, so the
blocking clients can be used directly; account setup goes through the services on that
loop with :meth:`DavNode.run`. The fixture fails the test if the server logged an error
("no exception escapes").

Import the fixture into a test module with
``from tests.dav.interop_helpers import dav_node``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import ssl
import subprocess
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import httpx
import pytest
from argon2 import PasswordHasher

from hirondelle import tls
from hirondelle.config import ListenSettings, Settings
from hirondelle.identity import passwords
from hirondelle.node import Node
from hirondelle.store.directory import Account

T = TypeVar("T")
PASSWORD = "correct horse battery"
ALICE = "alice@example.test"
BOB = "bob@example.test"

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"


@dataclass
class DavNode:
    node: Node
    loop: asyncio.AbstractEventLoop
    port: int
    cafile: Path

    @property
    def base_url(self) -> str:
        # "localhost": the name the self-signed certificate carries.
        return f"https://localhost:{self.port}"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the node's loop (account setup through the services)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def add_account(self, address: str = ALICE, password: str = PASSWORD) -> Account:
        services = self.node.services
        assert services is not None

        async def create() -> Account:
            domain = address.split("@", 1)[1]
            known = [d.name for d, _ in await services.accounts.list_domains()]
            if domain not in known:
                await services.accounts.add_domain(domain)
            return await services.accounts.add_account(address, password=password)

        return self.run(create())

    def ssl_context(self) -> ssl.SSLContext:
        return tls.client_context(cafile=self.cafile)

    def http(self, address: str = ALICE, password: str = PASSWORD) -> httpx.Client:
        """An httpx client with Basic auth, keep-alive, the node's CA."""
        return httpx.Client(
            base_url=self.base_url,
            auth=(address, password),
            verify=self.ssl_context(),
            timeout=30,
        )

    def caldav(self, address: str = ALICE, password: str = PASSWORD) -> Any:
        """A ``caldav.DAVClient`` given only the root URL, as a user would type it."""
        from caldav.davclient import DAVClient

        return DAVClient(
            url=self.base_url + "/",
            username=address,
            password=password,
            ssl_verify_cert=str(self.cafile),
            timeout=30,
        )


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def dav_node(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[DavNode]:
    """A node with an ``https`` listener on a free port and the account ``ALICE``."""
    # argon2 at production cost is most of a login's time; the interop tests are about
    # DAV (verification reads the parameters from the hash itself).
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    tls.generate_self_signed(settings.certificate_path(), settings.key_path(), hostname="localhost")
    listen = ListenSettings.model_validate({"https": "127.0.0.1:0"})
    node = Node(settings.model_copy(update={"listen": listen}))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dav-node", daemon=True)
    thread.start()
    errors = _ErrorLog()
    logger = logging.getLogger("hirondelle")
    logger.addHandler(errors)
    try:
        asyncio.run_coroutine_threadsafe(node.start(), loop).result(60)
        (listener,) = node.listeners
        running = DavNode(
            node=node, loop=loop, port=listener.port, cafile=settings.certificate_path()
        )
        running.add_account(ALICE)
        yield running
        # "No exception escapes": a test passes only if the server logged no error.
        assert not errors.records, [r.getMessage() for r in errors.records]
    finally:
        logger.removeHandler(errors)
        asyncio.run_coroutine_threadsafe(node.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- paths and XML ----------------------------------------------------------------------


def home(address: str = ALICE) -> str:
    """The calendar and address book home (issue 5: /dav/<address>/)."""
    return f"/dav/{quote(address)}/"


def parse_multistatus(body: bytes) -> dict[str, dict[str, ElementTree.Element]]:
    """RFC 4918 §13: href -> {"{ns}prop" Clark name -> element} of the 200 propstats,
    plus "status" -> the response's own status element when it has one."""
    root = ElementTree.fromstring(body)
    assert root.tag == f"{{{DAV}}}multistatus", root.tag
    found: dict[str, dict[str, ElementTree.Element]] = {}
    for response in root.findall(f"{{{DAV}}}response"):
        href = response.findtext(f"{{{DAV}}}href", "")
        props: dict[str, ElementTree.Element] = {}
        status = response.find(f"{{{DAV}}}status")
        if status is not None:
            props["status"] = status
        for propstat in response.findall(f"{{{DAV}}}propstat"):
            code = propstat.findtext(f"{{{DAV}}}status", "")
            if " 200 " not in code:
                continue
            prop = propstat.find(f"{{{DAV}}}prop")
            for child in prop if prop is not None else []:
                props[child.tag] = child
        found[href] = props
    return found


def sync_token_of(body: bytes) -> str:
    root = ElementTree.fromstring(body)
    token = root.findtext(f"{{{DAV}}}sync-token")
    assert token, body[-500:]
    return token


def report(client: httpx.Client, url: str, body: str, *, depth: str = "1") -> httpx.Response:
    return client.request(
        "REPORT",
        url,
        content=body.encode(),
        headers={"Depth": depth, "Content-Type": "application/xml; charset=utf-8"},
    )


def propfind(client: httpx.Client, url: str, props: str, *, depth: str = "0") -> httpx.Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:propfind xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:card="{CARDDAV}"'
        ' xmlns:cs="http://calendarserver.org/ns/"><d:prop>'
        f"{props}</d:prop></d:propfind>"
    )
    return client.request(
        "PROPFIND",
        url,
        content=body.encode(),
        headers={"Depth": depth, "Content-Type": "application/xml; charset=utf-8"},
    )


def last_segment(href: str) -> str:
    return unquote(href.rstrip("/").rsplit("/", 1)[-1])


def same_path(href: str, path: str) -> bool:
    """Whether two hrefs name the same resource ("@" may come back quoted or not; an
    href may be absolute, RFC 4918 §8.3)."""
    if "://" in href:
        href = "/" + href.split("://", 1)[1].split("/", 1)[1]
    return unquote(href).rstrip("/") == unquote(path).rstrip("/")


# -- vdirsyncer --------------------------------------------------------------------------

VDIRSYNCER = shutil.which("vdirsyncer") or "/usr/bin/vdirsyncer"


@dataclass
class Vdirsyncer:
    """vdirsyncer with one config: a CalDAV and a CardDAV pair between the node and two
    local ``filesystem`` storages, collections found by ``discover``."""

    root: Path
    config: Path

    @classmethod
    def create(cls, root: Path, node: DavNode, address: str = ALICE) -> Vdirsyncer:
        root.mkdir(parents=True, exist_ok=True)
        (root / "status").mkdir(exist_ok=True)
        (root / "calendars").mkdir(exist_ok=True)
        (root / "contacts").mkdir(exist_ok=True)
        common = (
            f'url = "{node.base_url}/"\n'
            f'username = "{address}"\n'
            f'password = "{PASSWORD}"\n'
            f'verify = "{node.cafile}"\n'
        )
        text = (
            "[general]\n"
            f'status_path = "{root / "status"}"\n\n'
            "[pair calendars]\n"
            'a = "calendars_local"\nb = "calendars_remote"\n'
            'collections = ["from a", "from b"]\n'
            'conflict_resolution = "b wins"\n'
            'metadata = ["displayname", "color"]\n\n'
            "[storage calendars_local]\n"
            'type = "filesystem"\n'
            f'path = "{root / "calendars"}"\n'
            'fileext = ".ics"\n\n'
            "[storage calendars_remote]\n"
            'type = "caldav"\n' + common + "\n"
            "[pair contacts]\n"
            'a = "contacts_local"\nb = "contacts_remote"\n'
            'collections = ["from a", "from b"]\n'
            'conflict_resolution = "b wins"\n\n'
            "[storage contacts_local]\n"
            'type = "filesystem"\n'
            f'path = "{root / "contacts"}"\n'
            'fileext = ".vcf"\n\n'
            "[storage contacts_remote]\n"
            'type = "carddav"\n' + common
        )
        config = root / "config"
        config.write_text(text, encoding="utf-8")
        return cls(root=root, config=config)

    def run(self, *arguments: str, stdin: str = "") -> str:
        """Run vdirsyncer; its output (stdout + stderr, which is where it logs). Fails the
        test on a non-zero exit or on any line vdirsyncer logs as an error or warning."""
        result = subprocess.run(
            [VDIRSYNCER, "-c", str(self.config), "-v", "INFO", *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        bad = [
            line
            for line in output.splitlines()
            if re.match(r"(error|warning|critical):", line, re.IGNORECASE)
            # discover: the local side has no collection yet (then creates it).
            and not re.match(r'warning: No collection "\w+" found for storage \w+_local\.', line)
            # vdirsyncer 0.19's DAVStorage.delete logs this when the item HAS an ETag
            # (its test is inverted, storage/dav.py), i.e. on every remote DELETE.
            and line != "warning: Deleting an item with no etag."
        ]
        assert not bad, output
        return output
