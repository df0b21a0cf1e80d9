"""The `hirondelle` command: set up, run and administer a server.

The commands and their output are a contract (administration scripts and acceptance
checks rely on them). Every error is one line on stderr, starting with ``error:``, and
a non-zero exit status; never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hirondelle import __version__
from hirondelle.errors import Refused

if TYPE_CHECKING:
    from hirondelle.config import Settings
    from hirondelle.identity.accounts import Unchanged
    from hirondelle.node import Listener, Node
    from hirondelle.services import Services

# The command imports the server's heavy parts (SQLAlchemy, Alembic, argon2, uvicorn,
# cryptography) inside the commands that use them: `hirondelle --help` and every
# administration call stay quick.

T = TypeVar("T")

# markup=False: messages carry user and config text such as "[listen]", which must
# print as written, never be read as rich markup.
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)


DEFAULT_DATA = "/var/lib/hirondelle"

# Unprivileged ports for the demo, in the spirit of the standard ones (143 -> 1143...).
DEMO_PORTS = {
    "smtp": 2525,
    "submission": 1587,
    "submissions": 1465,
    "lmtp": 2424,
    "imap": 1143,
    "imaps": 1993,
    "pop3": 1110,
    "pop3s": 1995,
    "http": 8080,
    "https": 8443,
}


def print_error(message: str) -> None:
    """The one shape of every error: ``error: message`` on stderr; further lines of a
    multi-line message are indented under it."""
    first, *rest = message.splitlines() or [""]
    text = Text("error: ", style="red") + Text(first)
    for line in rest:
        text += Text("\n       " + line)
    err_console.print(text)


class CommandError(click.ClickException):
    """One line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        print_error(self.message)


class HirondelleGroup(click.Group):
    """Click's group, but usage errors follow the house rule too: one ``error:`` line
    (click would print a usage block), exit status 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.ClickException as error:
            if isinstance(error, CommandError):
                error.show()
            else:
                print_error(error.format_message())
            sys.exit(error.exit_code)
        except click.exceptions.Abort:
            print_error("aborted")
            sys.exit(1)


def fail(message: str) -> CommandError:
    return CommandError(message)


def handle_errors(function: Callable[..., T]) -> Callable[..., T]:
    """Map domain refusals and configuration errors to one line and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except Refused as refused:
            raise fail(refused.message) from None
        except Exception as error:
            from hirondelle.config import ConfigError
            from hirondelle.node import ListenerUnavailable

            if isinstance(error, ConfigError | ListenerUnavailable):
                raise fail(str(error)) from None
            raise

    return wrapper


@contextmanager
def services_for(data: Path) -> Iterator[Services]:
    from hirondelle.config import load_settings
    from hirondelle.services import open_services

    settings = load_settings(data)
    services = open_services(settings)
    try:
        yield services
    finally:
        services.close()


def run(data: Path, work: Callable[[Services], Awaitable[T]]) -> T:
    with services_for(data) as services:
        return asyncio.run(_call(work, services))


async def _call(work: Callable[[Services], Awaitable[T]], services: Services) -> T:
    return await work(services)


def read_password_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise fail("no password on standard input")
    return password


