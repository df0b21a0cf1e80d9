"""Address normalisation: a property test over arbitrary text, and the cases that
reached the database before (NUL made PostgreSQL refuse a query)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.errors import Reason, Refused
from hirondelle.mail.addresses import normalize_address, without_subaddress


@given(st.text(max_size=80))
def test_any_text_is_either_refused_or_a_clean_address(text: str) -> None:
    try:
        address = normalize_address(text)
    except Refused as refused:
        assert refused.reason is Reason.INVALID
        return
    local, _, domain = address.rpartition("@")
    assert local and domain and "." in domain
    assert address == address.lower()
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in address)


@pytest.mark.parametrize(
    "text",
    [
        "alice\x00@example.test",
        "al\x7fice@example.test",
        "a\x85b@example.test",
        "a b@example.test",
        "alice@exa\x00mple.test",
        "@example.test",
        "alice@",
        "alice@localhost",
        "a..b@example.test",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(Refused):
        normalize_address(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Alice@Example.TEST", "alice@example.test"),
        ("<bob@example.test>", "bob@example.test"),
        ("élise@exemple.fr", "élise@exemple.fr"),
    ],
)
def test_normalised(text: str, expected: str) -> None:
    assert normalize_address(text) == expected


def test_subaddress() -> None:
    assert without_subaddress("alice+news@example.test") == "alice@example.test"
    assert without_subaddress("alice@example.test") is None
    assert without_subaddress("+news@example.test") is None
