"""Property tests of the server's pure parts: the selected-mailbox view (sequence
numbers, sets, expunge renumbering), LIST patterns, HEADER.FIELDS filtering and
Content-Transfer-Encoding decoding. No store: these run once, not per backend."""

from __future__ import annotations

import base64
import binascii
from array import array

from hypothesis import given
from hypothesis import strategies as st

from hirondelle.imap.commands.fetch import decode_transfer, filter_header
from hirondelle.imap.commands.mailbox import pattern_regex
from hirondelle.imap.proto.sequence_set import SequenceSet
from hirondelle.imap.selected import SelectedMailbox
from hirondelle.store.emails import MailboxColumns, MessageView
from hirondelle.store.mailboxes import Mailbox

uid_lists = st.lists(st.integers(1, 500), unique=True, max_size=60).map(sorted)
ranges = st.lists(st.tuples(st.integers(0, 520), st.integers(0, 520)), min_size=1, max_size=5)


def _view(uids: list[int]) -> SelectedMailbox:
    mailbox = Mailbox(1, 1, "INBOX", None, "inbox", 7, (uids[-1] + 1) if uids else 1, True, 1, 0)
    columns = MailboxColumns(array("I", uids), array("Q", [1] * len(uids)), frozenset())
    return SelectedMailbox(mailbox, columns, modseq=1, read_only=False)


def _numbers(pairs: list[tuple[int, int]], largest: int) -> set[int]:
    """Naive RFC 9051 §6.4.8 semantics, 0 standing for "*"."""
    out: set[int] = set()
    for low, high in pairs:
        low = largest if low == 0 else low
        high = largest if high == 0 else high
        if low == 0 or high == 0:
            continue
        out.update(range(min(low, high), max(low, high) + 1))
    return out


@given(uid_lists, ranges)
def test_uid_sets_name_exactly_the_present_uids(
    uids: list[int], pairs: list[tuple[int, int]]
) -> None:
    view = _view(uids)
    wanted = _numbers(pairs, uids[-1] if uids else 0)
    assert view.resolve(SequenceSet(tuple(pairs)), uid=True) == sorted(set(uids) & wanted)


@given(uid_lists, ranges)
def test_sequence_sets_map_to_uids_by_position(
    uids: list[int], pairs: list[tuple[int, int]]
) -> None:
    view = _view(uids)
    numbers = _numbers(pairs, len(uids))
    expected = [uids[n - 1] for n in sorted(numbers) if n <= len(uids)]
    assert view.resolve(SequenceSet(tuple(pairs)), uid=False) == expected


@given(uid_lists, st.data())
def test_expunge_numbers_are_valid_one_after_another(uids: list[int], data: st.DataObject) -> None:
    view = _view(uids)
    doomed = data.draw(st.lists(st.sampled_from(uids), unique=True) if uids else st.just([]))
    numbers = view.remove(doomed)
    # Replaying the EXPUNGE responses on the client's list gives the server's list.
    client = list(uids)
    for number in numbers:
        del client[number - 1]
    assert client == list(view.uids) == [u for u in uids if u not in set(doomed)]
    assert len(view.modseqs) == len(view.uids)


@given(uid_lists, st.lists(st.integers(501, 600), unique=True, max_size=5))
def test_journal_changes_append_new_messages_and_queue_removals(
    uids: list[int], new: list[int]
) -> None:
    view = _view(uids)
    changed = [MessageView(uid, 9, uid, "$seen") for uid in sorted(new)]
    applied = view.apply(changed, uids[:2], 9)
    assert applied.new_messages == len(new)
    assert list(view.uids) == uids + sorted(new)
    assert view.pending_expunge == set(uids[:2])


def test_views_in_the_same_state_share_their_columns() -> None:
    first, second = _view([1, 2, 3]), _view([1, 2, 3])
    assert second.uids is first.uids and second.modseqs is first.modseqs


