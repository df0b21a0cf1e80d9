"""iMIP (RFC 6047): iTIP messages carried by email, both ways.

- :func:`build_message` turns an :class:`~hirondelle.groupware.itip.ItipMessage` into an
  email (RFC 6047 §2.4): ``multipart/mixed`` holding a ``multipart/alternative`` (a
  readable ``text/plain`` part in French and English, then ``text/calendar;
  method=...``, which is what Outlook and Gmail act on) and the same object as an
  ``invite.ics`` attachment (``application/ics``, which Apple Mail and older clients
  offer to open). From is the sender of the iTIP message (RFC 6047 §3: the organizer for
  REQUEST/CANCEL, the attendee for REPLY).
- :func:`parse_message` finds the ``text/calendar`` part with a ``method`` parameter in
  an incoming email, checks it (RFC 6047 §2.4: the parameter and METHOD agree; one UID;
  an ORGANIZER), and :func:`check_originator` refuses a message whose author is not the
  organizer (REQUEST, CANCEL) or the replying attendee (REPLY) — RFC 6047 §3 leaves
  spoofing to the implementation; here the ``From:`` address must match and, when our
  MX verified the message, that address's domain must have passed DMARC, DKIM or SPF
  (the Authentication-Results our MX wrote; forged ones are removed at reception).

Nothing here touches the store or the network.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from icalendar import Calendar, Component

from hirondelle.errors import Reason, Refused
from hirondelle.groupware import itip
from hirondelle.groupware.itip import ItipMessage, Method

#: The largest calendar part read from an incoming message (an invitation is a few KB).
MAX_CALENDAR_PART = 1024 * 1024

_FRENCH_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_FRENCH_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_ENGLISH_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ENGLISH_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_SUBJECTS = {
    Method.REQUEST: ("Invitation", "Invitation"),
    Method.CANCEL: ("Annulé", "Cancelled"),
}
_REPLIES = {
    "ACCEPTED": ("a accepté", "accepted"),
    "DECLINED": ("a refusé", "declined"),
    "TENTATIVE": ("a répondu peut-être", "tentatively accepted"),
    "DELEGATED": ("a délégué", "delegated"),
    "NEEDS-ACTION": ("n'a pas encore répondu", "has not answered yet"),
}


# -- building -------------------------------------------------------------------------


def _zone(value: dt.datetime) -> str:
    if value.tzinfo is None:
        return ""  # floating time (RFC 5545 §3.3.5): the same in every zone
    name = getattr(value.tzinfo, "key", None) or value.tzname() or ""
    return f" ({name})" if name else ""


def _day(value: dt.date, *, french: bool) -> str:
    if french:
        return (
            f"{_FRENCH_DAYS[value.weekday()]} {value.day} "
            f"{_FRENCH_MONTHS[value.month - 1]} {value.year}"
        )
    return (
        f"{_ENGLISH_DAYS[value.weekday()]} {value.day} "
        f"{_ENGLISH_MONTHS[value.month - 1]} {value.year}"
    )


def _span(component: Component, *, french: bool) -> str:
    """When, as people read it, in the event's own time zone (not the reader's: the
    server does not know it; the calendar application converts)."""
    start = component.decoded("DTSTART") if "DTSTART" in component else None
    if not isinstance(start, dt.date):
        return "—"
    end: object = None
    if "DTEND" in component:
        end = component.decoded("DTEND")
    elif "DUE" in component:
        end = component.decoded("DUE")
    elif "DURATION" in component:
        end = start + component.decoded("DURATION")
    if isinstance(start, dt.datetime):
        text = f"{_day(start.date(), french=french)} {start:%H:%M}"
        if isinstance(end, dt.datetime):
            if end.tzinfo is not None and start.tzinfo is not None:
                end = end.astimezone(start.tzinfo)
            if end.date() == start.date():
                text += f" – {end:%H:%M}"
            else:
                text += f" – {_day(end.date(), french=french)} {end:%H:%M}"
        text += _zone(start)
    else:
        text = _day(start, french=french)
        if isinstance(end, dt.date) and (end - start).days > 1:
            # RFC 5545 §3.6.1: an all-day DTEND is exclusive.
            text += " – " + _day(end - dt.timedelta(days=1), french=french)
    if "RRULE" in component:
        text += " (récurrent)" if french else " (recurring)"
    return text


def _person(value: object) -> str:
    address = itip.address_of(value) or str(value)
    name = getattr(value, "params", {}).get("CN")
    return f"{name} <{address}>" if name else address


def describe(message: ItipMessage) -> str:
    """The readable part: what, when (in the event's time zone), where, who organizes,
    and how to answer, in French then English."""
    components = itip.scheduling_components(message.calendar)
    main = next((c for c in components if itip.instance_key(c) == itip.MASTER), components[0])
    summary = str(main.get("SUMMARY", "")) or "(sans titre / untitled)"
    location = str(main.get("LOCATION", ""))
    organizer = _person(main.get("ORGANIZER", ""))
    french: list[str] = []
    english: list[str] = []
    if message.method is Method.REPLY:
        line = itip.attendee_lines(main)[0] if itip.attendee_lines(main) else None
        who = _person(line) if line is not None else message.sender
        fr_verb, en_verb = _REPLIES.get(itip.partstat(line), ("a répondu", "answered"))
        french.append(f"{who} {fr_verb} : {summary}")
        english.append(f"{who} {en_verb}: {summary}")
    elif message.method is Method.CANCEL:
        french.append(f"Cet événement est annulé : {summary}")
        english.append(f"This event has been cancelled: {summary}")
    else:
        french.append(f"Vous êtes invité(e) : {summary}")
        english.append(f"You are invited: {summary}")
    for component in components:
        french.append("")
        english.append("")
        french.append(f"Quoi : {component.get('SUMMARY', summary)}")
        english.append(f"What: {component.get('SUMMARY', summary)}")
        french.append(f"Quand : {_span(component, french=True)}")
        english.append(f"When: {_span(component, french=False)}")
        if component.get("LOCATION", location):
            french.append(f"Où : {component.get('LOCATION', location)}")
            english.append(f"Where: {component.get('LOCATION', location)}")
        french.append(f"Organisateur : {organizer}")
        english.append(f"Organizer: {organizer}")
        if itip.is_cancelled(component) and message.method is not Method.CANCEL:
            french.append("Annulé")
            english.append("Cancelled")
    if message.method is Method.REQUEST:
        french += [
            "",
            "Pour répondre, utilisez les boutons Accepter / Peut-être / Refuser de votre",
            "messagerie ou de votre agenda (le fichier invite.ics joint s'ouvre dans tout",
            "logiciel d'agenda).",
        ]
        english += [
            "",
            "To answer, use the Accept / Maybe / Decline buttons of your mail or calendar",
            "application (the attached invite.ics opens in any calendar application).",
        ]
    return "\n".join([*french, "", "-" * 40, "", *english, ""])


def subject(message: ItipMessage) -> str:
    summary = message.summary() or "(sans titre / untitled)"
    if message.method is Method.REPLY:
        components = itip.scheduling_components(message.calendar)
        lines = itip.attendee_lines(components[0]) if components else []
        fr_verb, en_verb = _REPLIES.get(
            itip.partstat(lines[0] if lines else None), ("a répondu", "answered")
        )
        return f"{message.sender} {fr_verb} / {en_verb}: {summary}"
    french, english = _SUBJECTS[message.method]
    if french == english:
        return f"{french} : {summary}"
    return f"{french} / {english} : {summary}"


def build_message(
    message: ItipMessage,
    *,
    recipients: Iterable[str],
    hostname: str,
    sender_name: str | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """RFC 6047 §2.4: the email carrying ``message`` to ``recipients``."""
    recipient_list = list(recipients)
    ics = message.calendar.to_ical().decode("utf-8")
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = email.utils.formataddr((sender_name or "", message.sender))
    mail["To"] = ", ".join(recipient_list)
    mail["Subject"] = subject(message)
    mail["Date"] = email.utils.format_datetime(now or dt.datetime.now(dt.UTC))
    # RFC 5322 §3.6.4: globally unique; random left part, our host name right.
    mail["Message-ID"] = f"<{secrets.token_hex(12)}@{hostname}>"
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no vacation replies to it
    mail.make_mixed()

    alternative = EmailMessage(policy=policy.SMTP)
    alternative.set_content(describe(message), subtype="plain", charset="utf-8")
    calendar_part = EmailMessage(policy=policy.SMTP)
    calendar_part.set_content(
        ics, subtype="calendar", charset="utf-8", cte="base64", params={"method": message.method}
    )
    alternative.make_alternative()
    alternative.attach(calendar_part)
    mail.attach(alternative)

    attachment = EmailMessage(policy=policy.SMTP)
    attachment.set_content(
        ics.encode("utf-8"),
        maintype="application",
        subtype="ics",
        disposition="attachment",
        filename="invite.ics",
    )
    mail.attach(attachment)
    return mail.as_bytes(policy=policy.SMTP)


# -- receiving ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingItip:
    """A checked iTIP message found in an email."""

    method: Method
    calendar: Calendar
    originator: str  # the From: address, lowercased
    uid: str


def _calendar_part(message: Message) -> Message | None:
    """RFC 6047 §2.4: the first text/calendar part carrying a ``method`` parameter."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar" and part.get_param("method"):
            return part
    return None


def parse_message(raw: bytes) -> IncomingItip | None:
    """The iTIP content of ``raw``, or None when there is none; Refused(INVALID) when
    there is one but it breaks RFC 6047 §2.4 or RFC 5546 (the caller ignores it)."""
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(raw)
        part = _calendar_part(message)
    except (ValueError, TypeError, LookupError, AttributeError, IndexError):
        raise Refused(Reason.INVALID, "unreadable MIME structure") from None
    if part is None:
        return None
    method_param = str(part.get_param("method") or "").strip().upper()
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, AssertionError):
        payload = None
    if not isinstance(payload, bytes) or not payload.strip():
        raise Refused(Reason.INVALID, "empty text/calendar part")
    if len(payload) > MAX_CALENDAR_PART:
        raise Refused(Reason.TOO_LARGE, "text/calendar part too large")
    charset = str(part.get_content_charset() or "utf-8")
    try:
        text = payload.decode(charset, "replace")
    except (LookupError, ValueError):  # unknown charset, or a name with NUL in it
        text = payload.decode("utf-8", "replace")
    calendar = itip.parse(text)
    method = itip.method_of(calendar)
    if method is None or method != method_param:
        # RFC 6047 §2.4: the parameter MUST be the same as the METHOD property.
        raise Refused(Reason.INVALID, "method parameter and METHOD differ or are unsupported")
    components = itip.scheduling_components(calendar)
    if not components:
        raise Refused(Reason.INVALID, "no VEVENT or VTODO")
    uids = {str(c.get("UID", "")) for c in components}
    if len(uids) != 1 or "" in uids:
        raise Refused(Reason.INVALID, "an iTIP message carries exactly one UID (RFC 5546 §1.5)")
    try:
        itip.check_scheduling_object(calendar)
    except (ValueError, TypeError) as error:
        raise Refused(Reason.INVALID, f"invalid scheduling object: {error}") from None
    if itip.organizer_of(calendar) is None:
        raise Refused(Reason.INVALID, "no ORGANIZER (RFC 5546 §3.2)")
    return IncomingItip(
        method=method, calendar=calendar, originator=_from_address(message), uid=uids.pop()
    )


