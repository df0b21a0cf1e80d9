"""Web sessions, TOTP and WebAuthn second factors, recovery codes, password-reset tokens (issue 6).

Tables live in ``store/schema_web_sessions.py``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _account_id(table: str) -> list[SchemaItem]:
    return [
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f(f"fk_{table}_account_id_accounts"),
            ondelete="CASCADE",
        ),
    ]


def _second_factor_id(table: str) -> list[SchemaItem]:
    return [
        sa.Column("second_factor_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["second_factor_id"],
            ["second_factors.id"],
            name=op.f(f"fk_{table}_second_factor_id_second_factors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("second_factor_id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        *_account_id("web_sessions"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("stay_signed_in", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("registration_challenge", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_account_id"), "web_sessions", ["account_id"])
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])

    op.create_table(
        "web_sign_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        *_account_id("web_sign_ins"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("stay_signed_in", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("webauthn_challenge", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sign_ins")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sign_ins_token_hash")),
    )
    op.create_index(op.f("ix_web_sign_ins_account_id"), "web_sign_ins", ["account_id"])
    op.create_index(op.f("ix_web_sign_ins_expires_at"), "web_sign_ins", ["expires_at"])

    op.create_table(
        "totp_factors",
        *_second_factor_id("totp_factors"),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "totp_enrolments",
        *_account_id("totp_enrolments"),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_totp_enrolments")),
    )
    op.create_table(
        "webauthn_credentials",
        *_second_factor_id("webauthn_credentials"),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("credential_id", name=op.f("uq_webauthn_credentials_credential_id")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        *_account_id("recovery_codes"),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_account_id"), "recovery_codes", ["account_id"])
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        *_account_id("password_resets"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(op.f("ix_password_resets_account_id"), "password_resets", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_password_resets_account_id"), table_name="password_resets")
    op.drop_table("password_resets")
    op.drop_index(op.f("ix_recovery_codes_account_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("webauthn_credentials")
    op.drop_table("totp_enrolments")
    op.drop_table("totp_factors")
    op.drop_index(op.f("ix_web_sign_ins_expires_at"), table_name="web_sign_ins")
    op.drop_index(op.f("ix_web_sign_ins_account_id"), table_name="web_sign_ins")
    op.drop_table("web_sign_ins")
    op.drop_index(op.f("ix_web_sessions_expires_at"), table_name="web_sessions")
    op.drop_index(op.f("ix_web_sessions_account_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
