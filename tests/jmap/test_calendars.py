"""JMAP Calendars (draft-ietf-jmap-calendars) over HTTP against a real node, both
backends: Calendar/get|changes|set, CalendarEvent/get|changes|set|query|queryChanges,
their errors, and the JSCalendar mapping as a client sees it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.groupware.test_jscalendar import JSON
from tests.jmap.conftest import JmapClient, JmapNode

CALENDARS = "urn:ietf:params:jmap:calendars"
USING = ["urn:ietf:params:jmap:core", CALENDARS]


def call(
    client: JmapClient, name: str, args: dict[str, Any], *, expect: str | None = None
) -> dict[str, Any]:
    """One method call with the calendars capability; the response must be ``expect``
    (the method's own name by default)."""
    answer = client.request([[name, {"accountId": client.account_id, **args}, "c0"]], using=USING)
    got_name, got_args, call_id = answer["methodResponses"][0]
    assert call_id == "c0"
    assert got_name == (expect or name), answer["methodResponses"]
    result: dict[str, Any] = got_args
    return result


def error(client: JmapClient, name: str, args: dict[str, Any], kind: str) -> dict[str, Any]:
    result = call(client, name, args, expect="error")
    assert result["type"] == kind, result
    return result


def default_calendar(client: JmapClient) -> str:
    listed = call(client, "Calendar/get", {"ids": None})["list"]
    (default,) = [c["id"] for c in listed if c["isDefault"]]
    return str(default)


def create_event(
    client: JmapClient, event: dict[str, Any], *, send: bool = False
) -> tuple[str, dict[str, Any]]:
    args: dict[str, Any] = {"create": {"e": event}}
    if send:
        args["sendSchedulingMessages"] = True
    result = call(client, "CalendarEvent/set", args)
    assert result["notCreated"] is None, result["notCreated"]
    created: dict[str, Any] = result["created"]["e"]
    return str(created["id"]), created


def get_event(client: JmapClient, event_id: str) -> dict[str, Any]:
    result = call(client, "CalendarEvent/get", {"ids": [event_id]})
    assert result["notFound"] == [], result
    (event,) = result["list"]
    found: dict[str, Any] = event
    return found


MEETING = {
    "@type": "Event",
    "uid": "meeting-1@example.test",
    "title": "Réunion budget / Budget meeting",
    "description": "Ordre du jour\nAgenda",
    "start": "2026-12-01T10:00:00",
    "timeZone": "Europe/Paris",
    "duration": "PT1H30M",
    "status": "tentative",
    "freeBusyStatus": "free",
    "privacy": "private",
    "locations": {"1": {"@type": "Location", "name": "Salle 3"}},
    "keywords": {"budget": True, "finance": True},
    "priority": 5,
    "alerts": {
        "a1": {
            "@type": "Alert",
            "trigger": {"@type": "OffsetTrigger", "offset": "-PT15M", "relativeTo": "start"},
            "action": "display",
        }
    },
}


def test_session_advertises_calendars(client: JmapClient) -> None:
    session = client.http.get("/.well-known/jmap", follow_redirects=True).json()
    assert CALENDARS in session["capabilities"]
    account = session["accounts"][client.account_id]
    assert account["accountCapabilities"][CALENDARS]["mayCreateCalendar"] is True
    assert session["primaryAccounts"][CALENDARS] == client.account_id


def test_calendar_methods_need_the_capability(client: JmapClient) -> None:
    answer = client.request([["Calendar/get", {"accountId": client.account_id}, "c0"]])
    assert answer["methodResponses"][0][1]["type"] == "unknownMethod"


def test_default_calendar_and_rights(client: JmapClient) -> None:
    result = call(client, "Calendar/get", {"ids": None})
    (calendar,) = result["list"]
    assert calendar["isDefault"] is True
    assert calendar["name"] == "Calendar"
    assert calendar["isSubscribed"] is True and calendar["isVisible"] is True
    assert calendar["includeInAvailability"] == "all"
    assert calendar["myRights"]["mayWriteAll"] is True
    assert calendar["timeZone"] is None
    assert result["state"].isdigit()
    only = call(
        client, "Calendar/get", {"ids": [calendar["id"], "K999999"], "properties": ["name"]}
    )
    assert only["list"] == [{"id": calendar["id"], "name": "Calendar"}]
    assert only["notFound"] == ["K999999"]
    error(client, "Calendar/get", {"properties": ["nope"]}, "invalidArguments")


def test_calendar_set_create_update_destroy_and_changes(client: JmapClient) -> None:
    default_calendar(client)  # the defaults exist before the state is taken
    state = call(client, "Calendar/get", {"ids": []})["state"]
    created = call(
        client,
        "Calendar/set",
        {
            "create": {
                "new": {
                    "name": "Travail",
                    "description": "Work",
                    "color": "#ff0000",
                    "sortOrder": 3,
                    "isVisible": False,
                    "includeInAvailability": "attending",
                    "timeZone": "Europe/Paris",
                }
            }
        },
    )
    new_id = created["created"]["new"]["id"]
    assert created["created"]["new"]["isDefault"] is False
    got = call(client, "Calendar/get", {"ids": [new_id]})["list"][0]
    assert got["name"] == "Travail" and got["description"] == "Work"
    assert got["color"] == "#ff0000" and got["sortOrder"] == 3
    assert got["isVisible"] is False and got["isSubscribed"] is True
    assert got["includeInAvailability"] == "attending"
    assert got["timeZone"] == "Europe/Paris"
    changes = call(client, "Calendar/changes", {"sinceState": state})
    assert changes["created"] == [new_id]
    assert changes["updated"] == [] and changes["destroyed"] == []
    state2 = changes["newState"]

    updated = call(
        client,
        "Calendar/set",
        {"ifInState": state2, "update": {new_id: {"name": "Work", "isVisible": True}}},
    )
    assert updated["updated"] == {new_id: None}
    got = call(client, "Calendar/get", {"ids": [new_id]})["list"][0]
    assert got["name"] == "Work" and got["isVisible"] is True
    assert call(client, "Calendar/changes", {"sinceState": state2})["updated"] == [new_id]

    # ifInState that is no longer current
    error(
        client,
        "Calendar/set",
        {"ifInState": state2, "update": {new_id: {"name": "x"}}},
        "stateMismatch",
    )
    refused = call(
        client,
        "Calendar/set",
        {
            "create": {"bad": {"name": ""}, "bad2": {"name": "x", "isDefault": True}},
            "update": {new_id: {"sortOrder": -1}, "K999999": {"name": "x"}},
        },
    )
    assert refused["notCreated"]["bad"]["type"] == "invalidProperties"
    assert refused["notCreated"]["bad"]["properties"] == ["name"]
    assert refused["notCreated"]["bad2"]["properties"] == ["isDefault"]
    assert refused["notUpdated"][new_id]["properties"] == ["sortOrder"]
    assert refused["notUpdated"]["K999999"]["type"] == "notFound"

    state3 = call(client, "Calendar/get", {"ids": []})["state"]
    destroyed = call(client, "Calendar/set", {"destroy": [new_id]})
    assert destroyed["destroyed"] == [new_id]
    assert call(client, "Calendar/get", {"ids": [new_id]})["notFound"] == [new_id]
    assert call(client, "Calendar/changes", {"sinceState": state3})["destroyed"] == [new_id]


def test_calendar_with_events_is_destroyed_only_on_request(client: JmapClient) -> None:
    made = call(client, "Calendar/set", {"create": {"c": {"name": "Temp"}}})
    calendar_id = made["created"]["c"]["id"]
    event_id, _ = create_event(client, {**MEETING, "calendarIds": {calendar_id: True}})
    refused = call(client, "Calendar/set", {"destroy": [calendar_id]})
    assert refused["notDestroyed"][calendar_id]["type"] == "calendarHasEvent"
    state = call(client, "CalendarEvent/get", {"ids": []})["state"]
    done = call(client, "Calendar/set", {"destroy": [calendar_id], "onDestroyRemoveEvents": True})
    assert done["destroyed"] == [calendar_id]
    assert call(client, "CalendarEvent/get", {"ids": [event_id]})["notFound"] == [event_id]
    assert call(client, "CalendarEvent/changes", {"sinceState": state})["destroyed"] == [event_id]


def test_event_create_get_mapping(client: JmapClient) -> None:
    calendar_id = default_calendar(client)
    event_id, created = create_event(client, {**MEETING, "calendarIds": {calendar_id: True}})
    assert created["calendarIds"] == {calendar_id: True}
    event = get_event(client, event_id)
    for key, value in MEETING.items():
        assert event[key] == value, key
    assert event["showWithoutTime"] is False
    assert event["calendarIds"] == {calendar_id: True}
    assert event["recurrenceRules"] is None and event["recurrenceOverrides"] is None
    assert event["isOrigin"] is True
    assert event["created"].endswith("Z") and event["updated"].endswith("Z")
    # Paris is UTC+1 in December.
    assert event["utcStart"] == "2026-12-01T09:00:00Z"
    assert event["utcEnd"] == "2026-12-01T10:30:00Z"
    some = call(client, "CalendarEvent/get", {"ids": [event_id], "properties": ["title"]})
    assert some["list"] == [{"id": event_id, "title": MEETING["title"]}]


def test_event_without_uid_gets_one_and_all_day(client: JmapClient) -> None:
    event_id, created = create_event(
        client,
        {
            "title": "Congés",
            "start": "2026-12-24T00:00:00",
            "duration": "P2D",
            "showWithoutTime": True,
        },
    )
    assert created["uid"]
    event = get_event(client, event_id)
    assert event["uid"] == created["uid"]
    assert event["showWithoutTime"] is True and event["duration"] == "P2D"
    assert event["timeZone"] is None


def test_event_set_errors(client: JmapClient) -> None:
    event_id, _ = create_event(client, MEETING)
    again = call(client, "CalendarEvent/set", {"create": {"dup": {**MEETING, "title": "Copie"}}})
    assert again["notCreated"]["dup"]["type"] == "alreadyExists"
    assert again["notCreated"]["dup"]["existingId"] == event_id
    bad = call(
        client,
        "CalendarEvent/set",
        {
            "create": {
                "start": {"uid": "x1", "start": "tomorrow"},
                "zone": {"uid": "x2", "start": "2026-12-01T10:00:00", "timeZone": "Mars/Olympus"},
                "duration": {"uid": "x3", "start": "2026-12-01T10:00:00", "duration": "1 hour"},
                "unknown": {"uid": "x4", "start": "2026-12-01T10:00:00", "colour": "red"},
                "calendar": {
                    "uid": "x5",
                    "start": "2026-12-01T10:00:00",
                    "calendarIds": {"K999999": True},
                },
                "rule": {
                    "uid": "x6",
                    "start": "2026-12-01T10:00:00",
                    "recurrenceRules": [{"frequency": "fortnightly"}],
                },
                "server": {"uid": "x7", "start": "2026-12-01T10:00:00", "id": "V1"},
            },
            "update": {"V999998": {"title": "x"}, event_id: {"uid": "other"}},
            "destroy": ["V999999", "nonsense!"],
        },
    )
    not_created = bad["notCreated"]
    assert {k: v["type"] for k, v in not_created.items()} == dict.fromkeys(
        ("start", "zone", "duration", "unknown", "calendar", "rule", "server"), "invalidProperties"
    )
    assert not_created["start"]["properties"] == ["start"]
    assert not_created["zone"]["properties"] == ["timeZone"]
    assert not_created["duration"]["properties"] == ["duration"]
    assert not_created["unknown"]["properties"] == ["colour"]
    assert not_created["calendar"]["properties"] == ["calendarIds"]
    assert not_created["rule"]["properties"] == ["recurrenceRules/0/frequency"]
    assert bad["notUpdated"]["V999998"]["type"] == "notFound"
    assert bad["notUpdated"][event_id]["type"] == "invalidProperties"
    assert bad["notDestroyed"]["V999999"]["type"] == "notFound"
    assert bad["notDestroyed"]["nonsense!"]["type"] == "notFound"
    assert get_event(client, event_id)["title"] == MEETING["title"]


def test_event_update_destroy_and_changes(client: JmapClient) -> None:
    event_id, _ = create_event(client, MEETING)
    state = call(client, "CalendarEvent/get", {"ids": []})["state"]
    result = call(
        client,
        "CalendarEvent/set",
        {
            "ifInState": state,
            "update": {
                event_id: {
                    "title": "Budget (reporté)",
                    "keywords/finance": None,
                    "locations/1/name": "Salle 4",
                    "alerts/a1/trigger/offset": "-PT30M",
                }
            },
        },
    )
    assert result["updated"] == {event_id: None}
    event = get_event(client, event_id)
    assert event["title"] == "Budget (reporté)"
    assert event["keywords"] == {"budget": True}
    assert event["locations"]["1"]["name"] == "Salle 4"
    assert event["alerts"]["a1"]["trigger"]["offset"] == "-PT30M"
    changes = call(client, "CalendarEvent/changes", {"sinceState": state})
    assert changes["updated"] == [event_id] and changes["created"] == []
    state2 = changes["newState"]
    error(client, "CalendarEvent/set", {"ifInState": state, "destroy": [event_id]}, "stateMismatch")
    gone = call(client, "CalendarEvent/set", {"destroy": [event_id]})
    assert gone["destroyed"] == [event_id]
    assert call(client, "CalendarEvent/changes", {"sinceState": state2})["destroyed"] == [event_id]
    error(client, "CalendarEvent/changes", {"sinceState": "nonsense"}, "cannotCalculateChanges")


# Every Monday 09:00 Paris from 2 March 2026, 10 times; 16 March excluded; 23 March moved
# to 14:00.
WEEKLY = {
    "uid": "weekly@example.test",
    "title": "Point d'équipe",
    "start": "2026-03-02T09:00:00",
    "timeZone": "Europe/Paris",
    "duration": "PT30M",
    "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly", "count": 10}],
    "recurrenceOverrides": {
        "2026-03-16T09:00:00": {"excluded": True},
        "2026-03-23T09:00:00": {"start": "2026-03-23T14:00:00", "title": "Point (déplacé)"},
    },
}


