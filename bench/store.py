"""Store benchmarks: delivery throughput, and reads of a 100,000-message mailbox.

Run ``.venv/bin/python -m bench.store --help``. Everything goes through the real
services (``open_services``), on a throw-away store: SQLite in a temporary directory, or
a fresh PostgreSQL database that is dropped at the end.

1. **Ingest**: ``--messages`` generated messages (see :mod:`bench.corpus`) delivered with
   ``services.mail.deliver(raw, [account_id])`` -- parse, blob write + fsync, index,
   commit -- one at a time, then 16 at a time (``asyncio.gather`` over a semaphore),
   where concurrent deliveries share commits (group commit). Each run delivers into its
   own empty account, and each message carries a run-specific ``Received:`` line so no
   blob is deduplicated between runs. Latency is measured per message from the call to
   the return of ``deliver``, i.e. until the message is durable.
2. **Mailbox reads**: one mailbox is filled with ``--list-size`` small messages by direct
   multi-row INSERTs into ``blobs``, ``emails``, ``mailbox_messages`` and the full-text
   index (synthetic: every row reuses one parsed message's ENVELOPE/BODYSTRUCTURE, blob
   files are not written, threads are singletons, the journal is not filled); 30% are
   ``$seen``, 5% ``$flagged``, 1% contain the search word. Only the reads are measured:
   ``emails.list_messages`` (what SELECT loads), ``mailboxes.mailbox_counts`` (STATUS)
   and ``search.matching_ids`` for a word in 1% of messages, each through
   ``Database.read``, after closing and reopening the services (a cold connection pool;
   the OS page cache is warm), first run and median of 5 more.

``--compare-dovecot`` runs the same two benchmarks against a throw-away Dovecot (see
:mod:`bench.dovecot`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench import corpus, machine
from bench import dovecot as dovecot_harness
from bench.scratch import run_in_scratch, save_report
from hirondelle.config import Settings
from hirondelle.mime import parse_message
from hirondelle.services import Services, open_services
from hirondelle.store import emails, mailboxes, schema, search
from hirondelle.store.database import WriteContext, now_us

T = TypeVar("T")

console = Console(stderr=True)

READ_RUNS = 5
FILL_CHUNK = 5_000
SEARCH_WORD = corpus.MARKER_WORD
DOMAIN = "example.test"


# -- results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    system: str
    concurrency: int
    messages: int
    megabytes: float
    seconds: float
    messages_per_second: float
    megabytes_per_second: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True, slots=True)
class ReadResult:
    system: str
    operation: str
    messages: int
    result: int  # rows listed, messages counted, or search hits
    cold_ms: float
    median_ms: float
    runs_ms: list[float]
    note: str = ""


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def _ingest_result(
    system: str, concurrency: int, sizes: list[int], seconds: float, latencies: list[float]
) -> IngestResult:
    ordered = sorted(latencies)
    megabytes = sum(sizes) / 1e6
    return IngestResult(
        system=system,
        concurrency=concurrency,
        messages=len(sizes),
        megabytes=round(megabytes, 1),
        seconds=round(seconds, 2),
        messages_per_second=round(len(sizes) / seconds, 1),
        megabytes_per_second=round(megabytes / seconds, 2),
        p50_ms=round(_percentile(ordered, 0.50) * 1000, 2),
        p99_ms=round(_percentile(ordered, 0.99) * 1000, 2),
    )


# -- the store under test ------------------------------------------------------------


@contextlib.contextmanager
def throwaway_database(option: str, data_dir: Path) -> Iterator[str]:
    """The store's database URL: "" (the default SQLite file under ``data_dir``) or a
    fresh PostgreSQL database, created through an AUTOCOMMIT admin connection to the
    server's ``postgres`` database and dropped on exit."""
    if option == "sqlite":
        yield ""
        return
    url = sa.make_url(option).set(drivername="postgresql+psycopg")
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"--database: expected sqlite or a postgresql:// URL, not {option!r}")
    name = f"hirondelle_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _settings(data_dir: Path, database_url: str) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": data_dir,
            "server": {"hostname": "mail.example.test"},
            "store": {"database": database_url},
        }
    )


