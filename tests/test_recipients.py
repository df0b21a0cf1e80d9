"""Recipient resolution: accounts, aliases, catch-all, plus-addressing, loops."""

from __future__ import annotations

import pytest

from hirondelle.errors import Reason, Refused
from hirondelle.services import Services


@pytest.fixture
async def directory(services: Services) -> Services:
    await services.accounts.add_domain("example.test")
    await services.accounts.add_domain("other.test")
    for name in ("alice", "bob", "carol"):
        await services.accounts.add_account(f"{name}@example.test", password=None)
    return services


async def locals_of(services: Services, address: str) -> set[str]:
    resolution = await services.aliases.resolve(address)
    return {r.address for r in resolution.local}


async def test_account_case_insensitive(directory: Services) -> None:
    assert await locals_of(directory, "Alice@Example.TEST") == {"alice@example.test"}


async def test_alias_to_several_and_external(directory: Services) -> None:
    await directory.aliases.add(
        "team@example.test", ["alice@example.test", "bob@example.test", "x@far.test"]
    )
    resolution = await directory.aliases.resolve("team@example.test")
    assert {r.address for r in resolution.local} == {"alice@example.test", "bob@example.test"}
    assert resolution.external == ["x@far.test"]


async def test_nested_aliases_and_duplicates_deliver_once(directory: Services) -> None:
    await directory.aliases.add("all@example.test", ["team@example.test", "alice@example.test"])
    await directory.aliases.add("team@example.test", ["alice@example.test", "bob@example.test"])
    resolution = await directory.aliases.resolve("all@example.test")
    assert sorted(r.address for r in resolution.local) == ["alice@example.test", "bob@example.test"]


async def test_alias_loops_terminate(directory: Services) -> None:
    await directory.aliases.add("a@example.test", ["b@example.test"])
    await directory.aliases.add("b@example.test", ["a@example.test", "carol@example.test"])
    assert await locals_of(directory, "a@example.test") == {"carol@example.test"}


async def test_plus_addressing(directory: Services) -> None:
    assert await locals_of(directory, "alice+newsletters@example.test") == {"alice@example.test"}
    await directory.aliases.add("team@example.test", ["bob@example.test"])
    assert await locals_of(directory, "team+x@example.test") == {"bob@example.test"}


async def test_catch_all_only_for_unknown_addresses(directory: Services) -> None:
    unknown = await directory.aliases.resolve("nobody@example.test")
    assert unknown.unknown
    await directory.aliases.add("@example.test", ["carol@example.test"])
    assert await locals_of(directory, "nobody@example.test") == {"carol@example.test"}
    assert await locals_of(directory, "alice@example.test") == {"alice@example.test"}


async def test_foreign_domain_is_external_not_unknown(directory: Services) -> None:
    resolution = await directory.aliases.resolve("someone@far.test")
    assert not resolution.is_local_domain
    assert not resolution.unknown
    assert resolution.external == ["someone@far.test"]


async def test_alias_rules(directory: Services) -> None:
    with pytest.raises(Refused) as error:
        await directory.aliases.add("alice@example.test", ["bob@example.test"])
    assert error.value.reason is Reason.ALREADY_EXISTS
    with pytest.raises(Refused) as error:
        await directory.aliases.add("x@nowhere.test", ["bob@example.test"])
    assert error.value.reason is Reason.NOT_FOUND
    with pytest.raises(Refused) as error:
        await directory.aliases.add("loop@example.test", ["loop@example.test"])
    assert error.value.reason is Reason.INVALID
    with pytest.raises(Refused) as error:
        await directory.aliases.add("team@example.test", ["not an address"])
    assert error.value.reason is Reason.INVALID
    with pytest.raises(Refused) as error:
        await directory.accounts.add_account("x@other..test", password=None)
    assert error.value.reason is Reason.INVALID