def test_recurrence_rules_and_overrides_round_trip(client: JmapClient) -> None:
    event_id, _ = create_event(client, WEEKLY)
    event = get_event(client, event_id)
    assert event["recurrenceRules"] == WEEKLY["recurrenceRules"]
    assert event["recurrenceOverrides"] == WEEKLY["recurrenceOverrides"]


def test_query_after_before_on_recurrences(client: JmapClient) -> None:
    weekly_id, _ = create_event(client, WEEKLY)
    single_id, _ = create_event(
        client,
        {
            "uid": "one@example.test",
            "title": "Dentiste",
            "start": "2026-03-17T08:00:00",
            "timeZone": "Europe/Paris",
            "duration": "PT1H",
        },
    )

    def query(after: str, before: str, **extra: Any) -> list[str]:
        result = call(
            client,
            "CalendarEvent/query",
            {"filter": {"after": after, "before": before}, **extra},
        )
        ids: list[str] = result["ids"]
        return ids

    # 16 March 09:00 Paris (08:00Z) is excluded: only the dentist on 17 March that week.
    assert query("2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z") == []
    assert query("2026-03-16T00:00:00Z", "2026-03-18T00:00:00Z") == [single_id]
    # 23 March: the instance moved to 14:00 Paris (13:00Z).
    assert query("2026-03-23T07:00:00Z", "2026-03-23T09:00:00Z") == []
    assert query("2026-03-23T13:00:00Z", "2026-03-23T13:30:00Z") == [weekly_id]
    # After the tenth and last instance (4 May), nothing.
    assert query("2026-05-05T00:00:00Z", "2026-06-01T00:00:00Z") == []

    # The same windows nested in an operator: decided by expanding the series itself.
    def nested(after: str, before: str) -> list[str]:
        window = {"after": after, "before": before}
        result = call(
            client,
            "CalendarEvent/query",
            {"filter": {"operator": "AND", "conditions": [window, {"title": "point"}]}},
        )
        found: list[str] = result["ids"]
        return found

    assert nested("2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z") == []
    assert nested("2026-03-23T07:00:00Z", "2026-03-23T09:00:00Z") == []
    assert nested("2026-03-23T13:00:00Z", "2026-03-23T13:30:00Z") == [weekly_id]
    assert nested("2026-03-30T07:00:00Z", "2026-03-30T08:00:01Z") == [weekly_id]

    expanded = query("2026-03-09T00:00:00Z", "2026-03-31T00:00:00Z", expandRecurrences=True)
    number = weekly_id[1:]
    assert expanded == [
        f"V{number}_20260309T090000",
        single_id,
        f"V{number}_20260323T090000",
        f"V{number}_20260330T090000",
    ]
    got = call(client, "CalendarEvent/get", {"ids": [*expanded[2:3], f"V{number}_20260316T090000"]})
    assert got["notFound"] == [f"V{number}_20260316T090000"]  # excluded
    (moved,) = got["list"]
    assert moved["id"] == expanded[2]
    assert moved["baseEventId"] == weekly_id
    assert moved["recurrenceId"] == "2026-03-23T09:00:00"
    assert moved["start"] == "2026-03-23T14:00:00"
    assert moved["title"] == "Point (déplacé)"
    assert moved["recurrenceRules"] is None
    plain = call(client, "CalendarEvent/get", {"ids": [expanded[0]]})["list"][0]
    assert plain["start"] == "2026-03-09T09:00:00" and plain["title"] == "Point d'équipe"

    error(
        client,
        "CalendarEvent/query",
        {"filter": {"after": "2026-03-01T00:00:00Z"}, "expandRecurrences": True},
        "invalidArguments",
    )
    result = call(
        client,
        "CalendarEvent/query",
        {
            "filter": {"after": "2026-03-01T00:00:00Z", "before": "2026-04-01T00:00:00Z"},
            "expandRecurrences": True,
            "limit": 2,
            "calculateTotal": True,
        },
    )
    assert result["total"] == 5 and len(result["ids"]) == 2
    assert result["canCalculateChanges"] is False


