"""The identity commands: ``hirondelle account app-password``, ``reset-link``,
``second-factor`` and ``hirondelle audit``.

- ``account app-password add ADDRESS --label L [--protocols imap,smtp]``: a generated
  password for one device, shown once, stored hashed; ``list`` shows label, protocols,
  creation and last use (time and address); ``revoke ADDRESS ID``.
- ``account reset-link ADDRESS``: a one-time link, valid one hour, through which the user
  sets a new password (the policy applies; every web session of the account ends).
- ``account second-factor list ADDRESS`` and ``remove ADDRESS ID``: what an administrator
  needs when a user lost a phone or a security key and the recovery codes with it.
- ``audit [--account A] [--since 1h]``: the login attempts of the audit log, newest
  first; ``audit prune`` drops rows older than ``[identity] audit_retention_days`` (the
  server also prunes on its own, hourly).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click
from rich.table import Table

from hirondelle.cli.main import console, fail, format_time, handle_errors, run
from hirondelle.identity.app_passwords import CLIENT_PROTOCOLS
from hirondelle.identity.second_factor import Factor
from hirondelle.services import Services

DURATION_RE = re.compile(r"^(\d+)\s*([smhdw]?)$")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d``, ``2w`` -> seconds."""
    match = DURATION_RE.match(text.strip().lower())
    if match is None:
        raise fail(f"invalid duration {text!r}: use a number and s, m, h, d or w, e.g. 1h")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


@click.group("app-password")
def app_password() -> None:
    """Per-device passwords for mail, calendar and contacts clients."""


@app_password.command("add")
@click.argument("address")
@click.option("--label", required=True, help='What the password is for, e.g. "Phone".')
@click.option(
    "--protocols",
    default=",".join(CLIENT_PROTOCOLS),
    show_default=True,
    help="Comma-separated protocols it may be used for.",
)
@click.pass_obj
@handle_errors
def app_password_add(data: Path, address: str, label: str, protocols: str) -> None:
    """Create an app password; it is shown once and cannot be shown again."""
    item, secret = run(data, lambda s: s.app_passwords.add(address, label, protocols.split(",")))
    console.print(
        f"app password {item.id} ({item.label}) added for {address.lower()}: "
        f"{', '.join(item.protocols)}"
    )
    console.print(f"password: {secret}  (shown once)")


@app_password.command("list")
@click.argument("address")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked passwords.")
@click.pass_obj
@handle_errors
def app_password_list(data: Path, address: str, include_revoked: bool) -> None:
    items = run(data, lambda s: s.app_passwords.list(address, include_revoked=include_revoked))
    table = Table("id", "label", "protocols", "created", "last used", "from", "state", box=None)
    for item in items:
        table.add_row(
            str(item.id),
            item.label,
            ",".join(item.protocols),
            format_time(item.created_at),
            format_time(item.last_used_at) if item.last_used_at is not None else "never",
            item.last_used_remote,
            f"revoked {format_time(item.revoked_at)}" if item.revoked_at is not None else "active",
        )
    console.print(table)


@app_password.command("revoke")
@click.argument("address")
@click.argument("app_password_id", metavar="ID", type=int)
@click.pass_obj
@handle_errors
def app_password_revoke(data: Path, address: str, app_password_id: int) -> None:
    run(data, lambda s: s.app_passwords.revoke(address, app_password_id))
    console.print(f"app password {app_password_id} of {address.lower()} revoked")


@click.command("reset-link")
@click.argument("address")
@click.pass_obj
@handle_errors
def reset_link(data: Path, address: str) -> None:
    """Print a one-time password-reset link, valid one hour, to give to the user."""
    link = run(data, lambda s: s.password_resets.create_link(address))
    console.print(f"reset link for {link.address}, valid until {format_time(link.expires_at)}:")
    # Printed alone on its line, without wrapping, so that it can be copied whole.
    click.echo(link.url)


@click.group("second-factor")
def second_factor() -> None:
    """An account's second factors (authenticator app, security keys)."""


@second_factor.command("list")
@click.argument("address")
@click.pass_obj
@handle_errors
def second_factor_list(data: Path, address: str) -> None:
    async def work(s: Services) -> tuple[list[Factor], int]:
        account = await s.accounts.get_account(address)
        factors = await s.second_factors.factors(account.id)
        return factors, await s.second_factors.remaining_recovery_codes(account.id)

    factors, codes_left = run(data, work)
    table = Table("id", "kind", "label", "created", "last used", box=None)
    for factor in factors:
        table.add_row(
            str(factor.id),
            factor.kind,
            factor.label,
            format_time(factor.created_at),
            format_time(factor.last_used_at) if factor.last_used_at is not None else "never",
        )
    console.print(table)
    console.print(f"{codes_left} recovery codes left")


@second_factor.command("remove")
@click.argument("address")
@click.argument("factor_id", metavar="ID", type=int)
@click.pass_obj
@handle_errors
def second_factor_remove(data: Path, address: str, factor_id: int) -> None:
    """Remove one second factor (with the last one go the recovery codes, and the main
    password works again on IMAP, POP3, SMTP and DAV)."""

    async def work(s: Services) -> None:
        account = await s.accounts.get_account(address)
        await s.second_factors.remove(account.id, factor_id)

    run(data, work)
    console.print(f"second factor {factor_id} of {address.lower()} removed")


@click.group(invoke_without_command=True)
@click.option("--account", "address", help="Only attempts naming this address.")
@click.option("--since", help="Only attempts within this time, e.g. 1h, 7d.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.pass_context
@handle_errors
def audit(ctx: click.Context, address: str | None, since: str | None, limit: int) -> None:
    """Show login attempts, newest first (time, protocol, remote address, client,
    address, outcome, reason)."""
    if ctx.invoked_subcommand is not None:
        return
    data: Path = ctx.obj
    since_us = (time.time_ns() // 1000 - parse_duration(since) * 1_000_000) if since else None
    entries = run(
        data, lambda s: s.authenticator.attempts(address=address, since=since_us, limit=limit)
    )
    table = Table("time", "protocol", "remote", "client", "address", "outcome", "reason", box=None)
    for entry in entries:
        table.add_row(
            format_time(entry.at),
            entry.protocol,
            entry.remote,
            entry.client_id,
            entry.address,
            entry.outcome,
            entry.reason,
        )
    console.print(table)


@audit.command("prune")
@click.pass_obj
@handle_errors
def audit_prune(data: Path) -> None:
    """Drop attempts older than [identity] audit_retention_days."""
    removed = run(data, lambda s: s.authenticator.prune_audit())
    console.print(f"{removed} audit rows removed")


def register(main: click.Group, account: click.Group) -> None:
    account.add_command(app_password)
    account.add_command(reset_link)
    account.add_command(second_factor)
    main.add_command(audit)
