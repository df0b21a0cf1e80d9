"""CalDAV/CardDAV: Hirondelle and Radicale side by side, in one run, on the same data.

    .venv/bin/python -m bench.dav                              # 10,000 events, 5,000 contacts
    .venv/bin/python -m bench.dav --events 2000 --contacts 1000 --runs 10
    .venv/bin/python -m bench.dav --database postgresql://postgres@127.0.0.1/postgres \\
        --json /tmp/dav.json

What runs:

* **Hirondelle**: ``hirondelle serve`` in a subprocess on a temporary data directory
  (SQLite, or a throw-away PostgreSQL database with ``--database``), one ``https``
  listener on 127.0.0.1:0 (Basic auth is accepted over TLS only), a self-signed
  certificate, the account ``bench@example.test`` with a cheap argon2id hash (the
  password hash is not what is measured; the verification cache makes it a one-off
  anyway). Its default calendar ``/dav/<address>/Calendar/`` and address book
  ``/dav/<address>/Contacts/`` are filled through HTTP PUT (``If-None-Match: *``,
  ``--fill-concurrency`` in flight), and a second calendar ``Small`` (MKCALENDAR) gets
  ``--small-events`` events.
* **Radicale** (the ``radicale`` package of the venv, its ``multifilesystem`` storage):
  a subprocess on a loopback port with TLS and the same certificate, ``htpasswd`` auth
  with a plain-text password, ``owner_only`` rights. The same resources are written as
  files into its storage folder before it starts (Radicale reads that layout as if they
  had been PUT; its item cache is built by the warm-up requests, not measured).
* The same data for both (:mod:`bench.dav_data`, seed ``--seed``): ``--events`` events
  with a tenth recurring (a third of those with EXDATEs, a third with an overridden
  occurrence), full VTIMEZONEs; ``--contacts`` vCard 3.0 contacts.

What is measured, one request at a time over one keep-alive HTTPS connection (httpx),
``--runs`` times after ``--warmup`` unmeasured runs, median and p95 of the time from
sending the request to the last byte of the body:

1. ``PROPFIND`` Depth 1 on the calendar (getetag, getcontenttype, resourcetype), and on
   the address book;
2. ``calendar-query`` VEVENT with a one-month ``time-range`` (``--month``, default
   2026-03), asking for getetag (what Thunderbird and DAVx5 ask before a multiget); the
   result is checked against the events computed locally with recurring-ical-events;
3. ``sync-collection`` after one change: each run PUTs a new version of one event (not
   timed), then times the REPORT with the previous token; the answer must name exactly
   the changed resource. Done on the big calendar, on the ``Small`` one (size
   independence) and on the address book.
4. ``sync-collection`` with no token (the initial full sync), for reference.

The load generator shares the machine's cores with the servers (2 cores: the client's
own CPU weighs on every number, equally for both).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from argon2 import PasswordHasher

from bench import dav_data, machine
from bench.serve import start_serve
from bench.store import throwaway_database

DOMAIN = "example.test"
USER = f"bench@{DOMAIN}"
PASSWORD = "bench dav password"
CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD)

PROPFIND_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:getcontenttype/><d:resourcetype/>'
    "</d:prop></d:propfind>"
)


def calendar_query_body(start: dt.datetime, end: dt.datetime) -> str:
    """RFC 4791 §7.8 calendar-query with a §9.9 time-range on VEVENTs."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        "<d:prop><d:getetag/></d:prop>"
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>'
        "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )


def sync_collection_body(token: str) -> str:
    """RFC 6578 §3.2 sync-collection, level 1."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


_RESPONSE = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?response[\s>]")
_HREF = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?href>([^<]*)</(?:[A-Za-z][\w.-]*:)?href>")
_TOKEN = re.compile(rb"<(?:[A-Za-z][\w.-]*:)?sync-token>([^<]*)</(?:[A-Za-z][\w.-]*:)?sync-token>")


def responses(body: bytes) -> int:
    return len(_RESPONSE.findall(body))


def hrefs(body: bytes) -> list[str]:
    return [h.decode() for h in _HREF.findall(body)]


def sync_token(body: bytes) -> str:
    found = _TOKEN.findall(body)
    if not found:
        raise RuntimeError(f"no sync-token in {body[-300:]!r}")
    return str(found[-1].decode()).replace("&amp;", "&")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Collections:
    """Paths (URL-quoted, with trailing slash) of one server's collections."""

    calendar: str
    small: str
    contacts: str


