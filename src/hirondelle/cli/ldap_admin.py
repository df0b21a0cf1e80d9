"""``hirondelle ldap sync``: compare the accounts created from the LDAP directory with it.

Refreshes names and aliases, disables the accounts whose entry left the directory and
re-enables those the sync disabled when they come back (:mod:`hirondelle.identity.ldap`).
The node runs the same pass every ``[ldap] sync_interval_seconds``.
"""

from __future__ import annotations

from pathlib import Path

import click

from hirondelle.cli.main import console, fail, handle_errors, run
from hirondelle.identity.ldap import DirectoryUnavailable, LdapDirectory, SyncReport, sync_accounts
from hirondelle.services import Services


@click.group("ldap")
def ldap() -> None:
    """The LDAP directory ([identity] source = "ldap")."""


@ldap.command("sync")
@click.pass_obj
@handle_errors
def ldap_sync(data: Path) -> None:
    """Refresh accounts from the directory; disable those no longer in it."""

    async def work(services: Services) -> SyncReport | str:
        directory = services.authenticator.directory
        if not isinstance(directory, LdapDirectory):
            return 'the account source is not LDAP: set [identity] source = "ldap"'
        try:
            return await sync_accounts(services.database, directory)
        except DirectoryUnavailable as error:
            return f"the directory cannot be read, nothing was changed: {error}"

    report = run(data, work)
    if isinstance(report, str):
        raise fail(report)
    console.print(
        f"{report.refreshed} refreshed, {report.disabled} disabled, {report.enabled} enabled"
    )


COMMANDS: list[click.Command] = [ldap]
