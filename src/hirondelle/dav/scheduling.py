"""CalDAV scheduling on the wire (RFC 6638): POST of a free-busy request to the schedule
outbox (§5), answered with a ``CALDAV:schedule-response``.

The rules live in :mod:`hirondelle.groupware.scheduling`; this module reads the request,
maps refusals to their preconditions (§5.1: ``supported-calendar-data``,
``valid-calendar-data``, ``valid-scheduling-message``, ``organizer-allowed``) and writes
the XML. dav-core routes ``POST /dav/<address>/Outbox/`` here after authentication,
only for the outbox's owner.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from hirondelle.errors import Reason, Refused
from hirondelle.groupware import itip
from hirondelle.groupware.scheduling import STATUS_TEXT
from hirondelle.services import Services
from hirondelle.store.directory import Account

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
#: A free-busy request is a few hundred bytes; anything near this is not one.
MAX_REQUEST = 256 * 1024

ET.register_namespace("D", DAV)
ET.register_namespace("C", CALDAV)


def _xml(root: ET.Element, status: int) -> Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=status, media_type="application/xml; charset=utf-8")


def precondition(element: str, status: int, message: str = "") -> Response:
    """RFC 4918 §16: a DAV:error body naming the failed CALDAV precondition."""
    root = ET.Element(f"{{{DAV}}}error")
    ET.SubElement(root, f"{{{CALDAV}}}{element}")
    if message:
        # RFC 4918 §16 allows more elements; a readable reason helps whoever debugs.
        description = ET.SubElement(root, f"{{{DAV}}}responsedescription")
        description.text = message
    return _xml(root, status)


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is larger than :data:`MAX_REQUEST` (read no
    further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post_outbox(services: Services, account: Account, request: Request) -> Response:
    """RFC 6638 §5: a VFREEBUSY REQUEST posted to ``account``'s schedule outbox."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "text/calendar":
        return precondition("supported-calendar-data", 415, "expected text/calendar")
    try:
        body = await _body(request)
    except ClientDisconnect:
        return Response(status_code=400)
    if body is None:
        return precondition("max-resource-size", 413, "the request is too large")
    try:
        text = body.decode("utf-8")
        calendar = await asyncio.to_thread(itip.parse, text)
    except (UnicodeDecodeError, Refused):
        return precondition("valid-calendar-data", 400, "invalid iCalendar data")
    try:
        answers = await services.scheduling.free_busy(account, calendar)
    except Refused as refused:
        if refused.reason is Reason.FORBIDDEN:
            return precondition(
                "organizer-allowed", 403, "the ORGANIZER must be one of your addresses"
            )
        return precondition(
            "valid-scheduling-message", 400, "expected one VFREEBUSY with METHOD:REQUEST"
        )
    root = ET.Element(f"{{{CALDAV}}}schedule-response")
    for answer in answers:
        response = ET.SubElement(root, f"{{{CALDAV}}}response")
        recipient = ET.SubElement(response, f"{{{CALDAV}}}recipient")
        ET.SubElement(recipient, f"{{{DAV}}}href").text = answer.recipient
        status = ET.SubElement(response, f"{{{CALDAV}}}request-status")
        status.text = f"{answer.status};{STATUS_TEXT.get(answer.status, '')}"
        if answer.calendar is not None:
            data = ET.SubElement(response, f"{{{CALDAV}}}calendar-data")
            data.text = answer.calendar.to_ical().decode("utf-8")
    return _xml(root, 200)
