"""Model-based property test of sync-collection (RFC 6578) over HTTP: hypothesis runs
random sequences of PUT (create or change), DELETE and sync (with or without a
``nresults`` limit, RFC 6578 §3.6 paging) on one address book and one calendar; each
sync must report exactly the members touched since the previous token, with their
current ETags, and the removed ones as 404 (§3.5.2).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from xml.etree import ElementTree

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dav.interop_helpers import (
    DAV,
    DavNode,
    dav_node,
    home,
    last_segment,
    parse_multistatus,
    propfind,
    report,
    sync_token_of,
)

__all__ = ["dav_node"]

NAMES = [f"m{n}" for n in range(6)]
_runs = itertools.count()


@dataclass
class Model:
    collection: str
    kind: str  # "vcf" or "ics"
    prefix: str
    token: str = ""
    exists: dict[str, int] = field(default_factory=dict)  # name -> version
    touched: set[str] = field(default_factory=set)
    existed_at_token: set[str] = field(default_factory=set)

    def body(self, name: str, version: int) -> str:
        uid = f"{self.prefix}-{name}"
        if self.kind == "vcf":
            return (
                f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Version {version}\r\n"
                f"N:{version};Version;;;\r\nEND:VCARD\r\n"
            )
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//sync//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART:202604{1 + version % 28:02d}T100000Z\r\nDURATION:PT1H\r\n"
            f"SUMMARY:Version {version}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )

    def href(self, name: str) -> str:
        return f"{self.collection}{self.prefix}-{name}.{self.kind}"


def sync(http: httpx.Client, model: Model, limit: int | None) -> None:
    present: dict[str, str] = {}
    removed: set[str] = set()
    token = model.token
    for _ in range(50):
        limit_xml = f"<d:limit><d:nresults>{limit}</d:nresults></d:limit>" if limit else ""
        answer = report(
            http,
            model.collection,
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:sync-collection xmlns:d="{DAV}"><d:sync-token>{token}</d:sync-token>'
            f"<d:sync-level>1</d:sync-level>{limit_xml}<d:prop><d:getetag/></d:prop>"
            "</d:sync-collection>",
            depth="0",
        )
        assert answer.status_code == 207, answer.text
        responses = parse_multistatus(answer.content)
        token = sync_token_of(answer.content)
        truncated = False
        members = [p for p in responses.values() if " 507 " not in status_of(p)]
        if limit:
            # RFC 6578 §3.6: at most nresults members per answer.
            assert len(members) <= limit, answer.text
        for href, props in responses.items():
            status = status_of(props)
            if " 507 " in status:
                truncated = True
            elif " 404 " in status:
                removed.add(last_segment(href))
            else:
                present[last_segment(href)] = props[f"{{{DAV}}}getetag"].text or ""
        if not truncated:
            break
    else:
        raise AssertionError("paging never ended")
    # Names are "<prefix>-<name>.<kind>": back to the model's names.
    reported_present = {n.split("-", 1)[1].rsplit(".", 1)[0] for n in present}
    reported_removed = {n.split("-", 1)[1].rsplit(".", 1)[0] for n in removed}
    expected_present = {n for n in model.touched if n in model.exists}
    assert reported_present == expected_present, (reported_present, expected_present)
    must_remove = {
        n for n in model.touched if n not in model.exists and n in model.existed_at_token
    }
    may_remove = {n for n in model.touched if n not in model.exists}
    assert must_remove <= reported_removed <= may_remove, (reported_removed, must_remove)
    for name, etag in present.items():
        got = http.get(f"{model.collection}{name}")
        assert got.status_code == 200
        assert got.headers["etag"] == etag, name
    model.token = token
    model.touched = set()
    model.existed_at_token = set(model.exists)


def status_of(props: dict[str, ElementTree.Element]) -> str:
    return (props["status"].text or "") if "status" in props else ""


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(NAMES)),
        st.tuples(st.just("delete"), st.sampled_from(NAMES)),
        st.tuples(st.just("sync"), st.sampled_from([None, None, 1, 2, 5])),
    ),
    min_size=1,
    max_size=25,
)


def test_sync_collection_follows_the_model(dav_node: DavNode) -> None:
    with dav_node.http() as http:
        assert propfind(http, home(), "<d:resourcetype/>", depth="1").status_code == 207

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(operations=OPERATIONS, calendar=st.booleans())
        def check(operations: list[tuple[str, object]], calendar: bool) -> None:
            prefix = f"r{next(_runs)}"
            collection = home() + ("Calendar/" if calendar else "Contacts/")
            model = Model(collection=collection, kind="ics" if calendar else "vcf", prefix=prefix)
            # Start from a token taken now: earlier examples' members are not this one's.
            sync_token_start(http, model)
            version = itertools.count(1)
            for operation, argument in [*operations, ("sync", None)]:
                if operation == "put":
                    name = str(argument)
                    number = next(version)
                    response = http.put(
                        model.href(name),
                        content=model.body(name, number).encode(),
                        headers={
                            "Content-Type": "text/vcard" if model.kind == "vcf" else "text/calendar"
                        },
                    )
                    assert response.status_code in {201, 204}, response.text
                    assert (response.status_code == 201) == (name not in model.exists)
                    model.exists[name] = number
                    model.touched.add(name)
                elif operation == "delete":
                    name = str(argument)
                    response = http.delete(model.href(name))
                    if name in model.exists:
                        assert response.status_code in {200, 204}, response.text
                        del model.exists[name]
                        model.touched.add(name)
                    else:
                        assert response.status_code == 404, response.text
                else:
                    sync(http, model, argument if isinstance(argument, int) else None)
            for name in list(model.exists):
                assert http.delete(model.href(name)).status_code in {200, 204}

        check()


def sync_token_start(http: httpx.Client, model: Model) -> None:
    """The collection's current token (a Depth 0 PROPFIND of DAV:sync-token)."""
    answer = propfind(http, model.collection, "<d:sync-token/>")
    assert answer.status_code == 207, answer.text
    (props,) = parse_multistatus(answer.content).values()
    model.token = props[f"{{{DAV}}}sync-token"].text or ""
    assert model.token
