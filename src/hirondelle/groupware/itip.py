"""iTIP (RFC 5546) as pure functions on iCalendar objects, with the server-side rules of
CalDAV scheduling (RFC 6638 §3.2).

Nothing here touches the store or the network: :mod:`hirondelle.groupware.scheduling`
reads the copies, calls these functions and writes their results.

- :func:`organizer_messages` (RFC 6638 §3.2.1): from the organizer's old and new copy of
  a scheduling object, the REQUEST and CANCEL messages each attendee is owed;
- :func:`attendee_reply` (RFC 6638 §3.2.2): from an attendee's old and new copy, the
  REPLY the organizer is owed;
- :func:`apply_reply` (RFC 5546 §3.2.3): a REPLY folded into the organizer's copy;
- :func:`apply_request` / :func:`apply_cancel` (RFC 5546 §3.2.2, §3.2.5): a REQUEST or
  CANCEL folded into an attendee's copy.

Calendar user addresses are compared as lowercased ``mailto:`` addresses (RFC 5545
§3.3.3 CAL-ADDRESS; RFC 6638 §2.4.1 ``calendar-user-address-set``).

Deliberate simplifications, written down: an attendee's uninvited REPLY ("party
crasher", RFC 5546 §3.2.3) is ignored; delegation (DELEGATED-TO/FROM) is passed
through, not acted on. The DTSTAMP of the last REPLY applied for an attendee is kept on
the organizer's ATTENDEE line (:data:`REPLY_STAMP`, never sent in a message) so that
RFC 5546 §2.1.5's ordering by DTSTAMP within one SEQUENCE can be applied.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from icalendar import Calendar, Component, Event, Todo, vCalAddress

from hirondelle.errors import Reason, Refused

#: Components that carry scheduling (RFC 6638 §3.1: VEVENT and VTODO; VJOURNAL has none).
SCHEDULING_COMPONENTS = ("VEVENT", "VTODO")

PRODID = "-//Hirondelle//Scheduling//EN"

MASTER = ""  # the key of the master component (no RECURRENCE-ID)


class Method(StrEnum):
    """RFC 5546 §1.4 methods the server sends and accepts."""

    REQUEST = "REQUEST"
    REPLY = "REPLY"
    CANCEL = "CANCEL"


class ScheduleStatus(StrEnum):
    """RFC 6638 §3.2.9 SCHEDULE-STATUS values (RFC 5546 §3.6 REQUEST-STATUS codes)."""

    PENDING = "1.0"
    SENT = "1.1"  # handed to iMIP: queued for another server
    DELIVERED = "1.2"  # placed in a local user's inbox
    SUCCESS = "2.0"
    INVALID_USER = "3.7"
    NO_AUTHORITY = "3.8"
    DELIVERY_FAILED = "5.1"
    INVALID_SERVICE = "5.2"
    NO_SCHEDULING = "5.3"


class ScheduleAgent(StrEnum):
    """RFC 6638 §7.1 SCHEDULE-AGENT: who delivers the messages for this user."""

    SERVER = "SERVER"
    CLIENT = "CLIENT"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class ItipMessage:
    """One iTIP message: ``calendar`` carries METHOD and the components for
    ``recipients`` (addresses without ``mailto:``)."""

    method: Method
    sender: str
    recipients: tuple[str, ...]
    calendar: Calendar
    uid: str

    def summary(self) -> str:
        for component in scheduling_components(self.calendar):
            if "SUMMARY" in component:
                return str(component["SUMMARY"])
        return ""


# -- reading --------------------------------------------------------------------------


def address_of(value: object) -> str | None:
    """``mailto:Bob@Example.org`` -> ``bob@example.org``; None for other URI schemes
    (a ``urn:uuid:`` attendee cannot be mailed, RFC 6638 §2.4.1)."""
    text = str(value).strip()
    if text[:7].lower() != "mailto:":
        return None
    address = text[7:].strip().lower()
    if "@" not in address or any(c.isspace() or c in '<>,;"' for c in address):
        return None
    return address


def scheduling_components(calendar: Calendar) -> list[Component]:
    return [c for c in calendar.subcomponents if c.name in SCHEDULING_COMPONENTS]


def timezones(calendar: Calendar) -> list[Component]:
    return [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]


def instance_key(component: Component) -> str:
    """RECURRENCE-ID as comparable text, or :data:`MASTER`. RFC 5545 §3.8.4.4: an
    instance is named by its original start, in UTC when the value has a time zone."""
    value = component.get("RECURRENCE-ID")
    if value is None:
        return MASTER
    return _instant_key(value.dt)


def _instant_key(decoded: object) -> str:
    if isinstance(decoded, dt.datetime) and decoded.tzinfo is not None:
        return decoded.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if isinstance(decoded, dt.datetime):
        return decoded.strftime("%Y%m%dT%H%M%S")
    return decoded.strftime("%Y%m%d") if isinstance(decoded, dt.date) else str(decoded)


def by_instance(calendar: Calendar | None) -> dict[str, Component]:
    if calendar is None:
        return {}
    return {instance_key(c): c for c in scheduling_components(calendar)}


def uid_of(calendar: Calendar) -> str:
    for component in scheduling_components(calendar):
        if "UID" in component:
            return str(component["UID"])
    raise Refused(Reason.INVALID, "no UID in the calendar object")


def organizer_of(calendar: Calendar | None) -> str | None:
    """The organizer's address when the object is a scheduling object (RFC 6638 §3.1)."""
    if calendar is None:
        return None
    for component in scheduling_components(calendar):
        organizer = component.get("ORGANIZER")
        if organizer is not None:
            return address_of(organizer)
    return None


