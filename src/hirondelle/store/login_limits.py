"""The login rate limiter's shared state: failures and lockouts every node sees.

Each node keeps its own in-process limiter (:mod:`hirondelle.identity.rate_limits`) as
the fast path; these tables make the limits hold across the nodes of a cluster. A
failure is written in the same transaction as its audit row; a node reads the shared
lockouts before checking a secret, and takes over those another node decided.

``scope`` is ``"account"`` (the address as typed, normalized) or ``"address"`` (the
remote IP address). Times are microseconds since the epoch, like every store timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hirondelle.store.database import WriteContext
from hirondelle.store.schema_identity_sources import login_failures, login_lockouts

ACCOUNT = "account"
ADDRESS = "address"
MAX_KEY = 320


@dataclass(frozen=True, slots=True)
class SharedLimits:
    """The limiter's settings in store units (microseconds)."""

    account_failures: int
    address_failures: int
    window_us: int
    lockout_us: int
    max_lockout_us: int
    strike_memory_us: int


def _key(text: str) -> str:
    # Control characters (NUL, which PostgreSQL text refuses) never make a real address.
    return "".join(c if c.isprintable() else "?" for c in text[:MAX_KEY])


def locked_until(conn: Connection, account: str, remote: str, now: int) -> dict[str, int]:
    """The lockouts in force now: scope -> until (microseconds); absent when none."""
    rows = conn.execute(
        sa.select(login_lockouts.c.scope, login_lockouts.c.locked_until).where(
            sa.or_(
                sa.and_(login_lockouts.c.scope == ACCOUNT, login_lockouts.c.key == _key(account)),
                sa.and_(login_lockouts.c.scope == ADDRESS, login_lockouts.c.key == _key(remote)),
            ),
            login_lockouts.c.locked_until > now,
        )
    )
    return {scope: int(until) for scope, until in rows}


def _lock(ctx: WriteContext, scope: str, key: str, now: int, limits: SharedLimits) -> int:
    """Start a lockout of ``key``, doubling its length if one recurred within the strike
    memory; returns its end."""
    conn = ctx.conn
    row = conn.execute(
        sa.select(login_lockouts.c.strikes, login_lockouts.c.last_lockout).where(
            login_lockouts.c.scope == scope, login_lockouts.c.key == key
        )
    ).first()
    strikes = 0
    if row is not None and now - int(row.last_lockout) <= limits.strike_memory_us:
        strikes = int(row.strikes)
    until = now + min(limits.lockout_us * int(2**strikes), limits.max_lockout_us)
    values = {
        "scope": scope,
        "key": key,
        "locked_until": until,
        "strikes": min(strikes + 1, 32),
        "last_lockout": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(login_lockouts).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[login_lockouts.c.scope, login_lockouts.c.key],
            set_={
                "locked_until": statement.excluded.locked_until,
                "strikes": statement.excluded.strikes,
                "last_lockout": statement.excluded.last_lockout,
            },
        )
    )
    # As in the in-process limiter: the failures that caused the lockout are spent.
    conn.execute(
        login_failures.delete().where(login_failures.c.scope == scope, login_failures.c.key == key)
    )
    return until


def record_failure(
    ctx: WriteContext, account: str, remote: str, now: int, limits: SharedLimits
) -> dict[str, int]:
    """Count a failed login for both keys; returns the lockouts it started (scope ->
    until)."""
    conn = ctx.conn
    keys = (
        (ACCOUNT, _key(account), limits.account_failures),
        (ADDRESS, _key(remote), limits.address_failures),
    )
    conn.execute(
        login_failures.insert(), [{"scope": scope, "key": key, "at": now} for scope, key, _ in keys]
    )
    started: dict[str, int] = {}
    for scope, key, threshold in keys:
        count = conn.execute(
            sa.select(sa.func.count()).where(
                login_failures.c.scope == scope,
                login_failures.c.key == key,
                login_failures.c.at > now - limits.window_us,
            )
        ).scalar_one()
        if count >= threshold:
            started[scope] = _lock(ctx, scope, key, now, limits)
    return started


def record_success(ctx: WriteContext, account: str) -> None:
    """A correct login clears the account's failures (not the address's: one valid
    account must not let an address reset its count and go on guessing others)."""
    ctx.conn.execute(
        login_failures.delete().where(
            login_failures.c.scope == ACCOUNT, login_failures.c.key == _key(account)
        )
    )


def prune(ctx: WriteContext, now: int, limits: SharedLimits) -> int:
    """Drop failures older than the window and lockouts over and forgotten."""
    removed = ctx.conn.execute(
        login_failures.delete().where(login_failures.c.at <= now - limits.window_us)
    ).rowcount
    removed += ctx.conn.execute(
        login_lockouts.delete().where(
            login_lockouts.c.locked_until <= now,
            login_lockouts.c.last_lockout < now - limits.strike_memory_us,
        )
    ).rowcount
    return int(removed or 0)
