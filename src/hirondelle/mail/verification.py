"""Who really sent a message: SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489), and the
Authentication-Results header that records the verdicts (RFC 8601).

The checks use pyspf, dkimpy and authheaders, which are synchronous and do their own
DNS lookups; they run on a worker thread, never on the event loop, and every lookup goes
through one :class:`DnsLookup` given to the :class:`Verifier` (the system resolver in
production, a table in tests), not through each library's module-level resolver.

A DMARC failure under ``p=reject`` is refused by the MX; under ``p=quarantine`` the
message is filed into the recipients' Junk mailboxes (``mail/submission.py``), and the
DMARC result in Authentication-Results says so in its ``reason`` (RFC 8601 §2.2).

ARC (RFC 8617): the chain of a message that arrives with ARC header fields is
validated with dkimpy (§5.2) and its status recorded as ``arc=pass|fail|none`` (§6);
it is only recorded: it does not override a DMARC failure, and Hirondelle does not add
ARC sets (sealing) when it forwards.

Deliberate limits: DMARC reports (rua/ruf) are not sent; the ``pct`` sampling of
RFC 7489 §6.6.4 is left to authheaders.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import dkim
import dns.exception
import dns.resolver
import dns.reversename
import spf
from authheaders import check_dmarc
from authres import AuthenticationResultsHeader, DKIMAuthenticationResult, SPFAuthenticationResult
from authres.arc import ARCAuthenticationResult
from authres.core import QuotableValue

log = logging.getLogger(__name__)

# RFC 7208 §4.6.4: at most 10 DNS-querying terms; pyspf enforces it. A whole check is
# also bounded in time so a slow DNS server cannot hold a session forever.
LOOKUP_TIMEOUT = 10.0


class DnsLookup(Protocol):
    """The DNS questions SPF, DKIM and DMARC ask. Called from worker threads.

    Each method returns an empty list when the name has no such record; a server
    failure raises :class:`dns.exception.DNSException` (a temporary error).
    """

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record of ``name``, its strings joined."""

    def addresses(self, name: str, family: str) -> list[str]:
        """``family`` is ``"A"`` or ``"AAAA"``."""

    def mx(self, name: str) -> list[tuple[int, str]]: ...

    def ptr(self, address: str) -> list[str]: ...


