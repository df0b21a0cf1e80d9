"""TOTP secrets at rest (identity/secret_box.py, migration 0021): sealed with AES-256-GCM
under a key file outside the database, bound to their account; the key file made once
with mode 0600; secrets stored in clear before this still work and are sealed at start;
a wrong key or an altered row fails the code, not the request. On both backends."""

from __future__ import annotations

import asyncio
import base64
import logging
import stat
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.identity import housekeeping, secret_box
from hirondelle.identity.second_factor import TOTP_PURPOSE
from hirondelle.identity.secret_box import SealedSecretError, SecretBox, SecretKeyError
from hirondelle.services import Services
from hirondelle.store import migrate
from hirondelle.store import web_sessions as store
from hirondelle.store.database import WriteContext, now_us
from hirondelle.store.directory import Account
from hirondelle.store.schema_web_sessions import totp_enrolments, totp_factors
from tests.conftest import EmptyDatabase
from tests.identity.conftest import ALICE, PASSWORD, make_account

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NOW = 1_800_000_000.0  # a fixed time, at the start of a 30 s step


def box(key: bytes = KEY) -> SecretBox:
    return SecretBox.with_key(key)


def run(coroutine: Coroutine[Any, Any, str]) -> str:
    return asyncio.run(coroutine)


# -- the box ------------------------------------------------------------------------------


async def test_a_sealed_secret_opens_only_for_its_owner_and_purpose() -> None:
    sealed = await box().seal("JBSWY3DPEHPK3PXP", purpose="totp", owner=7)
    assert sealed.startswith(f"v1:{secret_box.key_id(KEY)}:")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert await box().open(sealed, purpose="totp", owner=7) == "JBSWY3DPEHPK3PXP"
    # Moved onto another account's row, or read as something else: it does not open.
    with pytest.raises(SealedSecretError, match="altered or misplaced"):
        await box().open(sealed, purpose="totp", owner=8)
    with pytest.raises(SealedSecretError, match="altered or misplaced"):
        await box().open(sealed, purpose="webauthn", owner=7)


async def test_two_sealings_of_one_secret_differ() -> None:
    """A fresh nonce each time: equal secrets do not show as equal rows."""
    first = await box().seal("JBSWY3DPEHPK3PXP", purpose="totp", owner=1)
    second = await box().seal("JBSWY3DPEHPK3PXP", purpose="totp", owner=1)
    assert first != second


async def test_another_key_is_named_not_taken_for_tampering() -> None:
    sealed = await box().seal("JBSWY3DPEHPK3PXP", purpose="totp", owner=1)
    with pytest.raises(SealedSecretError, match="every node must use the same key file"):
        await box(OTHER_KEY).open(sealed, purpose="totp", owner=1)


async def test_a_secret_stored_in_clear_is_read_as_it_is() -> None:
    assert await box().open("JBSWY3DPEHPK3PXP", purpose="totp", owner=1) == "JBSWY3DPEHPK3PXP"
    # Anything else unsealed is an altered row (a found regression: "w1:..." read as a
    # secret in clear).
    for altered in ("w1:2d05fdb9:cl-nNxw", "V1:x", "jbswy3dpehpk3pxp", ""):
        with pytest.raises(SealedSecretError, match="neither sealed nor base32"):
            await box().open(altered, purpose="totp", owner=1)


@settings(max_examples=200, deadline=None)
@given(secret=st.text(max_size=100), owner=st.integers(min_value=0, max_value=2**62))
def test_sealing_round_trips(secret: str, owner: int) -> None:
    sealed = run(box().seal(secret, purpose="totp", owner=owner))
    assert run(box().open(sealed, purpose="totp", owner=owner)) == secret


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=12, max_value=200), flip=st.integers(1, 255))
def test_any_altered_character_is_refused(position: int, flip: int) -> None:
    sealed = run(box().seal("JBSWY3DPEHPK3PXP", purpose="totp", owner=1))
    index = position % len(sealed)
    altered = sealed[:index] + chr((ord(sealed[index]) + flip) % 128) + sealed[index + 1 :]
    if altered == sealed:
        return
    try:
        opened = run(box().open(altered, purpose="totp", owner=1))
    except SealedSecretError:
        return
    # Only a change that leaves the same bytes (base64 padding bits) may still open.
    assert opened == "JBSWY3DPEHPK3PXP"


