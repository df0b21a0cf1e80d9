"""Migrations: from empty to head on both backends, no drift from schema.py, and back."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hirondelle.store import migrate, schema
from tests.conftest import EmptyDatabase


def test_upgrade_from_empty_reaches_head(empty_database: EmptyDatabase) -> None:
    engine = sa.create_engine(empty_database.url())
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        tables = set(sa.inspect(engine).get_table_names())
        assert set(schema.metadata.tables) <= tables
        # Running it again is a no-op, as at every start of the server.
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_metadata(empty_database: EmptyDatabase) -> None:
    """The migrations build exactly the tables, columns and indexes schema.py declares."""
    engine = sa.create_engine(empty_database.url())
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    # The full-text search objects and SQLite's email id floor (0025) are
                    # per backend and not in the metadata.
                    "include_name": lambda name, kind, _parent: (
                        not (
                            kind == "table"
                            and name is not None
                            and (name.startswith("email_search") or name == "email_id_floor")
                        )
                    ),
                },
            )
            differences = compare_metadata(context, schema.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_search_objects_exist_per_backend(empty_database: EmptyDatabase) -> None:
    engine = sa.create_engine(empty_database.url())
    try:
        migrate.upgrade(engine)
        tables = set(sa.inspect(engine).get_table_names())
        if engine.dialect.name == "sqlite":
            assert "email_search_fts" in tables
        else:
            assert "email_search" in tables
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything(empty_database: EmptyDatabase) -> None:
    engine = sa.create_engine(empty_database.url())
    try:
        migrate.upgrade(engine)
        from alembic import command

        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        remaining = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
        assert not {t for t in remaining if not t.startswith("email_search_fts")}
    finally:
        engine.dispose()
