"""Secrets the server must read back, kept encrypted in the store: TOTP seeds (RFC 6238
needs the shared secret itself, so it cannot be hashed like a password).

AES-256-GCM (NIST SP 800-38D) through the ``cryptography`` package, with a key that is
never in the database: a file, by default ``DATA/secret.key`` (``[identity]
secret_key_file``), created at first use with mode 0600. A dump or backup of the database
alone (PostgreSQL, or a copy of the SQLite file) then gives no second factor away.

A sealed value is text: ``v1:<key id>:<base64url(nonce || ciphertext || tag)>``.

- The nonce is 96 random bits per sealing (SP 800-38D §8.2.2); far fewer than 2^32
  values are ever sealed under one key.
- The associated data names what the value is and whose (``totp`` and the account id):
  a sealed secret copied onto another account's row does not open.
- The key id (32 bits of HMAC-SHA256 of the key) tells a wrong key file (a node of a
  cluster with a key of its own, a restored database without its key) from tampering,
  and picks the key to open with: the current one, or the previous one during a
  rotation (``<key file>.previous``, see :class:`SecretBox`).
- Values that are not sealed (written before secrets were encrypted: base32 never
  contains ``:``) are read as they are, and only if they are base32;
  :func:`hirondelle.identity.housekeeping.seal_secrets` seals them at each node start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
# What a secret stored before sealing looks like (RFC 4648 base32, as pyotp makes them).
CLEAR_SECRET = re.compile(r"[A-Z2-7]{16,64}=*")


class SecretKeyError(Exception):
    """The key file cannot be read or made, or holds no key; the message says which."""


class SealedSecretError(Exception):
    """A sealed value does not open: another key sealed it, or it was altered."""


def is_sealed(stored: str) -> bool:
    return stored.startswith(VERSION + ":")


def _associated_data(purpose: str, owner: int) -> bytes:
    return f"hirondelle\x00{purpose}\x00{owner}".encode()


def key_id(key: bytes) -> str:
    return hmac.new(key, b"hirondelle secret key id", hashlib.sha256).hexdigest()[:8]


def _parse_key(text: str, path: Path) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"{path} must hold {KEY_BYTES} bytes in base64 (the key that encrypts "
            "second-factor secrets); it holds something else"
        )
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new random one, written there with mode 0600, when the
    file does not exist. Blocking: call it from a worker thread.

    Creation is atomic (a complete temporary file, fsynced, then hard-linked to the final
    name, which fails if it exists), so two processes starting together agree on one key
    and nobody ever reads half a key."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    key = secrets.token_bytes(KEY_BYTES)
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(base64.b64encode(key).decode("ascii") + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_key(path)  # made by another process meanwhile: theirs wins
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        raise SecretKeyError(f"cannot create the secret key file {path}: {error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    log.info("created the secret key file %s (back it up apart from the database)", path)
    return key


def _read_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as error:
        raise SecretKeyError(f"cannot read the secret key file {path}: {error}") from error
    if mode & 0o077:
        log.warning(
            "the secret key file %s can be read by other users (mode %o): chmod 600 it",
            path,
            mode & 0o777,
        )
    return _parse_key(text, path)


class SecretBox:
    """Seals with the key of one key file; opens with it or with the previous key.

    Rotation: rename the key file to ``<name>.previous`` and restart the nodes (with the
    same new key file on each: copy it from the first). Values sealed under the previous
    key still open, and :func:`hirondelle.identity.housekeeping.seal_secrets` seals
    them again under the new key at start; then the previous file can go."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._key: bytes | None = None
        # Key id -> key, for opening: the current key and the previous one, if any.
        self._keys: dict[str, bytes] = {}
        self._loading: asyncio.Lock | None = None

    @property
    def previous_key_path(self) -> Path:
        return self.key_path.with_name(self.key_path.name + ".previous")

    @classmethod
    def with_key(
        cls, key: bytes, key_path: Path = Path("(given)"), *, previous: bytes | None = None
    ) -> SecretBox:
        box = cls(key_path)
        box._key = key
        box._keys = {key_id(k): k for k in (previous, key) if k is not None}
        return box

    def _load(self) -> tuple[bytes, dict[str, bytes]]:
        key = load_or_create_key(self.key_path)
        keys = {key_id(key): key}
        try:
            previous = _read_key(self.previous_key_path)
        except FileNotFoundError:
            return key, keys
        return key, {key_id(previous): previous, **keys}

    async def key(self) -> bytes:
        """The current key, read (or made) on a worker thread at first use, with the
        previous one if its file exists."""
        if self._key is not None:
            return self._key
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            key = self._key
            if key is None:
                key, self._keys = await asyncio.to_thread(self._load)
                self._key = key
            return key

    async def current_prefix(self) -> str:
        """What values sealed under the current key start with."""
        return f"{VERSION}:{key_id(await self.key())}:"

    async def seal(self, secret: str, *, purpose: str, owner: int) -> str:
        key = await self.key()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(
            nonce, secret.encode("utf-8"), _associated_data(purpose, owner)
        )
        payload = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{VERSION}:{key_id(key)}:{payload}"

    async def open(self, stored: str, *, purpose: str, owner: int) -> str:
        """The secret in ``stored``; a base32 secret stored in clear is returned as it is."""
        if not is_sealed(stored):
            if CLEAR_SECRET.fullmatch(stored):
                return stored
            raise SealedSecretError(
                f"a {purpose} secret of {owner} is neither sealed nor base32: altered"
            )
        current = await self.key()
        _version, stored_id, payload = [*stored.split(":", 2), "", ""][:3]
        key = self._keys.get(stored_id)
        if key is None:
            raise SealedSecretError(
                f"sealed with the key {stored_id}, but {self.key_path} holds the key "
                f"{key_id(current)}: every node must use the same key file"
            )
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            if len(raw) <= NONCE_BYTES:
                raise ValueError("too short")
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(purpose, owner)
            )
            return plain.decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error) as error:
            raise SealedSecretError(
                f"a sealed {purpose} secret of {owner} does not open: altered or misplaced"
            ) from error
