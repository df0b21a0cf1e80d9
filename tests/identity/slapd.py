"""A real OpenLDAP server (Debian's slapd) for the LDAP tests.

Each test gets its own slapd in a temporary directory, started in the foreground
(``-d 0``: no detaching) as a child process that the fixture kills, listening on
``ldap://127.0.0.1:PORT/`` with StartTLS offered (certificate signed by a throw-away CA)
and ``ldaps://127.0.0.1:PORT2/``. The directory holds a few people loaded with slapadd.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.certificates import LocalCA

SUFFIX = "dc=example,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root secret"
SERVICE_DN = f"cn=hirondelle,{SUFFIX}"
SERVICE_PASSWORD = "service secret"
CAROL_PASSWORD = "carol's directory password"
DAVE_PASSWORD = "dave's directory password"

LDIF = f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: hirondelle
userPassword: {SERVICE_PASSWORD}

dn: uid=carol,{PEOPLE}
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: carol
cn: Carol Dupont
sn: Dupont
displayName: Carol Dupont
mail: carol@example.test
mailLocalAddress: c.dupont@example.test
mailLocalAddress: carol@elsewhere.invalid
userPassword: {CAROL_PASSWORD}

dn: uid=dave,{PEOPLE}
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: Martin
displayName: Dave Martin
mail: dave@example.test
userPassword: {DAVE_PASSWORD}
"""

CONFIG = """include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/misc.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root}"
rootpw "{root_password}"
directory {dir}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by * none
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Slapd:
    directory: Path
    port: int
    ldaps_port: int
    ca_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://localhost:{self.ldaps_port}"

    def modify(self, *arguments: str, ldif: str) -> None:
        """Run ``ldapmodify`` (or ``ldapdelete`` with ``-delete``) as the root DN."""
        subprocess.run(
            ["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, *arguments],
            input=ldif.encode(),
            check=True,
            capture_output=True,
            timeout=30,
        )

    def delete(self, dn: str) -> None:
        subprocess.run(
            ["ldapdelete", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, dn],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def add(self, ldif: str) -> None:
        self.modify("-a", ldif=ldif)


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("slapd did not start within 15 s")


def start_slapd(directory: Path) -> Slapd:
    if shutil.which("slapd") is None and not Path("/usr/sbin/slapd").exists():
        pytest.skip("slapd is not installed (apt-get install slapd ldap-utils)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "db").mkdir()
    authority = LocalCA.create(directory)
    ca_file = authority.cafile
    authority.issue(["localhost", "127.0.0.1"], directory / "server.pem", directory / "server.key")
    config = directory / "slapd.conf"
    config.write_text(
        CONFIG.format(dir=directory, suffix=SUFFIX, root=ROOT_DN, root_password=ROOT_PASSWORD)
    )
    (directory / "data.ldif").write_text(LDIF)
    subprocess.run(
        ["/usr/sbin/slapadd", "-q", "-f", str(config), "-l", str(directory / "data.ldif")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port, ldaps_port = _free_port(), _free_port()
    log = directory / "slapd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                "/usr/sbin/slapd",
                "-d",
                "0",
                "-h",
                f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/",
                "-f",
                str(config),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, process, log)
        _wait_for(ldaps_port, process, log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return Slapd(directory, port, ldaps_port, ca_file, process)


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = start_slapd(tmp_path / "slapd")
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
