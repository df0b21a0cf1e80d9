"""Webmail benchmark: from navigation to a rendered inbox, cold, warm and offline.

Run ``.venv/bin/python -m bench.web --help`` after ``scripts/setup.sh`` has built
``webapp/dist``. A throw-away store (SQLite in a temporary directory, or a fresh PostgreSQL
database) gets two accounts:

- ``big``: an Inbox of ``--messages`` messages (default 100,000) by the synthetic fill of
  :mod:`bench.store` (no blob files: the list never opens them);
- ``small``: ``--offline-messages`` real messages (default 300) delivered normally, so the
  offline copy (which keeps bodies) can be filled.

A node's HTTP listener serves the built webmail on a free port; Debian's Chromium, driven by
Playwright, measures with the page's own clock (``performance.now()`` from the start of the
navigation to the moment the first message row is in the DOM, seen by a MutationObserver):

1. ``cold``: a new browser context (empty HTTP cache) with the session cookie, per run;
2. ``warm``: a reload in the same context (assets from the cache: they are immutable);
3. ``offline start``: the ``small`` account with offline use chosen and its copy made, the
   network cut (``context.set_offline``), then reloads: the service worker serves the shell
   and the list comes from IndexedDB.

Also reported: the initial JavaScript (what index.html loads), raw and gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, async_playwright
from rich.console import Console
from rich.table import Table

from bench import corpus, machine
from bench.scratch import run_in_scratch, save_report
from bench.store import _analyze, fill_inbox, throwaway_database
from hirondelle.config import Endpoint, Settings
from hirondelle.node import FRONT_ENDS, ListenerContext, bind
from hirondelle.services import Services, open_services
from hirondelle.web import assets

console = Console(stderr=True)
PASSWORD = "bench password 1234"

FIRST_ROW = """
window.__firstRow = null;
new MutationObserver((_, observer) => {
  if (window.__firstRow === null && document.querySelector(".row .subject")) {
    window.__firstRow = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "min_ms": ordered[0],
    }


def initial_javascript(build: assets.Build) -> dict[str, int]:
    html = build.index.read_text()
    names = re.findall(r'src="/assets/([^"]+\.js)"', html)
    raw = sum(build.assets[name].stat().st_size for name in names)
    zipped = sum(len(gzip.compress(build.assets[name].read_bytes(), 9)) for name in names)
    return {"files": len(names), "raw_bytes": raw, "gzip_bytes": zipped}


async def _prepare(services: Services, size: int, offline_messages: int, seed: int) -> None:
    await services.accounts.add_domain("example.test")
    big = await services.accounts.add_account("big@example.test", password=PASSWORD)
    _, seconds = await fill_inbox(services, big.id, size, seed)
    console.log(f"filled {size:,} messages in {seconds:.1f} s")
    small = await services.accounts.add_account("small@example.test", password=PASSWORD)
    for number in range(offline_messages):
        await services.mail.deliver(corpus.small_message(number), [small.id])
    console.log(f"delivered {offline_messages} messages to the offline account")
    _analyze(services)


async def _first_row(page: Page, action: Any) -> float:
    await action()
    await page.wait_for_function("() => window.__firstRow !== null", timeout=60_000)
    return float(await page.evaluate("() => window.__firstRow"))


async def _sign_in(context: BrowserContext, base: str, address: str) -> Page:
    page = await context.new_page()
    await page.goto(base + "/")
    await page.locator("input[type=email]").fill(address)
    await page.locator("input[type=password]").fill(PASSWORD)
    await page.locator("form button[type=submit]").click()
    await page.locator(".row .subject").first.wait_for(timeout=60_000)
    return page


async def _browser_runs(base: str, runs: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        try:
            first = await browser.new_context()
            await _sign_in(first, base, "big@example.test")
            cookies = await first.cookies()
            await first.close()

            cold: list[float] = []
            for _ in range(runs):
                context = await browser.new_context()
                await context.add_cookies(cookies)
                await context.add_init_script(FIRST_ROW)
                page = await context.new_page()
                cold.append(await _first_row(page, lambda page=page: page.goto(base + "/")))
                # Let the app finish its start (first sync) so the next run starts quiet. (Not
                # "networkidle": the push connection stays open.)
                await page.locator(".status-online").wait_for(timeout=120_000)
                await context.close()
            result["cold"] = _stats(cold)

            context = await browser.new_context()
            await context.add_cookies(cookies)
            await context.add_init_script(FIRST_ROW)
            page = await context.new_page()
            await _first_row(page, lambda: page.goto(base + "/"))
            warm = []
            for _ in range(runs):
                await page.locator(".status-online").wait_for(timeout=120_000)
                warm.append(await _first_row(page, page.reload))
            result["warm"] = _stats(warm)
            await context.close()

            context = await browser.new_context()
            page = await _sign_in(context, base, "small@example.test")
            await page.locator(".offline-choice input").check()
            await page.wait_for_function(
                "() => navigator.serviceWorker.controller !== null"
                " && document.querySelector('.status-online') !== null",
                timeout=60_000,
            )
            await context.add_init_script(FIRST_ROW)
            await context.set_offline(True)
            offline = [await _first_row(page, page.reload) for _ in range(runs + 1)][1:]
            result["offline start"] = _stats(offline)
            await context.close()
        finally:
            await browser.close()
    return result


async def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    build = assets.find_build(str(assets.SOURCE_TREE_BUILD))
    if build is None:
        raise SystemExit("webapp/dist is missing: run scripts/setup.sh (Node.js 20) first")
    report: dict[str, Any] = {
        "machine": machine.describe(work),
        "backend": args.database,
        "messages": args.messages,
        "initial JavaScript": initial_javascript(build),
    }
    data = work / "data"
    data.mkdir()
    with throwaway_database(args.database, data) as url:
        settings = Settings.model_validate(
            {
                "data_dir": data,
                "server": {"hostname": "localhost", "webapp": str(build.directory)},
                "store": {"database": url},
            }
        )
        services = open_services(settings)
        try:
            await _prepare(services, args.messages, args.offline_messages, args.seed)
            sock = bind(Endpoint.parse("127.0.0.1:0"))
            port = sock.getsockname()[1]
            listener = await FRONT_ENDS["http"].start(
                ListenerContext(
                    name="http",
                    sock=sock,
                    services=services,
                    tls=None,
                    implicit_tls=False,
                    addresses={"http": f"127.0.0.1:{port}"},
                )
            )
            try:
                report.update(await _browser_runs(f"http://127.0.0.1:{port}", args.runs))
            finally:
                await listener.stop()
        finally:
            services.close()
    return report


def render(report: dict[str, Any]) -> None:
    table = Table(title=f"Webmail, {report['messages']:,}-message Inbox ({report['backend']})")
    for column in ("measure", "median", "p95", "min"):
        table.add_column(column, justify="right")
    for name in ("cold", "warm", "offline start"):
        measured = report[name]
        table.add_row(
            name,
            f"{measured['median_ms']:.0f} ms",
            f"{measured['p95_ms']:.0f} ms",
            f"{measured['min_ms']:.0f} ms",
        )
    js = report["initial JavaScript"]
    table.add_row(
        "initial JavaScript", f"{js['gzip_bytes'] / 1024:.1f} KB gzip", "", f"{js['raw_bytes']:,} B"
    )
    Console().print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the big Inbox")
    parser.add_argument(
        "--offline-messages", type=int, default=300, help="messages of the offline account"
    )
    parser.add_argument("--runs", type=int, default=10, help="measured runs of each measure")
    parser.add_argument("--database", default="sqlite", help="sqlite or a postgresql:// URL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_in_scratch("web", lambda work: _run(args, work))
    render(report)
    save_report(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
