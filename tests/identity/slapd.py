"""A real OpenLDAP server (Debian's slapd) for the LDAP tests, and a test CA.

Each test gets its own slapd in a temporary directory, started in the foreground
(``-d 0``: no detaching) as a child process that the fixture kills, listening on
``ldap://127.0.0.1:PORT/`` with StartTLS offered (certificate signed by a throw-away CA)
and ``ldaps://127.0.0.1:PORT2/``. The directory holds a few people loaded with slapadd.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def make_ca(
    directory: Path, name: str = "Hirondelle test CA"
) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate (``ca.pem``-like file named after ``name``) and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name.replace(' ', '-').lower()}.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path, key


def issue(
    ca_path: Path, ca_key: ec.EllipticCurvePrivateKey, cert_path: Path, key_path: Path
) -> None:
    """A server certificate for localhost and 127.0.0.1 signed by the CA."""
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


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
    ca_file, ca_key = make_ca(directory)
    (directory / "ca.pem").write_bytes(ca_file.read_bytes())
    issue(ca_file, ca_key, directory / "server.pem", directory / "server.key")
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
