"""Shared fixtures: a fresh store per test, on every configured SQL backend.

SQLite always runs. PostgreSQL runs when ``HIRONDELLE_TEST_POSTGRESQL`` holds a URL to a
server where the test user may create databases (``.ci/run`` sets it, and fails when the
server is missing). PostgreSQL tests share one database, migrated once per run and
emptied (TRUNCATE ... RESTART IDENTITY) after each test: creating and dropping a
database per test cost about 4 s of checkpoints each.

Password hashing uses argon2's cheapest parameters in tests (as Django's test runner
swaps in a fast hasher): the cost parameters are not what the tests are about, and
hashing at full cost for every account of every test would dominate the suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hirondelle.config import Settings
from hirondelle.services import Services, open_services
from hirondelle.store import migrate

POSTGRESQL_URL = os.environ.get("HIRONDELLE_TEST_POSTGRESQL", "")

BACKENDS = ["sqlite", *(["postgresql"] if POSTGRESQL_URL else [])]


def _admin_engine() -> sa.Engine:
    url = sa.make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def _database_url(name: str) -> str:
    url = sa.make_url(POSTGRESQL_URL).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str | None]:
    """One migrated database for the run's PostgreSQL tests."""
    if not POSTGRESQL_URL:
        yield None
        return
    name = f"hirondelle_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(_database_url(name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _empty_postgresql(url: str) -> None:
    """Remove every row of every table (but Alembic's) and restart the sequences."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            tables = (
                conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"
                )
                .scalars()
                .all()
            )
            if tables:
                names = ", ".join(f'"{table}"' for table in tables)
                conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher, profiles

    from hirondelle.identity import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    passwords.dummy_hash.cache_clear()


class EmptyDatabase:
    """Creates empty databases (no schema) for migration tests."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.created: list[str] = []

    def url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / f'empty-{len(self.created)}.sqlite3'}"
        name = f"hirondelle_test_{uuid.uuid4().hex[:12]}"
        with _admin_engine().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return _database_url(name)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = _admin_engine()
        with admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[EmptyDatabase]:
    factory = EmptyDatabase(backend, tmp_path)
    yield factory
    factory.drop_all()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, postgresql_database: str | None) -> Iterator[str]:
    """A migrated, empty database on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'hirondelle.sqlite3'}"
        return
    assert postgresql_database is not None
    url = _database_url(postgresql_database)
    try:
        yield url
    finally:
        _empty_postgresql(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    data = tmp_path / "data"
    data.mkdir()
    return Settings.model_validate(
        {
            "data_dir": data,
            # No webmail build unless a test gives one: "/" stays the status page even
            # after scripts/setup.sh has built webapp/dist in the source tree.
            "server": {"hostname": "mail.example.test", "webapp": str(tmp_path / "no-webapp")},
            "store": {"database": database_url},
        }
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = open_services(settings)
    try:
        yield opened
    finally:
        opened.close()