def generate_password() -> str:
    """A random password an administrator can read out: 4 groups of 5 characters."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


def on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def format_size(size: int | None) -> str:
    if size is None:
        return "unlimited"
    for unit, factor in (
        ("P", 1 << 50),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return f"{size}B"


def format_time(microseconds: int) -> str:
    return datetime.fromtimestamp(microseconds / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_quota(text: str) -> int | None:
    from hirondelle.config import parse_size
    from hirondelle.identity.accounts import MAX_QUOTA

    if text.lower() in ("none", "unlimited", "0"):
        return None
    try:
        size = parse_size(text)
    except ValueError as error:
        raise fail(f"invalid quota {text!r}: {error}") from None
    if size > MAX_QUOTA:
        raise fail(f"invalid quota {text!r}: at most {format_size(MAX_QUOTA)}")
    return size


@click.group(cls=HirondelleGroup)
@click.version_option(__version__, prog_name="hirondelle")
@click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="HIRONDELLE_DATA",
    default=DEFAULT_DATA,
    show_default=True,
    help="Data directory (configuration, database, blobs, certificates).",
)
@click.pass_context
def main(ctx: click.Context, data: Path) -> None:
    """Hirondelle: mail, calendar and contacts for an organisation."""
    ctx.obj = data.absolute()


# -- init, serve, demo --------------------------------------------------------------


def initialise(data: Path, *, domain: str, hostname: str, listen: dict[str, str]) -> Settings:
    """Create the data directory, configuration, database, certificate and domain."""
    from hirondelle import tls
    from hirondelle.config import load_settings, render_config

    config_file = data / "hirondelle.toml"
    if config_file.exists():
        raise fail(f"{data} is already initialised ({config_file} exists)")
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    text = render_config(hostname=hostname, default_domain=domain, listen=listen)
    config_file.write_text(text, encoding="utf-8")
    try:
        settings = load_settings(data)
        tls.generate_self_signed(
            settings.certificate_path(), settings.key_path(), hostname=hostname
        )
        with services_for(data) as services:
            asyncio.run(_call(lambda s: s.accounts.add_domain(domain), services))
    except BaseException:
        config_file.unlink(missing_ok=True)
        raise
    return settings


@main.command()
@click.option("--domain", required=True, help="The first mail domain, e.g. example.org.")
@click.option("--hostname", default=None, help="This server's host name (default: mail.DOMAIN).")
@click.pass_obj
@handle_errors
def init(data: Path, domain: str, hostname: str | None) -> None:
    """Create a data directory: configuration, database, self-signed certificate, domain."""
    from hirondelle.mail.addresses import normalize_domain
    from hirondelle.node import FRONT_ENDS

    domain = normalize_domain(domain)
    hostname = hostname or f"mail.{domain}"
    from hirondelle.config import STANDARD_LISTEN

    listen = {name: STANDARD_LISTEN[name] for name in FRONT_ENDS}
    settings = initialise(data, domain=domain, hostname=hostname, listen=listen)
    console.print(f"initialised {data}")
    console.print(f"  configuration  {data / 'hirondelle.toml'}")
    console.print(
        f"  certificate    {settings.certificate_path()} (self-signed for {hostname})",
        highlight=False,
    )
    console.print(f"  domain         {domain}")
    console.print(
        f"next: hirondelle --data {data} account add postmaster@{domain}", highlight=False
    )


def announce(listener: Listener) -> None:
    # The contract: one line per listener, once it accepts connections.
    print(f"listening {listener.name} {listener.address}", flush=True)


def configure_server_log() -> None:
    """The server's own log lines (certificate reloads, LDAP and queue events) on stderr
    from INFO up; other libraries from WARNING up. Left alone if logging is configured."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("hirondelle").setLevel(logging.INFO)


async def serve_node(
    settings: Settings, *, after_start: Callable[[Node], None] | None = None
) -> None:
    from hirondelle.node import Node

    configure_server_log()
    await Node(settings).serve_until_signalled(announce=announce, after_start=after_start)


@main.command()
@click.pass_obj
@handle_errors
def serve(data: Path) -> None:
    """Start every listener of the configuration; stop on SIGTERM or SIGINT."""
    from hirondelle.config import load_settings

    settings = load_settings(data)
    asyncio.run(serve_node(settings))