def _database_version(services: Services) -> str:
    if services.database.dialect == "sqlite":
        return services.database.read_sync(
            lambda c: str(c.exec_driver_sql("select sqlite_version()").scalar())
        )
    return services.database.read_sync(
        lambda c: str(c.exec_driver_sql("show server_version").scalar())
    )


async def _new_account(services: Services, local: str) -> tuple[int, int]:
    """A new account's id and its Inbox's id."""
    account = await services.accounts.add_account(f"{local}@{DOMAIN}", password=None)
    inbox = await services.database.read(
        lambda c: mailboxes.get_mailbox_by_role(c, account.id, "inbox")
    )
    assert inbox is not None
    return account.id, inbox.id


# -- 1. ingest ------------------------------------------------------------------------


async def _run_concurrently(
    messages: list[corpus.Message],
    label: str,
    concurrency: int,
    one: Callable[[bytes], Awaitable[None]],
) -> tuple[float, list[float], list[int]]:
    """Deliver ``messages`` (each given a ``label``-ed trace line, made just before its
    delivery so that only ``concurrency`` copies are in memory at once) with at most
    ``concurrency`` in flight; the total time, each latency and each size."""
    semaphore = asyncio.Semaphore(concurrency)
    latencies = [0.0] * len(messages)
    sizes = [0] * len(messages)

    async def timed(index: int, message: corpus.Message) -> None:
        async with semaphore:
            raw = corpus.with_trace(message.raw, label, index)
            sizes[index] = len(raw)
            start = time.perf_counter()
            await one(raw)
            latencies[index] = time.perf_counter() - start

    start = time.perf_counter()
    await asyncio.gather(*(timed(index, m) for index, m in enumerate(messages)))
    return time.perf_counter() - start, latencies, sizes


async def bench_ingest(
    services: Services, messages: list[corpus.Message], concurrency: int
) -> tuple[IngestResult, int]:
    account_id, inbox_id = await _new_account(services, f"ingest-c{concurrency}")

    async def deliver(raw: bytes) -> None:
        outcomes = await services.mail.deliver(raw, [account_id])
        if outcomes[0].stored is None:
            raise RuntimeError(f"delivery refused: {outcomes[0].refused}")

    seconds, latencies, sizes = await _run_concurrently(
        messages, f"c{concurrency}", concurrency, deliver
    )
    counts = await services.database.read(lambda c: mailboxes.mailbox_counts(c, [inbox_id]))
    if counts[inbox_id].messages != len(messages):
        raise RuntimeError(
            f"expected {len(messages)} messages in the inbox, found {counts[inbox_id].messages}"
        )
    return _ingest_result("hirondelle", concurrency, sizes, seconds, latencies), account_id


# -- 2. a large mailbox ---------------------------------------------------------------