def test_instance_update_and_destroy_become_overrides(client: JmapClient) -> None:
    weekly_id, _ = create_event(client, WEEKLY)
    number = weekly_id[1:]
    instance = f"V{number}_20260309T090000"
    result = call(
        client,
        "CalendarEvent/set",
        {
            "update": {instance: {"title": "Exceptionnel"}},
            "destroy": [f"V{number}_20260330T090000"],
        },
    )
    assert result["updated"] == {instance: None}
    assert result["destroyed"] == [f"V{number}_20260330T090000"]
    overrides = get_event(client, weekly_id)["recurrenceOverrides"]
    assert overrides["2026-03-09T09:00:00"] == {"title": "Exceptionnel"}
    assert overrides["2026-03-30T09:00:00"] == {"excluded": True}
    assert get_event(client, instance)["title"] == "Exceptionnel"


def test_query_filters_sort_and_errors(client: JmapClient) -> None:
    other = call(client, "Calendar/set", {"create": {"o": {"name": "Other"}}})["created"]["o"]["id"]
    a, _ = create_event(
        client,
        {
            "uid": "a@x",
            "title": "Alpha",
            "description": "lunch with Zoé",
            "start": "2026-04-02T12:00:00",
            "timeZone": "Europe/Paris",
            "duration": "PT1H",
        },
    )
    b, _ = create_event(
        client,
        {
            "uid": "b@x",
            "title": "Bravo",
            "start": "2026-04-01T12:00:00",
            "timeZone": "Etc/UTC",
            "calendarIds": {other: True},
            "locations": {"1": {"name": "Lyon"}},
        },
    )

    def ids(args: dict[str, Any]) -> list[str]:
        found: list[str] = call(client, "CalendarEvent/query", args)["ids"]
        return found

    assert ids({}) == [b, a]  # by start
    assert ids({"sort": [{"property": "start", "isAscending": False}]}) == [a, b]
    assert ids({"sort": [{"property": "title"}]}) == [a, b]
    # created/updated: when the server stored the object (a before b).
    assert ids({"sort": [{"property": "created"}]}) == [a, b]
    assert ids({"sort": [{"property": "created", "isAscending": False}]}) == [b, a]
    call(client, "CalendarEvent/set", {"update": {a: {"title": "Alpha 2"}}})
    assert ids({"sort": [{"property": "updated"}]}) == [b, a]
    assert ids({"filter": {"inCalendars": [other]}}) == [b]
    assert ids({"filter": {"title": "alp"}}) == [a]
    assert ids({"filter": {"text": "zoé"}}) == [a]
    assert ids({"filter": {"location": "lyon"}}) == [b]
    assert ids({"filter": {"uid": "b@x"}}) == [b]
    assert ids({"filter": {"operator": "NOT", "conditions": [{"uid": "b@x"}]}}) == [a]
    assert ids(
        {"filter": {"operator": "OR", "conditions": [{"title": "bravo"}, {"uid": "a@x"}]}}
    ) == [b, a]
    error(client, "CalendarEvent/query", {"filter": {"colour": "red"}}, "unsupportedFilter")
    error(client, "CalendarEvent/query", {"sort": [{"property": "size"}]}, "unsupportedSort")
    error(client, "CalendarEvent/query", {"filter": {"after": "yesterday"}}, "invalidArguments")


