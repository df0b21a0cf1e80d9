"""The store side of web sessions, pending sign-ins, second factors, recovery codes and
reset links (tables of :mod:`hirondelle.store.schema_web_sessions`).

Functions take hashes, never the secrets themselves: hashing is the caller's business
(:mod:`hirondelle.identity.web_sessions`), so no secret ever reaches SQL text or a log.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hirondelle.store import schema
from hirondelle.store.database import WriteContext
from hirondelle.store.schema_web_sessions import (
    password_resets,
    recovery_codes,
    totp_enrolments,
    totp_factors,
    web_sessions,
    web_sign_ins,
    webauthn_credentials,
)

# -- web sessions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    account_id: int
    stay_signed_in: bool
    created_at: int
    expires_at: int
    last_seen_at: int
    remote: str
    user_agent: str
    registration_challenge: str | None


def _session(row: sa.Row[tuple[object, ...]]) -> SessionRow:
    m = row._mapping
    return SessionRow(
        id=m["id"],
        account_id=m["account_id"],
        stay_signed_in=bool(m["stay_signed_in"]),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        last_seen_at=m["last_seen_at"],
        remote=m["remote"],
        user_agent=m["user_agent"],
        registration_challenge=m["registration_challenge"],
    )


def insert_session(
    ctx: WriteContext,
    *,
    account_id: int,
    token_hash: str,
    stay_signed_in: bool,
    at: int,
    expires_at: int,
    remote: str,
    user_agent: str,
) -> SessionRow:
    t = web_sessions
    row = ctx.conn.execute(
        t.insert()
        .values(
            account_id=account_id,
            token_hash=token_hash,
            stay_signed_in=stay_signed_in,
            created_at=at,
            expires_at=expires_at,
            last_seen_at=at,
            remote=remote[:64],
            user_agent=user_agent[:200],
        )
        .returning(*t.c)
    ).one()
    return _session(row)


def find_session(conn: Connection, token_hash: str) -> SessionRow | None:
    t = web_sessions
    row = conn.execute(sa.select(t).where(t.c.token_hash == token_hash)).one_or_none()
    return _session(row) if row is not None else None


def touch_session(ctx: WriteContext, session_id: int, at: int, remote: str) -> None:
    t = web_sessions
    ctx.conn.execute(
        t.update().where(t.c.id == session_id).values(last_seen_at=at, remote=remote[:64])
    )


def list_sessions(conn: Connection, account_id: int, now: int) -> list[SessionRow]:
    t = web_sessions
    q = (
        sa.select(t)
        .where(t.c.account_id == account_id, t.c.expires_at > now)
        .order_by(t.c.last_seen_at.desc(), t.c.id.desc())
    )
    return [_session(r) for r in conn.execute(q)]


def delete_session(ctx: WriteContext, account_id: int, session_id: int) -> bool:
    t = web_sessions
    done = ctx.conn.execute(
        t.delete().where(t.c.id == session_id, t.c.account_id == account_id)
    ).rowcount
    return bool(done)


def delete_session_by_hash(ctx: WriteContext, token_hash: str) -> None:
    ctx.conn.execute(web_sessions.delete().where(web_sessions.c.token_hash == token_hash))


def revoke_all(ctx: WriteContext, account_id: int) -> int:
    """End every web session and pending sign-in of an account (password change)."""
    done = ctx.conn.execute(
        web_sessions.delete().where(web_sessions.c.account_id == account_id)
    ).rowcount
    ctx.conn.execute(web_sign_ins.delete().where(web_sign_ins.c.account_id == account_id))
    return int(done)


def prune_expired(ctx: WriteContext, now: int) -> None:
    ctx.conn.execute(web_sessions.delete().where(web_sessions.c.expires_at <= now))
    ctx.conn.execute(web_sign_ins.delete().where(web_sign_ins.c.expires_at <= now))


def set_registration_challenge(ctx: WriteContext, session_id: int, challenge: str | None) -> None:
    t = web_sessions
    ctx.conn.execute(
        t.update().where(t.c.id == session_id).values(registration_challenge=challenge)
    )


# -- pending sign-ins (second factor owed) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInRow:
    id: int
    account_id: int
    stay_signed_in: bool
    expires_at: int
    failures: int
    webauthn_challenge: str | None


def insert_sign_in(
    ctx: WriteContext,
    *,
    account_id: int,
    token_hash: str,
    stay_signed_in: bool,
    at: int,
    expires_at: int,
) -> None:
    ctx.conn.execute(
        web_sign_ins.insert().values(
            account_id=account_id,
            token_hash=token_hash,
            stay_signed_in=stay_signed_in,
            created_at=at,
            expires_at=expires_at,
            failures=0,
        )
    )


def find_sign_in(conn: Connection, token_hash: str, now: int) -> SignInRow | None:
    t = web_sign_ins
    row = conn.execute(
        sa.select(t).where(t.c.token_hash == token_hash, t.c.expires_at > now)
    ).one_or_none()
    if row is None:
        return None
    m = row._mapping
    return SignInRow(
        id=m["id"],
        account_id=m["account_id"],
        stay_signed_in=bool(m["stay_signed_in"]),
        expires_at=m["expires_at"],
        failures=m["failures"],
        webauthn_challenge=m["webauthn_challenge"],
    )


def set_sign_in_challenge(ctx: WriteContext, sign_in_id: int, challenge: str | None) -> None:
    t = web_sign_ins
    ctx.conn.execute(t.update().where(t.c.id == sign_in_id).values(webauthn_challenge=challenge))


def count_sign_in_failure(ctx: WriteContext, sign_in_id: int, max_failures: int) -> None:
    """One more wrong second factor; the sign-in is dropped at ``max_failures``."""
    t = web_sign_ins
    ctx.conn.execute(t.update().where(t.c.id == sign_in_id).values(failures=t.c.failures + 1))
    ctx.conn.execute(t.delete().where(t.c.id == sign_in_id, t.c.failures >= max_failures))


def delete_sign_in(ctx: WriteContext, sign_in_id: int) -> bool:
    t = web_sign_ins
    return bool(ctx.conn.execute(t.delete().where(t.c.id == sign_in_id)).rowcount)


# -- second factors -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FactorRow:
    id: int
    account_id: int
    kind: str
    created_at: int
    label: str
    last_used_at: int | None


def list_factors(conn: Connection, account_id: int) -> list[FactorRow]:
    f, w = schema.second_factors, webauthn_credentials
    q = (
        sa.select(f, w.c.label, w.c.last_used_at)
        .select_from(f.outerjoin(w, w.c.second_factor_id == f.c.id))
        .where(f.c.account_id == account_id)
        .order_by(f.c.id)
    )
    return [
        FactorRow(
            id=r.id,
            account_id=r.account_id,
            kind=r.kind,
            created_at=r.created_at,
            label=r.label or "",
            last_used_at=r.last_used_at,
        )
        for r in conn.execute(q)
    ]


def insert_factor(ctx: WriteContext, account_id: int, kind: str, at: int) -> int:
    f = schema.second_factors
    return int(
        ctx.conn.execute(
            f.insert().values(account_id=account_id, kind=kind, created_at=at).returning(f.c.id)
        ).scalar_one()
    )


def delete_factor(ctx: WriteContext, account_id: int, factor_id: int) -> bool:
    """Remove one factor (its detail row goes by cascade; deleted explicitly too, as
    SQLite enforces foreign keys only when asked). With the last one go the recovery
    codes."""
    f = schema.second_factors
    ctx.conn.execute(totp_factors.delete().where(totp_factors.c.second_factor_id == factor_id))
    done = ctx.conn.execute(
        f.delete().where(f.c.id == factor_id, f.c.account_id == account_id)
    ).rowcount
    if not done:
        return False
    ctx.conn.execute(
        webauthn_credentials.delete().where(webauthn_credentials.c.second_factor_id == factor_id)
    )
    remaining = ctx.conn.execute(
        sa.select(f.c.id).where(f.c.account_id == account_id).limit(1)
    ).first()
    if remaining is None:
        ctx.conn.execute(recovery_codes.delete().where(recovery_codes.c.account_id == account_id))
    return True


# TOTP


def get_totp(conn: Connection, account_id: int) -> tuple[int, str, int] | None:
    """(factor id, secret, last accepted step) of the account's TOTP factor."""
    f, t = schema.second_factors, totp_factors
    row = conn.execute(
        sa.select(f.c.id, t.c.secret, t.c.last_step)
        .select_from(f.join(t, t.c.second_factor_id == f.c.id))
        .where(f.c.account_id == account_id, f.c.kind == "totp")
        .limit(1)
    ).first()
    return (row.id, row.secret, row.last_step) if row is not None else None