def _fill_mailbox(
    ctx: WriteContext, *, account_id: int, mailbox_id: int, count: int, seed: int
) -> None:
    """Synthetic fill (see the module docstring): one transaction of multi-row INSERTs."""
    conn = ctx.conn
    template = parse_message(corpus.small_message(0))
    structure = emails.structure_document(template)
    document = emails.search_document(template)
    rng = random.Random(seed)
    modseq = ctx.next_modseq(account_id)
    now = now_us()
    dialect = conn.dialect.name
    total_size = 0
    for chunk_start in range(0, count, FILL_CHUNK):
        numbers = range(chunk_start, min(count, chunk_start + FILL_CHUNK))
        raws = [corpus.small_message(n, marker=n % corpus.MARKER_EVERY == 50) for n in numbers]
        hashes = [f"{n:064x}" for n in numbers]  # no blob files: reads never open them
        conn.execute(
            schema.blobs.insert(),
            [
                {"hash": h, "size": len(raw), "refcount": 1, "unreferenced_since": None}
                for h, raw in zip(hashes, raws, strict=True)
            ],
        )
        email_rows = []
        for n, blob, raw in zip(numbers, hashes, raws, strict=True):
            keywords = []
            if rng.random() < 0.30:
                keywords.append("$seen")
            if rng.random() < 0.05:
                keywords.append("$flagged")
            total_size += len(raw)
            email_rows.append(
                {
                    "account_id": account_id,
                    "blob_hash": blob,
                    "size": len(raw),
                    "received_at": now + n,
                    "sent_at": now + n,
                    "keywords": emails.serialize_keywords(keywords),
                    "thread_id": 0,
                    "modseq": modseq,
                    "created_modseq": modseq,
                    "subject": f"Synthetic message {n}",
                    "sort_subject": f"synthetic message {n}",
                    "sort_from": "carol.martin",
                    "sort_to": "bench",
                    "sort_cc": "",
                    "message_id": f"synthetic.{n}@example.test",
                    "preview": f"Hello, this is message number {n}.",
                    "has_attachment": False,
                    "envelope": template.envelope,
                    "body_structure": template.body_structure,
                    "body": template.body,
                    "header_end": template.header_end,
                    "structure": structure,
                }
            )
        email_ids = (
            conn.execute(
                schema.emails.insert().returning(schema.emails.c.id, sort_by_parameter_order=True),
                email_rows,
            )
            .scalars()
            .all()
        )
        conn.execute(
            schema.mailbox_messages.insert(),
            [
                {"mailbox_id": mailbox_id, "uid": n + 1, "email_id": email_id, "modseq": modseq}
                for n, email_id in zip(numbers, email_ids, strict=True)
            ],
        )
        bodies = [raw.split(b"\r\n\r\n", 1)[1].decode() for raw in raws]
        if dialect == "sqlite":
            conn.exec_driver_sql(
                "INSERT INTO email_search_fts"
                "(rowid, account_id, subject, participants, body, attachments)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        email_id,
                        account_id,
                        f"Synthetic message {n}",
                        document.participants,
                        body,
                        "",
                    )
                    for n, email_id, body in zip(numbers, email_ids, bodies, strict=True)
                ],
            )
        else:
            conn.execute(
                sa.text(
                    "INSERT INTO email_search (email_id, account_id, document, headers)"
                    " VALUES (:id, :account,"
                    " setweight(to_tsvector('simple', :subject), 'A')"
                    " || setweight(to_tsvector('simple', :people), 'B')"
                    " || setweight(to_tsvector('simple', :body), 'C'), ''::tsvector)"
                ),
                [
                    {
                        "id": email_id,
                        "account": account_id,
                        "subject": f"synthetic message {n}",
                        "people": search.fold(document.participants),
                        "body": search.fold(body),
                    }
                    for n, email_id, body in zip(numbers, email_ids, bodies, strict=True)
                ],
            )
    e = schema.emails
    conn.execute(
        e.update().where(e.c.account_id == account_id, e.c.thread_id == 0).values(thread_id=e.c.id)
    )
    conn.execute(
        schema.mailboxes.update()
        .where(schema.mailboxes.c.id == mailbox_id)
        .values(uidnext=count + 1, highest_modseq=modseq)
    )
    conn.execute(
        schema.accounts.update()
        .where(schema.accounts.c.id == account_id)
        .values(used_bytes=schema.accounts.c.used_bytes + total_size)
    )
    # The fill bypasses the store's write paths, which keep the mailbox counters.
    emails.rebuild_counters(conn, account_id)


