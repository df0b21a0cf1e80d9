"""Properties of the pure parts of the search engine: REFERENCES threading over random
reference graphs (loops, duplicates, self-references, missing parents), ORDEREDSUBJECT,
and the ENVELOPE date reader and reply detection on arbitrary input (RFC 5256 §2.1, §2.2;
RFC 9051 §7.5.2)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mail.search import (
    ThreadBranch,
    is_reply_or_forward,
    ordered_subject_threads,
    reference_threads,
    written_date,
)
from hirondelle.mime.envelope import render_envelope
from hirondelle.mime.headers import Headers, parse_date, parse_header_block
from hirondelle.store.message_queries import MessageRow, SortFields, ThreadFields

IDS = st.sampled_from([f"m{n}@x" for n in range(8)])
SUBJECTS = st.sampled_from(["", "a", "Re: a", "b", "Fwd: b", "[list] a", "a (fwd)"])


@st.composite
def mailboxes(
    draw: st.DrawFn,
) -> tuple[list[MessageRow], dict[int, SortFields], dict[int, ThreadFields]]:
    count = draw(st.integers(0, 12))
    rows: list[MessageRow] = []
    fields: dict[int, SortFields] = {}
    references: dict[int, ThreadFields] = {}
    for uid in range(1, count + 1):
        sent = draw(st.one_of(st.none(), st.integers(0, 5)))
        rows.append(MessageRow(uid, uid, 1, "", 100, draw(st.integers(0, 5)), sent))
        subject = draw(SUBJECTS)
        base = subject.removeprefix("Re: ").removeprefix("Fwd: ").removeprefix("[list] ")
        fields[uid] = SortFields(subject, base.removesuffix(" (fwd)"), "", "", "")
        references[uid] = ThreadFields(
            draw(st.lists(IDS, max_size=1)),
            draw(st.lists(IDS, max_size=2)),
            draw(st.lists(IDS, max_size=5)),
        )
    return rows, fields, references


def members(branches: list[ThreadBranch]) -> Counter[int | None]:
    found: Counter[int | None] = Counter()
    pending = list(branches)
    while pending:
        branch = pending.pop()
        found[branch.uid] += 1
        pending.extend(branch.children)
    return found


def dummies_are_well_formed(branches: list[ThreadBranch], *, at_root: bool) -> bool:
    """After pruning, a dummy never lacks children, and only sits at the root."""
    for branch in branches:
        if branch.uid is None and (not at_root or not branch.children):
            return False
        if not dummies_are_well_formed(list(branch.children), at_root=False):
            return False
    return True


@settings(max_examples=150, deadline=None)
@given(mailboxes())
def test_references_threads_every_message_exactly_once(
    mailbox: tuple[list[MessageRow], dict[int, SortFields], dict[int, ThreadFields]],
) -> None:
    rows, fields, references = mailbox
    threads = reference_threads(rows, fields, references)
    found = members(threads)
    found.pop(None, None)
    assert found == Counter(row.uid for row in rows)
    assert dummies_are_well_formed(threads, at_root=True)


@settings(max_examples=100, deadline=None)
@given(mailboxes())
def test_orderedsubject_threads_every_message_once_two_levels_deep(
    mailbox: tuple[list[MessageRow], dict[int, SortFields], dict[int, ThreadFields]],
) -> None:
    rows, fields, _ = mailbox
    threads = ordered_subject_threads(rows, {uid: f.sort_subject for uid, f in fields.items()})
    assert members(threads) == Counter(row.uid for row in rows)
    assert all(not child.children for thread in threads for child in thread.children)
    assert len(threads) == len({f.sort_subject for f in fields.values()})


@given(st.binary(max_size=200))
def test_envelope_date_reader_never_fails_on_garbage(data: bytes) -> None:
    written_date(data)
    written_date(b"(" + data)
    written_date(b'("' + data)
    written_date(b"({" + data)


@given(
    st.datetimes(timezones=st.none()).filter(lambda d: 1900 <= d.year <= 9999),
    st.sampled_from(["+0000", "+0100", "-0500", "+1400", "-1200"]),
)
def test_envelope_date_reader_gives_the_written_day(moment: object, zone: str) -> None:
    text = f"{moment:%d %b %Y %H:%M:%S} {zone}"  # type: ignore[str-format]
    headers = Headers(parse_header_block(f"Date: {text}\r\n".encode()))
    envelope = render_envelope(headers)
    parsed = parse_date(text.encode())
    assert parsed is not None
    assert written_date(envelope) == parsed.date()


@given(st.text(max_size=40))
def test_reply_detection_never_fails(subject: str) -> None:
    assert is_reply_or_forward(subject) in (True, False)
    assert is_reply_or_forward("Re: " + subject)
