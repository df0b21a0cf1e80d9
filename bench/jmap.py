"""JMAP benchmark: the webmail's first page and a sync after a few changes.

Run ``.venv/bin/python -m bench.jmap --help``. A throw-away store (SQLite in a temporary
directory, or a fresh PostgreSQL database) gets one account whose Inbox is filled with
``--messages`` messages by the synthetic fill of :mod:`bench.store` (direct multi-row
INSERTs: every row shares one parsed message's structure, threads are singletons, no
blob files; the memberships' keywords are then copied from the emails, as the store
keeps them). A real node HTTP listener is started on a free port and measured over
loopback with httpx (HTTP Basic, verification cached after the first request).

Operations, each measured ``--runs`` times after one warm-up (median and p95):

1. ``first page``: one request with ``Email/query`` (inMailbox Inbox, sort receivedAt
   descending, collapseThreads, position 0, limit 50, calculateTotal false) and
   ``Email/get`` of its ``#ids`` (the message-list properties);
2. ``Mailbox/get`` of every mailbox, with the four counts;
3. ``Email/changes`` from a state 10 changes back (10 keyword updates through
   ``Email/set``), answered from the journal.

"client ms" is the round trip seen by the client; "server ms" is the time spent in
:func:`hirondelle.jmap.api.run` (parse, every method, JSON of the response not
included), measured in the server process. The same operations run on a small mailbox
(``--small``, default 1,000) to show what grows with the mailbox and what does not.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench import machine
from bench.scratch import run_in_scratch, save_report
from bench.store import _analyze, _settings, fill_inbox, throwaway_database
from hirondelle.config import Endpoint
from hirondelle.jmap import api
from hirondelle.node import FRONT_ENDS, ListenerContext, bind
from hirondelle.services import Services, open_services

console = Console(stderr=True)
PASSWORD = "bench password 1234"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
LIST_PROPERTIES = [
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "from",
    "subject",
    "preview",
    "hasAttachment",
]


class ServerTimer:
    """Wraps :func:`api.run` to record the server time of each request."""

    def __init__(self) -> None:
        self.last_ms = 0.0
        self._run = api.run

    async def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return await self._run(*args, **kwargs)
        finally:
            self.last_ms = (time.perf_counter() - started) * 1000


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        # The fastest run: what an operation costs when it does not wait for a CPU (this
        # machine is shared; the median moves with the load, the minimum much less).
        "min_ms": round(ordered[0], 2),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


async def _measure(
    http: httpx.AsyncClient, timer: ServerTimer, body: dict[str, Any], runs: int
) -> dict[str, Any]:
    client_ms: list[float] = []
    server_ms: list[float] = []
    last: dict[str, Any] = {}
    for attempt in range(runs + 1):
        started = time.perf_counter()
        response = await http.post("/jmap/api/", json=body)
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        last = response.json()
        for name, result, _ in last["methodResponses"]:
            if name == "error":
                raise SystemExit(f"JMAP error: {result}")
        if attempt:  # the first is a warm-up
            client_ms.append(elapsed)
            server_ms.append(timer.last_ms)
    return {
        "client": _stats(client_ms),
        "server": _stats(server_ms),
        "responses": last["methodResponses"],
    }


async def _bench_one(services: Services, size: int, runs: int, seed: int) -> dict[str, Any]:
    local = f"bench{size}"
    account = await services.accounts.add_account(f"{local}@example.test", password=PASSWORD)
    inbox_number, seconds = await fill_inbox(services, account.id, size, seed)
    console.log(f"filled {size} messages in {seconds:.1f} s")
    _analyze(services)
    sock = bind(Endpoint.parse("127.0.0.1:0"))
    port = sock.getsockname()[1]
    listener = await FRONT_ENDS["http"].start(
        ListenerContext(
            name="http", sock=sock, services=services, tls=None, implicit_tls=False, addresses={}
        )
    )
    account_id = f"A{account.id}"
    inbox_id = f"M{inbox_number}"
    result: dict[str, Any] = {"messages": size}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            auth=(f"{local}@example.test", PASSWORD),
            timeout=120,
        ) as http:
            timer = ServerTimer()
            api.run = timer  # type: ignore[assignment]
            try:
                first_page = {
                    "using": USING,
                    "methodCalls": [
                        [
                            "Email/query",
                            {
                                "accountId": account_id,
                                "filter": {"inMailbox": inbox_id},
                                "sort": [{"property": "receivedAt", "isAscending": False}],
                                "collapseThreads": True,
                                "position": 0,
                                "limit": 50,
                            },
                            "q",
                        ],
                        [
                            "Email/get",
                            {
                                "accountId": account_id,
                                "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                                "properties": LIST_PROPERTIES,
                            },
                            "g",
                        ],
                    ],
                }
                page = await _measure(http, timer, first_page, runs)
                got = page.pop("responses")[1][1]["list"]
                assert len(got) == min(50, size), len(got)
                result["first page"] = page
                boxes = {
                    "using": USING,
                    "methodCalls": [["Mailbox/get", {"accountId": account_id, "ids": None}, "m"]],
                }
                mailbox_get = await _measure(http, timer, boxes, runs)
                mailbox_get.pop("responses")
                result["Mailbox/get"] = mailbox_get
                # 10 changes, then Email/changes from before them.
                state_response = await http.post(
                    "/jmap/api/",
                    json={
                        "using": USING,
                        "methodCalls": [["Email/get", {"accountId": account_id, "ids": []}, "s"]],
                    },
                )
                state = state_response.json()["methodResponses"][0][1]["state"]
                for email in got[:10]:
                    update = {
                        "using": USING,
                        "methodCalls": [
                            [
                                "Email/set",
                                {
                                    "accountId": account_id,
                                    "update": {email["id"]: {"keywords/$benchmark": True}},
                                },
                                "u",
                            ]
                        ],
                    }
                    (await http.post("/jmap/api/", json=update)).raise_for_status()
                changes = {
                    "using": USING,
                    "methodCalls": [
                        ["Email/changes", {"accountId": account_id, "sinceState": state}, "c"]
                    ],
                }
                measured = await _measure(http, timer, changes, runs)
                answer = measured.pop("responses")[0][1]
                assert len(answer["updated"]) == 10, answer
                result["Email/changes (10)"] = measured
            finally:
                api.run = timer._run  # type: ignore[method-assign]
    finally:
        await listener.stop()
    return result


async def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine.describe(work), "backend": args.database}
    report["runs"] = []
    # One throw-away store per size (the synthetic fill numbers its blobs from 0).
    for size in (args.small, args.messages):
        data = work / f"data-{size}"
        data.mkdir()
        with throwaway_database(args.database, data) as url:
            services = open_services(_settings(data, url))
            try:
                await services.accounts.add_domain("example.test")
                report["runs"].append(await _bench_one(services, size, args.runs, args.seed))
            finally:
                services.close()
    return report


def render(report: dict[str, Any]) -> None:
    table = Table(title=f"JMAP over HTTP ({report['backend']})")
    for column in (
        "messages",
        "operation",
        "client median",
        "client p95",
        "server min",
        "server median",
        "server p95",
    ):
        table.add_column(column, justify="right")
    for run in report["runs"]:
        for operation in ("first page", "Mailbox/get", "Email/changes (10)"):
            measured = run[operation]
            table.add_row(
                f"{run['messages']:,}",
                operation,
                f"{measured['client']['median_ms']:.1f} ms",
                f"{measured['client']['p95_ms']:.1f} ms",
                f"{measured['server']['min_ms']:.1f} ms",
                f"{measured['server']['median_ms']:.1f} ms",
                f"{measured['server']['p95_ms']:.1f} ms",
            )
    Console().print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.jmap", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the big Inbox")
    parser.add_argument("--small", type=int, default=1_000, help="messages in the small Inbox")
    parser.add_argument("--runs", type=int, default=20, help="measured runs of each operation")
    parser.add_argument("--database", default="sqlite", help="sqlite or a postgresql:// URL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_in_scratch("jmap", lambda work: _run(args, work))
    render(report)
    save_report(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