async def fill_inbox(
    services: Services, account_id: int, count: int, seed: int
) -> tuple[int, float]:
    """Fill the account's Inbox with ``count`` corpus messages for the HTTP benchmarks
    (bench.jmap, bench.web); returns the Inbox's id and the seconds it took. The fill
    leaves the memberships' copy of the keywords empty; the store keeps it equal to
    emails.keywords (migration 0003), and the Mailbox counts read it, so it is copied."""
    inbox = await services.database.read(
        lambda c: mailboxes.get_mailbox_by_role(c, account_id, "inbox")
    )
    assert inbox is not None
    started = time.perf_counter()
    await services.database.write(
        lambda ctx: _fill_mailbox(
            ctx, account_id=account_id, mailbox_id=inbox.id, count=count, seed=seed
        )
    )
    await services.database.write(
        lambda ctx: ctx.conn.exec_driver_sql(
            "UPDATE mailbox_messages SET keywords ="
            " (SELECT emails.keywords FROM emails WHERE emails.id = mailbox_messages.email_id)"
        )
    )
    return inbox.id, time.perf_counter() - started


def _analyze(services: Services) -> None:
    """PostgreSQL: VACUUM ANALYZE the filled tables, as autovacuum would shortly after a
    bulk load in production (planner statistics, visibility map). SQLite: nothing,
    since the server never runs ANALYZE either."""
    if services.database.dialect != "postgresql":
        return
    with services.database.write_engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as conn:
        for table in (
            "blobs",
            "emails",
            "mailbox_messages",
            "email_search",
            "accounts",
            "mailboxes",
        ):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


async def _timed_reads(
    services: Services, function: Callable[[sa.Connection], T]
) -> tuple[T, float, list[float]]:
    runs = []
    result: T | None = None
    for _ in range(READ_RUNS + 1):
        start = time.perf_counter()
        result = await services.database.read(function)
        runs.append((time.perf_counter() - start) * 1000)
    assert result is not None
    return result, runs[0], runs[1:]


def _read_result(
    operation: str, messages: int, result: int, cold: float, runs: list[float], note: str = ""
) -> ReadResult:
    return ReadResult(
        system="hirondelle",
        operation=operation,
        messages=messages,
        result=result,
        cold_ms=round(cold, 2),
        median_ms=round(statistics.median(runs), 2),
        runs_ms=[round(r, 2) for r in runs],
        note=note,
    )


def _search_ids(account_id: int) -> Callable[[sa.Connection], list[int]]:
    def run(conn: sa.Connection) -> list[int]:
        query = search.matching_ids(conn, account_id=account_id, text=SEARCH_WORD)
        assert query is not None
        return list(conn.execute(query).scalars())

    return run


async def bench_reads(
    services: Services, *, account_id: int, mailbox_id: int, count: int
) -> list[ReadResult]:
    listed, cold, runs = await _timed_reads(services, lambda c: emails.list_messages(c, mailbox_id))
    if len(listed) != count:
        raise RuntimeError(f"listed {len(listed)} messages, expected {count}")
    results = [_read_result("list UIDs + flags (SELECT)", count, len(listed), cold, runs)]
    counts, cold, runs = await _timed_reads(
        services, lambda c: mailboxes.mailbox_counts(c, [mailbox_id])
    )
    results.append(
        _read_result("mailbox counts (STATUS)", count, counts[mailbox_id].messages, cold, runs)
    )
    hits, cold, runs = await _timed_reads(services, _search_ids(account_id))
    results.append(
        _read_result(f"full-text search '{SEARCH_WORD}' (1%)", count, len(hits), cold, runs)
    )
    return results


# -- Dovecot ------------------------------------------------------------------------


