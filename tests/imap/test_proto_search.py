"""SEARCH (RFC 9051 §6.4.4, RFC 3501, RFC 4731, RFC 5182, RFC 7162), SORT and THREAD
(RFC 5256, RFC 5957)."""

from __future__ import annotations

from datetime import date

import pytest

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.sequence_set import SequenceSet

from .helpers import command, error


def search(line: bytes) -> c.Search:
    return command(line, c.Search)


def test_rfc9051_examples() -> None:
    """RFC 9051 §6.4.4 examples."""
    cmd = search(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert cmd.return_options == ("MIN", "COUNT")
    assert cmd.criteria == c.SearchAnd(
        (
            c.SearchFlag("\\Flagged"),
            c.SearchDate("SINCE", date(1994, 2, 1)),
            c.SearchNot(c.SearchText("FROM", "Smith")),
        )
    )
    cmd = search(b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert cmd.return_options == ()
    cmd = search(b'A284 SEARCH TEXT "string not in mailbox"\r\n')
    assert cmd.criteria == c.SearchText("TEXT", "string not in mailbox")
    assert cmd.return_options is None
    cmd = search(b"A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n" + "Привет".encode() + b"\r\n")
    assert cmd.charset == "UTF-8" and cmd.criteria == c.SearchText("TEXT", "Привет")
    cmd = search(b"A286 SEARCH CHARSET ISO-8859-1 (OR $ 1,3000:3021) TEXT {4+}\r\ncaf\xe9\r\n")
    assert cmd.criteria == c.SearchAnd(
        (
            c.SearchOr(
                c.SearchSet(SequenceSet.saved_result()),
                c.SearchSet(SequenceSet(((1, 1), (3000, 3021)))),
            ),
            c.SearchText("TEXT", "café"),
        )
    )


def test_every_key() -> None:
    """RFC 9051 §6.4.4 and RFC 3501 §6.4.4: every search key."""
    line = (
        b"a SEARCH ALL ANSWERED BCC b BEFORE 1-Jan-2000 BODY x CC c DELETED DRAFT FLAGGED "
        b'FROM f HEADER X-Foo "" KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD ON 2-Jan-2000 '
        b"OR RECENT UNSEEN SEEN SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000 "
        b"SINCE 6-Jan-2000 SMALLER 5000000000 SUBJECT s TEXT t TO o UID 1:* UNANSWERED "
        b"UNDELETED UNDRAFT UNFLAGGED UNKEYWORD foo UNSEEN 2,4:* OLDER 60 YOUNGER 30\r\n"
    )
    keys = search(line).criteria
    assert isinstance(keys, c.SearchAnd)
    assert keys.keys == (
        c.SearchAll(),
        c.SearchFlag("\\Answered"),
        c.SearchText("BCC", "b"),
        c.SearchDate("BEFORE", date(2000, 1, 1)),
        c.SearchText("BODY", "x"),
        c.SearchText("CC", "c"),
        c.SearchFlag("\\Deleted"),
        c.SearchFlag("\\Draft"),
        c.SearchFlag("\\Flagged"),
        c.SearchText("FROM", "f"),
        c.SearchHeader("X-Foo", ""),
        c.SearchFlag("$Junk"),
        c.SearchSize(True, 100),
        c.SearchNew(),
        c.SearchNot(c.SearchFlag("\\Seen")),
        c.SearchFlag("\\Recent", False),
        c.SearchDate("ON", date(2000, 1, 2)),
        c.SearchOr(c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False)),
        c.SearchFlag("\\Seen"),
        c.SearchDate("SENTBEFORE", date(2000, 1, 3)),
        c.SearchDate("SENTON", date(2000, 1, 4)),
        c.SearchDate("SENTSINCE", date(2000, 1, 5)),
        c.SearchDate("SINCE", date(2000, 1, 6)),
        c.SearchSize(False, 5000000000),
        c.SearchText("SUBJECT", "s"),
        c.SearchText("TEXT", "t"),
        c.SearchText("TO", "o"),
        c.SearchSet(SequenceSet.parse("1:*"), uid=True),
        c.SearchFlag("\\Answered", False),
        c.SearchFlag("\\Deleted", False),
        c.SearchFlag("\\Draft", False),
        c.SearchFlag("\\Flagged", False),
        c.SearchFlag("foo", False),
        c.SearchFlag("\\Seen", False),
        c.SearchSet(SequenceSet.parse("2,4:*")),
        c.SearchWithin(True, 60),
        c.SearchWithin(False, 30),
    )


def test_nested_parentheses_and_or() -> None:
    """RFC 3501 §6.4.4: parenthesised lists nest; OR takes two keys."""
    cmd = search(b"a SEARCH OR (DELETED (FROM x (TO y))) NOT (OR SEEN 1)\r\n")
    assert cmd.criteria == c.SearchOr(
        c.SearchAnd(
            (
                c.SearchFlag("\\Deleted"),
                c.SearchAnd((c.SearchText("FROM", "x"), c.SearchText("TO", "y"))),
            )
        ),
        c.SearchNot(c.SearchOr(c.SearchFlag("\\Seen"), c.SearchSet(SequenceSet.of(1)))),
    )
    assert search(b"a SEARCH ((((SEEN))))\r\n").criteria == c.SearchFlag("\\Seen")


def test_uid_search_and_searchres() -> None:
    """RFC 5182 §2.4 examples: RETURN (SAVE), $ as a sequence set."""
    cmd = command(
        b'A282 UID SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n', c.Search
    )
    assert cmd.uid and cmd.return_options == ("SAVE",)
    cmd = search(b"A301 SEARCH RETURN (SAVE MIN MAX ALL COUNT) UID $\r\n")
    assert cmd.return_options == ("SAVE", "MIN", "MAX", "ALL", "COUNT")
    assert cmd.criteria == c.SearchSet(SequenceSet.saved_result(), uid=True)
    assert command(b"A283 FETCH $ (UID)\r\n", c.Fetch).sequence_set.saved
    assert "Unknown search return option" in error(b"a SEARCH RETURN (FOO) ALL\r\n").message


def test_modseq_criterion() -> None:
    """RFC 7162 §3.1.5 examples."""
    cmd = search(b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338\r\n')
    assert cmd.criteria == c.SearchModSeq(620162338, "\\Draft", "all")
    cmd = search(b"a SEARCH OR NOT MODSEQ 720162338 LARGER 50000\r\n")
    assert cmd.criteria == c.SearchOr(
        c.SearchNot(c.SearchModSeq(720162338)), c.SearchSize(True, 50000)
    )
    cmd = search(b'a SEARCH MODSEQ "/flags/$Junk" priv 0\r\n')
    assert cmd.criteria == c.SearchModSeq(0, "$Junk", "priv")
    assert "Invalid MODSEQ entry type" in error(b'a SEARCH MODSEQ "/flags/x" mine 1\r\n').message
    assert "Invalid MODSEQ entry name" in error(b'a SEARCH MODSEQ "/x" all 1\r\n').message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"a SEARCH\r\n", "Missing argument: search criteria"),
        (b"a SEARCH FOO\r\n", "Unknown search key FOO"),
        (b"a SEARCH OR SEEN\r\n", "Missing argument: search key"),
        (b"a SEARCH (SEEN\r\n", "Expected ')' to close the search key list"),
        (b"a SEARCH SEEN)\r\n", "Expected space"),
        (b"a SEARCH 0\r\n", "Invalid sequence number 0"),
        (b"a SEARCH 1:4294967296\r\n", "Invalid sequence number 4294967296"),
        (b"a SEARCH LARGER x\r\n", "Expected size"),
        (b"a SEARCH CHARSET UTF-8 TEXT {1+}\r\n\xff\r\n", "not valid UTF-8"),
        (b"a SEARCH " + b"(" * 100 + b"ALL" + b")" * 100 + b"\r\n", "nested too deeply"),
    ],
)
def test_search_errors(line: bytes, message: str) -> None:
    assert message in error(line).message


