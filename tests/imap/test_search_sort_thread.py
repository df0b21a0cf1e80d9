"""SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO) and THREAD (RFC 5256 §2.1, §2.2, §3:
ORDEREDSUBJECT and REFERENCES) through imap/search.py, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hirondelle.imap import search as imap_search
from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.response import ResponseEncoder, ThreadNode
from hirondelle.mail.search import is_reply_or_forward
from hirondelle.services import Services

from .search_fixtures import Mailbox, build_message, us


@pytest.fixture
async def box(services: Services) -> Mailbox:
    return await Mailbox.create(services)


def received(day: int) -> int:
    return us(datetime(2026, 2, day, 12, 0, tzinfo=UTC))


def encoded(threads: list[ThreadNode]) -> str:
    """The THREAD response as the client reads it, without "* THREAD " and CRLF."""
    return ResponseEncoder().thread(threads).decode()[len("* THREAD ") : -2]


@pytest.fixture
async def sortable(box: Mailbox) -> Mailbox:
    """Five messages built so that every sort key orders them differently, with ties."""
    await box.append(
        build_message(
            subject="Re: Beta",
            sender="Zed <zed@example.test>",
            to="Bob <bob@example.test>",
            cc="carl@example.test",
            date="Mon, 05 Jan 2026 10:00:00 +0000",
            body="x" * 300,
        ),
        received_at=received(5),
    )
    await box.append(
        build_message(
            subject="alpha",
            sender="amy@example.test",
            to="dan@example.test",
            date="Sat, 03 Jan 2026 10:00:00 +0000",
            body="x" * 100,
        ),
        received_at=received(1),
    )
    await box.append(
        build_message(
            subject="beta",
            sender="Bob Brown <bob@example.test>",
            to="Amy <amy@example.test>",
            cc="Al <al@example.test>",
            date=None,  # sorts by its internal date (2 Feb)
            body="x" * 200,
        ),
        received_at=received(2),
    )
    await box.append(
        build_message(
            subject="[Fwd: Alpha]",
            sender="Amy Zed <amy@example.test>",
            to="carl@example.test",
            date="Sat, 03 Jan 2026 10:00:00 +0000",
            body="x" * 100,
        ),
        received_at=received(3),
    )
    await box.append(
        build_message(
            subject="gamma",
            sender="bob@example.test",
            to="Zoe <bob@example.test>",
            cc="Bea <carl@example.test>",
            date="Fri, 02 Jan 2026 23:00:00 -0500",  # 3 Jan 04:00 UTC
            body="x" * 400,
        ),
        received_at=received(4),
    )
    return box


# -- SORT ----------------------------------------------------------------------------------


async def test_sort_subject_uses_the_base_subject_and_keeps_mailbox_order_on_ties(
    sortable: Mailbox,
) -> None:
    assert await sortable.sort("(SUBJECT) UTF-8 ALL") == [2, 4, 1, 3, 5]


async def test_reverse_reverses_one_key_but_not_the_tie_break(sortable: Mailbox) -> None:
    assert await sortable.sort("(REVERSE SUBJECT) UTF-8 ALL") == [5, 1, 3, 2, 4]


async def test_sort_arrival_is_the_internal_date(sortable: Mailbox) -> None:
    assert await sortable.sort("(ARRIVAL) UTF-8 ALL") == [2, 3, 4, 5, 1]
    assert await sortable.sort("(REVERSE ARRIVAL) UTF-8 ALL") == [1, 5, 4, 3, 2]


async def test_sort_date_is_the_sent_date_in_utc_else_the_internal_date(
    sortable: Mailbox,
) -> None:
    # 5 was sent at 04:00 UTC on 3 January (23:00 -0500 the day before); 2 and 4 at the
    # same instant, 10:00 UTC, so they keep mailbox order; 3 has no Date (2 February).
    assert await sortable.sort("(DATE) UTF-8 ALL") == [5, 2, 4, 1, 3]
    assert await sortable.sort("(REVERSE DATE) UTF-8 ALL") == [3, 1, 2, 4, 5]


async def test_sort_from_to_cc_compare_the_first_mailbox(sortable: Mailbox) -> None:
    # FROM mailboxes: zed amy bob amy bob.
    assert await sortable.sort("(FROM) UTF-8 ALL") == [2, 4, 3, 5, 1]
    # TO mailboxes: bob dan amy carl bob.
    assert await sortable.sort("(TO) UTF-8 ALL") == [3, 1, 5, 4, 2]
    # CC mailboxes: carl - al - carl; no Cc sorts first (empty string).
    assert await sortable.sort("(CC) UTF-8 ALL") == [2, 4, 3, 1, 5]


async def test_sort_display_from_and_to_use_the_display_name(sortable: Mailbox) -> None:
    # Display: "zed", "amy@example.test", "bob brown", "amy zed", "bob@example.test"
    # (" " sorts before "@").
    assert await sortable.sort("(DISPLAYFROM) UTF-8 ALL") == [4, 2, 3, 5, 1]
    # Display: "bob", "dan@example.test", "amy", "carl@example.test", "zoe".
    assert await sortable.sort("(DISPLAYTO) UTF-8 ALL") == [3, 1, 4, 2, 5]


async def test_sort_size(sortable: Mailbox) -> None:
    assert await sortable.sort("(SIZE) UTF-8 ALL") == [2, 4, 3, 1, 5]
    assert await sortable.sort("(REVERSE SIZE) UTF-8 ALL") == [5, 1, 3, 4, 2]


async def test_later_keys_break_ties_of_earlier_ones(sortable: Mailbox) -> None:
    assert await sortable.sort("(SUBJECT REVERSE ARRIVAL) UTF-8 ALL") == [4, 2, 1, 3, 5]
    assert await sortable.sort("(SUBJECT SIZE) UTF-8 ALL") == [2, 4, 3, 1, 5]
    assert await sortable.sort("(FROM REVERSE SIZE) UTF-8 ALL") == [4, 2, 5, 3, 1]


async def test_sort_only_returns_messages_matching_the_search(sortable: Mailbox) -> None:
    assert await sortable.sort("(REVERSE SIZE) UTF-8 SUBJECT beta") == [1, 3]
    assert await sortable.sort("(SIZE) UTF-8 UID 2:4") == [2, 4, 3]


async def test_sort_of_an_unknown_charset_is_refused(sortable: Mailbox) -> None:
    with pytest.raises(imap_search.UnsupportedCharset):
        await imap_search.sort(
            sortable.services,
            sortable.context(),
            [c.SortCriterion("SIZE")],
            c.SearchAll(),
            charset="EBCDIC",
        )


# -- THREAD ---------------------------------------------------------------------------------


def dated(hour: int) -> str:
    return f"Thu, 01 Jan 2026 {hour:02d}:00:00 +0000"


async def test_orderedsubject_groups_by_base_subject_under_the_first_message(
    box: Mailbox,
) -> None:
    await box.append(build_message(subject="Hello", date=dated(3)))
    await box.append(build_message(subject="Re: hello", date=dated(1)))
    await box.append(build_message(subject="Other", date=dated(2)))
    await box.append(build_message(subject="hello", date=dated(4)))
    await box.append(build_message(subject="Fwd: Other", date=dated(5)))
    assert encoded(await box.thread("ORDEREDSUBJECT UTF-8 ALL")) == "(2 (1)(4))(3 5)"


async def test_orderedsubject_only_threads_matching_messages(box: Mailbox) -> None:
    await box.append(build_message(subject="Hello", date=dated(1)))
    await box.append(build_message(subject="Re: Hello", date=dated(2)), flags=["\\Seen"])
    await box.append(build_message(subject="Re: Hello", date=dated(3)), flags=["\\Seen"])
    assert encoded(await box.thread("ORDEREDSUBJECT UTF-8 SEEN")) == "(2 3)"


@pytest.fixture
async def family(box: Mailbox) -> Mailbox:
    """A thread family with replies, missing parents, subject-only replies, a loop and a
    duplicate Message-ID; sent dates ascend with the UID."""
    messages = [
        ("a", None, "Meeting"),
        ("b", "<a@x>", "Re: Meeting"),
        ("c", "<a@x> <b@x>", "Re: Meeting"),
        ("d", "<missing1@x>", "Orphan question"),
        ("e", "<missing2@x>", "Two kids"),
        ("f", "<missing2@x>", "Re: Two kids"),
        ("g", None, "Re: Meeting"),
        ("h", None, "Fwd: Orphan question"),
        ("i", "<j@x> <i@x>", "Loop"),
        ("j", "<i@x> <j@x>", "Re: Loop"),
        ("a", None, "Other"),  # a duplicate Message-ID: threaded as a message of its own
    ]
    for hour, (message_id, references, subject) in enumerate(messages, start=1):
        await box.append(
            build_message(
                subject=subject,
                message_id=f"{message_id}@x",
                references=references,
                date=dated(hour),
            )
        )
    return box


async def test_references_threads_the_family(family: Mailbox) -> None:
    assert (
        encoded(await family.thread("REFERENCES UTF-8 ALL"))
        == "(1 (2 3)(7))(4 8)((5)(6))(9 10)(11)"
    )


async def test_references_of_a_subset_treats_absent_messages_as_missing(
    family: Mailbox,
) -> None:
    # Without message 2, message 3 still descends from 1 through its References.
    assert encoded(await family.thread("REFERENCES UTF-8 NOT 2")) == (
        "(1 (3)(7))(4 8)((5)(6))(9 10)(11)"
    )


async def test_references_uses_in_reply_to_without_references(box: Mailbox) -> None:
    await box.append(build_message(subject="Question", message_id="q@x", date=dated(1)))
    await box.append(
        build_message(subject="Answer", message_id="r@x", in_reply_to="q@x", date=dated(2))
    )
    assert encoded(await box.thread("REFERENCES UTF-8 ALL")) == "(1 2)"


async def test_references_promotes_a_single_child_of_missing_parents(box: Mailbox) -> None:
    await box.append(
        build_message(subject="Deep", message_id="x@x", references="<p1@x> <p2@x>", date=dated(1))
    )
    await box.append(build_message(subject="Alone", message_id="y@x", date=dated(2)))
    assert encoded(await box.thread("REFERENCES UTF-8 ALL")) == "(1)(2)"


async def test_references_sorts_threads_and_siblings_by_sent_date(box: Mailbox) -> None:
    await box.append(build_message(subject="Late root", message_id="r@x", date=dated(9)))
    await box.append(
        build_message(subject="Re: x", message_id="s@x", references="<r@x>", date=dated(12))
    )
    await box.append(
        build_message(subject="Re: y", message_id="t@x", references="<r@x>", date=dated(10))
    )
    await box.append(build_message(subject="Early", message_id="u@x", date=dated(1)))
    assert encoded(await box.thread("REFERENCES UTF-8 ALL")) == "(4)(1 (3)(2))"


async def test_references_merges_two_dummies_with_the_same_subject(box: Mailbox) -> None:
    for hour, (message_id, reference, subject) in enumerate(
        [
            ("a", "<m1@x>", "Plan"),
            ("b", "<m1@x>", "Re: Plan"),
            ("c", "<m2@x>", "Re: Plan"),
            ("d", "<m2@x>", "Re: Plan"),
        ],
        start=1,
    ):
        await box.append(
            build_message(
                subject=subject,
                message_id=f"{message_id}@x",
                references=reference,
                date=dated(hour),
            )
        )
    assert encoded(await box.thread("REFERENCES UTF-8 ALL")) == "((1)(2)(3)(4))"


async def test_references_makes_a_dummy_for_two_originals_with_the_same_subject(
    box: Mailbox,
) -> None:
    await box.append(build_message(subject="Status", message_id="a@x", date=dated(1)))
    await box.append(build_message(subject="Status", message_id="b@x", date=dated(2)))
    assert encoded(await box.thread("REFERENCES UTF-8 ALL")) == "((1)(2))"


async def test_thread_of_an_unknown_algorithm_is_refused(box: Mailbox) -> None:
    with pytest.raises(imap_search.UnsupportedThreadAlgorithm):
        await imap_search.thread(box.services, box.context(), "JWZ", c.SearchAll(), charset="UTF-8")


def test_reply_or_forward_detection_follows_the_base_subject_rules() -> None:
    assert is_reply_or_forward("Re: hello")
    assert is_reply_or_forward("FWD: hello")
    assert is_reply_or_forward("[list] Re: hello")
    assert is_reply_or_forward("Re [2]: hello")
    assert is_reply_or_forward("hello (fwd)")
    assert is_reply_or_forward("[Fwd: hello]")
    assert not is_reply_or_forward("hello")
    assert not is_reply_or_forward("[list] hello")
    assert not is_reply_or_forward("Regarding: hello")
