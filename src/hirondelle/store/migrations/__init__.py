"""Alembic migrations of the store schema (one set for SQLite and PostgreSQL)."""