@settings(max_examples=300, deadline=None)
@given(tail=st.text(max_size=120))
def test_garbage_after_the_prefix_is_a_sealed_secret_error(tail: str) -> None:
    with pytest.raises(SealedSecretError):
        run(box().open(f"v1:{secret_box.key_id(KEY)}:{tail}", purpose="totp", owner=1))


# -- the key file ---------------------------------------------------------------------------


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret.key"
    key = secret_box.load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == key
    assert secret_box.load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def load() -> None:
        start.wait()
        keys.append(secret_box.load_or_create_key(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert base64.b64decode(path.read_text()) == keys[0]


def test_a_key_file_without_a_key_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not a key\n")
    with pytest.raises(SecretKeyError, match=r"secret\.key must hold 32 bytes in base64"):
        secret_box.load_or_create_key(path)
    path.write_text(base64.b64encode(bytes(16)).decode())
    with pytest.raises(SecretKeyError, match="must hold 32 bytes"):
        secret_box.load_or_create_key(path)


def test_a_key_file_others_can_read_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret.key"
    path.write_text(base64.b64encode(KEY).decode() + "\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="hirondelle.identity.secret_box"):
        assert secret_box.load_or_create_key(path) == KEY
    assert "can be read by other users (mode 644): chmod 600 it" in caplog.text


# -- in the store -----------------------------------------------------------------------------


@pytest.fixture
def clock(services: Services) -> list[float]:
    now = [NOW]
    services.second_factors.clock = lambda: now[0]
    return now


async def stored_factor_secret(services: Services, account: Account) -> str:
    found = await services.database.read(lambda conn: store.get_totp(conn, account.id))
    assert found is not None
    return found[1]


async def test_enrolment_stores_only_the_sealed_secret(
    services: Services, alice: Account, clock: list[float]
) -> None:
    enrolment = await services.second_factors.begin_totp(alice)
    pending = await services.database.read(
        lambda conn: conn.execute(sa.select(totp_enrolments.c.secret)).scalar_one()
    )
    assert secret_box.is_sealed(pending) and enrolment.secret not in pending
    await services.second_factors.confirm_totp(alice, pyotp.TOTP(enrolment.secret).at(NOW))
    stored = await stored_factor_secret(services, alice)
    assert secret_box.is_sealed(stored) and enrolment.secret not in stored
    # The key is the data directory's file, not in the database.
    key_path = services.settings.secret_key_path()
    assert key_path == services.settings.data_dir / "secret.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = base64.b64decode(key_path.read_text())
    assert stored.split(":")[1] == secret_box.key_id(key)
    clock[0] = NOW + 30
    totp = pyotp.TOTP(enrolment.secret)
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 30))


async def put_clear_totp(services: Services, account: Account, secret: str) -> None:
    """A TOTP factor as written before migration 0021: the secret in base32."""

    def write(ctx: WriteContext) -> None:
        factor_id = store.insert_factor(ctx, account.id, "totp", now_us())
        store.insert_totp(ctx, factor_id, secret, 0)
        store.put_totp_enrolment(ctx, account.id, secret, now_us())

    await services.database.write(write)


async def test_secrets_stored_in_clear_keep_working_and_are_sealed_at_start(
    services: Services, alice: Account, clock: list[float]
) -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    await put_clear_totp(services, alice, secret)
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW))
    assert await housekeeping.seal_secrets(services) == 2  # the factor and the enrolment
    stored = await stored_factor_secret(services, alice)
    assert secret_box.is_sealed(stored) and secret not in stored
    enrolment = await services.database.read(
        lambda conn: conn.execute(sa.select(totp_enrolments.c.secret)).scalar_one()
    )
    assert secret_box.is_sealed(enrolment) and secret not in enrolment
    clock[0] = NOW + 30
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 30))
    assert not await services.second_factors.verify_totp(alice.id, totp.at(NOW + 30))  # replay
    assert await housekeeping.seal_secrets(services) == 0


