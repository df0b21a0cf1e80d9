"""Hostile method calls over HTTP: random arguments to every core, Mailbox and Thread
method are answered with a response or a precise error, never serverFail or HTTP 500,
and never change another account."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.jmap.conftest import JmapClient, JmapNode

METHODS = [
    "Core/echo",
    "Blob/copy",
    "Mailbox/get",
    "Mailbox/changes",
    "Mailbox/query",
    "Mailbox/queryChanges",
    "Mailbox/set",
    "Thread/get",
    "Thread/changes",
]
ARGUMENT_NAMES = [
    "accountId", "ids", "properties", "sinceState", "maxChanges", "filter", "sort",
    "position", "anchor", "anchorOffset", "limit", "calculateTotal", "sinceQueryState",
    "upToId", "ifInState", "create", "update", "destroy", "onDestroyRemoveEmails",
    "sortAsTree", "filterAsTree", "fromAccountId", "blobIds", "#ids",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from(["A1", "M1", "M2", "#a", "T1", "0", "", "INBOX", "a/b", "\x00"])
    | st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "parentId",
                    "role",
                    "operator",
                    "conditions",
                    "property",
                    "isAscending",
                    "resultOf",
                    "path",
                    "sortOrder",
                    "isSubscribed",
                    "M1",
                    "M7",
                    "a",
                    "myRights/mayDelete",
                ]
            )
            | st.text(max_size=3),
            children,
            max_size=3,
        )
    ),
    max_leaves=12,
)
calls = st.tuples(
    st.sampled_from(METHODS), st.dictionaries(st.sampled_from(ARGUMENT_NAMES), values, max_size=5)
)


def test_random_calls_get_precise_answers(node: JmapNode, client: JmapClient) -> None:
    other = node.add_account("mallory@example.test")
    other_client = node.client(other, address="mallory@example.test")
    before = other_client.call("Mailbox/get", {"ids": None})

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(calls, min_size=1, max_size=3), st.booleans())
    def run(batch: list[tuple[str, dict[str, Any]]], with_account: bool) -> None:
        method_calls = []
        for index, (name, args) in enumerate(batch):
            if with_account:
                args = {**args, "accountId": client.account_id}
            method_calls.append([name, args, f"c{index}"])
        response = client.http.post(
            "/jmap/api/",
            json={
                "using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"],
                "methodCalls": method_calls,
            },
        )
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            for name, result, _ in response.json()["methodResponses"]:
                if name == "error":
                    assert result["type"] != "serverFail", (method_calls, result)

    run()
    after = other_client.call("Mailbox/get", {"ids": None})
    assert after["list"] == before["list"]
    assert after["state"] == before["state"]
