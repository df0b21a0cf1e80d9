"""Web sessions, TOTP and WebAuthn second factors, recovery codes, password-reset tokens (issue 6).

Tables are defined on :data:`hirondelle.store.schema.metadata`; migration 0007 creates them.

Every secret a browser or a user holds (session cookie, pending sign-in, reset link,
recovery code) is kept as its SHA-256 only: each is drawn with at least 79 random bits,
so a fast hash is enough (no argon2: nothing to slow down that brute force could use).
A second factor is one row of ``second_factors`` (schema.py: its presence is what makes
the main password useless on IMAP/POP3/SMTP/DAV) plus one detail row here.
"""

from __future__ import annotations

import sqlalchemy as sa

from hirondelle.store.schema import Timestamp, account_id_column, metadata

# One signed-in browser. The CSRF token is derived from the cookie token (SHA-256 under
# another label), so it needs no column and cannot outlive the session.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("stay_signed_in", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    # Absolute end: 12 h after sign-in, 30 days with "stay signed in"; never extended.
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
    sa.Column("last_seen_at", Timestamp, nullable=False),
    sa.Column("remote", sa.String(64), nullable=False),
    sa.Column("user_agent", sa.String(200), nullable=False),
    # The challenge of a WebAuthn registration this session started (one at a time).
    sa.Column("registration_challenge", sa.String(128), nullable=True),
)

# A password proved, a second factor still owed: the "pending" token of the session API.
web_sign_ins = sa.Table(
    "web_sign_ins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("stay_signed_in", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
    # Wrong second factors given for this sign-in; past a few it is dropped.
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("webauthn_challenge", sa.String(128), nullable=True),
)

# The TOTP secret of a confirmed ``second_factors`` row (kind "totp").
totp_factors = sa.Table(
    "totp_factors",
    metadata,
    sa.Column(
        "second_factor_id",
        sa.Integer,
        sa.ForeignKey("second_factors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Sealed by identity/secret_box.py (AES-GCM, "v1:..."); base32 (RFC 4648) in rows
    # written before migration 0021, sealed at the next node start.
    sa.Column("secret", sa.String(255), nullable=False),
    # The last RFC 6238 time step accepted: a code of that step or earlier is a replay.
    sa.Column("last_step", sa.BigInteger, nullable=False, default=0),
)

# A TOTP enrolment shown to the user but not yet confirmed with a first code.
totp_enrolments = sa.Table(
    "totp_enrolments",
    metadata,
    account_id_column(primary_key=True),
    sa.Column("secret", sa.String(255), nullable=False),  # sealed, as totp_factors.secret
    sa.Column("created_at", Timestamp, nullable=False),
)

# A WebAuthn credential (passkey or security key) of a ``second_factors`` row.
webauthn_credentials = sa.Table(
    "webauthn_credentials",
    metadata,
    sa.Column(
        "second_factor_id",
        sa.Integer,
        sa.ForeignKey("second_factors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # base64url of the credential id (at most 1023 bytes, W3C WebAuthn §5.1).
    sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),
    # COSE_Key bytes as the authenticator gave them.
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("sign_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("last_used_at", Timestamp, nullable=True),
)

# One-time recovery codes of an account (given when its first second factor is set).
recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
)

# One-time password-reset links (`hirondelle account reset-link`), valid one hour.
password_resets = sa.Table(
    "password_resets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    account_id_column(nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.Column("used_at", Timestamp, nullable=True),
)

__all__ = [
    "password_resets",
    "recovery_codes",
    "totp_enrolments",
    "totp_factors",
    "web_sessions",
    "web_sign_ins",
    "webauthn_credentials",
]