async def bench_dovecot(
    root: Path, messages: list[corpus.Message], list_size: int, concurrencies: list[int], seed: int
) -> tuple[list[IngestResult], list[ReadResult], str]:
    instance = dovecot_harness.Dovecot(root)
    instance.start()
    try:
        ingest: list[IngestResult] = []
        for concurrency in concurrencies:
            user = f"ingest-c{concurrency}"

            async def deliver(raw: bytes, user: str = user) -> None:
                await instance.deliver(user, raw)

            console.log(
                f"dovecot: delivering {len(messages)} messages with dovecot-lda,"
                f" concurrency {concurrency}"
            )
            seconds, latencies, sizes = await _run_concurrently(
                messages, f"dovecot-c{concurrency}", concurrency, deliver
            )
            ingest.append(_ingest_result("dovecot", concurrency, sizes, seconds, latencies))
        if list_size == 0:
            return ingest, [], dovecot_harness.version()
        console.log(f"dovecot: filling a Maildir with {list_size} messages")
        rng = random.Random(seed)
        fill: list[tuple[bytes, str]] = []
        for n in range(list_size):
            seen = rng.random() < 0.30
            flagged = rng.random() < 0.05
            flags = ("F" if flagged else "") + ("S" if seen else "")
            fill.append((corpus.small_message(n, marker=n % corpus.MARKER_EVERY == 50), flags))
        start = time.perf_counter()
        instance.fill_maildir("list", fill)
        console.log(f"dovecot: filled and indexed in {time.perf_counter() - start:.1f} s")
        reads = [
            _dovecot_read(
                instance,
                "list UIDs + flags (SELECT)",
                list_size,
                ("fetch", "-u", "list", "uid flags", "mailbox", "INBOX"),
                "uid:",
            ),
            _dovecot_read(
                instance,
                "mailbox counts (STATUS)",
                list_size,
                ("mailbox", "status", "-u", "list", "messages unseen vsize", "INBOX"),
                "messages=",
            ),
            _dovecot_read(
                instance,
                f"full-text search '{SEARCH_WORD}' (1%)",
                list_size,
                ("search", "-u", "list", "mailbox", "INBOX", "body", SEARCH_WORD),
                "",
                note="no FTS plugin: scans bodies",
            ),
        ]
        startup, _ = instance.timed("fetch", "-u", "list", "uid", "mailbox", "INBOX", "uid", "1")
        reads.append(
            ReadResult(
                "dovecot",
                "doveadm start-up (fetch of uid 1)",
                list_size,
                1,
                round(startup * 1000, 2),
                round(startup * 1000, 2),
                [],
            )
        )
        return ingest, reads, dovecot_harness.version()
    finally:
        instance.stop()


def _dovecot_read(
    instance: dovecot_harness.Dovecot,
    operation: str,
    count: int,
    args: tuple[str, ...],
    marker: str,
    note: str = "",
) -> ReadResult:
    runs = []
    output = ""
    for _ in range(READ_RUNS + 1):
        seconds, output = instance.timed(*args)
        runs.append(seconds * 1000)
    if marker == "uid:":
        result = sum(1 for line in output.splitlines() if line.startswith("uid:"))
    elif marker == "messages=":
        fields = dict(item.split("=", 1) for item in output.split()[1:] if "=" in item)
        result = int(fields.get("messages", 0))
    else:
        result = sum(1 for line in output.splitlines() if line.strip())
    return ReadResult(
        "dovecot",
        operation,
        count,
        result,
        round(runs[0], 2),
        round(statistics.median(runs[1:]), 2),
        [round(r, 2) for r in runs[1:]],
        note or "doveadm process, start-up included",
    )


# -- report ---------------------------------------------------------------------------


def _ratios(ingest: list[IngestResult], reads: list[ReadResult]) -> list[dict[str, Any]]:
    """Hirondelle against Dovecot, where both were measured: > 1 means Hirondelle is
    faster (throughput ratio for ingest, time ratio for reads)."""
    ratios: list[dict[str, Any]] = []
    by_system: dict[tuple[str, int], IngestResult] = {(r.system, r.concurrency): r for r in ingest}
    for (system, concurrency), ours in by_system.items():
        theirs = by_system.get(("dovecot", concurrency))
        if system == "hirondelle" and theirs is not None:
            ratios.append(
                {
                    "benchmark": f"ingest, concurrency {concurrency} (messages/s)",
                    "hirondelle": ours.messages_per_second,
                    "dovecot": theirs.messages_per_second,
                    "speedup": round(ours.messages_per_second / theirs.messages_per_second, 2),
                }
            )
    read_by: dict[tuple[str, str], ReadResult] = {(r.system, r.operation): r for r in reads}
    for (system, operation), ours_read in read_by.items():
        theirs_read = read_by.get(("dovecot", operation))
        if system == "hirondelle" and theirs_read is not None and ours_read.median_ms > 0:
            ratios.append(
                {
                    "benchmark": f"{operation} (median ms)",
                    "hirondelle": ours_read.median_ms,
                    "dovecot": theirs_read.median_ms,
                    "speedup": round(theirs_read.median_ms / ours_read.median_ms, 2),
                }
            )
    return ratios