def test_query_changes(client: JmapClient) -> None:
    a, _ = create_event(
        client, {"uid": "qa", "title": "A", "start": "2026-05-01T10:00:00", "timeZone": "Etc/UTC"}
    )
    first = call(client, "CalendarEvent/query", {"filter": {"title": "A"}})
    assert first["ids"] == [a] and first["canCalculateChanges"] is True
    b, _ = create_event(
        client, {"uid": "qb", "title": "AB", "start": "2026-04-01T10:00:00", "timeZone": "Etc/UTC"}
    )
    changes = call(
        client,
        "CalendarEvent/queryChanges",
        {"filter": {"title": "A"}, "sinceQueryState": first["queryState"]},
    )
    assert {"id": b, "index": 0} in changes["added"]
    assert b in changes["removed"]
    error(
        client,
        "CalendarEvent/queryChanges",
        {"sinceQueryState": first["queryState"], "expandRecurrences": True},
        "cannotCalculateChanges",
    )


def test_changes_leave_out_other_accounts(node: JmapNode, client: JmapClient) -> None:
    state = call(client, "CalendarEvent/get", {"ids": []})["state"]
    bob = node.add_account("bob@example.test")
    bob_client = node.client(bob, address="bob@example.test")
    bob_event, _ = create_event(bob_client, MEETING)
    assert call(client, "CalendarEvent/get", {"ids": [bob_event]})["notFound"] == [bob_event]
    changes = call(client, "CalendarEvent/changes", {"sinceState": state})
    assert changes["created"] == [] and changes["updated"] == []


