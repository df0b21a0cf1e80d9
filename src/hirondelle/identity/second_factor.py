"""Second factors for the web: TOTP, WebAuthn credentials (passkeys, security keys) and
one-time recovery codes (DESIGN.md "Identity and security", issue 6 item 4).

- TOTP, RFC 6238 (HOTP of RFC 4226 over 30-second steps, SHA-1, 6 digits: what every
  authenticator app does). Enrolment gives a secret, its ``otpauth://`` URI and a QR code
  as SVG; a first correct code confirms it. A code is accepted within one step either
  side (RFC 6238 §5.2's recommended network delay allowance) and only once: the last
  accepted step is stored, and a code of that step or an earlier one is a replay
  (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP").
- WebAuthn Level 2 (W3C), through the ``webauthn`` package: registration and
  authentication ceremonies, attestation "none" (an organisation's server has no use
  for vendor attestation), several labelled credentials per account, the signature
  counter checked (§6.1.1: a counter that does not grow means a cloned authenticator)
  and stored with a compare-and-set, so two sign-ins cannot both use one counter value.
- Recovery codes: ten, shown once when the first second factor is set, each usable once;
  79 random bits each, so their SHA-256 is all that is stored.

The TOTP secret is stored sealed with AES-256-GCM under a key kept outside the database
(:mod:`hirondelle.identity.secret_box`; docs/security.md "Second factors"), and it is
never logged. A secret that does not open (another key file, an altered row) makes the
code fail, not the request; the log says why. The relying party (WebAuthn's RP ID
and origin) comes from ``[server] public_url``, or ``https://[server] hostname``; it is
never taken from the request's Host header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyotp
import segno
from sqlalchemy.engine import Connection
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from hirondelle.errors import Reason, Refused
from hirondelle.identity.app_passwords import generate as generate_readable_code
from hirondelle.identity.secret_box import SealedSecretError, SecretBox, SecretKeyError
from hirondelle.store import web_sessions as store
from hirondelle.store.database import Database, WriteContext, now_us
from hirondelle.store.directory import Account

log = logging.getLogger(__name__)

ISSUER = "Hirondelle"
# What sealed TOTP secrets are bound to (with the account id): secret_box's associated data.
TOTP_PURPOSE = "totp"
TOTP_STEP_SECONDS = 30
TOTP_WINDOW = 1  # steps accepted either side of now
# An enrolment not confirmed within this long must be started again.
ENROLMENT_SECONDS = 15 * 60
RECOVERY_CODES = 10
MAX_LABEL = 100
MAX_CREDENTIALS = 20
# How long a WebAuthn registration challenge is accepted (the browser's own timeout is
# one minute; people may need to find their key).
CHALLENGE_SECONDS = 5 * 60


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """WebAuthn's relying party: the RP ID (a host name) and the origin browsers sign."""

    id: str
    origin: str
    name: str = ISSUER

    @classmethod
    def from_url(cls, url: str) -> RelyingParty:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return cls(id=host, origin=f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class Factor:
    """One second factor of an account, as the settings screen and the CLI list them."""

    id: int
    kind: str  # "totp" or "webauthn"
    label: str
    created_at: int
    last_used_at: int | None


def hash_code(code: str) -> str:
    """Recovery codes are compared without case, spaces or dashes (people retype them)."""
    normalized = "".join(c for c in code.lower() if c.isalnum())
    return hashlib.sha256(b"recovery\x00" + normalized.encode()).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _user_handle(account_id: int) -> bytes:
    """WebAuthn user.id: opaque, no personal data (§14.6.1), stable per account."""
    return account_id.to_bytes(8, "big")


def totp_code_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code ``code`` is, within the window around ``now``."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now) // TOTP_STEP_SECONDS
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class SecondFactorService:
    def __init__(
        self,
        database: Database,
        relying_party: RelyingParty,
        *,
        secret_box: SecretBox,
        clock: Any = time.time,
    ) -> None:
        self.database = database
        self.relying_party = relying_party
        self.secret_box = secret_box
        self.clock = clock

    # -- listing and removal ---------------------------------------------------------------

    async def factors(self, account_id: int) -> list[Factor]:
        rows = await self.database.read(lambda conn: store.list_factors(conn, account_id))
        return [
            Factor(
                id=r.id,
                kind=r.kind,
                label=r.label or ("Authenticator app" if r.kind == "totp" else r.kind),
                created_at=r.created_at,
                last_used_at=r.last_used_at,
            )
            for r in rows
        ]

    async def methods(self, account_id: int) -> list[str]:
        """What a pending sign-in may use: "totp", "webauthn", "recovery"."""

        def read(conn: Connection) -> list[str]:
            kinds = {r.kind for r in store.list_factors(conn, account_id)}
            found: list[str] = [k for k in ("totp", "webauthn") if k in kinds]
            if store.count_recovery_codes(conn, account_id):
                found.append("recovery")
            return found

        return await self.database.read(read)

    async def remove(self, account_id: int, factor_id: int) -> None:
        def write(ctx: WriteContext) -> None:
            if not store.delete_factor(ctx, account_id, factor_id):
                raise Refused(Reason.NOT_FOUND, f"no second factor {factor_id}")

        await self.database.write(write)

    async def remaining_recovery_codes(self, account_id: int) -> int:
        return await self.database.read(lambda conn: store.count_recovery_codes(conn, account_id))

    # -- TOTP -----------------------------------------------------------------------------------

    async def begin_totp(self, account: Account) -> TotpEnrolment:
        """A new secret to scan; it becomes a factor only once confirmed with a code."""
        if await self.database.read(lambda conn: store.has_totp(conn, account.id)):
            raise Refused(
                Reason.ALREADY_EXISTS,
                "an authenticator app is already set: remove it first / une application "
                "d'authentification est déjà configurée : supprimez-la d'abord",
            )
        secret = pyotp.random_base32()
        sealed = await self.secret_box.seal(secret, purpose=TOTP_PURPOSE, owner=account.id)
        at = now_us()
        await self.database.write(lambda ctx: store.put_totp_enrolment(ctx, account.id, sealed, at))
        uri = pyotp.TOTP(secret).provisioning_uri(name=account.address, issuer_name=ISSUER)
        svg = segno.make(uri, error="m").svg_inline(scale=4)
        return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)

    async def confirm_totp(self, account: Account, code: str) -> list[str]:
        """Activate the pending enrolment with a first code; returns the recovery codes
        (new ones, replacing any earlier set), shown once."""
        now = self.clock()
        since = now_us() - ENROLMENT_SECONDS * 1_000_000
        stored = await self.database.read(
            lambda conn: store.get_totp_enrolment(conn, account.id, since)
        )
        secret = await self._open(stored, account.id) if stored is not None else None
        if secret is None:
            raise Refused(
                Reason.NOT_FOUND,
                "no authenticator app being set up: start again / aucune application en "
                "cours de configuration : recommencez",
            )
        step = totp_code_step(secret, code, now)
        if step is None:
            raise Refused(Reason.INVALID, "wrong code / code incorrect")
        codes = [generate_readable_code() for _ in range(RECOVERY_CODES)]
        sealed = await self.secret_box.seal(secret, purpose=TOTP_PURPOSE, owner=account.id)
        at = now_us()

        def write(ctx: WriteContext) -> None:
            if store.has_totp(ctx.conn, account.id):
                raise Refused(Reason.ALREADY_EXISTS, "an authenticator app is already set")
            factor_id = store.insert_factor(ctx, account.id, "totp", at)
            store.insert_totp(ctx, factor_id, sealed, step)
            store.delete_totp_enrolment(ctx, account.id)
            store.replace_recovery_codes(ctx, account.id, [hash_code(c) for c in codes], at)

        await self.database.write(write)
        return codes

    async def verify_totp(self, account_id: int, code: str) -> bool:
        found = await self.database.read(lambda conn: store.get_totp(conn, account_id))
        if found is None:
            return False
        factor_id, stored, _last = found
        secret = await self._open(stored, account_id)
        if secret is None:
            return False
        step = totp_code_step(secret, code, self.clock())
        if step is None:
            return False
        return await self.database.write(lambda ctx: store.advance_totp_step(ctx, factor_id, step))

    async def _open(self, stored: str, account_id: int) -> str | None:
        """The TOTP secret in a stored value; None (logged) when it does not open, so
        that the user can still sign in with a recovery code or a security key."""
        try:
            return await self.secret_box.open(stored, purpose=TOTP_PURPOSE, owner=account_id)
        except (SealedSecretError, SecretKeyError) as error:
            log.error("the TOTP secret of account %d cannot be read: %s", account_id, error)
            return None

    # -- recovery codes -------------------------------------------------------------------------

    async def use_recovery_code(self, account_id: int, code: str) -> bool:
        if len(code) > 64:
            return False
        digest, at = hash_code(code), now_us()
        return await self.database.write(
            lambda ctx: store.use_recovery_code(ctx, account_id, digest, at)
        )

    async def new_recovery_codes(self, account_id: int) -> list[str]:
        """Replace the recovery codes (the old ones stop working)."""
        codes = [generate_readable_code() for _ in range(RECOVERY_CODES)]
        at = now_us()
        await self.database.write(
            lambda ctx: store.replace_recovery_codes(
                ctx, account_id, [hash_code(c) for c in codes], at
            )
        )
        return codes

    # -- WebAuthn registration ------------------------------------------------------------------

    async def webauthn_registration_options(self, account: Account, session_id: int) -> str:
        """PublicKeyCredentialCreationOptions as JSON; the challenge is kept on the web
        session that asked, for :meth:`register_webauthn`."""
        existing = await self.database.read(lambda conn: store.list_credentials(conn, account.id))
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=self.relying_party.id,
            rp_name=self.relying_party.name,
            user_name=account.address,
            user_id=_user_handle(account.id),
            user_display_name=account.display_name or account.address,
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=_unb64url(c.credential_id)) for c in existing
            ],
        )
        # The challenge and when it stops being accepted ("." is not base64url).
        encoded = f"{_b64url(challenge)}.{now_us() + CHALLENGE_SECONDS * 1_000_000}"
        await self.database.write(
            lambda ctx: store.set_registration_challenge(ctx, session_id, encoded)
        )
        return options_to_json(options)

    async def register_webauthn(
        self,
        account: Account,
        session_id: int,
        challenge: str | None,
        credential: object,
        label: str,
    ) -> tuple[Factor, list[str]]:
        """Verify a registration response and keep the credential. Returns the factor and,
        when it is the account's first second factor, its new recovery codes."""
        label = label.strip()
        if not label or len(label) > MAX_LABEL or not label.isprintable():
            raise Refused(
                Reason.INVALID,
                f"the label must be 1 to {MAX_LABEL} printable characters / le nom doit "
                f"avoir de 1 à {MAX_LABEL} caractères imprimables",
            )
        if challenge is None:
            raise Refused(Reason.INVALID, "no registration in progress / aucun enregistrement")
        # The challenge is spent whatever the outcome.
        await self.database.write(
            lambda ctx: store.set_registration_challenge(ctx, session_id, None)
        )
        expected, _, until = challenge.partition(".")
        if not until.isdigit() or int(until) <= now_us():
            raise Refused(
                Reason.INVALID, "the registration took too long: start again / recommencez"
            )
        if not isinstance(credential, dict):
            raise Refused(Reason.INVALID, "invalid credential / identifiant invalide")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=_unb64url(expected),
                expected_rp_id=self.relying_party.id,
                expected_origin=self.relying_party.origin,
            )
        except Exception as error:  # the library raises many types for hostile input
            log.info("WebAuthn registration refused for account %s: %s", account.id, error)
            raise Refused(
                Reason.INVALID, "the security key's answer was refused / réponse refusée"
            ) from None
        credential_id = _b64url(verified.credential_id)
        at = now_us()
        codes = [generate_readable_code() for _ in range(RECOVERY_CODES)]

        def write(ctx: WriteContext) -> tuple[int, bool]:
            if store.credential_exists(ctx.conn, credential_id):
                raise Refused(Reason.ALREADY_EXISTS, "this key is already registered")
            if len(store.list_credentials(ctx.conn, account.id)) >= MAX_CREDENTIALS:
                raise Refused(Reason.INVALID, f"at most {MAX_CREDENTIALS} security keys")
            first = not store.list_factors(ctx.conn, account.id)
            factor_id = store.insert_factor(ctx, account.id, "webauthn", at)
            store.insert_credential(
                ctx,
                factor_id=factor_id,
                credential_id=credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                label=label,
            )
            if first:
                store.replace_recovery_codes(ctx, account.id, [hash_code(c) for c in codes], at)
            return factor_id, first

        factor_id, first = await self.database.write(write)
        factor = Factor(
            id=factor_id, kind="webauthn", label=label, created_at=at, last_used_at=None
        )
        return factor, codes if first else []

    # -- WebAuthn authentication ----------------------------------------------------------------

    async def webauthn_authentication_options(self, account_id: int) -> tuple[str, str]:
        """(PublicKeyCredentialRequestOptions JSON, the challenge to keep)."""
        existing = await self.database.read(lambda conn: store.list_credentials(conn, account_id))
        if not existing:
            raise Refused(Reason.NOT_FOUND, "no security key registered")
        challenge = secrets.token_bytes(32)
        options = generate_authentication_options(
            rp_id=self.relying_party.id,
            challenge=challenge,
            allow_credentials=[
                PublicKeyCredentialDescriptor(id=_unb64url(c.credential_id)) for c in existing
            ],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return options_to_json(options), _b64url(challenge)

    async def verify_webauthn(self, account_id: int, challenge: str, credential: object) -> bool:
        """Check an assertion against the account's credentials and the challenge given
        to this sign-in; on success the signature counter moves on."""
        if not isinstance(credential, dict):
            return False
        raw_id = credential.get("id") or credential.get("rawId")
        if not isinstance(raw_id, str):
            return False
        existing = await self.database.read(lambda conn: store.list_credentials(conn, account_id))
        # Credential ids are not secret: a plain comparison (compare_digest refuses
        # non-ASCII text, which a hostile client may send).
        match = next((c for c in existing if c.credential_id == raw_id), None)
        if match is None:
            return False
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=_unb64url(challenge),
                expected_rp_id=self.relying_party.id,
                expected_origin=self.relying_party.origin,
                credential_public_key=match.public_key,
                credential_current_sign_count=match.sign_count,
            )
        except Exception as error:  # hostile input: any failure is a refusal
            log.info("WebAuthn assertion refused for account %s: %s", account_id, error)
            return False
        at = now_us()
        return await self.database.write(
            lambda ctx: store.record_credential_use(
                ctx,
                match.factor_id,
                old_count=match.sign_count,
                new_count=verified.new_sign_count,
                at=at,
            )
        )