@dataclass
class Data:
    events: list[dav_data.Item]
    small: list[dav_data.Item]
    contacts: list[dav_data.Item]


class Server:
    name = ""
    port = 0
    collections: Collections

    def client(self, cafile: Path) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(cafile))
        context.check_hostname = False
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.port}",
            auth=(USER, PASSWORD),
            verify=context,
            timeout=600,
        )

    def stop(self) -> None:
        raise NotImplementedError


class HirondelleDav(Server):
    """``hirondelle serve`` with one ``https`` listener on a fresh data directory."""

    name = "hirondelle"

    def __init__(self, root: Path, database: str, cert: Path, key: Path) -> None:
        self.data = root / "hirondelle"
        self.data.mkdir()
        self.database = database
        self.cert, self.key = cert, key
        self.process: subprocess.Popen[str] | None = None
        home = f"/dav/{quote(USER)}/"
        self.collections = Collections(
            calendar=home + "Calendar/", small=home + "Small/", contacts=home + "Contacts/"
        )

    def prepare(self) -> None:
        from hirondelle.config import CONFIG_FILE_NAME, Settings, render_config
        from hirondelle.services import open_services
        from hirondelle.store import directory

        text = render_config(
            hostname="mail.example.test",
            default_domain=None,
            listen={"https": "127.0.0.1:0"},
            database=self.database,
        )
        (self.data / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
        settings = Settings.model_validate(
            {"data_dir": self.data, "store": {"database": self.database}}
        )
        settings.certificate_path().parent.mkdir(parents=True, exist_ok=True)
        settings.certificate_path().write_bytes(self.cert.read_bytes())
        settings.key_path().write_bytes(self.key.read_bytes())
        os.chmod(settings.key_path(), 0o600)
        services = open_services(settings)

        async def create() -> None:
            await services.accounts.add_domain(DOMAIN)
            await services.accounts.add_account(USER, password=None)
            await services.database.write(
                lambda ctx: directory.update_account(ctx, USER, password_hash=CHEAP_HASH)
            )

        try:
            asyncio.run(create())
        finally:
            services.close()

    def start(self) -> None:
        self.process, self.port = start_serve(self.data, "https")

    def fill(self, data: Data, cafile: Path, concurrency: int) -> float:
        """PUT every resource over HTTPS; seconds taken (not a benchmark)."""
        start = time.perf_counter()
        with self.client(cafile) as client:
            # Both created on first use (issue 5): a PROPFIND on the home creates them.
            home = self.collections.calendar.rsplit("/", 2)[0] + "/"
            _check(client.request("PROPFIND", home, headers={"Depth": "1"}), 207)
            mkcalendar = (
                '<?xml version="1.0" encoding="utf-8"?>'
                '<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                "<d:set><d:prop><d:displayname>Small</d:displayname></d:prop></d:set>"
                "</c:mkcalendar>"
            )
            _check(client.request("MKCALENDAR", self.collections.small, content=mkcalendar), 201)
        asyncio.run(self._put_all(data, cafile, concurrency))
        return time.perf_counter() - start

    async def _put_all(self, data: Data, cafile: Path, concurrency: int) -> None:
        context = ssl.create_default_context(cafile=str(cafile))
        context.check_hostname = False
        jobs: list[tuple[str, dav_data.Item, str]] = [
            *((self.collections.calendar, i, "text/calendar") for i in data.events),
            *((self.collections.small, i, "text/calendar") for i in data.small),
            *((self.collections.contacts, i, "text/vcard") for i in data.contacts),
        ]
        queue = iter(jobs)
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{self.port}",
            auth=(USER, PASSWORD),
            verify=context,
            timeout=600,
            limits=httpx.Limits(max_connections=concurrency),
        ) as client:

            async def worker() -> None:
                for collection, item, kind in queue:
                    response = await client.put(
                        collection + item.name,
                        content=item.body.encode(),
                        headers={
                            "Content-Type": f"{kind}; charset=utf-8",
                            "If-None-Match": "*",
                        },
                    )
                    _check(response, 201, 204)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class RadicaleDav(Server):
    """Radicale 3 on a loopback port with TLS, its storage written as files."""

    name = "radicale"

    def __init__(self, root: Path, cert: Path, key: Path) -> None:
        self.root = root / "radicale"
        self.storage = self.root / "storage"
        self.storage.mkdir(parents=True)
        self.cert, self.key = cert, key
        self.process: subprocess.Popen[bytes] | None = None
        home = f"/{quote(USER)}/"
        self.collections = Collections(
            calendar=home + "calendar/", small=home + "small/", contacts=home + "contacts/"
        )

    def fill(self, data: Data) -> float:
        """Radicale's multifilesystem layout: collection-root/<user>/<collection>/ with a
        ``.Radicale.props`` JSON file and one file per item."""
        start = time.perf_counter()
        user_dir = self.storage / "collection-root" / USER
        for name, tag, items in (
            ("calendar", "VCALENDAR", data.events),
            ("small", "VCALENDAR", data.small),
            ("contacts", "VADDRESSBOOK", data.contacts),
        ):
            directory = user_dir / name
            directory.mkdir(parents=True)
            props = {"tag": tag, "D:displayname": name}
            if tag == "VCALENDAR":
                props["C:supported-calendar-component-set"] = "VEVENT,VTODO,VJOURNAL"
            (directory / ".Radicale.props").write_text(json.dumps(props), encoding="utf-8")
            for item in items:
                (directory / item.name).write_text(item.body, encoding="utf-8", newline="")
        return time.perf_counter() - start

    def start(self) -> None:
        self.port = _free_port()
        users = self.root / "users"
        users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
        config = self.root / "config"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "ssl = True\n"
            f"certificate = {self.cert}\n"
            f"key = {self.key}\n"
            "max_content_length = 100000000\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {users}\n"
            "htpasswd_encryption = plain\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {self.storage}\n"
            "[logging]\n"
            "level = warning\n",
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"radicale exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("radicale did not start listening")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    @staticmethod
    def version() -> str:
        from importlib import metadata

        return metadata.version("radicale")