def has_totp(conn: Connection, account_id: int) -> bool:
    f = schema.second_factors
    q = sa.select(f.c.id).where(f.c.account_id == account_id, f.c.kind == "totp").limit(1)
    return conn.execute(q).first() is not None


def advance_totp_step(ctx: WriteContext, factor_id: int, step: int) -> bool:
    """Record ``step`` as used; False when it (or a later one) already was: a replay.
    The comparison is in the WHERE clause, so two requests racing with one code cannot
    both win."""
    t = totp_factors
    done = ctx.conn.execute(
        t.update()
        .where(t.c.second_factor_id == factor_id, t.c.last_step < step)
        .values(last_step=step)
    ).rowcount
    return bool(done)


def insert_totp(ctx: WriteContext, factor_id: int, secret: str, step: int) -> None:
    ctx.conn.execute(
        totp_factors.insert().values(second_factor_id=factor_id, secret=secret, last_step=step)
    )


def put_totp_enrolment(ctx: WriteContext, account_id: int, secret: str, at: int) -> None:
    t = totp_enrolments
    ctx.conn.execute(t.delete().where(t.c.account_id == account_id))
    ctx.conn.execute(t.insert().values(account_id=account_id, secret=secret, created_at=at))


def get_totp_enrolment(conn: Connection, account_id: int, since: int) -> str | None:
    t = totp_enrolments
    return conn.execute(
        sa.select(t.c.secret).where(t.c.account_id == account_id, t.c.created_at >= since)
    ).scalar_one_or_none()