def render(report: dict[str, Any], out: Console) -> None:
    info = Table(title="Machine and software", show_header=False)
    info.add_column("key", style="bold")
    info.add_column("value")
    for key, value in report["machine"].items():
        info.add_row(key, str(value))
    for key, value in report["config"].items():
        info.add_row(key, str(value))
    out.print(info)

    if report["ingest"]:
        table = Table(title="Ingest (deliver: parse + blob fsync + index + commit)")
        for column in (
            "system",
            "conc.",
            "messages",
            "MB",
            "s",
            "msg/s",
            "MB/s",
            "p50 ms",
            "p99 ms",
        ):
            table.add_column(column, justify="left" if column == "system" else "right")
        for r in report["ingest"]:
            table.add_row(
                r["system"],
                str(r["concurrency"]),
                str(r["messages"]),
                f"{r['megabytes']:.1f}",
                f"{r['seconds']:.1f}",
                f"{r['messages_per_second']:.0f}",
                f"{r['megabytes_per_second']:.1f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
            )
        out.print(table)

    if report["reads"]:
        table = Table(title="Mailbox reads (synthetic fill, reads measured)")
        for column in (
            "system",
            "operation",
            "messages",
            "result",
            "cold ms",
            f"median of {READ_RUNS} ms",
            "note",
        ):
            table.add_column(
                column,
                justify="right" if "ms" in column or column in ("messages", "result") else "left",
            )
        for r in report["reads"]:
            table.add_row(
                r["system"],
                r["operation"],
                str(r["messages"]),
                str(r["result"]),
                f"{r['cold_ms']:.1f}",
                f"{r['median_ms']:.1f}",
                r["note"],
            )
        out.print(table)

    if report["ratios"]:
        table = Table(title="Hirondelle vs Dovecot (speedup > 1: Hirondelle faster)")
        for column in ("benchmark", "hirondelle", "dovecot", "speedup"):
            table.add_column(column, justify="left" if column == "benchmark" else "right")
        for r in report["ratios"]:
            table.add_row(
                r["benchmark"], str(r["hirondelle"]), str(r["dovecot"]), f"{r['speedup']:.2f}x"
            )
        out.print(table)
    if report.get("dovecot_skipped"):
        out.print(f"Dovecot comparison skipped: {report['dovecot_skipped']}")


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store",
        description="Benchmark the Hirondelle store: ingest throughput and large-mailbox reads.",
    )
    parser.add_argument(
        "--messages", type=int, default=10_000, help="messages to ingest per run (10000)"
    )
    parser.add_argument(
        "--list-size",
        type=int,
        default=100_000,
        help="messages in the read benchmark's mailbox (100000)",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite (a temporary file, the default) or a PostgreSQL server URL such as "
        "postgresql://postgres@127.0.0.1/postgres: a database hirondelle_bench_<random> is "
        "created there and dropped at the end",
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16], help="ingest concurrencies (1 16)"
    )
    parser.add_argument(
        "--only", choices=("ingest", "reads"), help="run only one of the two benchmarks"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated messages (1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--compare-dovecot",
        action="store_true",
        help="run the same benchmarks against a throw-away Dovecot (dovecot-lda, doveadm)",
    )
    parser.add_argument(
        "--dovecot-messages",
        type=int,
        help="messages per Dovecot ingest run (default: --messages)",
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.list_size < 1:
        parser.error("--messages and --list-size must be positive")
    return args


async def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data_dir = work / "data"
    data_dir.mkdir()
    report: dict[str, Any] = {
        "command": " ".join(["python -m bench.store", *sys.argv[1:]]),
        "machine": machine.describe(data_dir),
        "config": {},
        "ingest": [],
        "reads": [],
        "ratios": [],
    }
    ingest_results: list[IngestResult] = []
    read_results: list[ReadResult] = []
    messages: list[corpus.Message] = []
    if args.only != "reads" or args.compare_dovecot:
        start = time.perf_counter()
        messages = corpus.generate(args.messages, seed=args.seed)
        size = sum(len(m.raw) for m in messages) / 1e6
        console.log(
            f"generated {len(messages)} messages, {size:.0f} MB,"
            f" in {time.perf_counter() - start:.1f} s"
        )

    with throwaway_database(args.database, data_dir) as database_url:
        settings = _settings(data_dir, database_url)
        services = open_services(settings)
        try:
            backend = services.database.dialect
            report["config"] = {
                "database": backend,
                "database_version": _database_version(services),
                "messages": args.messages,
                "list_size": args.list_size,
                "seed": args.seed,
                "durability": "fsync on (SQLite synchronous=FULL / PostgreSQL default)",
            }
            await services.accounts.add_domain(DOMAIN)
            if args.only != "reads":
                for concurrency in args.concurrency:
                    console.log(
                        f"hirondelle ({backend}): delivering {len(messages)} messages,"
                        f" concurrency {concurrency}"
                    )
                    result, account_id = await bench_ingest(services, messages, concurrency)
                    console.log(
                        f"  {result.messages_per_second:.0f} msg/s,"
                        f" p50 {result.p50_ms} ms, p99 {result.p99_ms} ms"
                    )
                    ingest_results.append(result)
                hits, cold, runs = await _timed_reads(services, _search_ids(account_id))
                read_results.append(
                    _read_result(
                        f"full-text search '{SEARCH_WORD}' (1%), ingested mailbox",
                        len(messages),
                        len(hits),
                        cold,
                        runs,
                        note="real bodies",
                    )
                )
            if args.only != "ingest":
                list_account, list_mailbox = await _new_account(services, "list")
                console.log(f"hirondelle ({backend}): synthetic fill of {args.list_size} messages")
                start = time.perf_counter()
                await services.database.write(
                    lambda ctx: _fill_mailbox(
                        ctx,
                        account_id=list_account,
                        mailbox_id=list_mailbox,
                        count=args.list_size,
                        seed=args.seed,
                    )
                )
                _analyze(services)
                console.log(f"  filled in {time.perf_counter() - start:.1f} s")
        finally:
            services.close()
        if args.only != "ingest":
            services = open_services(settings, upgrade_schema=False)  # cold pool, cold SQLite cache
            try:
                read_results.extend(
                    await bench_reads(
                        services,
                        account_id=list_account,
                        mailbox_id=list_mailbox,
                        count=args.list_size,
                    )
                )
            finally:
                services.close()

    if args.compare_dovecot:
        reason = dovecot_harness.available()
        if reason is not None:
            report["dovecot_skipped"] = reason
        else:
            dovecot_messages = messages[: args.dovecot_messages or args.messages]
            try:
                ingest, reads, version = await bench_dovecot(
                    work / "dovecot",
                    dovecot_messages if args.only != "reads" else [],
                    args.list_size if args.only != "ingest" else 0,
                    args.concurrency if args.only != "reads" else [],
                    args.seed,
                )
            except (dovecot_harness.DovecotUnavailable, subprocess.CalledProcessError) as error:
                report["dovecot_skipped"] = str(error)
            else:
                report["machine"]["dovecot"] = version
                ingest_results.extend(ingest)
                read_results.extend(reads)

    report["machine"]["load_average_at_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    report["ingest"] = [asdict(r) for r in ingest_results]
    report["reads"] = [asdict(r) for r in read_results]
    report["ratios"] = _ratios(ingest_results, read_results)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_in_scratch("store", lambda work: _run(args, work))
    render(report, Console(width=max(140, Console().width)))
    save_report(report, args.json)
    if args.json is not None:
        console.log(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
