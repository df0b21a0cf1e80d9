"""The services of one node, built once from the settings and shared by every front end.

Protocol front ends receive a :class:`Services` and call its members; none of them opens
the database or the blob store itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from hirondelle.config import Settings
from hirondelle.identity.accounts import AccountService
from hirondelle.identity.app_passwords import AppPasswordService
from hirondelle.identity.authentication import Authenticator
from hirondelle.mail.delivery import MailService
from hirondelle.mail.recipients import AliasService
from hirondelle.store import migrate
from hirondelle.store.blobs import FileBlobStore
from hirondelle.store.database import Database
from hirondelle.store.notifications import InProcessBus, NotificationBus


@dataclass
class Services:
    settings: Settings
    database: Database
    blobs: FileBlobStore
    bus: NotificationBus
    accounts: AccountService
    aliases: AliasService
    authenticator: Authenticator
    app_passwords: AppPasswordService
    mail: MailService

    def close(self) -> None:
        self.mail.close()
        self.database.close()
        self.blobs.close()


def open_services(settings: Settings, *, upgrade_schema: bool = True) -> Services:
    """Open the store (migrating it to the current schema) and build the services."""
    bus = InProcessBus()
    database = Database(
        settings.database_url(),
        bus=bus,
        sqlite_synchronous=settings.store.sqlite_synchronous,
    )
    try:
        if upgrade_schema:
            migrate.upgrade(database.write_engine)
        blobs = FileBlobStore(settings.blob_dir())
    except BaseException:
        database.close()
        raise
    return Services(
        settings=settings,
        database=database,
        blobs=blobs,
        bus=bus,
        accounts=AccountService(
            database, blobs, password_min_length=settings.identity.password_min_length
        ),
        aliases=AliasService(database),
        authenticator=Authenticator(database, settings.identity),
        app_passwords=AppPasswordService(database),
        mail=MailService(database, blobs),
    )