def attendee_lines(component: Component) -> list[vCalAddress]:
    value = component.get("ATTENDEE")
    if value is None:
        return []
    lines = value if isinstance(value, list) else [value]
    return [line for line in lines if isinstance(line, vCalAddress)]


def find_attendee(component: Component, address: str) -> vCalAddress | None:
    for line in attendee_lines(component):
        if address_of(line) == address:
            return line
    return None


def agent(line: vCalAddress | None) -> ScheduleAgent:
    """RFC 6638 §7.1: SERVER unless the client said otherwise (unknown values are
    treated as SERVER, §7.1 "MUST treat any unknown value as SERVER")."""
    if line is None:
        return ScheduleAgent.SERVER
    value = str(line.params.get("SCHEDULE-AGENT", "SERVER")).upper()
    try:
        return ScheduleAgent(value)
    except ValueError:
        return ScheduleAgent.SERVER


def partstat(line: vCalAddress | None) -> str:
    if line is None:
        return "NEEDS-ACTION"
    return str(line.params.get("PARTSTAT", "NEEDS-ACTION")).upper()


def sequence(component: Component | None) -> int:
    if component is None:
        return 0
    try:
        return int(component.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        return 0


def is_cancelled(component: Component) -> bool:
    return str(component.get("STATUS", "")).upper() == "CANCELLED"


def check_scheduling_object(calendar: Calendar) -> None:
    """RFC 6638 §3.1: one UID, the same ORGANIZER in every component (precondition
    CALDAV:same-organizer-in-all-components) and the same SCHEDULE-AGENT per user
    (§7.1). Raises Refused(INVALID) naming the rule."""
    components = scheduling_components(calendar)
    organizers = {address_of(c.get("ORGANIZER")) for c in components if "ORGANIZER" in c}
    with_organizer = [c for c in components if "ORGANIZER" in c]
    if len(organizers) > 1 or (with_organizer and len(with_organizer) != len(components)):
        raise Refused(Reason.INVALID, "same-organizer-in-all-components")
    agents: dict[str, ScheduleAgent] = {}
    for component in components:
        organizer = component.get("ORGANIZER")
        lines: list[vCalAddress] = attendee_lines(component)
        if isinstance(organizer, vCalAddress):
            lines = [organizer, *lines]
        for line in lines:
            address = address_of(line)
            if address is None:
                continue
            seen = agents.setdefault(address, agent(line))
            if seen is not agent(line):
                raise Refused(Reason.INVALID, "allowed-attendee-scheduling-object-change")


# -- building -------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_calendar(method: Method | None, zones: Iterable[Component]) -> Calendar:
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    if method is not None:
        calendar.add("METHOD", str(method))
    for zone in zones:
        calendar.add_component(copy.deepcopy(zone))
    return calendar


# On the organizer's ATTENDEE lines: the DTSTAMP of the last REPLY applied, so that an
# older REPLY of the same SEQUENCE arriving late is recognised (RFC 5546 §2.1.5).
REPLY_STAMP = "X-HIRONDELLE-REPLY-DTSTAMP"
_SERVER_PARAMETERS = ("SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND", REPLY_STAMP)


def _without_server_parameters(component: Component) -> None:
    """RFC 6638 §7.2, §7.3: SCHEDULE-STATUS and SCHEDULE-FORCE-SEND are not sent in iTIP
    messages (nor stored from a client)."""
    lines: list[vCalAddress] = attendee_lines(component)
    organizer = component.get("ORGANIZER")
    if isinstance(organizer, vCalAddress):
        lines.append(organizer)
    for line in lines:
        for name in _SERVER_PARAMETERS:
            line.params.pop(name, None)


def _for_sending(component: Component) -> Component:
    """A copy fit for an iTIP message: no alarms (they are the sender's own), no
    server-only parameters, a fresh DTSTAMP (RFC 5546 §3.2: when the message was made)."""
    sent = copy.deepcopy(component)
    sent.subcomponents = [c for c in sent.subcomponents if c.name != "VALARM"]
    _without_server_parameters(sent)
    sent.pop("DTSTAMP", None)
    sent.add("DTSTAMP", _now())
    return sent


# -- organizer: REQUEST and CANCEL -----------------------------------------------------

# Properties whose change is not worth a message (RFC 6638 §3.2.8: the server decides
# what is significant; a DTSTAMP or an alarm is not, nor an attendee's own PARTSTAT).
_INSIGNIFICANT = {"DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED", "TRANSP"}
_ATTENDEE_PRIVATE = {
    "PARTSTAT",
    "SCHEDULE-STATUS",
    "SCHEDULE-FORCE-SEND",
    "RSVP",
    "X-HIRONDELLE-REPLY-DTSTAMP",
}
_TIMING = ("DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE", "EXDATE")


def _fingerprint(component: Component) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for name, value in component.property_items(recursive=False):
        if name in _INSIGNIFICANT or name.startswith("X-") or name in ("BEGIN", "END"):
            continue
        if name == "ATTENDEE" and isinstance(value, vCalAddress):
            line = copy.deepcopy(value)
            for parameter in _ATTENDEE_PRIVATE:
                line.params.pop(parameter, None)
            found.setdefault(name, []).append(line.to_ical() + b";" + line.params.to_ical())
            continue
        params = getattr(value, "params", None)
        text = value.to_ical() if hasattr(value, "to_ical") else str(value).encode()
        rendered = text if isinstance(text, bytes) else str(text).encode()
        found.setdefault(name, []).append(
            rendered + (b";" + params.to_ical() if params is not None else b"")
        )
    return {name: sorted(values) for name, values in found.items()}


def significant_change(old: Component | None, new: Component) -> bool:
    return old is None or _fingerprint(old) != _fingerprint(new)


def timing_changed(old: Component, new: Component) -> bool:
    """Did the time of the instance(s) move (RFC 5546 §2.1.4: a rescheduling)?"""
    old_print, new_print = _fingerprint(old), _fingerprint(new)
    return any(old_print.get(name) != new_print.get(name) for name in _TIMING)


def _forced(line: vCalAddress | None, method: Method) -> bool:
    """RFC 6638 §7.3 SCHEDULE-FORCE-SEND: the client asks for a message regardless."""
    return line is not None and str(line.params.get("SCHEDULE-FORCE-SEND", "")).upper() == method


def _invited(components: dict[str, Component], address: str) -> dict[str, Component]:
    """The instances ``address`` is invited to and that are not cancelled."""
    master = components.get(MASTER)
    if master is not None and is_cancelled(master):
        return {}
    return {
        key: component
        for key, component in components.items()
        if find_attendee(component, address) is not None and not is_cancelled(component)
    }


def _server_scheduled(components: dict[str, Component], address: str) -> dict[str, Component]:
    """Of those, the instances where the server delivers for ``address`` (RFC 6638 §7.1)."""
    return {
        key: component
        for key, component in components.items()
        if agent(find_attendee(component, address)) is ScheduleAgent.SERVER
    }


def scheduled_attendees(calendar: Calendar | None, organizer: str) -> list[str]:
    """Attendees the server schedules for (SCHEDULE-AGENT=SERVER), in order of
    appearance, without the organizer."""
    found: dict[str, None] = {}
    if calendar is None:
        return []
    for component in scheduling_components(calendar):
        for line in attendee_lines(component):
            address = address_of(line)
            if address is None or address == organizer:
                continue
            if agent(line) is ScheduleAgent.SERVER:
                found.setdefault(address, None)
    return list(found)


def prepare_organizer_copy(old: Calendar | None, new: Calendar) -> bool:
    """Server changes to an organizer's copy before it is stored (RFC 6638 §3.2.1):
    SEQUENCE raised on a significant change the client did not number (RFC 5546 §2.1.4),
    SCHEDULE-STATUS the client sent replaced by the stored one (§7.2: only the server
    sets it). Returns whether anything changed."""
    changed = False
    old_components = by_instance(old)
    for key, component in by_instance(new).items():
        previous = old_components.get(key) or old_components.get(MASTER)
        if (
            previous is not None
            and significant_change(previous, component)
            and sequence(component) <= sequence(previous)
        ):
            component.pop("SEQUENCE", None)
            component.add("SEQUENCE", sequence(previous) + 1)
            changed = True
        stored = {
            address_of(line): line.params.get("SCHEDULE-STATUS")
            for line in attendee_lines(old_components.get(key, Component()))
        }
        for line in attendee_lines(component):
            sent = line.params.pop("SCHEDULE-STATUS", None)
            previous_status = stored.get(address_of(line))
            if previous_status is not None:
                line.params["SCHEDULE-STATUS"] = previous_status
            changed = changed or sent != previous_status
    return changed


def strip_force_send(calendar: Calendar) -> bool:
    """RFC 6638 §7.3: SCHEDULE-FORCE-SEND is acted on, not stored. Returns whether there
    was one."""
    changed = False
    for component in scheduling_components(calendar):
        lines: list[vCalAddress] = attendee_lines(component)
        organizer = component.get("ORGANIZER")
        if isinstance(organizer, vCalAddress):
            lines.append(organizer)
        for line in lines:
            changed = line.params.pop("SCHEDULE-FORCE-SEND", None) is not None or changed
    return changed


def organizer_messages(
    old: Calendar | None, new: Calendar | None, *, organizer: str
) -> list[ItipMessage]:
    """RFC 6638 §3.2.1: what the organizer's change owes each attendee.

    ``old`` None is a creation, ``new`` None a deletion. Each attendee gets the instances
    they are invited to: a REQUEST when something significant changed for them (or
    SCHEDULE-FORCE-SEND=REQUEST), a CANCEL for the instances they lost (removed from
    the object, the instance cancelled with STATUS:CANCELLED, or the object deleted).
    """
    old_components = by_instance(old)
    new_components = by_instance(new)
    reference = new if new is not None else old
    if reference is None:
        return []
    uid = uid_of(reference)
    zones = timezones(reference)
    attendees = scheduled_attendees(old, organizer)
    attendees += [a for a in scheduled_attendees(new, organizer) if a not in attendees]
    messages: list[ItipMessage] = []
    for address in attendees:
        before = _server_scheduled(_invited(old_components, address), address)
        still = _invited(new_components, address)
        # An attendee now left to the client (SCHEDULE-AGENT=CLIENT/NONE) gets nothing
        # from the server: neither an update nor a cancellation.
        after = _server_scheduled(still, address)
        lost = [key for key in before if key not in still]
        if lost:
            if MASTER in lost or not still:
                lost = [MASTER] if MASTER in before else lost
            cancelled = _new_calendar(Method.CANCEL, zones)
            for key in lost:
                component = _for_sending(new_components.get(key) or before[key])
                component.pop("STATUS", None)
                component.add("STATUS", "CANCELLED")
                if key in new_components and not is_cancelled(new_components[key]):
                    # Still there for others: the attendee gets a copy naming only them.
                    component.pop("ATTENDEE", None)
                    line = find_attendee(before[key], address)
                    assert line is not None
                    attendee = copy.deepcopy(line)
                    _strip_line(attendee)
                    component.add("ATTENDEE", attendee)
                number = max(sequence(before[key]), sequence(new_components.get(key)))
                if key not in new_components or not is_cancelled(new_components[key]):
                    number += 1  # RFC 5546 §2.1.4: a cancellation is a revision
                component.pop("SEQUENCE", None)
                component.add("SEQUENCE", number)
                cancelled.add_component(component)
            messages.append(ItipMessage(Method.CANCEL, organizer, (address,), cancelled, uid))
        if not after:
            continue
        forced = any(
            _forced(find_attendee(component, address), Method.REQUEST)
            for component in after.values()
        )
        changed = any(
            key not in before or significant_change(before[key], component)
            for key, component in after.items()
        )
        if not (forced or changed):
            continue
        request = _new_calendar(Method.REQUEST, zones)
        for component in after.values():
            request.add_component(_for_sending(component))
        messages.append(ItipMessage(Method.REQUEST, organizer, (address,), request, uid))
    return messages


def _strip_line(line: vCalAddress) -> None:
    for name in _SERVER_PARAMETERS:
        line.params.pop(name, None)


def set_schedule_status(calendar: Calendar, statuses: dict[str, ScheduleStatus]) -> bool:
    """RFC 6638 §3.2.9: on the organizer's copy, the outcome of the last delivery to
    each attendee. Returns whether anything changed."""
    changed = False
    for component in scheduling_components(calendar):
        for line in attendee_lines(component):
            status = statuses.get(address_of(line) or "")
            if status is not None and line.params.get("SCHEDULE-STATUS") != str(status):
                line.params["SCHEDULE-STATUS"] = str(status)
                changed = True
    return changed


def set_organizer_status(calendar: Calendar, status: ScheduleStatus) -> bool:
    """RFC 6638 §3.2.9: on an attendee's copy, the outcome of their last REPLY. Returns
    whether anything changed."""
    changed = False
    for component in scheduling_components(calendar):
        organizer = component.get("ORGANIZER")
        if isinstance(organizer, vCalAddress) and organizer.params.get("SCHEDULE-STATUS") != str(
            status
        ):
            organizer.params["SCHEDULE-STATUS"] = str(status)
            changed = True
    return changed


# -- attendee: REPLY ------------------------------------------------------------------

_REPLY_PROPERTIES = (
    "UID",
    "RECURRENCE-ID",
    "SEQUENCE",
    "ORGANIZER",
    "DTSTART",
    "DTEND",
    "DURATION",
    "DUE",
    "SUMMARY",
    "LOCATION",
)


def _reply_component(component: Component, line: vCalAddress, status: str) -> Component:
    """RFC 5546 §3.2.3: a REPLY names the one attendee replying, with their PARTSTAT."""
    reply: Component = Todo() if component.name == "VTODO" else Event()
    for name in _REPLY_PROPERTIES:
        if name in component:
            reply.add(name, copy.deepcopy(component[name]))
    organizer = reply.get("ORGANIZER")
    if isinstance(organizer, vCalAddress):
        _strip_line(organizer)
    attendee = copy.deepcopy(line)
    _strip_line(attendee)
    attendee.params.pop("RSVP", None)
    attendee.params["PARTSTAT"] = status
    reply.add("ATTENDEE", attendee)
    reply.add("DTSTAMP", _now())
    return reply


def attendee_reply(
    old: Calendar | None, new: Calendar | None, *, attendee: str
) -> ItipMessage | None:
    """RFC 6638 §3.2.2: the REPLY an attendee's change owes the organizer: the instances
    whose PARTSTAT changed (or SCHEDULE-FORCE-SEND=REPLY on ORGANIZER); on deletion,
    DECLINED for every instance still standing (§3.2.2.3)."""
    reference = new if new is not None else old
    organizer = organizer_of(reference)
    if reference is None or organizer is None or organizer == attendee:
        return None
    first = scheduling_components(reference)
    if not first or agent(first[0].get("ORGANIZER")) is not ScheduleAgent.SERVER:
        return None
    old_components = by_instance(old)
    new_components = by_instance(new)
    replies: list[Component] = []
    if new is None:
        for component in old_components.values():
            line = find_attendee(component, attendee)
            if line is not None and not is_cancelled(component) and partstat(line) != "DECLINED":
                replies.append(_reply_component(component, line, "DECLINED"))
    else:
        for key, component in new_components.items():
            line = find_attendee(component, attendee)
            if line is None:
                continue
            previous = old_components.get(key) or old_components.get(MASTER)
            was = partstat(find_attendee(previous, attendee)) if previous is not None else None
            forced = _forced(component.get("ORGANIZER"), Method.REPLY)
            if forced or was != partstat(line):
                replies.append(_reply_component(component, line, partstat(line)))
        replies += _declined_instances(old_components, new_components, attendee)
    if not replies:
        return None
    calendar = _new_calendar(Method.REPLY, timezones(reference))
    for component in replies:
        calendar.add_component(component)
    return ItipMessage(Method.REPLY, attendee, (organizer,), calendar, uid_of(reference))


def _exdates(component: Component | None) -> dict[str, object]:
    """The EXDATE values of a component, by instance key."""
    if component is None:
        return {}
    value = component.get("EXDATE")
    lists = value if isinstance(value, list) else [value] if value is not None else []
    found: dict[str, object] = {}
    for each in lists:
        for date in getattr(each, "dts", []):
            found[_instant_key(date.dt)] = date.dt
    return found


def _declined_instances(
    old: dict[str, Component], new: dict[str, Component], attendee: str
) -> list[Component]:
    """An attendee who removes one occurrence from their copy (an EXDATE added, or an
    override dropped) declines that occurrence (RFC 6638 §3.2.2.1; what Apple Calendar
    and Thunderbird do when "delete this occurrence" is chosen on an invitation)."""
    master = new.get(MASTER)
    old_master = old.get(MASTER)
    if master is None or old_master is None:
        return []
    line = find_attendee(old_master, attendee)
    if line is None:
        return []
    declined: list[Component] = []
    previous = _exdates(old_master)
    for key, value in _exdates(master).items():
        if key in previous or key in new:
            continue
        source = old.get(key) or old_master
        instance = _instance_from_master(source, key, _RecurrenceId(value))
        declined.append(_reply_component(instance, line, "DECLINED"))
    return declined


class _RecurrenceId:
    """A stand-in for a RECURRENCE-ID property: what :func:`_instance_from_master`
    reads (``.dt``)."""

    def __init__(self, value: object) -> None:
        self.dt = value


# -- applying received messages ------------------------------------------------------


def _instance_from_master(master: Component, key: str, recurrence_id: object) -> Component:
    """An override made from the master for one instance (RFC 5545 §3.8.4.4), so one
    attendee's answer for that instance can be recorded (RFC 6638 §3.2.2.1)."""
    instance = copy.deepcopy(master)
    for name in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"):
        instance.pop(name, None)
    start = master.get("DTSTART")
    original = getattr(recurrence_id, "dt", None)
    if start is not None and original is not None:
        end = master.get("DTEND")
        length = end.dt - start.dt if end is not None else None
        instance.pop("DTSTART", None)
        instance.add("DTSTART", original)
        if length is not None:
            instance.pop("DTEND", None)
            instance.add("DTEND", original + length)
    instance.add("RECURRENCE-ID", original if original is not None else key)
    return instance


def apply_reply(organizer_copy: Calendar, reply: Calendar, *, sender: str) -> bool:
    """RFC 5546 §3.2.3 REPLY: set the replying attendee's PARTSTAT on the organizer's
    copy. Only the attendee ``sender`` may answer for themselves; instances answered at
    an older SEQUENCE than the copy's are stale and ignored (§2.1.5). Returns whether
    the copy changed."""
    if uid_of(reply) != uid_of(organizer_copy):
        return False
    components = by_instance(organizer_copy)
    changed = False
    for answer in scheduling_components(reply):
        lines = attendee_lines(answer)
        if len(lines) != 1 or address_of(lines[0]) != sender:
            continue
        key = instance_key(answer)
        target = components.get(key)
        if target is None:
            master = components.get(MASTER)
            if master is None or key == MASTER or find_attendee(master, sender) is None:
                continue
            if partstat(find_attendee(master, sender)) == partstat(lines[0]):
                continue  # the same answer as for the series: no override needed
            target = _instance_from_master(master, key, answer.get("RECURRENCE-ID"))
            organizer_copy.add_component(target)
            components[key] = target
        if sequence(answer) < sequence(target):
            continue
        line = find_attendee(target, sender)
        if line is None:
            continue  # an uninvited attendee: not added (see the module docstring)
        stamp = _stamp(answer)
        seen = str(line.params.get(REPLY_STAMP, ""))
        if stamp and seen and sequence(answer) == sequence(target) and stamp < seen:
            continue  # an older answer arriving late (RFC 5546 §2.1.5)
        status = partstat(lines[0])
        if partstat(line) != status:
            line.params["PARTSTAT"] = status
            line.params.pop("RSVP", None)
            changed = True
        if stamp:
            line.params[REPLY_STAMP] = stamp
    return changed


def _stamp(component: Component) -> str:
    try:
        value = component.decoded("DTSTAMP")
    except (KeyError, ValueError, TypeError):
        return ""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return ""


def _keep_attendee_state(previous: Component, incoming: Component, attendee: str) -> None:
    """The attendee keeps their answer when the time did not move, and their alarms."""
    line = find_attendee(incoming, attendee)
    if line is not None:
        if timing_changed(previous, incoming):
            line.params["PARTSTAT"] = "NEEDS-ACTION"
        else:
            kept = find_attendee(previous, attendee)
            line.params["PARTSTAT"] = partstat(kept)
    alarms = [c for c in previous.subcomponents if c.name == "VALARM"]
    incoming.subcomponents = [c for c in incoming.subcomponents if c.name != "VALARM"] + alarms


def apply_request(
    existing: Calendar | None, request: Calendar, *, attendee: str
) -> Calendar | None:
    """RFC 5546 §3.2.2 REQUEST into an attendee's copy (RFC 6638 §3.2.2). New instances
    come in NEEDS-ACTION; an updated instance keeps the attendee's PARTSTAT unless its
    time moved; a request older (SEQUENCE) than the copy is ignored (None)."""
    incoming = by_instance(request)
    current = by_instance(existing)
    for key, component in incoming.items():
        if key in current and sequence(component) < sequence(current[key]):
            return None
    result = _new_calendar(None, timezones(request))
    if MASTER not in incoming and existing is not None:
        # Instances only: the rest of the copy stays as it is.
        zone_ids = {str(z.get("TZID")) for z in timezones(request)}
        for zone in timezones(existing):
            if str(zone.get("TZID")) not in zone_ids:
                result.add_component(copy.deepcopy(zone))
        for key, component in current.items():
            if key not in incoming:
                result.add_component(copy.deepcopy(component))
    for key, component in incoming.items():
        stored = copy.deepcopy(component)
        _without_server_parameters(stored)
        previous = current.get(key) or (current.get(MASTER) if key != MASTER else None)
        if previous is not None:
            _keep_attendee_state(previous, stored, attendee)
        else:
            line = find_attendee(stored, attendee)
            if line is not None:
                line.params["PARTSTAT"] = "NEEDS-ACTION"
        result.add_component(stored)
    return result


def apply_cancel(existing: Calendar, cancel: Calendar) -> Calendar | None:
    """RFC 5546 §3.2.5 CANCEL into an attendee's copy: the whole object or the named
    instances become STATUS:CANCELLED (kept, so the user sees what was cancelled);
    an instance without an override is excluded (EXDATE). None when stale."""
    current = by_instance(existing)
    if not current:
        return None
    result = copy.deepcopy(existing)
    targets = by_instance(result)
    for component in scheduling_components(cancel):
        key = instance_key(component)
        target = targets.get(key)
        if target is not None and sequence(component) < sequence(target):
            return None
        if key == MASTER:
            for each in targets.values():
                each.pop("STATUS", None)
                each.add("STATUS", "CANCELLED")
            master = targets.get(MASTER)
            if master is not None:
                master.pop("SEQUENCE", None)
                master.add("SEQUENCE", max(sequence(component), sequence(master)))
            continue
        if target is not None:
            target.pop("STATUS", None)
            target.add("STATUS", "CANCELLED")
            target.pop("SEQUENCE", None)
            target.add("SEQUENCE", sequence(component))
        elif MASTER in targets and "RECURRENCE-ID" in component:
            targets[MASTER].add("EXDATE", component.decoded("RECURRENCE-ID"))
    return result


def parse(data: bytes | str) -> Calendar:
    """One iCalendar object, or Refused(INVALID) (RFC 5545 syntax)."""
    try:
        calendar = Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError, TypeError) as error:
        raise Refused(Reason.INVALID, f"invalid iCalendar data: {error}") from None
    if not isinstance(calendar, Calendar):
        raise Refused(Reason.INVALID, "not a VCALENDAR object")
    return calendar


def method_of(calendar: Calendar) -> Method | None:
    value = str(calendar.get("METHOD", "")).upper()
    try:
        return Method(value)
    except ValueError:
        return None


def without_method(calendar: Calendar) -> Calendar:
    """A calendar object fit for storing (RFC 4791 §4.1: no METHOD in a resource)."""
    stored = copy.deepcopy(calendar)
    stored.pop("METHOD", None)
    return stored


def iter_addresses(calendar: Calendar) -> Iterator[str]:
    """Every ORGANIZER and ATTENDEE address of the object."""
    for component in scheduling_components(calendar):
        organizer = address_of(component.get("ORGANIZER", ""))
        if organizer:
            yield organizer
        for line in attendee_lines(component):
            address = address_of(line)
            if address:
                yield address