async def test_the_node_seals_secrets_in_clear_when_it_starts(
    services: Services, alice: Account
) -> None:
    await put_clear_totp(services, alice, pyotp.random_base32())
    services.settings.secret_key_path().unlink(missing_ok=True)
    task = asyncio.create_task(housekeeping.run(services, prune_interval=3600))
    try:
        for _ in range(200):
            stored = await stored_factor_secret(services, alice)
            if secret_box.is_sealed(stored):
                break
            await asyncio.sleep(0.05)
        assert secret_box.is_sealed(stored)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert services.settings.secret_key_path().exists()


async def test_with_another_key_file_the_code_fails_and_recovery_codes_still_work(
    services: Services, alice: Account, clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    enrolment = await services.second_factors.begin_totp(alice)
    codes = await services.second_factors.confirm_totp(alice, pyotp.TOTP(enrolment.secret).at(NOW))
    # A node with a key of its own (its key file not copied from the others).
    services.second_factors.secret_box = SecretBox.with_key(OTHER_KEY, Path("/other/secret.key"))
    clock[0] = NOW + 30
    with caplog.at_level(logging.ERROR, logger="hirondelle.identity.second_factor"):
        ok = await services.second_factors.verify_totp(
            alice.id, pyotp.TOTP(enrolment.secret).at(NOW + 30)
        )
    assert not ok
    assert f"the TOTP secret of account {alice.id} cannot be read" in caplog.text
    assert "/other/secret.key holds the key" in caplog.text
    assert enrolment.secret not in caplog.text
    # The web sign-in still has its other way in.
    signed = await services.web_sessions.sign_in(
        ALICE, PASSWORD, stay_signed_in=False, remote="127.0.0.1", user_agent="test"
    )
    assert signed.methods == ("totp", "recovery")
    done = await services.web_sessions.second_factor(
        signed.pending, recovery_code=codes[0], remote="127.0.0.1", user_agent="test"
    )
    assert done.session is not None and done.session.account.id == alice.id


async def test_a_key_rotation_keeps_every_secret(
    services: Services, alice: Account, clock: list[float]
) -> None:
    """docs/security.md: rename the key file to <name>.previous and restart; the node
    makes a new key, opens old values with the previous one and seals them again."""
    enrolment = await services.second_factors.begin_totp(alice)
    await services.second_factors.confirm_totp(alice, pyotp.TOTP(enrolment.secret).at(NOW))
    key_path = services.settings.secret_key_path()
    old_key = base64.b64decode(key_path.read_text())
    key_path.rename(key_path.with_name("secret.key.previous"))
    # The restart: a new box reads the files again.
    services.second_factors.secret_box = SecretBox(key_path)
    clock[0] = NOW + 30
    totp = pyotp.TOTP(enrolment.secret)
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 30))
    assert await housekeeping.seal_secrets(services) == 1
    new_key = base64.b64decode(key_path.read_text())
    assert new_key != old_key and len(new_key) == 32
    stored = await stored_factor_secret(services, alice)
    assert stored.startswith(f"v1:{secret_box.key_id(new_key)}:")
    assert await housekeeping.seal_secrets(services) == 0
    # The previous key is no longer needed.
    key_path.with_name("secret.key.previous").unlink()
    services.second_factors.secret_box = SecretBox(key_path)
    clock[0] = NOW + 60
    assert await services.second_factors.verify_totp(alice.id, totp.at(NOW + 60))