def _from_address(message: Message) -> str:
    values = [str(v) for v in message.get_all("From", [])]
    addresses = [a for _, a in email.utils.getaddresses(values) if a]
    if len(addresses) != 1:
        return ""  # none, or several authors: nobody to match (RFC 5322 §3.6.2)
    return addresses[0].strip().lower()


_AR_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*(\w+)([^;]*)", re.IGNORECASE)
_AR_PROPERTY = re.compile(r"\b(header\.from|header\.d|smtp\.mailfrom)\s*=\s*([^\s;]+)", re.I)


def authenticated_domain(raw: bytes, *, authserv_id: str, domain: str) -> bool | None:
    """What our MX found about ``domain`` (RFC 8601 Authentication-Results written with
    our ``authserv_id``): True when DMARC passed for it, or DKIM passed with ``d=`` it,
    or SPF passed for a MAIL FROM in it; False when the MX checked and none did; None
    when the message did not pass our checks at all (submission by a logged-in user,
    LMTP from a trusted relay, or verification switched off)."""
    try:
        header = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    except (ValueError, TypeError, LookupError):
        return False
    ours = [
        str(value)
        for value in header.get_all("Authentication-Results", [])
        if str(value).strip().split(";", 1)[0].strip().lower() == authserv_id.lower()
    ]
    if not ours:
        return None
    domain = domain.lower()
    for value in ours:
        for method, result, rest in _AR_RESULT.findall(value):
            if result.lower() != "pass":
                continue
            properties = {k.lower(): v.strip().lower() for k, v in _AR_PROPERTY.findall(rest)}
            if method.lower() == "dmarc" and properties.get("header.from") == domain:
                return True
            if method.lower() == "dkim" and properties.get("header.d") == domain:
                return True
            mail_from = properties.get("smtp.mailfrom", "")
            if method.lower() == "spf" and mail_from.rpartition("@")[2] == domain:
                return True
    return False


def check_originator(incoming: IncomingItip, raw: bytes, *, authserv_id: str) -> None:
    """Refused(FORBIDDEN) unless the author may send this message: the organizer for
    REQUEST and CANCEL, the one attendee who answers for REPLY (RFC 5546 §3.2), and,
    when our MX verified the message, with that author's domain authenticated."""
    author = incoming.originator
    if not author:
        raise Refused(Reason.FORBIDDEN, "no single From: address")
    if incoming.method is Method.REPLY:
        repliers = {
            itip.address_of(line)
            for component in itip.scheduling_components(incoming.calendar)
            for line in itip.attendee_lines(component)
        }
        if repliers != {author}:
            raise Refused(Reason.FORBIDDEN, "a REPLY must come from the attendee it names")
    elif itip.organizer_of(incoming.calendar) != author:
        raise Refused(Reason.FORBIDDEN, f"{incoming.method} must come from the organizer")
    verdict = authenticated_domain(raw, authserv_id=authserv_id, domain=author.rpartition("@")[2])
    if verdict is False:
        raise Refused(Reason.FORBIDDEN, f"the domain of {author} is not authenticated")
