"""Sequence sets (RFC 9051 §9, §6.4.8; RFC 5182) and mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.imap.proto import mailbox_name
from hirondelle.imap.proto.sequence_set import MAX_NUMBER, STAR, SequenceSet


def test_parse_and_encode() -> None:
    numbers = SequenceSet.parse("2,4:7,9,12:*")
    assert numbers.ranges == ((2, 2), (4, 7), (9, 9), (12, STAR))
    assert numbers.encode() == b"2,4:7,9,12:*"
    assert str(SequenceSet.parse(b"$")) == "$"


def test_resolve_star_and_reversed_ranges() -> None:
    """RFC 9051 §6.4.8: n:m is m:n; n:* includes the last message even if n is higher."""
    assert SequenceSet.parse("*:4,10:8").resolve(12) == ((4, 12),)
    assert SequenceSet.parse("559:*").resolve(100) == ((100, 559),)
    assert SequenceSet.parse("*").resolve(0) == ()
    assert SequenceSet.parse("3:*").resolve(0) == ((3, 3),)


def test_huge_range_is_not_expanded() -> None:
    numbers = SequenceSet.parse("1:4294967295")
    assert numbers.count(10) == MAX_NUMBER
    assert list(numbers.iter_numbers(10, limit=5)) == [1, 2, 3, 4, 5]
    assert numbers.contains(4294967295, 10)
    assert not SequenceSet.parse("2:3").contains(4, 10)


def test_merge() -> None:
    assert SequenceSet.parse("5,1:3,4,8:9,7").resolve(10) == ((1, 5), (7, 9))
    assert SequenceSet.of(3, 1, 2, 7).encode() == b"1:3,7"


@pytest.mark.parametrize(
    "text", ["", "0", "1:0", "4294967296", "1,", ",1", "1::2", "a", "$,1", "1 2"]
)
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        SequenceSet.parse(text)


def test_saved_result_must_be_substituted() -> None:
    with pytest.raises(ValueError):
        SequenceSet.saved_result().resolve(10)


numbers = st.integers(1, MAX_NUMBER) | st.just(STAR)


@given(st.lists(st.tuples(numbers, numbers), min_size=1, max_size=20), st.integers(0, MAX_NUMBER))
def test_sequence_set_round_trip(ranges: list[tuple[int, int]], largest: int) -> None:
    original = SequenceSet(tuple(ranges))
    parsed = SequenceSet.parse(original.encode())
    assert parsed == original
    resolved = parsed.resolve(largest)
    assert all(low <= high for low, high in resolved)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(resolved))


@given(st.lists(st.integers(1, 500), min_size=1, max_size=50))
def test_resolved_numbers_match_a_naive_set(values: list[int]) -> None:
    assert list(SequenceSet.of(*values).iter_numbers(500)) == sorted(set(values))


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("a&b", "a&-b"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("😀", "&2D3eAA-"),
        ("Boîte d’envoi", "Bo&AO4-te d&IBk-envoi"),
        ("", ""),
        ("INBOX", "INBOX"),
    ],
)
def test_mailbox_name_codec(name: str, encoded: str) -> None:
    """RFC 3501 §5.1.3, including its example."""
    assert mailbox_name.encode(name) == encoded
    assert mailbox_name.decode(encoded) == name


@pytest.mark.parametrize(
    "encoded",
    [
        "&Jjo",  # unterminated
        "&AGE-",  # "a" in base64
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent runs
        "&U,BTF2-",  # non-zero padding bits
        "&2D0-",  # lone surrogate
        "&Jjo!-",  # not base64
        "caf\u00e9",  # 8-bit
        "a\tb",  # control
        "&AAA-",  # NUL
    ],
)
def test_mailbox_name_invalid(encoded: str) -> None:
    with pytest.raises(mailbox_name.InvalidMailboxName):
        mailbox_name.decode(encoded)


def test_inbox_is_case_insensitive() -> None:
    """RFC 9051 §5.1."""
    assert mailbox_name.normalize_inbox("iNbOx") == "INBOX"
    assert mailbox_name.normalize_inbox("inbox/Lists", "/") == "INBOX/Lists"
    assert mailbox_name.normalize_inbox("inboxes") == "inboxes"


@given(st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40))
def test_mailbox_name_round_trip(name: str) -> None:
    encoded = mailbox_name.encode(name)
    assert encoded.isascii()
    assert mailbox_name.decode(encoded) == name