def _check(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: {response.status_code}"
            f" (expected {expected}) {response.text[:500]!r}"
        )
    return response


@dataclass
class Measure:
    operation: str
    server: str
    runs: int
    median_ms: float
    p95_ms: float
    detail: str = ""
    samples_ms: list[float] = field(default_factory=list, repr=False)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def timed(
    operation: str,
    server: Server,
    runs: int,
    warmup: int,
    one: Callable[[], tuple[float, str]],
) -> Measure:
    """``one()`` does its own setup, times only the request and returns (seconds, detail)."""
    for _ in range(warmup):
        one()
    samples: list[float] = []
    detail = ""
    for _ in range(runs):
        seconds, detail = one()
        samples.append(seconds * 1000)
    return Measure(
        operation=operation,
        server=server.name,
        runs=runs,
        median_ms=round(statistics.median(samples), 2),
        p95_ms=round(_percentile(samples, 0.95), 2),
        detail=detail,
        samples_ms=[round(s, 2) for s in samples],
    )


def _request(
    client: httpx.Client, method: str, url: str, body: str, depth: str
) -> tuple[float, bytes]:
    headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
    start = time.perf_counter()
    response = client.request(method, url, content=body.encode(), headers=headers)
    content = response.content
    elapsed = time.perf_counter() - start
    _check(response, 207)
    return elapsed, content


def expected_in_month(
    events: list[dav_data.Item], start: dt.datetime, end: dt.datetime
) -> set[str]:
    """UIDs of the events with an occurrence overlapping [start, end) (UTC), computed by
    recurring-ical-events: the truth both servers are checked against."""
    import icalendar
    import recurring_ical_events  # type: ignore[import-untyped]

    found: set[str] = set()
    utc = dt.UTC
    for item in events:
        calendar = icalendar.Calendar.from_ical(item.body)
        if recurring_ical_events.of(calendar).between(
            start.replace(tzinfo=utc), end.replace(tzinfo=utc)
        ):
            found.add(item.uid)
    return found


class InitialSync:
    """A sync-collection with no token (RFC 6578 §3.4: the full listing)."""

    def __init__(self, client: httpx.Client, collection: str) -> None:
        self.client, self.collection = client, collection

    def __call__(self) -> tuple[float, str]:
        seconds, body = _request(
            self.client, "REPORT", self.collection, sync_collection_body(""), "0"
        )
        return seconds, f"{responses(body)} resources"


