"""The password policy (NIST SP 800-63B §5.1.1.2: a minimum length and a check against
common passwords), applied by every path that sets a password."""

from __future__ import annotations

from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.errors import Refused
from hirondelle.identity import password_policy
from hirondelle.identity.password_policy import WeakPassword, check
from hirondelle.services import Services
from tests.identity.conftest import ALICE, make_account


def test_bundled_list_is_exactly_what_the_rule_builds() -> None:
    bundled = (
        resources.files("hirondelle.identity")
        .joinpath("data/common-passwords.txt")
        .read_text("utf-8")
        .splitlines()
    )
    assert bundled == password_policy.build_common_passwords()
    assert 10_000 <= len(bundled) <= 40_000


@pytest.mark.parametrize(
    "password",
    [
        "password123",
        "Password123",
        "motdepasse",
        "AZERTYUIOP",
        "qwertyuiop",
        "1234567890",
        "iloveyou2024",
        "p@ssword123",
        "0000000000",
        "soleil2001",
        "  motdepasse  ",
    ],
)
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        check(password, min_length=10)
    assert refused.value.rule == "common"
    assert refused.value.message == (
        "this password is among the most common ones: choose another / "
        "ce mot de passe fait partie des plus courants : choisissez-en un autre"
    )


def test_short_passwords_are_refused_with_the_minimum() -> None:
    with pytest.raises(WeakPassword) as refused:
        check("abc-12345", min_length=10)
    assert refused.value.rule == "too-short"
    assert refused.value.min_length == 10
    assert refused.value.message == (
        "password too short: at least 10 characters / "
        "mot de passe trop court : au moins 10 caractères"
    )
    check("abc-12345", min_length=9)


@given(st.text(min_size=12, max_size=40).filter(lambda t: not t.isascii()))
def test_long_non_ascii_passwords_are_accepted(password: str) -> None:
    """The list is ASCII: nothing else is refused once it is long enough."""
    check(password, min_length=12)


async def test_account_service_applies_the_policy(services: Services) -> None:
    await make_account(services)
    with pytest.raises(WeakPassword):
        await services.accounts.set_password(ALICE, "password1234")
    with pytest.raises(WeakPassword):
        await services.accounts.add_account("bob@example.test", password="azertyuiop")
    await services.accounts.set_password(ALICE, "a much better one")


def test_a_password_that_is_not_valid_text_is_refused() -> None:
    with pytest.raises(Refused, match="not valid text"):
        check("long enough \udcff password", min_length=10)