def delete_totp_enrolment(ctx: WriteContext, account_id: int) -> None:
    ctx.conn.execute(totp_enrolments.delete().where(totp_enrolments.c.account_id == account_id))


# WebAuthn


@dataclass(frozen=True, slots=True)
class CredentialRow:
    factor_id: int
    credential_id: str
    public_key: bytes
    sign_count: int
    label: str


def list_credentials(conn: Connection, account_id: int) -> list[CredentialRow]:
    f, w = schema.second_factors, webauthn_credentials
    q = (
        sa.select(w)
        .select_from(w.join(f, w.c.second_factor_id == f.c.id))
        .where(f.c.account_id == account_id)
        .order_by(w.c.second_factor_id)
    )
    return [
        CredentialRow(
            factor_id=r.second_factor_id,
            credential_id=r.credential_id,
            public_key=bytes(r.public_key),
            sign_count=r.sign_count,
            label=r.label,
        )
        for r in conn.execute(q)
    ]


def credential_exists(conn: Connection, credential_id: str) -> bool:
    w = webauthn_credentials
    q = sa.select(w.c.second_factor_id).where(w.c.credential_id == credential_id)
    return conn.execute(q).first() is not None


def insert_credential(
    ctx: WriteContext,
    *,
    factor_id: int,
    credential_id: str,
    public_key: bytes,
    sign_count: int,
    label: str,
) -> None:
    ctx.conn.execute(
        webauthn_credentials.insert().values(
            second_factor_id=factor_id,
            credential_id=credential_id,
            public_key=public_key,
            sign_count=sign_count,
            label=label,
        )
    )


def record_credential_use(
    ctx: WriteContext, factor_id: int, *, old_count: int, new_count: int, at: int
) -> bool:
    """Store the new signature counter, unless another sign-in moved it meanwhile."""
    w = webauthn_credentials
    done = ctx.conn.execute(
        w.update()
        .where(w.c.second_factor_id == factor_id, w.c.sign_count == old_count)
        .values(sign_count=new_count, last_used_at=at)
    ).rowcount
    return bool(done)


# Recovery codes


def replace_recovery_codes(
    ctx: WriteContext, account_id: int, code_hashes: list[str], at: int
) -> None:
    t = recovery_codes
    ctx.conn.execute(t.delete().where(t.c.account_id == account_id))
    ctx.conn.execute(
        t.insert(),
        [{"account_id": account_id, "code_hash": h, "created_at": at} for h in code_hashes],
    )


def count_recovery_codes(conn: Connection, account_id: int) -> int:
    t = recovery_codes
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(t)
            .where(t.c.account_id == account_id, t.c.used_at.is_(None))
        ).scalar_one()
    )


def use_recovery_code(ctx: WriteContext, account_id: int, code_hash: str, at: int) -> bool:
    t = recovery_codes
    done = ctx.conn.execute(
        t.update()
        .where(t.c.account_id == account_id, t.c.code_hash == code_hash, t.c.used_at.is_(None))
        .values(used_at=at)
    ).rowcount
    return bool(done)


# -- password resets --------------------------------------------------------------------------


def insert_reset(
    ctx: WriteContext, *, account_id: int, token_hash: str, at: int, expires_at: int
) -> None:
    """Add a link; the account's spent and expired links are dropped on the way."""
    t = password_resets
    ctx.conn.execute(
        t.delete().where(
            t.c.account_id == account_id, sa.or_(t.c.used_at.is_not(None), t.c.expires_at <= at)
        )
    )
    ctx.conn.execute(
        password_resets.insert().values(
            account_id=account_id, token_hash=token_hash, created_at=at, expires_at=expires_at
        )
    )


def use_reset(ctx: WriteContext, token_hash: str, now: int) -> int | None:
    """Mark the link used if it is valid (unused, unexpired); returns its account id.
    The other links of the account are spent too: one reset ends them all."""
    t = password_resets
    row = ctx.conn.execute(
        sa.select(t.c.id, t.c.account_id).where(
            t.c.token_hash == token_hash, t.c.used_at.is_(None), t.c.expires_at > now
        )
    ).first()
    if row is None:
        return None
    done = ctx.conn.execute(
        t.update().where(t.c.id == row.id, t.c.used_at.is_(None)).values(used_at=now)
    ).rowcount
    if not done:
        return None
    ctx.conn.execute(
        t.update()
        .where(t.c.account_id == row.account_id, t.c.used_at.is_(None))
        .values(used_at=now)
    )
    return int(row.account_id)