async def test_a_secret_under_an_unknown_key_is_left_as_it_is(
    services: Services, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = await box(OTHER_KEY).seal(pyotp.random_base32(), purpose="totp", owner=alice.id)

    def write(ctx: WriteContext) -> None:
        factor_id = store.insert_factor(ctx, alice.id, "totp", now_us())
        store.insert_totp(ctx, factor_id, foreign, 0)

    await services.database.write(write)
    with caplog.at_level(logging.ERROR, logger="hirondelle.identity.housekeeping"):
        assert await housekeeping.seal_secrets(services) == 0
    assert await stored_factor_secret(services, alice) == foreign
    assert f"sealed with the key {secret_box.key_id(OTHER_KEY)}" in caplog.text


async def test_a_row_moved_to_another_account_does_not_open(
    services: Services, alice: Account, clock: list[float]
) -> None:
    bob = await make_account(services, "bob@example.test")
    enrolment = await services.second_factors.begin_totp(alice)
    await services.second_factors.confirm_totp(alice, pyotp.TOTP(enrolment.secret).at(NOW))
    sealed = await stored_factor_secret(services, alice)
    await put_clear_totp(services, bob, "A" * 32)

    def move(ctx: WriteContext) -> None:
        found = store.get_totp(ctx.conn, bob.id)
        assert found is not None
        ctx.conn.execute(
            totp_factors.update()
            .where(totp_factors.c.second_factor_id == found[0])
            .values(secret=sealed)
        )

    await services.database.write(move)
    clock[0] = NOW + 30
    code = pyotp.TOTP(enrolment.secret).at(NOW + 30)
    assert not await services.second_factors.verify_totp(bob.id, code)
    assert await services.second_factors.verify_totp(alice.id, code)


async def test_a_sealed_totp_secret_fits_its_column() -> None:
    """pyotp's secrets are 32 base32 characters; the columns hold 255 (migration 0021)."""
    sealed = await box().seal(pyotp.random_base32(), purpose=TOTP_PURPOSE, owner=2**62)
    assert len(sealed) <= totp_factors.c.secret.type.length == 255  # type: ignore[attr-defined]
    assert totp_enrolments.c.secret.type.length == 255  # type: ignore[attr-defined]


# -- migration 0021 with rows in place ------------------------------------------------------


def _insert(conn: sa.Connection, table_name: str, **given: object) -> int:
    """Insert one row into ``table_name`` as it is at this revision (reflected): the
    given values, and a plain value for every other required column."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
    values = dict(given)
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and isinstance(column.type, sa.Integer):
            continue
        python_type = column.type.python_type
        values[column.name] = {int: 0, str: "x", bool: False, bytes: b""}[python_type]
    result = conn.execute(table.insert().values(**values))
    return int(result.inserted_primary_key[0]) if result.inserted_primary_key else 0


def test_migration_0021_keeps_secrets_in_clear_and_makes_room_for_sealed_ones(
    empty_database: EmptyDatabase,
) -> None:
    engine = sa.create_engine(empty_database.url())
    try:
        migrate.upgrade(engine, "0020")
        secret = pyotp.random_base32()
        with engine.begin() as conn:
            domain = _insert(conn, "domains", name="example.test")
            account = _insert(conn, "accounts", domain_id=domain, address=ALICE)
            factor = _insert(conn, "second_factors", account_id=account, kind="totp", created_at=1)
            _insert(conn, "totp_factors", second_factor_id=factor, secret=secret, last_step=0)
        migrate.upgrade(engine)
        sealed = run(box().seal(secret, purpose=TOTP_PURPOSE, owner=account))
        with engine.begin() as conn:
            table = sa.Table("totp_factors", sa.MetaData(), autoload_with=conn)
            assert conn.execute(sa.select(table.c.secret)).scalar_one() == secret
            # PostgreSQL enforces the width: a sealed secret fits only after 0021.
            conn.execute(table.update().values(secret=sealed))
            assert conn.execute(sa.select(table.c.secret)).scalar_one() == sealed
    finally:
        engine.dispose()
