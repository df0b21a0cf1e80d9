"""Identity: second-factor secrets at rest (issue 6).

Allocated empty in the chain before the work started, so that parallel work never makes
two Alembic heads; it stays a no-op if that work needs no schema change.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-22 17:20:00
"""

from __future__ import annotations

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