def free_or_any(host: str, port: int) -> int:
    """``port`` if it can be bound now, else 0 (any free port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return 0
    return port


@main.command()
@click.option("--keep", is_flag=True, help="Keep the data directory when the demo stops.")
@handle_errors
def demo(keep: bool) -> None:
    """Start a throw-away server with a demo domain and account, on unprivileged ports."""
    from hirondelle.node import FRONT_ENDS

    data = Path(tempfile.mkdtemp(prefix="hirondelle-demo-"))
    domain = "example.test"
    host = "127.0.0.1"
    listen = {name: f"{host}:{free_or_any(host, DEMO_PORTS[name])}" for name in FRONT_ENDS}
    settings = initialise(data, domain=domain, hostname="localhost", listen=listen)
    password = generate_password()
    address = f"demo@{domain}"
    run(
        data, lambda s: s.accounts.add_account(address, password=password, display_name="Démo Demo")
    )

    def show(node: Node) -> None:
        lines = ["", "Hirondelle demo / démonstration", f"  data directory  {data}"]
        for listener in node.listeners:
            scheme = {"http": "http://", "https": "https://"}.get(listener.name, "")
            lines.append(f"  {listener.name:<15} {scheme}{listener.address}")
        lines += [
            f"  account         {address}",
            f"  password        {password}",
            "  The certificate is self-signed: accept it in your client.",
            "  Le certificat est auto-signé : acceptez-le dans votre client.",
            "  Stop with Ctrl+C. / Arrêt avec Ctrl+C.",
            "",
        ]
        print("\n".join(lines), flush=True)

    try:
        asyncio.run(serve_node(settings, after_start=show))
    finally:
        if not keep:
            import shutil

            shutil.rmtree(data, ignore_errors=True)


# -- domains --------------------------------------------------------------------------


@main.group()
def domain() -> None:
    """Mail domains served here."""


@domain.command("add")
@click.argument("name")
@click.pass_obj
@handle_errors
def domain_add(data: Path, name: str) -> None:
    created = run(data, lambda s: s.accounts.add_domain(name))
    console.print(f"domain {created.name} added")


@domain.command("list")
@click.pass_obj
@handle_errors
def domain_list(data: Path) -> None:
    domains = run(data, lambda s: s.accounts.list_domains())
    table = Table("domain", "accounts", "new accounts get", box=None)
    for item, count in domains:
        switches = ",".join(p for p, on in item.default_switches.items() if on)
        table.add_row(item.name, str(count), switches)
    console.print(table)


@domain.command("remove")
@click.argument("name")
@click.pass_obj
@handle_errors
def domain_remove(data: Path, name: str) -> None:
    run(data, lambda s: s.accounts.remove_domain(name))
    console.print(f"domain {name.lower()} removed")


@domain.command("set")
@click.argument("name")
@click.option(
    "--web-offline",
    type=click.Choice(["on", "off"]),
    required=True,
    help="Allow the webmail's offline copy for the domain's accounts (default on).",
)
@click.pass_obj
@handle_errors
def domain_set(data: Path, name: str, web_offline: str) -> None:
    """Change a domain's settings."""
    from hirondelle.identity.web_offline import WebOfflinePolicy

    allowed = web_offline == "on"
    run(data, lambda s: WebOfflinePolicy(s.database).set_domain(name, allowed=allowed))
    console.print(f"domain {name.lower()}: web offline {web_offline}", highlight=False)


# -- accounts -------------------------------------------------------------------------


@main.group()
def account() -> None:
    """Accounts: create, change, remove."""


@account.command("add")
@click.argument("address")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--quota", default=None, help="Mailbox quota, e.g. 2G, 500M (default: unlimited).")
@click.pass_obj
@handle_errors
def account_add(
    data: Path, address: str, display_name: str, password_stdin: bool, quota: str | None
) -> None:
    """Create an account with its standard mailboxes."""
    password = read_password_stdin() if password_stdin else generate_password()
    quota_bytes = parse_quota(quota) if quota is not None else None
    created = run(
        data,
        lambda s: s.accounts.add_account(
            address, password=password, display_name=display_name, quota_bytes=quota_bytes
        ),
    )
    console.print(f"account {created.address} added")
    if not password_stdin:
        console.print(f"password: {password}  (shown once)")


@account.command("list")
@click.option("--domain", "domain_name", default=None, help="Only this domain.")
@click.pass_obj
@handle_errors
def account_list(data: Path, domain_name: str | None) -> None:
    accounts = run(data, lambda s: s.accounts.list_accounts(domain=domain_name))
    table = Table("address", "name", "used", "quota", "protocols", "state", box=None)
    for item in accounts:
        table.add_row(
            item.address,
            item.display_name,
            format_size(item.used_bytes),
            format_size(item.quota_bytes),
            ",".join(p for p, on in item.switches.items() if on) or "-",
            "disabled" if item.disabled else "active",
        )
    console.print(table)


@account.command("show")
@click.argument("address")
@click.pass_obj
@handle_errors
def account_show(data: Path, address: str) -> None:
    item = run(data, lambda s: s.accounts.get_account(address))
    rows = [
        ("address", item.address),
        ("name", item.display_name),
        ("state", "disabled" if item.disabled else "active"),
        ("quota", format_size(item.quota_bytes)),
        ("used", format_size(item.used_bytes)),
        *[(protocol, "on" if on else "off") for protocol, on in item.switches.items()],
        ("save sent copy", "on" if item.save_sent_copy else "off"),
        ("created", format_time(item.created_at)),
    ]
    for key, value in rows:
        console.print(f"{key:<15} {value}")


@account.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.pass_obj
@handle_errors
def account_passwd(data: Path, address: str, password_stdin: bool) -> None:
    """Set a new password (generated and shown once without --password-stdin)."""
    password = read_password_stdin() if password_stdin else generate_password()
    item = run(data, lambda s: s.accounts.set_password(address, password))
    console.print(f"password of {item.address} changed")
    if not password_stdin:
        console.print(f"password: {password}  (shown once)")


@account.command("remove")
@click.argument("address")
@click.pass_obj
@handle_errors
def account_remove(data: Path, address: str) -> None:
    """Remove an account and all its mail."""
    run(data, lambda s: s.accounts.remove_account(address))
    console.print(f"account {address.lower()} removed")