class SystemDns:
    """:class:`DnsLookup` through dnspython and the system's resolver configuration."""

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def _answer(self, name: str, kind: str) -> Any:
        try:
            return dns.resolver.resolve(name, kind, lifetime=self.timeout, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []

    def txt(self, name: str) -> list[bytes]:
        return [b"".join(r.strings) for r in self._answer(name, "TXT")]

    def addresses(self, name: str, family: str) -> list[str]:
        return [r.address for r in self._answer(name, family)]

    def mx(self, name: str) -> list[tuple[int, str]]:
        return [(r.preference, r.exchange.to_text(True)) for r in self._answer(name, "MX")]

    def ptr(self, address: str) -> list[str]:
        name = dns.reversename.from_address(address).to_text()
        return [r.target.to_text(True) for r in self._answer(name, "PTR")]


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf's evaluator with its DNS questions sent to our :class:`DnsLookup`."""

    def __init__(self, lookup: DnsLookup, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lookup = lookup

    def dns(
        self, name: str, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        name = str(name).rstrip(".").lower()
        try:
            if qtype == "TXT":
                result: list[Any] = [(record,) for record in self._lookup.txt(name)]
            elif qtype in ("A", "AAAA"):
                result = list(self._lookup.addresses(name, qtype))
            elif qtype == "MX":
                result = list(self._lookup.mx(name))
            elif qtype == "PTR":
                result = list(self._lookup.ptr(name))
            else:
                result = []
        except dns.exception.DNSException as error:
            raise spf.TempError(f"DNS {error}") from None
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of the three checks, and the header that records them."""

    spf: str
    dkim: str
    dmarc: str
    dmarc_policy: str
    from_domain: str
    header: str  # the Authentication-Results field value, without the name

    @property
    def dmarc_rejects(self) -> bool:
        """RFC 7489 §6.6.2: the domain owner asks that failing mail be rejected."""
        return self.dmarc == "fail" and self.dmarc_policy == "reject"

    @property
    def dmarc_quarantines(self) -> bool:
        """RFC 7489 §6.3 ``p=quarantine``: failing mail is to be treated as suspicious
        (filed into Junk)."""
        return self.dmarc == "fail" and self.dmarc_policy == "quarantine"


_AR_NAME = re.compile(r"^\s*Authentication-Results:\s*", re.IGNORECASE)


class Verifier:
    """Runs SPF, DKIM and DMARC for one incoming message."""

    def __init__(self, lookup: DnsLookup, *, authserv_id: str) -> None:
        self.lookup = lookup
        self.authserv_id = authserv_id

    def _txt_for_libraries(self, name: str | bytes, timeout: float = 5) -> Any:
        # dkimpy asks with bytes and expects bytes; authheaders' DMARC lookup asks with
        # text and expects text. Both take "no record" as None.
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = self.lookup.txt(text.rstrip(".").lower())
        if not records:
            return None
        if isinstance(name, bytes):
            return records[0]
        return records[0].decode("utf-8", "replace")

    def _check_spf(self, client_ip: str, helo: str, mail_from: str) -> SPFAuthenticationResult:
        # RFC 7208 §2.4: with a null reverse-path, check the HELO identity instead.
        sender = mail_from or f"postmaster@{helo}"
        try:
            result, _code, reason = _SpfQuery(
                self.lookup, i=client_ip, s=sender, h=helo, timeout=LOOKUP_TIMEOUT
            ).check()
        except Exception:  # pyspf raises on odd input (bad IPs...): record "permerror"
            log.exception("SPF check of %s from %s", sender, client_ip)
            result, reason = "permerror", "SPF evaluation failed"
        return SPFAuthenticationResult(
            result=result, reason=reason, smtp_mailfrom=sender, smtp_helo=helo
        )

    def _check_dkim(self, raw: bytes) -> DKIMAuthenticationResult:
        """RFC 6376 §6: each signature is verified; one valid signature is a pass."""
        try:
            verifier = dkim.DKIM(raw)
            count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
        except Exception:
            return DKIMAuthenticationResult(result="permerror")
        if count == 0:
            return DKIMAuthenticationResult(result="none")
        outcome = "fail"
        for index in range(count):
            try:
                ok = verifier.verify(idx=index, dnsfunc=self._txt_for_libraries)
            except dkim.DnsTimeoutError:
                outcome = "temperror"
                continue
            except Exception:
                continue
            if ok:
                fields = verifier.signature_fields
                return DKIMAuthenticationResult(
                    result="pass",
                    header_d=fields.get(b"d", b"").decode("ascii", "replace"),
                    header_i=fields.get(b"i", b"").decode("ascii", "replace"),
                )
        return DKIMAuthenticationResult(result=outcome)

    def _check_arc(self, raw: bytes, client_ip: str) -> ARCAuthenticationResult:
        """RFC 8617 §5.2: the chain validation status of the message's ARC sets;
        "none" without any, "fail" for a broken chain or an error while validating."""
        if not re.search(rb"(?im)^ARC-Seal:", _header_section(raw)):
            return ARCAuthenticationResult(result="none")
        try:
            status, instances, comment = dkim.arc_verify(raw, dnsfunc=self._txt_for_libraries)
        except Exception:  # dkimpy raises on malformed sets: a chain that does not validate
            log.info("ARC validation raised", exc_info=True)
            return ARCAuthenticationResult(result="fail", smtp_remote_ip=client_ip)
        result = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if result not in ("pass", "fail", "none"):
            result = "fail"
        newest = max(instances, key=lambda i: int(i.get("instance", 0)), default=None)
        return ARCAuthenticationResult(
            result=result,
            result_comment=f"i={newest['instance']}" if newest else None,
            reason=QuotableValue(_printable(comment)) if result == "fail" and comment else None,
            header_as_d=_text(newest.get("as-domain")) if newest else None,
            header_as_s=_text(newest.get("as-selector")) if newest else None,
            smtp_remote_ip=client_ip or None,
        )

    def _verify(self, raw: bytes, client_ip: str, helo: str, mail_from: str) -> Verdict:
        spf_result = self._check_spf(client_ip, helo, mail_from)
        dkim_result = self._check_dkim(raw)
        try:
            dmarc_result = check_dmarc(
                raw, spf_result, dkim_result, dnsfunc=self._txt_for_libraries
            )
        except Exception:
            log.exception("DMARC check")
            dmarc_result = None
        results: list[Any] = [spf_result, dkim_result]
        arc_result = self._check_arc(raw, client_ip)
        dmarc, policy, from_domain = "none", "none", ""
        if dmarc_result is not None:
            results.append(dmarc_result)
            dmarc = str(dmarc_result.result or "none")
            policy = str(getattr(dmarc_result, "policy", None) or "none")
            from_domain = str(getattr(dmarc_result, "header_from", "") or "")
            if dmarc == "fail" and policy == "quarantine":
                # RFC 8601 §2.2 reasonspec: why the message is not in the Inbox.
                dmarc_result.reason = QuotableValue(
                    f"{from_domain or 'the author domain'} asks that failing mail be "
                    "quarantined (p=quarantine): treated as junk"
                )
        results.append(arc_result)
        header = str(AuthenticationResultsHeader(authserv_id=self.authserv_id, results=results))
        return Verdict(
            spf=str(spf_result.result),
            dkim=str(dkim_result.result),
            dmarc=dmarc,
            dmarc_policy=policy,
            from_domain=from_domain,
            header=_AR_NAME.sub("", header),
        )

    async def verify(self, raw: bytes, *, client_ip: str, helo: str, mail_from: str) -> Verdict:
        """All three checks, on a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._verify, raw, client_ip, helo, mail_from)


def _header_section(raw: bytes) -> bytes:
    """The header section of ``raw`` (up to the first empty line)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    return raw[: match.start()] if match else raw


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return None if value is None else str(value)


def _printable(value: object) -> str:
    text = _text(value) or ""
    return "".join(c for c in text if " " <= c <= "~")[:200]
