"""Messages are parsed in worker processes (mail/delivery.py ParseWorkers): what comes
back is what a parse in this process gives, a worker that dies is replaced without
losing the delivery, and ``parse_processes = 0`` parses on threads."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from hirondelle.config import Settings
from hirondelle.mail.delivery import ParseWorkers, parse_small
from hirondelle.mime import canonicalize_line_endings, parse_message
from hirondelle.services import Services, open_services
from hirondelle.store import emails
from hirondelle.store.blobs import blob_hash
from tests.messages import simple_message
from tests.store.test_mail_store import make_account

CORPUS = [p for p in sorted((Path(__file__).parent / "corpus").glob("*.eml")) if p.stat().st_size]


async def test_a_worker_gives_what_a_parse_here_gives() -> None:
    workers = ParseWorkers(2)
    try:
        for path in CORPUS:
            raw = path.read_bytes()
            done = await workers.run(parse_small, raw)
            canonical = canonicalize_line_endings(raw)
            parsed = parse_message(canonical)
            assert done.parsed == parsed, path.name
            assert done.forms == emails.derived_forms(parsed), path.name
            assert done.hash == blob_hash(canonical), path.name
            # The content comes back only when its line endings were changed.
            assert done.canonical == (canonical if canonical != raw else None), path.name
        assert workers.worker_pids()
        assert os.getpid() not in workers.worker_pids()
    finally:
        workers.close()


async def test_a_killed_worker_is_replaced_and_the_delivery_goes_on(services: Services) -> None:
    account = await make_account(services)
    # Two at once: a lone small message is parsed on a thread (see the next test), the
    # second of two in flight goes to a worker.
    first = await asyncio.gather(
        services.mail.deliver(simple_message(subject="Before 1"), [account.id]),
        services.mail.deliver(simple_message(subject="Before 2"), [account.id]),
    )
    assert all(outcome[0].stored is not None for outcome in first)
    killed = services.mail.parse_workers.worker_pids()
    assert killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    second = await asyncio.gather(
        services.mail.deliver(simple_message(subject="After 1"), [account.id]),
        services.mail.deliver(simple_message(subject="After 2"), [account.id]),
    )
    assert all(outcome[0].stored is not None for outcome in second)
    assert not set(services.mail.parse_workers.worker_pids()) & set(killed)
    # All are in the Inbox, whole.
    subjects = await services.database.read(
        lambda c: sorted(
            row[0]
            for row in c.exec_driver_sql(
                f"SELECT subject FROM emails WHERE account_id = {account.id:d}"
            )
        )
    )
    assert subjects == ["After 1", "After 2", "Before 1", "Before 2"]


async def test_a_lone_small_message_is_parsed_here_and_overlapping_ones_by_workers() -> None:
    """``light`` tasks: with nothing else in flight a thread of this process parses (no
    round trip to a worker); tasks that overlap go to the workers."""
    workers = ParseWorkers(2)
    try:
        raw = simple_message(subject="Alone")
        alone = await workers.run(parse_small, raw, light=True)
        assert alone.parsed == parse_message(canonicalize_line_endings(raw))
        assert workers.worker_pids() == []
        messages = [simple_message(subject=f"N{n}") for n in range(4)]
        together = await asyncio.gather(
            *(workers.run(parse_small, message, light=True) for message in messages)
        )
        assert [done.parsed.subject for done in together] == ["N0", "N1", "N2", "N3"]
        assert workers.worker_pids()
        # Not light (a big message's parse): a worker, even alone.
        await workers.run(parse_small, raw)
    finally:
        workers.close()


async def test_parse_processes_zero_parses_on_threads(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"parse_processes": 0})}
    )
    services = open_services(settings)
    try:
        account = await make_account(services)
        outcome = await services.mail.deliver(simple_message(subject="Threads"), [account.id])
        assert outcome[0].stored is not None
        assert services.mail.parse_workers.worker_pids() == []
    finally:
        services.close()


async def test_a_big_message_is_parsed_by_a_worker_from_its_stored_file(
    services: Services,
) -> None:
    account = await make_account(services)
    body = b"".join(b"line %06d of a long body\r\n" % n for n in range(20_000))
    raw = simple_message(subject="Big", body=body.decode())
    assert len(raw) > services.blobs.inline_limit
    outcome = await services.mail.deliver(raw, [account.id])
    stored = outcome[0].stored
    assert stored is not None
    row = await services.database.read(
        lambda c: c.exec_driver_sql(
            f"SELECT size, preview FROM emails WHERE id = {stored.email_id:d}"
        ).one()
    )
    assert row[0] == len(canonicalize_line_endings(raw))
    assert row[1].startswith("line 000000 of a long body")


_SERVER_STAND_IN = """
import asyncio, os, sys
from hirondelle.mail.delivery import ParseWorkers, parse_small

async def main():
    workers = ParseWorkers(2)
    await workers.run(parse_small, b"Subject: x\\r\\n\\r\\nbody\\r\\n")
    print(" ".join(str(pid) for pid in workers.worker_pids()), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_workers_exit_when_the_server_is_killed() -> None:
    """Regression: after kill -9 of the server, its parse workers and the fork server
    lived on forever (the worker held the pipes that would have told either to go)."""
    import subprocess
    import sys
    import time

    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER_STAND_IN], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        workers = [int(pid) for pid in server.stdout.readline().split()]
        assert workers
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"parse workers {alive} outlived the server"


def _fail(text: str) -> None:
    raise ValueError(text)


async def test_an_exception_in_a_worker_is_raised_to_the_caller_and_the_worker_stays() -> None:
    workers = ParseWorkers(1)
    try:
        try:
            await workers.run(_fail, "no good")
        except ValueError as error:
            assert str(error) == "no good"
        else:
            raise AssertionError("no exception")
        before = workers.worker_pids()
        done = await workers.run(parse_small, b"Subject: still here\r\n\r\n")
        assert done.parsed.subject == "still here"
        assert workers.worker_pids() == before
    finally:
        workers.close()


async def test_many_callers_share_few_workers_and_each_gets_its_own_answer() -> None:
    workers = ParseWorkers(2)
    try:
        subjects = [f"message {n}" for n in range(40)]
        results = await asyncio.gather(
            *(workers.run(parse_small, f"Subject: {s}\r\n\r\nbody\r\n".encode()) for s in subjects)
        )
        assert [r.parsed.subject for r in results] == subjects
        assert len(workers.worker_pids()) == 2
    finally:
        workers.close()


async def test_a_cancelled_caller_does_not_get_its_answer_given_to_the_next() -> None:
    workers = ParseWorkers(1)
    try:
        big = b"Subject: slow\r\n\r\n" + b"word " * 2_000_000
        slow = asyncio.ensure_future(workers.run(parse_small, big))
        await asyncio.sleep(0.05)
        slow.cancel()
        done = await workers.run(parse_small, b"Subject: next\r\n\r\n")
        assert done.parsed.subject == "next"
    finally:
        workers.close()


async def test_prestart_brings_every_worker_up_before_the_first_message() -> None:
    workers = ParseWorkers(2)
    try:
        await workers.prestart()
        started = workers.worker_pids()
        assert len(started) == 2
        results = await asyncio.gather(
            *(workers.run(parse_small, b"Subject: s\r\n\r\nbody\r\n") for _ in range(6))
        )
        assert all(r.parsed.subject == "s" for r in results)
        assert workers.worker_pids() == started  # no new worker needed
    finally:
        workers.close()