@pytest.mark.parametrize("bad", ["V01", "V", "K1", "V1_2026", "V1_20261301T000000"])
def test_bad_event_ids_are_not_found(client: JmapClient, bad: str) -> None:
    result = call(client, "CalendarEvent/get", {"ids": [bad]})
    assert result["notFound"] == [bad] and result["list"] == []


# Each example is two HTTP requests with several commits: a loaded machine (and
# PostgreSQL) needs more than the suite's default 120 s for the whole run.
@pytest.mark.timeout(600)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    create=st.dictionaries(st.sampled_from(list(MEETING)), JSON, max_size=3),
    patch=st.dictionaries(
        st.sampled_from(
            [
                "title",
                "start",
                "participants/x",
                "alerts/a1/trigger",
                "recurrenceRules",
                "a/b/c",
                "",
            ]
        ),
        JSON,
        max_size=2,
    ),
    calendar=st.dictionaries(
        st.sampled_from(["name", "color", "sortOrder", "timeZone", "isVisible"]), JSON, max_size=2
    ),
)
def test_any_json_gets_a_set_error_never_a_server_failure(
    client: JmapClient, create: dict[str, Any], patch: dict[str, Any], calendar: dict[str, Any]
) -> None:
    existing, _ = create_event(client, {"start": "2026-01-01T10:00:00"})
    result = call(
        client,
        "CalendarEvent/set",
        {
            "create": {"n": {**MEETING, "uid": f"fuzz-{existing}", **create}},
            "update": {existing: patch},
        },
    )
    outcome = [*(result["created"] or {}), *(result["notCreated"] or {})]
    assert outcome == ["n"]
    assert existing in {**(result["updated"] or {}), **(result["notUpdated"] or {})}
    for refusal in [*(result["notCreated"] or {}).values(), *(result["notUpdated"] or {}).values()]:
        assert refusal["type"] in ("invalidProperties", "invalidPatch", "alreadyExists"), refusal
    answer = call(
        client,
        "Calendar/set",
        {"create": {"c": calendar}, "update": {default_calendar(client): calendar}},
    )
    for refusal in [*(answer["notCreated"] or {}).values(), *(answer["notUpdated"] or {}).values()]:
        assert refusal["type"] == "invalidProperties", refusal


