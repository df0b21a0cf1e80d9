"""Query filters of CalDAV calendar-query and CardDAV addressbook-query, evaluated on parsed
objects (sans-I/O: the DAV front end builds them from XML).

RFC 4791 §9.7 (comp-filter, prop-filter, param-filter, is-not-defined, text-match,
time-range), §9.9 (time-range semantics), RFC 4790 collations ``i;ascii-casemap`` and
``i;octet`` (``i;unicode-casemap`` of RFC 5051 is accepted too, by case folding);
RFC 6352 §10.5 (prop-filter with ``test`` anyof/allof, text-match ``match-type``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hirondelle.groupware import calendar as calendar_rules

COLLATIONS = ("i;ascii-casemap", "i;octet", "i;unicode-casemap")
MATCH_TYPES = ("equals", "contains", "starts-with", "ends-with")


@dataclass(frozen=True, slots=True)
class TextMatch:
    text: str
    collation: str = "i;ascii-casemap"
    negate: bool = False
    match_type: str = "contains"

    def matches(self, value: str) -> bool:
        if self.collation == "i;octet":
            needle, hay = self.text, value
        elif self.collation == "i;ascii-casemap":
            needle, hay = _ascii_fold(self.text), _ascii_fold(value)
        else:
            needle, hay = self.text.casefold(), value.casefold()
        if self.match_type == "equals":
            found = hay == needle
        elif self.match_type == "starts-with":
            found = hay.startswith(needle)
        elif self.match_type == "ends-with":
            found = hay.endswith(needle)
        else:
            found = needle in hay
        return found != self.negate


def _ascii_fold(text: str) -> str:
    return text.translate({c: c + 32 for c in range(65, 91)})


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: dt.datetime | None
    end: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ParamFilter:
    name: str
    is_not_defined: bool = False
    text_match: TextMatch | None = None


@dataclass(frozen=True, slots=True)
class PropFilter:
    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    text_matches: tuple[TextMatch, ...] = ()
    param_filters: tuple[ParamFilter, ...] = ()
    # CardDAV: how the text-matches and param-filters combine.
    test: str = "anyof"


@dataclass(frozen=True, slots=True)
class CompFilter:
    name: str
    is_not_defined: bool = False
    time_range: TimeRange | None = None
    prop_filters: tuple[PropFilter, ...] = ()
    comp_filters: tuple[CompFilter, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class CardFilter:
    """RFC 6352 §10.5: the filter element with ``test`` over its prop-filters."""

    prop_filters: tuple[PropFilter, ...] = ()
    test: str = "anyof"


def _values(component: Any, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text_of(value: Any) -> str:
    if hasattr(value, "to_ical"):
        try:
            raw = value.to_ical()
            return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        except Exception:
            return str(value)
    return str(value)


def _params(value: Any) -> dict[str, str]:
    params = getattr(value, "params", None) or {}
    return {str(k).upper(): str(v) for k, v in params.items()}


def _prop_matches(component: Any, prop: PropFilter, zone: dt.tzinfo) -> bool:
    values = _values(component, prop.name)
    if prop.is_not_defined:
        return not values
    if not values:
        return False
    for value in values:
        if prop.time_range is not None:
            moment = getattr(value, "dt", None)
            if not isinstance(moment, dt.date):
                continue
            point = calendar_rules.to_utc(moment, zone)
            lo = prop.time_range.start or point
            hi = prop.time_range.end
            if not (lo <= point and (hi is None or point < hi)):
                continue
        if not all(tm.matches(_text_of(value)) for tm in prop.text_matches):
            continue
        if not all(_param_matches(_params(value), pf) for pf in prop.param_filters):
            continue
        return True
    return False


def _param_matches(params: dict[str, str], param: ParamFilter) -> bool:
    value = params.get(param.name.upper())
    if param.is_not_defined:
        return value is None
    if value is None:
        return False
    return param.text_match is None or param.text_match.matches(value)


def component_matches(
    component: Any,
    comp: CompFilter,
    zone: dt.tzinfo,
    *,
    calendar: Any = None,
    time_range_checked: bool = False,
) -> bool:
    """RFC 4791 §9.7.1 on one component (``calendar`` is the whole VCALENDAR, for
    expanding a recurring top-level component's time-range)."""
    if component.name != comp.name:
        return False
    if comp.time_range is not None and not time_range_checked:
        if calendar is not None and component.name in calendar_rules.COMPONENTS:
            if not calendar_rules.matches_time_range(
                calendar, component.name, comp.time_range.start, comp.time_range.end, zone
            ):
                return False
        else:
            span = _span(component, zone)
            if span is None:
                return False
            lo = comp.time_range.start or calendar_rules.from_us(-(2**60))
            hi = comp.time_range.end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
            if not calendar_rules.overlaps(span, lo, hi):
                return False
    if not all(_prop_matches(component, prop, zone) for prop in comp.prop_filters):
        return False
    for sub in comp.comp_filters:
        children = [c for c in component.subcomponents if c.name == sub.name]
        if sub.is_not_defined:
            if children:
                return False
            continue
        if not children:
            return False
        top = component.name == "VCALENDAR"
        if not any(
            component_matches(child, sub, zone, calendar=component if top else None)
            for child in children
        ):
            return False
    return True


def _span(component: Any, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime] | None:
    if component.name == "VALARM":
        trigger = component.get("TRIGGER")
        moment = getattr(trigger, "dt", None)
        if isinstance(moment, dt.datetime):
            point = calendar_rules.to_utc(moment, zone)
            return point, point
        return None
    return calendar_rules.instance_span(component, zone)


def calendar_matches(calendar: Any, comp: CompFilter, zone: dt.tzinfo) -> bool:
    """The whole filter (its top comp-filter names VCALENDAR) on one resource."""
    if comp.is_not_defined:
        return False
    return component_matches(calendar, comp, zone)


def is_plain_time_range(comp: CompFilter) -> tuple[str, TimeRange] | None:
    """``VCALENDAR > comp-filter(name, time-range)`` and nothing else: the index alone
    answers it."""
    if comp.name != "VCALENDAR" or comp.prop_filters or comp.time_range:
        return None
    if len(comp.comp_filters) != 1:
        return None
    sub = comp.comp_filters[0]
    if (
        sub.time_range is None
        or sub.is_not_defined
        or sub.prop_filters
        or sub.comp_filters
        or sub.name not in calendar_rules.COMPONENTS
    ):
        return None
    return sub.name, sub.time_range


def time_range_of(comp: CompFilter) -> tuple[str, TimeRange] | None:
    """A time-range on the top-level component, which narrows candidates by the index."""
    if comp.name != "VCALENDAR":
        return None
    for sub in comp.comp_filters:
        if (
            sub.time_range is not None
            and not sub.is_not_defined
            and sub.name in calendar_rules.COMPONENTS
        ):
            return sub.name, sub.time_range
    return None


def card_matches(card: Any, card_filter: CardFilter) -> bool:
    """RFC 6352 §10.5 on one vobject card."""
    if not card_filter.prop_filters:
        return True
    results = (_card_prop_matches(card, prop) for prop in card_filter.prop_filters)
    return all(results) if card_filter.test == "allof" else any(results)


def _card_prop_matches(card: Any, prop: PropFilter) -> bool:
    children = [c for c in card.getChildren() if str(c.name).upper() == prop.name.upper()]
    if prop.is_not_defined:
        return not children
    if not children:
        return False
    if not prop.text_matches and not prop.param_filters:
        return True
    for child in children:
        value = child.value
        if isinstance(value, bytes):
            text = ""
        elif isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value)
        params = {str(k).upper(): ",".join(v) for k, v in child.params.items()}
        checks = [tm.matches(text) for tm in prop.text_matches] + [
            _param_matches(params, pf) for pf in prop.param_filters
        ]
        if all(checks) if prop.test == "allof" else any(checks):
            return True
    return False