def test_badcharset() -> None:
    """RFC 9051 §6.4.4: an unknown charset is NO [BADCHARSET]."""
    err = error(b"A286 SEARCH CHARSET KOI8-X TEXT x\r\n")
    assert err.code == "BADCHARSET" and err.tag == "A286"


def test_sort() -> None:
    """RFC 5256 §3 examples; RFC 5957 §3 DISPLAYFROM; RFC 5267 ESORT."""
    cmd = command(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n", c.Sort)
    assert cmd.criteria == (c.SortCriterion("SUBJECT"),) and cmd.charset == "UTF-8"
    assert cmd.search == c.SearchDate("SINCE", date(1994, 2, 1))
    cmd = command(b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n", c.Sort)
    assert cmd.criteria == (c.SortCriterion("SUBJECT"), c.SortCriterion("DATE", reverse=True))
    cmd = command(b'A284 SORT (SUBJECT) US-ASCII TEXT "not in mailbox"\r\n', c.Sort)
    assert cmd.search == c.SearchText("TEXT", "not in mailbox")
    cmd = command(
        b"a UID SORT (ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO) utf-8 ALL\r\n",
        c.Sort,
    )
    assert cmd.uid and len(cmd.criteria) == 9
    cmd = command(b"a SORT RETURN (MIN MAX) (DATE) UTF-8 ALL\r\n", c.Sort)
    assert cmd.return_options == ("MIN", "MAX")
    assert "Unknown sort key FOO" in error(b"a SORT (FOO) UTF-8 ALL\r\n").message
    assert "Unknown sort key REVERSE" in error(b"a SORT (REVERSE REVERSE) UTF-8 ALL\r\n").message
    assert error(b"a SORT () UTF-8 ALL\r\n").tag == "a"
    assert error(b"a SORT (DATE) ALL\r\n").code == "BADCHARSET"


def test_thread() -> None:
    """RFC 5256 §3 examples."""
    cmd = command(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n", c.Thread)
    assert cmd.algorithm == "ORDEREDSUBJECT" and cmd.search == c.SearchDate(
        "SINCE", date(2000, 3, 5)
    )
    cmd = command(b'A284 UID THREAD REFERENCES US-ASCII TEXT "gewp"\r\n', c.Thread)
    assert cmd.uid and cmd.algorithm == "REFERENCES"
    assert "Unknown threading algorithm" in error(b"a THREAD FOO UTF-8 ALL\r\n").message
