"""RFC 3461 §4: the xtext codec and the DSN parameters of MAIL and RCPT."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.mail.dsn import (
    ParameterError,
    RecipientParameters,
    decode_xtext,
    encode_xtext,
    split_mail_parameters,
    split_recipient_parameters,
)

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126))


@given(printable)
def test_xtext_round_trip(text: str) -> None:
    encoded = encode_xtext(text)
    assert "=" not in encoded and " " not in encoded
    assert all(33 <= ord(c) <= 126 for c in encoded)
    assert decode_xtext(encoded) == text


@given(st.text())
def test_decode_never_fails_otherwise(value: str) -> None:
    # Any input: a decoded printable string or ParameterError, nothing else.
    try:
        decoded = decode_xtext(value)
    except ParameterError:
        return
    assert all(32 <= ord(c) <= 126 for c in decoded)


@pytest.mark.parametrize("bad", ["a+2b", "a+2", "a=b", "a b", "+0A", "é", "a+"])
def test_decode_refuses(bad: str) -> None:
    with pytest.raises(ParameterError):
        decode_xtext(bad)


def test_mail_parameters() -> None:
    params, rest = split_mail_parameters(["ret=hdrs", "ENVID=QQ+2B314159", "SIZE=10"])
    assert (params.ret, params.envid, rest) == ("HDRS", "QQ+314159", ["SIZE=10"])
    for bad in (["RET=ALL"], ["RET"], ["RET=FULL", "RET=HDRS"], ["ENVID="], ["ENVID"],
                ["ENVID=" + "x" * 101], ["ENVID=a", "ENVID=b"]):  # fmt: skip
        with pytest.raises(ParameterError):
            split_mail_parameters(bad)


def test_recipient_parameters() -> None:
    params, rest = split_recipient_parameters(["notify=delay,success", "ORCPT=rfc822;b+2Bc@x.org"])
    assert params == RecipientParameters("SUCCESS,DELAY", "rfc822;b+c@x.org") and rest == []
    assert params.wants("SUCCESS") and not params.wants("FAILURE")
    assert RecipientParameters().wants("FAILURE") and RecipientParameters().wants("DELAY")
    assert not RecipientParameters().wants("SUCCESS")
    assert not RecipientParameters("NEVER").wants("FAILURE")
    for bad in (["NOTIFY=NEVER,SUCCESS"], ["NOTIFY="], ["NOTIFY=SUCCESS,SUCCESS"],
                ["NOTIFY=FAIL"], ["NOTIFY=NEVER", "NOTIFY=NEVER"], ["ORCPT=a@b"],
                ["ORCPT=;a@b"], ["ORCPT=rfc822;"], ["ORCPT=rfc822;a b"],
                ["ORCPT=rfc822;" + "a" * 500]):  # fmt: skip
        with pytest.raises(ParameterError):
            split_recipient_parameters(bad)