class ChangeThenSync:
    """PUTs a new version of one resource (not timed), then times the sync-collection
    with the previous token; the answer must name exactly that resource."""

    def __init__(
        self,
        server: str,
        client: httpx.Client,
        collection: str,
        items: list[dav_data.Item],
        kind: str,
    ) -> None:
        self.server, self.client, self.collection = server, client, collection
        self.items, self.kind = items, kind
        self.counter = 0
        _seconds, body = _request(client, "REPORT", collection, sync_collection_body(""), "0")
        self.token = sync_token(body)

    def __call__(self) -> tuple[float, str]:
        self.counter += 1
        item = self.items[(self.counter * 7919) % len(self.items)]
        marker = f"X-BENCH-CHANGE:{self.counter}\r\n"
        end = "END:VEVENT\r\n" if self.kind == "text/calendar" else "END:VCARD\r\n"
        changed = item.body.replace(end, marker + end, 1)
        _check(
            self.client.put(
                self.collection + item.name,
                content=changed.encode(),
                headers={"Content-Type": f"{self.kind}; charset=utf-8"},
            ),
            201,
            204,
        )
        seconds, body = _request(
            self.client, "REPORT", self.collection, sync_collection_body(self.token), "0"
        )
        self.token = sync_token(body)
        named = [h for h in hrefs(body) if h.endswith((quote(item.name), item.name))]
        if responses(body) != 1 or not named:
            raise RuntimeError(
                f"{self.server}: sync after one change: {responses(body)} responses"
                f" {hrefs(body)[:5]}"
            )
        return seconds, f"1 change in {len(self.items)}"


def measure_server(
    server: Server, data: Data, args: argparse.Namespace, cafile: Path, expected: set[str]
) -> list[Measure]:
    results: list[Measure] = []
    cols = server.collections
    month_start = dt.datetime.strptime(args.month, "%Y-%m")
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1)
    with server.client(cafile) as client:
        for label, collection, count in (
            ("PROPFIND Depth 1, calendar", cols.calendar, len(data.events)),
            ("PROPFIND Depth 1, address book", cols.contacts, len(data.contacts)),
        ):

            def propfind(collection: str = collection, count: int = count) -> tuple[float, str]:
                seconds, body = _request(client, "PROPFIND", collection, PROPFIND_BODY, "1")
                found = responses(body) - 1
                if found != count:
                    raise RuntimeError(f"{server.name}: PROPFIND found {found}, expected {count}")
                return seconds, f"{found} resources, {len(body) / 1e6:.1f} MB"

            results.append(timed(label, server, args.runs, args.warmup, propfind))
            log(f"  {server.name}: {results[-1]}")

        query = calendar_query_body(month_start, month_end)

        def month() -> tuple[float, str]:
            seconds, body = _request(client, "REPORT", cols.calendar, query, "1")
            uids = {h.rstrip("/").rsplit("/", 1)[-1].removesuffix(".ics") for h in hrefs(body)}
            detail = f"{len(uids)} events"
            if uids != expected:
                detail += (
                    f" (MISMATCH: {len(uids - expected)} extra, {len(expected - uids)} missing)"
                )
            return seconds, detail

        results.append(
            timed(f"calendar-query time-range {args.month}", server, args.runs, args.warmup, month)
        )
        log(f"  {server.name}: {results[-1]}")

        for label, collection, items, kind in (
            ("calendar", cols.calendar, data.events, "text/calendar"),
            ("small calendar", cols.small, data.small, "text/calendar"),
            ("address book", cols.contacts, data.contacts, "text/vcard"),
        ):
            initial = timed(
                f"sync-collection initial, {label}",
                server,
                max(1, args.runs // 4),
                1,
                InitialSync(client, collection),
            )
            changer = ChangeThenSync(server.name, client, collection, items, kind)
            results.append(
                timed(
                    f"sync-collection after one change, {label}",
                    server,
                    args.runs,
                    args.warmup,
                    changer,
                )
            )
            log(f"  {server.name}: {results[-1]}")
            results.append(initial)
            log(f"  {server.name}: {results[-1]}")
    return results


@contextlib.contextmanager
def _running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from hirondelle import tls

    report: dict[str, Any] = {
        "command": " ".join(["python -m bench.dav", *sys.argv[1:]]),
        "machine": machine.describe(work),
        "radicale": RadicaleDav.version(),
    }
    cert, key = work / "cert.pem", work / "key.pem"
    tls.generate_self_signed(cert, key, hostname="localhost")
    data = Data(
        events=dav_data.calendar(args.events, args.seed),
        small=dav_data.calendar(args.small_events, args.seed + 7),
        contacts=dav_data.address_book(args.contacts, args.seed),
    )
    month_start = dt.datetime.strptime(args.month, "%Y-%m")
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1)
    start = time.perf_counter()
    expected = expected_in_month(data.events, month_start, month_end)
    log(
        f"data: {len(data.events):,} events ({sum(len(i.body) for i in data.events) / 1e6:.1f} MB),"
        f" {len(data.contacts):,} contacts; {len(expected)} events in {args.month}"
        f" (computed in {time.perf_counter() - start:.1f} s)"
    )
    measures: list[Measure] = []
    servers = [s for s in ("hirondelle", "radicale") if s in args.servers]
    with throwaway_database(args.database, work) as database_url:
        if "hirondelle" in servers:
            hirondelle = HirondelleDav(work, database_url, cert, key)
            hirondelle.prepare()
            hirondelle.start()
            with _running(hirondelle):
                seconds = hirondelle.fill(data, cert, args.fill_concurrency)
                log(f"hirondelle: filled over HTTP PUT in {seconds:.0f} s")
                report.setdefault("fill_seconds", {})["hirondelle_put"] = round(seconds, 1)
                measures += measure_server(hirondelle, data, args, cert, expected)
        if "radicale" in servers:
            radicale = RadicaleDav(work, cert, key)
            seconds = radicale.fill(data)
            report.setdefault("fill_seconds", {})["radicale_files"] = round(seconds, 1)
            radicale.start()
            with _running(radicale):
                measures += measure_server(radicale, data, args, cert, expected)
    report["measures"] = [asdict(m) for m in measures]
    report["ratios"] = []
    by_operation: dict[str, dict[str, Measure]] = {}
    for m in measures:
        by_operation.setdefault(m.operation, {})[m.server] = m
    for operation, pair in by_operation.items():
        if len(pair) == 2:
            h, r = pair["hirondelle"], pair["radicale"]
            report["ratios"].append(
                {
                    "operation": operation,
                    "radicale_over_hirondelle_median": round(r.median_ms / h.median_ms, 1),
                    "radicale_over_hirondelle_p95": round(r.p95_ms / h.p95_ms, 1),
                }
            )
    return report


