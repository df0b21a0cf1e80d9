"""Property tests of the identity parsers and the rate limiter (hypothesis): what any
input, malformed included, may and may not do. Purely in-memory: no backend."""

from __future__ import annotations

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.cli import main as _cli  # noqa: F401  (main first: identity_admin imports it)
from hirondelle.cli.identity_admin import parse_duration
from hirondelle.errors import Refused
from hirondelle.identity.app_passwords import (
    CLIENT_PROTOCOLS,
    generate,
    looks_like_app_password,
    parse_protocols,
)
from hirondelle.identity.rate_limits import InProcessRateLimiter, Limits
from hirondelle.identity.verification_cache import VerificationCache

LIMITS = Limits(
    account_failures=5,
    address_failures=8,
    window_seconds=100.0,
    lockout_seconds=10.0,
    max_lockout_seconds=80.0,
)


@given(st.text(max_size=30))
def test_parse_duration_returns_seconds_or_a_clean_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except click.ClickException as error:
        assert error.message.startswith("invalid duration")
    else:
        assert seconds >= 0


@given(st.integers(0, 10**6), st.sampled_from(["", "s", "m", "h", "d", "w"]))
def test_parse_duration_reads_every_unit(number: int, unit: str) -> None:
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{number}{unit}") == number * factor


@given(st.lists(st.text(max_size=8), max_size=6))
def test_parse_protocols_accepts_only_client_protocols(items: list[str]) -> None:
    try:
        chosen = parse_protocols(items)
    except Refused:
        return
    assert chosen and set(chosen) <= set(CLIENT_PROTOCOLS)
    assert list(chosen) == sorted(chosen, key=CLIENT_PROTOCOLS.index)


@settings(max_examples=50)
@given(st.integers(0, 1000))
def test_generated_app_passwords_have_the_readable_shape(_seed: int) -> None:
    secret = generate()
    assert looks_like_app_password(secret)
    assert looks_like_app_password(secret.upper())
    assert not set(secret) & set("01ilo")


@given(st.text(max_size=40))
def test_arbitrary_text_is_rarely_an_app_password(text: str) -> None:
    if looks_like_app_password(text):
        assert len(text.strip()) == 19


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["fail", "success", "tick"]),
            st.sampled_from(["a@x.test", "b@x.test"]),
            st.sampled_from(["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
            st.floats(0.0, 50.0),
        ),
        max_size=200,
    )
)
def test_limiter_locks_an_address_once_its_guesses_reach_the_limit(
    events: list[tuple[str, str, str, float]],
) -> None:
    """Whatever happens, an address is locked at the latest when its checked guesses
    within one window reach address_failures, and never longer than the ceiling."""
    now = [0.0]
    limiter = InProcessRateLimiter(LIMITS, clock=lambda: now[0])
    checked: dict[str, list[float]] = {}
    for kind, account, remote, step in events:
        if kind == "tick":
            now[0] += step
            continue
        if limiter.retry_after(account, remote) > 0:
            continue
        if kind == "fail":
            limiter.record_failure(account, remote)
            if limiter.retry_after("other@x.test", remote) > 0:
                checked[remote] = []  # locked: counting starts again afterwards
            else:
                times = checked.setdefault(remote, [])
                times.append(now[0])
                recent = [t for t in times if t > now[0] - LIMITS.window_seconds]
                assert len(recent) < LIMITS.address_failures
        else:
            limiter.record_success(account, remote)
        assert 0 <= limiter.retry_after(account, remote) <= LIMITS.max_lockout_seconds


@given(st.text(max_size=50), st.integers(0, 5))
def test_cache_answers_only_for_the_same_secret_and_version(secret: str, version: int) -> None:
    cache = VerificationCache(60.0, clock=lambda: 0.0)
    cache.put(1, version, secret, None)
    assert cache.get(1, version, secret) is not None
    assert cache.get(1, version + 1, secret) is None
    assert cache.get(2, version, secret) is None
    assert cache.get(1, version, secret + "x") is None


@pytest.mark.parametrize("size", [1, 3])
def test_cache_is_bounded(size: int) -> None:
    cache = VerificationCache(60.0, max_entries=size)
    for n in range(10):
        cache.put(n, 0, "secret", None)
    assert len(cache) == size


def test_cache_entries_expire() -> None:
    now = [0.0]
    cache = VerificationCache(300.0, clock=lambda: now[0])
    cache.put(1, 0, "secret", None)
    now[0] = 299.0
    assert cache.get(1, 0, "secret") is not None
    now[0] = 300.0
    assert cache.get(1, 0, "secret") is None
    assert len(cache) == 0


def test_cache_switched_off_keeps_nothing() -> None:
    cache = VerificationCache(0.0)
    cache.put(1, 0, "secret", None)
    assert cache.get(1, 0, "secret") is None and len(cache) == 0