ON_OFF = click.Choice(["on", "off"])


@account.command("set")
@click.argument("address")
@click.option("--imap", type=ON_OFF, default=None)
@click.option("--pop3", type=ON_OFF, default=None)
@click.option("--smtp", type=ON_OFF, default=None)
@click.option("--dav", type=ON_OFF, default=None)
@click.option("--web", type=ON_OFF, default=None)
@click.option("--quota", default=None, help="e.g. 2G; 'none' for unlimited.")
@click.option("--name", "display_name", default=None)
@click.option("--disabled", type=ON_OFF, default=None, help="Refuse every login.")
@click.option("--save-sent", type=ON_OFF, default=None, help="Submission saves a copy in Sent.")
@click.option(
    "--web-offline",
    type=ON_OFF,
    default=None,
    help="Allow the webmail's offline copy (default on).",
)
@click.pass_obj
@handle_errors
def account_set(
    data: Path,
    address: str,
    imap: str | None,
    pop3: str | None,
    smtp: str | None,
    dav: str | None,
    web: str | None,
    quota: str | None,
    display_name: str | None,
    disabled: str | None,
    save_sent: str | None,
    web_offline: str | None,
) -> None:
    """Switch protocols on or off, change the quota or the name."""
    switches = {
        protocol: on
        for protocol, value in (
            ("imap", imap),
            ("pop3", pop3),
            ("smtp", smtp),
            ("dav", dav),
            ("web", web),
        )
        if (on := on_off(value)) is not None
    }
    from hirondelle.identity.accounts import UNCHANGED

    quota_bytes: int | Unchanged | None = parse_quota(quota) if quota is not None else UNCHANGED
    item = run(
        data,
        lambda s: s.accounts.update_account(
            address,
            switches=switches,
            quota_bytes=quota_bytes,
            display_name=display_name,
            disabled=on_off(disabled),
            save_sent_copy=on_off(save_sent),
        ),
    )
    console.print(
        f"account {item.address}: "
        + ", ".join(f"{p} {'on' if on else 'off'}" for p, on in item.switches.items())
        + f", quota {format_size(item.quota_bytes)}",
        highlight=False,
    )
    if (offline := on_off(web_offline)) is not None:
        from hirondelle.identity.web_offline import WebOfflinePolicy

        state = run(
            data, lambda s: WebOfflinePolicy(s.database).set_account(address, allowed=offline)
        )
        console.print(
            f"account {state.address}: web offline {'on' if offline else 'off'}"
            + ("" if state.allowed == offline else " (the domain forbids it)"),
            highlight=False,
        )


# -- aliases --------------------------------------------------------------------------


@main.group()
def alias() -> None:
    """Aliases: one address to several; @domain is the domain's catch-all."""


@alias.command("add")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("targets", nargs=-1, required=True)
@click.pass_obj
@handle_errors
def alias_add(data: Path, alias_address: str, targets: tuple[str, ...]) -> None:
    item = run(data, lambda s: s.aliases.add(alias_address, list(targets)))
    console.print(f"alias {item.address} -> {', '.join(item.targets)}")


@alias.command("list")
@click.option("--domain", "domain_name", default=None)
@click.pass_obj
@handle_errors
def alias_list(data: Path, domain_name: str | None) -> None:
    aliases = run(data, lambda s: s.aliases.list(domain=domain_name))
    table = Table("alias", "targets", box=None)
    for item in aliases:
        table.add_row(item.address, ", ".join(item.targets))
    console.print(table)


@alias.command("remove")
@click.argument("alias_address", metavar="ALIAS")
@click.pass_obj
@handle_errors
def alias_remove(data: Path, alias_address: str) -> None:
    run(data, lambda s: s.aliases.remove(alias_address))
    console.print(f"alias {alias_address.lower()} removed")


# -- mail transport (queue, dkim, dns) --------------------------------------------------

from hirondelle.cli import mail_admin  # noqa: E402  (it imports the helpers above)

for command in mail_admin.COMMANDS:
    main.add_command(command)

# -- identity (app passwords, audit) ----------------------------------------------------

from hirondelle.cli import identity_admin  # noqa: E402  (it imports the helpers above)

identity_admin.register(main, account)

# -- LDAP directory --------------------------------------------------------------------

from hirondelle.cli import ldap_admin  # noqa: E402  (it imports the helpers above)

for command in ldap_admin.COMMANDS:
    main.add_command(command)
