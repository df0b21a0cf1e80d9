"""DKIM keys and signatures: RFC 6376 (rsa-sha256) and RFC 8463 (ed25519-sha256).

Every domain gets two selectors, one per algorithm, and outgoing mail carries both
signatures: receivers that know Ed25519 use the short key, the others the RSA one
(RFC 8463 §1 recommends exactly this dual signing during the transition).

Keys live in SQL (``store/queue.py``), so every node of a cluster signs with the same
keys; signing runs on a worker thread (RSA is CPU work).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from hirondelle.errors import Reason, Refused
from hirondelle.mail.addresses import normalize_domain
from hirondelle.store import queue as queue_store
from hirondelle.store.database import Database, WriteContext
from hirondelle.store.queue import DkimKey

RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"

# The headers signed (RFC 6376 §5.4.1's recommended set); From is listed twice so that
# a second From added in transit breaks the signature (§8.15 "oversigning").
SIGNED_HEADERS = (
    b"from",
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    algorithm: str
    private_key: str
    public_key: str


def generate_key(algorithm: str) -> GeneratedKey:
    """A new key pair, private key in the format dkimpy reads, public key as base64 for
    the ``p=`` tag of the DNS record (RFC 6376 §3.6.1, RFC 8463 §4)."""
    if algorithm == RSA:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode("ascii")
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return GeneratedKey(RSA, pem, base64.b64encode(der).decode("ascii"))
    if algorithm == ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        raw_public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return GeneratedKey(
            ED25519,
            base64.b64encode(seed).decode("ascii"),
            base64.b64encode(raw_public).decode("ascii"),
        )
    raise Refused(Reason.INVALID, f"unknown DKIM algorithm {algorithm!r}")


def dns_record(key: DkimKey) -> tuple[str, str]:
    """(name, TXT value) of the key's DNS record (RFC 6376 §3.6.2.1)."""
    kind = "rsa" if key.algorithm == RSA else "ed25519"
    return f"{key.selector}._domainkey.{key.domain}", f"v=DKIM1; k={kind}; p={key.public_key}"


def signature_header(raw: bytes, key: DkimKey) -> bytes:
    """The ``DKIM-Signature:`` header line(s) for ``raw``, CRLF-terminated."""
    signature: bytes = dkim.sign(
        raw,
        key.selector.encode("ascii"),
        key.domain.encode("ascii"),
        key.private_key.encode("ascii"),
        include_headers=list(SIGNED_HEADERS),
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=key.algorithm.encode("ascii"),
        linesep=b"\r\n",
    )
    return signature


def sign(raw: bytes, keys: list[DkimKey]) -> bytes:
    """``raw`` with one signature per key prepended (Ed25519 first, then RSA)."""
    ordered = sorted(keys, key=lambda k: k.algorithm != ED25519)
    headers = b"".join(signature_header(raw, key) for key in ordered)
    return headers + raw


class DkimService:
    """Key administration (``hirondelle dkim``) and signing for submission."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def generate(self, domain: str, *, stamp: str) -> list[DkimKey]:
        """Two new selectors for ``domain``: ``{stamp}r`` (RSA 2048) and ``{stamp}e``
        (Ed25519). ``stamp`` (e.g. ``202611``) lets keys be rotated by date."""
        name = normalize_domain(domain)
        loop = asyncio.get_running_loop()
        rsa_key = await loop.run_in_executor(None, generate_key, RSA)
        ed_key = generate_key(ED25519)

        def write(ctx: WriteContext) -> list[DkimKey]:
            return [
                queue_store.add_dkim_key(
                    ctx,
                    domain=name,
                    selector=f"{stamp}{suffix}",
                    algorithm=key.algorithm,
                    private_key=key.private_key,
                    public_key=key.public_key,
                )
                for suffix, key in (("r", rsa_key), ("e", ed_key))
            ]

        return await self.database.write(write)

    async def keys(self, domain: str) -> list[DkimKey]:
        name = normalize_domain(domain)
        return await self.database.read(lambda conn: queue_store.dkim_keys_of(conn, name))

    async def sign(self, raw: bytes, domain: str) -> bytes:
        """``raw`` signed with the newest key of each algorithm of ``domain``; unchanged
        when the domain has no key."""
        keys = await self.keys(domain)
        if not keys:
            return raw
        newest: dict[str, DkimKey] = {}
        for key in sorted(keys, key=lambda k: k.created_at):
            newest[key.algorithm] = key
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, sign, raw, list(newest.values()))
