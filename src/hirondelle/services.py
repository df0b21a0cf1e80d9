"""The services of one node, built once from the settings and shared by every front end.

Protocol front ends receive a :class:`Services` and call its members; none of them opens
the database or the blob store itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hirondelle.config import Settings
from hirondelle.groupware.scheduling import SchedulingService
from hirondelle.groupware.service import GroupwareService
from hirondelle.identity.accounts import AccountService
from hirondelle.identity.app_passwords import AppPasswordService
from hirondelle.identity.authentication import Authenticator
from hirondelle.identity.ldap import directory_from_settings
from hirondelle.identity.password_reset import PasswordResetService
from hirondelle.identity.second_factor import RelyingParty, SecondFactorService
from hirondelle.identity.secret_box import SecretBox
from hirondelle.identity.web_sessions import WebSessionService
from hirondelle.mail.delivery import MailService
from hirondelle.mail.dkim import DkimService
from hirondelle.mail.queue import OutboundQueue
from hirondelle.mail.recipients import AliasService
from hirondelle.mail.submission import Transport
from hirondelle.mail.vacation import VacationResponder
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
    # Submission rules (sender check, Message-ID/Date, DKIM, local delivery or queue):
    # SMTP submission, JMAP EmailSubmission, iMIP and vacation replies all send here.
    transport: Transport
    # RFC 8621 §8 VacationResponse, answered after delivery (mail.observer).
    vacation: VacationResponder
    # Calendars and contacts (CalDAV/CardDAV now, JMAP later): groupware/service.py.
    groupware: GroupwareService
    # RFC 6638 scheduling and RFC 6047 iMIP: the calendar service's hook
    # (groupware.scheduling) and delivery's (mail.calendar_mail).
    scheduling: SchedulingService
    # The webmail's sign-in: second factors, web sessions, reset links (built from the
    # members above, in __post_init__).
    second_factors: SecondFactorService = field(init=False)
    web_sessions: WebSessionService = field(init=False)
    password_resets: PasswordResetService = field(init=False)

    def __post_init__(self) -> None:
        web_url = self.settings.server.web_url()
        self.second_factors = SecondFactorService(
            self.database,
            RelyingParty.from_url(web_url),
            secret_box=SecretBox(self.settings.secret_key_path()),
        )
        self.web_sessions = WebSessionService(
            self.database, self.authenticator, self.second_factors
        )
        self.password_resets = PasswordResetService(
            self.database,
            base_url=web_url,
            password_min_length=self.settings.identity.password_min_length,
        )

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
        blobs = FileBlobStore(settings.blob_dir(), database=database)
    except BaseException:
        database.close()
        raise
    mail = MailService(database, blobs, parse_processes=settings.server.parse_processes)
    transport = Transport(
        database=database,
        mail=mail,
        queue=OutboundQueue(database, blobs),
        dkim=DkimService(database),
        hostname=settings.server.hostname,
    )
    vacation = VacationResponder(database, transport)
    mail.observer = vacation
    groupware = GroupwareService(database)
    scheduling = SchedulingService(
        database=database,
        groupware=groupware,
        transport=transport,
        hostname=settings.server.hostname,
    )
    groupware.scheduling = scheduling
    mail.calendar_mail = scheduling
    return Services(
        settings=settings,
        database=database,
        blobs=blobs,
        bus=bus,
        accounts=AccountService(
            database, blobs, password_min_length=settings.identity.password_min_length
        ),
        aliases=AliasService(database),
        authenticator=Authenticator(
            database, settings.identity, directory=directory_from_settings(settings)
        ),
        app_passwords=AppPasswordService(database),
        mail=mail,
        transport=transport,
        vacation=vacation,
        groupware=groupware,
        scheduling=scheduling,
    )
