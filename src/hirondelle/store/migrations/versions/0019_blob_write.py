"""The blob write path: fewer fsyncs per delivery, streamed writes (issues 3 and 4).

Allocated empty in the chain before the work started, so that parallel work never makes
two Alembic heads; it stays a no-op if that work needs no schema change.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-22 17:20:00
"""

from __future__ import annotations

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
