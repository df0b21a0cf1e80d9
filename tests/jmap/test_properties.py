"""Hypothesis properties of the sans-I/O parts of the JMAP core: JSON Pointer with `*`
(RFC 6901, RFC 8620 §3.7), PatchObject (RFC 8620 §5.3), request parsing (§3.3) and
ResultReference resolution: malformed input is always a precise error, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.jmap import ids
from hirondelle.jmap.api import parse_request, resolve_references
from hirondelle.jmap.errors import MethodError, RequestError
from hirondelle.jmap.pointer import PatchError, PointerError, apply_patch, evaluate, tokens

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.text(alphabet="ab~/*0", max_size=4)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@given(st.dictionaries(keys, json_values, max_size=5))
def test_pointer_finds_every_member(document: dict[str, Any]) -> None:
    for key, value in document.items():
        assert evaluate(document, "/" + _escape(key)) == value
    assert evaluate(document, "") == document


@given(json_values, st.text(max_size=12))
def test_pointer_never_crashes(document: Any, path: str) -> None:
    with contextlib.suppress(PointerError):
        evaluate(document, path)


@given(
    st.lists(st.dictionaries(st.sampled_from(["id", "x"]), st.integers(), max_size=2), max_size=5)
)
def test_star_maps_over_arrays(items: list[dict[str, int]]) -> None:
    document = {"list": items}
    if all("id" in item for item in items):
        assert evaluate(document, "/list/*/id") == [item["id"] for item in items]
    # Arrays found under `*` are flattened into the result.
    nested = {"list": [{"ids": [i, i + 1]} for i in range(len(items))]}
    assert evaluate(nested, "/list/*/ids") == [v for i in range(len(items)) for v in (i, i + 1)]


@given(st.text(max_size=10))
def test_tokens_round_trip(key: str) -> None:
    assert tokens("/" + _escape(key)) == [key]


@given(
    st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=3), json_values, max_size=4),
    st.dictionaries(st.text(alphabet="abc/", max_size=5), json_values, max_size=4),
)
def test_patch_is_applied_or_refused(document: dict[str, Any], patch: dict[str, Any]) -> None:
    before = json.dumps(document, sort_keys=True)
    try:
        result = apply_patch(document, patch)
    except PatchError:
        assert json.dumps(document, sort_keys=True) == before  # never half-applied in place
        return
    assert json.dumps(document, sort_keys=True) == before  # the input is not modified
    for path, value in patch.items():
        parts = path.split("/")
        target: Any = result
        for part in parts[:-1]:
            target = target[part]
        if value is None:
            assert parts[-1] not in target
        else:
            assert target[parts[-1]] == value


def test_patch_examples() -> None:
    document = {"keywords": {"$seen": True}, "name": "x"}
    assert apply_patch(document, {"keywords/$flagged": True, "name": None}) == {
        "keywords": {"$seen": True, "$flagged": True}
    }
    for bad in ({"missing/x": 1}, {"keywords": {}, "keywords/$seen": None}, {"name/x": 1}, {"": 1}):
        try:
            apply_patch(document, bad)
        except PatchError:
            continue
        raise AssertionError(bad)


@settings(max_examples=300)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_request_parsing_never_crashes(body: bytes) -> None:
    try:
        using, calls, created = parse_request(body)
    except RequestError as error:
        assert error.kind in ("notJSON", "notRequest")
        assert error.to_json()["type"].startswith("urn:ietf:params:jmap:error:")
        return
    assert all(isinstance(u, str) for u in using)
    assert all(isinstance(c[1], dict) for c in calls)
    assert created is None or all(ids.valid(v) for v in created.values())


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=4), json_values)
def test_references_resolve_or_fail_cleanly(args: dict[str, Any], reference: Any) -> None:
    responses = [["Foo/get", {"ids": ["a", "b"], "list": [{"id": "a"}]}, "r"]]
    try:
        resolved = resolve_references({**args, "#x": reference}, responses)
    except MethodError as error:
        assert error.kind in ("invalidResultReference", "invalidArguments")
        return
    assert "#x" not in resolved and "x" in resolved


@given(st.text(max_size=20))
def test_id_decoding(value: str) -> None:
    number = ids.decode(ids.MAILBOX, value)
    if number is not None:
        assert ids.encode(ids.MAILBOX, number) == value
        assert ids.valid(value)