def table(report: dict[str, Any]) -> str:
    """The side-by-side table of the report (Markdown)."""
    rows = [
        "| Operation | Hirondelle median / p95 (ms) | Radicale median / p95 (ms)"
        " | Radicale / Hirondelle (median) | Detail |",
        "|---|---:|---:|---:|---|",
    ]
    by_operation: dict[str, dict[str, dict[str, Any]]] = {}
    for m in report["measures"]:
        by_operation.setdefault(m["operation"], {})[m["server"]] = m
    for operation, pair in by_operation.items():
        cells = []
        for name in ("hirondelle", "radicale"):
            m = pair.get(name)
            cells.append(f"{m['median_ms']:.1f} / {m['p95_ms']:.1f}" if m else "-")
        h, r = pair.get("hirondelle"), pair.get("radicale")
        ratio = f"{r['median_ms'] / h['median_ms']:.1f}x" if h and r else "-"
        detail = "; ".join(f"{n}: {m['detail']}" for n, m in pair.items() if m["detail"])
        rows.append(f"| {operation} | {cells[0]} | {cells[1]} | {ratio} | {detail} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dav",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=10_000, help="events in the calendar")
    parser.add_argument("--small-events", type=int, default=100, help="events in 'Small'")
    parser.add_argument("--contacts", type=int, default=5_000, help="contacts in the address book")
    parser.add_argument("--runs", type=int, default=20, help="measured runs per operation")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs first")
    parser.add_argument("--month", default="2026-03", help="the time-range month, YYYY-MM")
    parser.add_argument("--fill-concurrency", type=int, default=8)
    parser.add_argument("--database", default="sqlite", help="sqlite or a PostgreSQL URL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--servers",
        nargs="+",
        default=["hirondelle", "radicale"],
        choices=["hirondelle", "radicale"],
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dav-") as directory:
        report = run(args, Path(directory))
    print(json.dumps({k: v for k, v in report.items() if k != "measures"}, indent=2))
    print()
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