@given(uid_lists, st.lists(st.integers(501, 600), unique=True, max_size=5), st.data())
def test_a_change_to_one_view_leaves_the_views_sharing_its_columns_alone(
    uids: list[int], new: list[int], data: st.DataObject
) -> None:
    changing, bystander = _view(uids), _view(uids)
    doomed = data.draw(st.lists(st.sampled_from(uids), unique=True) if uids else st.just([]))
    changing.apply([MessageView(uid, 9, uid, "") for uid in sorted(new)], [], 9)
    if uids:
        changing.update(MessageView(uids[0], 10, uids[0], "$seen"))
    changing.remove(doomed)
    assert list(bystander.uids) == uids and list(bystander.modseqs) == [1] * len(uids)
    assert list(changing.uids) == [u for u in uids if u not in set(doomed)] + sorted(new)


@given(uid_lists, st.lists(st.integers(501, 600), unique=True, min_size=1, max_size=5))
def test_views_that_took_in_the_same_changes_share_again(uids: list[int], new: list[int]) -> None:
    views = [_view(uids) for _ in range(3)]
    for view in views:
        view.apply([MessageView(uid, 9, uid, "") for uid in sorted(new)], [], 9)
    assert views[1].uids is views[0].uids and views[2].modseqs is views[0].modseqs


names = st.text(alphabet=st.sampled_from("abAB/%*xy-"), min_size=1, max_size=12).filter(
    lambda s: "//" not in s and not s.startswith("/") and not s.endswith("/")
)


@given(names)
def test_star_matches_everything_under_a_prefix(name: str) -> None:
    clean = name.replace("%", "p").replace("*", "s")
    assert pattern_regex("", "*").fullmatch(clean)
    assert pattern_regex("", clean).fullmatch(clean)
    top = clean.split("/")[0]
    assert bool(pattern_regex("", "%").fullmatch(clean)) == ("/" not in clean)
    assert pattern_regex(top + "/", "*").fullmatch(clean) or "/" not in clean


def test_inbox_matches_in_any_case_only_for_inbox() -> None:
    assert pattern_regex("", "inbox").fullmatch("INBOX")
    assert pattern_regex("", "Inbox/%").fullmatch("INBOX/Sub")
    assert not pattern_regex("", "inboxes").fullmatch("INBOXES")


field_names = st.sampled_from(["Subject", "From", "To", "X-Thing", "Received"])


@given(
    st.lists(
        st.tuples(field_names, st.text(alphabet="abc ", max_size=10), st.booleans()), max_size=8
    ),
    st.lists(field_names, min_size=1, max_size=3),
    st.booleans(),
)
def test_header_fields_keep_exactly_the_named_fields_with_folding(
    fields: list[tuple[str, str, bool]], wanted: list[str], exclude: bool
) -> None:
    lines = []
    for name, value, folded in fields:
        lines.append(f"{name}: {value}\r\n" + (" more\r\n" if folded else ""))
    header = "".join(lines).encode() + b"\r\n"
    result = filter_header(header, tuple(w.upper() for w in wanted), exclude=exclude)
    expected = (
        "".join(
            line
            for (name, _, _), line in zip(fields, lines, strict=True)
            if (name in wanted) != exclude
        ).encode()
        + b"\r\n"
    )
    assert result == expected


@given(st.binary(max_size=300))
def test_base64_and_quoted_printable_round_trip(data: bytes) -> None:
    encoded = base64.encodebytes(data)
    assert decode_transfer(encoded, "base64") == data
    assert decode_transfer(binascii.b2a_qp(data), "Quoted-Printable") == data
    assert decode_transfer(data, "8bit") == data


def test_unknown_transfer_encoding_is_refused() -> None:
    try:
        decode_transfer(b"x", "x-uuencode")
    except LookupError:
        return
    raise AssertionError("x-uuencode must be refused (UNKNOWN-CTE)")


@given(st.binary(max_size=200))
def test_broken_base64_never_raises(data: bytes) -> None:
    assert isinstance(decode_transfer(data, "base64"), bytes)
    assert isinstance(decode_transfer(data, "quoted-printable"), bytes)