def test_get_reduces_overrides_and_participants_on_request(client: JmapClient) -> None:
    event_id, _ = create_event(
        client,
        {
            **WEEKLY,
            "participants": {
                "o": {"email": "alice@example.test", "roles": {"owner": True}},
                "b": {"email": "bob@example.test", "roles": {"attendee": True}},
            },
        },
    )
    full = get_event(client, event_id)
    assert len(full["recurrenceOverrides"]) == 2 and len(full["participants"]) == 2
    reduced = call(
        client,
        "CalendarEvent/get",
        {
            "ids": [event_id],
            # 23 March 09:00 Paris is 08:00Z: kept; 16 March is before the window.
            "recurrenceOverridesAfter": "2026-03-20T00:00:00Z",
            "recurrenceOverridesBefore": "2026-03-23T08:00:01Z",
            "reduceParticipants": True,
        },
    )["list"][0]
    assert list(reduced["recurrenceOverrides"]) == ["2026-03-23T09:00:00"]
    assert [p["email"] for p in reduced["participants"].values()] == ["alice@example.test"]
    error(
        client,
        "CalendarEvent/get",
        {"ids": [event_id], "recurrenceOverridesAfter": "soon"},
        "invalidArguments",
    )


def test_destroying_the_default_calendar_makes_a_new_one(client: JmapClient) -> None:
    """Every account has a calendar for invitations (as over CalDAV, where the default
    calendar comes back on next use): destroying it gives a new, empty default."""
    default = default_calendar(client)
    old_event, _ = create_event(client, {"start": "2026-01-01T10:00:00"})
    destroyed = call(client, "Calendar/set", {"destroy": [default], "onDestroyRemoveEvents": True})
    assert destroyed["destroyed"] == [default]
    (fresh,) = call(client, "Calendar/get", {"ids": None})["list"]
    assert fresh["id"] != default and fresh["isDefault"] is True
    assert call(client, "CalendarEvent/get", {"ids": [old_event]})["notFound"] == [old_event]
    _event_id, created = create_event(client, {"start": "2026-01-01T10:00:00"})
    assert created["calendarIds"] == {fresh["id"]: True}
