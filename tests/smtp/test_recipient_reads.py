"""RCPT lookups asked for in one turn of the event loop are read together (one store
read for the batch, mail/submission.py ``_RecipientReads``): each still gets the answer
its own read gave, refusals included, and a failing read fails only its batch."""

from __future__ import annotations

import asyncio

import pytest

from hirondelle.errors import Refused
from hirondelle.mail.recipients import Resolution
from hirondelle.services import Services

from .conftest import make_account

ADDRESSES = [
    "alice@example.test",
    "ALICE+tag@Example.test",
    "team@example.test",
    "someone@elsewhere.test",
    "nobody@example.test",
    "full@example.test",
    "off@example.test",
    "not an address",
    "anything@catch.test",
]


async def _setup(services: Services) -> None:
    await make_account(services, "alice@example.test")
    await make_account(services, "bob@example.test")
    await make_account(services, "full@example.test", quota_bytes=0)
    await make_account(services, "off@example.test", disabled=True)
    await make_account(services, "carol@catch.test")
    await services.aliases.add("team@example.test", ["alice@example.test", "x@remote.test"])
    await services.aliases.add("@catch.test", ["carol@catch.test"])


def _outcome(result: Resolution | BaseException) -> object:
    if isinstance(result, Refused):
        return ("refused", result.reason, result.message)
    if isinstance(result, BaseException):
        return ("error", type(result).__name__, str(result))
    return ("ok", result)


async def test_concurrent_lookups_answer_as_one_at_a_time(services: Services) -> None:
    await _setup(services)
    transport = services.transport
    alone = []
    for relay in (False, True):
        for address in ADDRESSES:
            try:
                alone.append(_outcome(await transport.check_recipient(address, may_relay=relay)))
            except Exception as error:
                alone.append(_outcome(error))
    together = await asyncio.gather(
        *(
            transport.check_recipient(address, may_relay=relay)
            for relay in (False, True)
            for address in ADDRESSES
        ),
        return_exceptions=True,
    )
    assert [_outcome(result) for result in together] == alone
    assert alone[4][:1] == ("refused",)  # nobody@: unknown, so the lists are not all "ok"


async def test_one_store_read_for_a_batch(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _setup(services)
    database = services.database
    reads = 0
    original = database.read

    async def counted(function):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return await original(function)

    monkeypatch.setattr(database, "read", counted)
    results = await asyncio.gather(
        *(
            services.transport.check_recipient("alice@example.test", may_relay=False)
            for _ in range(8)
        )
    )
    assert reads == 1
    assert all(r.local and r.local[0].address == "alice@example.test" for r in results)


async def test_a_failed_read_fails_its_batch_and_not_the_next(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _setup(services)
    database = services.database
    original = database.read
    failures = [RuntimeError("the store is down")]

    async def flaky(function):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await original(function)

    monkeypatch.setattr(database, "read", flaky)
    first = await asyncio.gather(
        *(
            services.transport.check_recipient("alice@example.test", may_relay=False)
            for _ in range(3)
        ),
        return_exceptions=True,
    )
    assert [str(r) for r in first] == ["the store is down"] * 3
    again = await services.transport.check_recipient("alice@example.test", may_relay=False)
    assert again.local[0].address == "alice@example.test"


async def test_a_cancelled_lookup_leaves_the_others(services: Services) -> None:
    await _setup(services)
    transport = services.transport
    left = asyncio.ensure_future(transport.check_recipient("alice@example.test", may_relay=False))
    stays = asyncio.ensure_future(transport.check_recipient("bob@example.test", may_relay=False))
    await asyncio.sleep(0)
    left.cancel()
    resolution = await stays
    assert resolution.local[0].address == "bob@example.test"
    with pytest.raises(asyncio.CancelledError):
        await left


async def test_a_lookup_that_breaks_the_transaction_fails_alone(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (PostgreSQL): a database error in one lookup aborted the batch's
    transaction, and every later lookup of the batch failed with it ("current
    transaction is aborted"). They are now read again in a batch of their own."""
    from hirondelle.mail import submission

    await _setup(services)
    original = submission._read_recipient

    def breaking(conn, normalized):  # type: ignore[no-untyped-def]
        if normalized.startswith("boom@"):
            conn.exec_driver_sql("SELECT * FROM no_such_table")
        return original(conn, normalized)

    monkeypatch.setattr(submission, "_read_recipient", breaking)
    results = await asyncio.gather(
        *(
            services.transport.check_recipient(address, may_relay=False)
            for address in (
                "alice@example.test",
                "boom@example.test",
                "bob@example.test",
                "team@example.test",
            )
        ),
        return_exceptions=True,
    )
    assert isinstance(results[1], Exception) and "no_such_table" in str(results[1])
    assert [r.local[0].address for r in (results[0], results[2])] == [  # type: ignore[union-attr]
        "alice@example.test",
        "bob@example.test",
    ]
    assert not isinstance(results[3], BaseException) and results[3].local
