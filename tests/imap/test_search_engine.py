"""IMAP SEARCH keys through imap/search.py and the mail search service, on every backend:
RFC 9051 §6.4.4, RFC 3501 §6.4.4 (RECENT/NEW/OLD), RFC 5182 ($), RFC 7162 §3.1.5 (MODSEQ),
RFC 5032 (OLDER/YOUNGER)."""

from __future__ import annotations

import email
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hirondelle.imap import search as imap_search
from hirondelle.imap.proto import commands as c
from hirondelle.mail import search as engine
from hirondelle.services import Services

from .search_fixtures import Mailbox, build_message, us

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture
async def box(services: Services) -> Mailbox:
    return await Mailbox.create(services)


# -- ALL, the view, flags --------------------------------------------------------------------


async def test_all_finds_every_message_of_the_view_in_uid_order(box: Mailbox) -> None:
    uids = [await box.append(build_message(subject=f"n{i}")) for i in range(3)]
    assert await box.search("ALL") == uids


async def test_messages_outside_the_session_view_are_never_returned(box: Mailbox) -> None:
    first = await box.append(build_message())
    second = await box.append(build_message())
    # The session has not announced the second message yet.
    assert await box.search("ALL", box.context(uids=[first])) == [first]
    assert second not in await box.search("UID 1:*", box.context(uids=[first]))


async def test_empty_mailbox_finds_nothing(box: Mailbox) -> None:
    assert await box.search("ALL") == []
    assert await box.search("1:*") == []
    assert await box.search("UID *") == []


async def test_system_flag_keys_and_their_negations(box: Mailbox) -> None:
    seen = await box.append(build_message(), flags=["\\Seen"])
    answered = await box.append(build_message(), flags=["\\Answered", "\\Seen"])
    flagged = await box.append(build_message(), flags=["\\Flagged"])
    deleted = await box.append(build_message(), flags=["\\Deleted"])
    draft = await box.append(build_message(), flags=["\\Draft"])
    everything = [seen, answered, flagged, deleted, draft]
    expectations = {
        "SEEN": [seen, answered],
        "ANSWERED": [answered],
        "FLAGGED": [flagged],
        "DELETED": [deleted],
        "DRAFT": [draft],
    }
    for key, expected in expectations.items():
        assert await box.search(key) == expected, key
        unexpected = [uid for uid in everything if uid not in expected]
        assert await box.search("UN" + key) == unexpected, "UN" + key


async def test_keyword_matches_case_insensitively(box: Mailbox) -> None:
    tagged = await box.append(build_message(), flags=["$Forwarded", "Projet-X"])
    plain = await box.append(build_message())
    assert await box.search("KEYWORD $forwarded") == [tagged]
    assert await box.search("KEYWORD projet-x") == [tagged]
    assert await box.search("KEYWORD PROJET-X") == [tagged]
    assert await box.search("UNKEYWORD $FORWARDED") == [plain]
    assert await box.search("KEYWORD $junk") == []


async def test_keyword_added_later_is_found(box: Mailbox) -> None:
    uid = await box.append(build_message())
    assert await box.search("FLAGGED") == []
    await box.set_flags(uid, "\\Flagged")
    assert await box.search("FLAGGED") == [uid]


async def test_recent_new_and_old_use_the_sessions_recent_set(box: Mailbox) -> None:
    old = await box.append(build_message())
    recent_seen = await box.append(build_message(), flags=["\\Seen"])
    recent_unseen = await box.append(build_message())
    context = box.context(recent=[recent_seen, recent_unseen])
    assert await box.search("RECENT", context) == [recent_seen, recent_unseen]
    assert await box.search("NEW", context) == [recent_unseen]
    assert await box.search("OLD", context) == [old]
    # Without a recent set (IMAP4rev2), nothing is recent.
    assert await box.search("RECENT") == []
    assert await box.search("OLD") == [old, recent_seen, recent_unseen]


# -- sequence sets, UID sets, $ ---------------------------------------------------------------


async def test_sequence_numbers_map_through_the_view_after_an_expunge(box: Mailbox) -> None:
    uids = [await box.append(build_message()) for _ in range(5)]
    await box.expunge(uids[1])
    view = box.uids  # UIDs 1 3 4 5 are sequence numbers 1 2 3 4
    assert await box.search("2") == [view[1]]
    assert await box.search("2:3") == [view[1], view[2]]
    assert await box.search("*") == [view[-1]]
    assert await box.search("3:*") == view[2:]
    assert await box.search("*:3") == view[2:]
    assert await box.search("1,4") == [view[0], view[3]]
    assert await box.search("5:9") == [], "sequence numbers beyond the mailbox match nothing"


async def test_uid_sets_with_star_and_reversed_ranges(box: Mailbox) -> None:
    uids = [await box.append(build_message()) for _ in range(4)]
    assert await box.search("UID 2:3") == uids[1:3]
    assert await box.search("UID 3:2") == uids[1:3]
    assert await box.search("UID *") == [uids[-1]]
    assert await box.search("UID 3:*") == uids[2:]
    # RFC 9051 §6.4.8: "n:*" includes the highest UID even when n is above it.
    assert await box.search("UID 99:*") == [uids[-1]]
    assert await box.search("UID 99") == []


async def test_saved_result_dollar_names_the_saved_uids(box: Mailbox) -> None:
    uids = [await box.append(build_message()) for _ in range(4)]
    saved = box.context(saved=[uids[0], uids[2]])
    assert await box.search("$", saved) == [uids[0], uids[2]]
    assert await box.search("UID $", saved) == [uids[0], uids[2]]
    assert await box.search("NOT $", saved) == [uids[1], uids[3]]
    # RFC 5182 §2.1: with nothing saved, $ is the empty set.
    assert await box.search("$") == []


# -- strings ---------------------------------------------------------------------------------


async def test_subject_is_a_case_insensitive_substring(box: Mailbox) -> None:
    hit = await box.append(build_message(subject="Réunion du Comité de pilotage"))
    await box.append(build_message(subject="Autre chose"))
    assert await box.search("SUBJECT comit") == [hit]
    assert await box.search("SUBJECT ILOTA") == [hit], "a substring inside a word matches"
    assert await box.search('SUBJECT "du comité"') == [hit]
    assert await box.search('SUBJECT "du  comite"') == []


async def test_encoded_subject_is_searched_decoded(box: Mailbox) -> None:
    hit = await box.append(build_message(subject="=?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?="))
    assert await box.search("CHARSET UTF-8 SUBJECT {6}\r\ncafé".encode()[:-2] + b"\r\n") == []
    assert await box.search("CHARSET UTF-8 SUBJECT {5}\r\ncafé".encode()) == [hit]


async def test_non_ascii_substring_with_utf8_charset(box: Mailbox) -> None:
    hit = await box.append(build_message(subject="Привет мир", body="Ceci est à Genève."))
    await box.append(build_message(subject="Hello"))
    word = "ривет".encode()
    assert await box.search(b"CHARSET UTF-8 SUBJECT {%d}\r\n" % len(word) + word) == [hit]
    city = "Genève".encode()
    assert await box.search(b"CHARSET UTF-8 BODY {%d}\r\n" % len(city) + city) == [hit]
    # Diacritics are folded as in the full-text index.
    assert await box.search("BODY geneve") == [hit]


async def test_iso_8859_1_search_string_is_decoded_by_the_parser(box: Mailbox) -> None:
    hit = await box.append((CORPUS / "13-iso-8859-1.eml").read_bytes())
    assert await box.search(b"CHARSET ISO-8859-1 SUBJECT {4}\r\ncaf\xe9") == [hit]


async def test_unknown_charset_is_refused_with_badcharset(box: Mailbox) -> None:
    await box.append(build_message())
    with pytest.raises(imap_search.UnsupportedCharset):
        await imap_search.search(box.services, box.context(), c.SearchAll(), charset="KOI8-R")


async def test_from_to_cc_bcc_match_names_and_addresses(box: Mailbox) -> None:
    first = await box.append(
        build_message(
            sender='"Dupont, Marie" <marie.dupont@example.fr>',
            to="Bob <bob@example.test>",
            cc="Zoé <zoe@example.test>",
            bcc="hidden@example.test",
        )
    )
    second = await box.append(build_message(sender="bob@example.test", to="marie@example.fr"))
    assert await box.search("FROM marie") == [first]
    assert await box.search("FROM DUPONT") == [first]
    assert await box.search('FROM "marie.dupont@example.fr"') == [first]
    assert await box.search("FROM bob") == [second]
    assert await box.search("TO bob") == [first]
    assert await box.search("TO marie@") == [second]
    assert await box.search("CC zoe") == [first]
    assert await box.search("BCC hidden") == [first]
    assert await box.search("BCC bob") == []
    assert await box.search("FROM example.") == [first, second]


async def test_header_with_empty_string_means_the_field_is_present(box: Mailbox) -> None:
    listed = await box.append(build_message(extra=[("List-Id", "<team.example.test>")]))
    await box.append(build_message())
    assert await box.search('HEADER List-Id ""') == [listed]
    assert await box.search('HEADER list-id ""') == [listed]
    assert await box.search('HEADER X-Nothing ""') == []


async def test_header_value_substring_is_decoded_and_case_insensitive(box: Mailbox) -> None:
    hit = await box.append(
        build_message(extra=[("X-Project", "=?UTF-8?Q?Op=C3=A9ration_Hirondelle?=")])
    )
    await box.append(build_message(extra=[("X-Other", "Opération Hirondelle")]))
    assert await box.search("HEADER X-Project hirondelle") == [hit]
    assert await box.search("HEADER X-Project RATION") == [hit]
    assert await box.search('HEADER X-Project "Opération"') == [hit]
    assert await box.search("HEADER X-Project nothing") == []


async def test_header_message_id_finds_one_message(box: Mailbox) -> None:
    await box.append(build_message(message_id="one@example.test"))
    target = await box.append(build_message(message_id="two@example.test"))
    assert await box.search('HEADER Message-ID "<two@example.test>"') == [target]
    assert await box.search("HEADER Message-ID TWO@EXAMPLE") == [target]
    assert await box.search('HEADER Message-ID "o@example.test>"') == [target]
    assert await box.search('HEADER Message-ID "example.test"') == box.uids
    assert await box.search('HEADER Message-ID "three@example.test"') == []
    assert await box.search('HEADER Message-ID "%"') == [], "LIKE wildcards are escaped"


async def test_body_matches_body_text_and_not_headers(box: Mailbox) -> None:
    in_body = await box.append(build_message(subject="Lunch", body="See you at the bakery."))
    in_subject = await box.append(build_message(subject="bakery", body="Nothing here."))
    assert await box.search("BODY bakery") == [in_body]
    assert await box.search('BODY "at the bak"') == [in_body]
    assert await box.search("BODY BAKERY") == [in_body]
    assert in_subject not in await box.search("BODY bakery")


async def test_body_words_must_start_at_a_word_start(box: Mailbox) -> None:
    """The documented deviation: BODY goes through the word-prefix index first."""
    await box.append(build_message(body="hello world"))
    assert await box.search("BODY ello") == []
    assert await box.search("BODY hel") != []


async def test_body_requires_the_exact_phrase_not_just_the_words(box: Mailbox) -> None:
    hit = await box.append(build_message(body="quick brown fox"))
    await box.append(build_message(body="brown and quick"))
    assert await box.search('BODY "quick brown"') == [hit]
    assert await box.search('BODY "brown quick"') == []


async def test_body_of_a_base64_part_is_searched_decoded(box: Mailbox) -> None:
    raw = (
        b"From: a@example.test\r\nSubject: encoded\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"TGEgcsOpdW5pb24gZXN0IGTDqXBsYWPDqWUu\r\n"  # "La réunion est déplacée."
    )
    hit = await box.append(raw)
    assert await box.search("BODY deplacee") == [hit]
    assert await box.search('BODY "union est"') == []  # starts inside a word
    assert await box.search('BODY "réunion est"'.encode()) == [hit]


async def test_text_matches_any_header_or_the_body(box: Mailbox) -> None:
    in_header = await box.append(build_message(extra=[("User-Agent", "Thunderbird 115")]))
    in_body = await box.append(build_message(body="I use thunderbird too"))
    in_subject = await box.append(build_message(subject="Thunderbird settings"))
    await box.append(build_message())
    assert await box.search("TEXT thunderbird") == [in_header, in_body, in_subject]
    assert await box.search('TEXT "User-Agent: Thunder"') == [in_header]


async def test_text_matches_words_of_the_header_from_their_start(box: Mailbox) -> None:
    """The header half of TEXT is answered by the full-text index, as BODY is: the
    string must start at the start of a word (a documented deviation, mail/search.py)."""
    hit = await box.append(build_message(sender="someone@hirondelle.example"))
    assert await box.search("TEXT hironde") == [hit]
    assert await box.search('TEXT "someone@hirondelle.ex"') == [hit]
    assert await box.search("TEXT rondelle") == []


# -- dates, sizes, intervals, modseq ---------------------------------------------------------


async def test_internal_date_keys_use_the_servers_zone_around_midnight(box: Mailbox) -> None:
    local_midnight = datetime(2026, 3, 10).astimezone()  # the system's zone
    before = await box.append(
        build_message(), received_at=us(local_midnight - timedelta(minutes=1))
    )
    at = await box.append(build_message(), received_at=us(local_midnight))
    late = await box.append(
        build_message(), received_at=us(local_midnight + timedelta(hours=23, minutes=59))
    )
    after = await box.append(build_message(), received_at=us(local_midnight + timedelta(days=1)))
    assert await box.search("ON 10-Mar-2026") == [at, late]
    assert await box.search("BEFORE 10-Mar-2026") == [before]
    assert await box.search("SINCE 10-Mar-2026") == [at, late, after]
    assert await box.search("SINCE 11-Mar-2026") == [after]
    assert await box.search("ON 9-Mar-2026") == [before]


async def test_internal_date_day_follows_the_given_zone(services: Services) -> None:
    box = await Mailbox.create(services)
    # 23:30 UTC on 9 March is 00:30 on 10 March in Paris.
    uid = await box.append(
        build_message(), received_at=us(datetime(2026, 3, 9, 23, 30, tzinfo=UTC))
    )

    async def on(day: date, zone: timezone | ZoneInfo) -> list[int]:
        rows = await engine.find_messages(
            services.database,
            blobs=services.blobs,
            account_id=box.account_id,
            mailbox_id=box.mailbox_id,
            criteria=engine.DateIs(engine.DateField.RECEIVED, engine.DateRelation.ON, day),
            zone=zone,
        )
        return [row.uid for row in rows]

    assert await on(date(2026, 3, 10), ZoneInfo("Europe/Paris")) == [uid]
    assert await on(date(2026, 3, 9), ZoneInfo("Europe/Paris")) == []
    assert await on(date(2026, 3, 9), UTC) == [uid]
    assert await on(date(2026, 3, 9), ZoneInfo("America/New_York")) == [uid]


async def test_sent_date_keys_use_the_date_as_written_disregarding_its_zone(
    box: Mailbox,
) -> None:
    # 00:30 +0100 on 23 November is still 22 November in UTC: SENTON is the written day.
    after_midnight = await box.append(build_message(date="Mon, 23 Nov 2026 00:30:00 +0100"))
    # 23:30 -0500 on 22 November is 23 November in UTC.
    before_midnight = await box.append(build_message(date="Sun, 22 Nov 2026 23:30:00 -0500"))
    undated = await box.append(build_message(date=None))
    assert await box.search("SENTON 23-Nov-2026") == [after_midnight]
    assert await box.search("SENTON 22-Nov-2026") == [before_midnight]
    assert await box.search("SENTBEFORE 23-Nov-2026") == [before_midnight]
    assert await box.search("SENTSINCE 23-Nov-2026") == [after_midnight]
    assert await box.search("SENTSINCE 1-Jan-1970") == [after_midnight, before_midnight]
    assert await box.search("NOT SENTSINCE 1-Jan-1970") == [undated]


async def test_larger_and_smaller_are_strict(box: Mailbox) -> None:
    small = await box.append(build_message(body="x"))
    large = await box.append(build_message(body="x" * 5000))
    small_size = len(build_message(body="x"))
    assert await box.search(f"LARGER {small_size}") == [large]
    assert await box.search(f"LARGER {small_size - 1}") == [small, large]
    assert await box.search(f"SMALLER {small_size}") == []
    assert await box.search(f"SMALLER {small_size + 1}") == [small]
    assert await box.search("LARGER 0") == [small, large]


async def test_older_and_younger_compare_the_internal_date_with_now(box: Mailbox) -> None:
    now = time.time()
    old = await box.append(build_message(), received_at=int((now - 3 * 86400) * 1_000_000))
    new = await box.append(build_message(), received_at=int((now - 3600) * 1_000_000))
    assert await box.search("YOUNGER 86400") == [new]
    assert await box.search("OLDER 86400") == [old]
    assert await box.search("OLDER 1") == [old, new]


async def test_modseq_finds_changes_and_reports_the_highest(box: Mailbox) -> None:
    first = await box.append(build_message())
    second = await box.append(build_message())
    await box.set_flags(first, "\\Seen")
    modseqs = await box.modseqs()
    assert modseqs[first] > modseqs[second]
    result = await box.search_result(f"MODSEQ {modseqs[first]}")
    assert result.uids == [first]
    assert result.highest_modseq == modseqs[first]
    result = await box.search_result(f"MODSEQ {modseqs[second]}")
    assert result.uids == [first, second]
    assert result.highest_modseq == max(modseqs.values())
    entry = await box.search_result(f'MODSEQ "/flags/\\\\seen" all {modseqs[first]}')
    assert entry.uids == [first]


async def test_highest_modseq_is_absent_without_modseq_or_matches(box: Mailbox) -> None:
    await box.append(build_message())
    assert (await box.search_result("ALL")).highest_modseq is None
    assert (await box.search_result("MODSEQ 999999")).highest_modseq is None
    assert (await box.search_result("NOT MODSEQ 999999")).highest_modseq is not None


# -- OR, NOT, nesting -----------------------------------------------------------------------


async def test_or_not_and_parenthesised_lists_nest(box: Mailbox) -> None:
    a = await box.append(build_message(subject="alpha"), flags=["\\Seen"])
    b = await box.append(build_message(subject="beta"), flags=["\\Flagged"])
    c_ = await box.append(build_message(subject="gamma"), flags=["\\Seen", "\\Flagged"])
    d = await box.append(build_message(subject="delta"))
    assert await box.search("OR SEEN FLAGGED") == [a, b, c_]
    assert await box.search("SEEN FLAGGED") == [c_]
    assert await box.search("NOT (SEEN FLAGGED)") == [a, b, d]
    assert await box.search("NOT OR SEEN FLAGGED") == [d]
    assert await box.search("OR (SEEN NOT FLAGGED) SUBJECT delta") == [a, d]
    assert await box.search("OR OR SUBJECT alpha SUBJECT beta NOT NOT SUBJECT delta") == [a, b, d]
    assert await box.search("(OR 1 4) (OR SEEN UNFLAGGED)") == [a, d]
    assert await box.search("NOT ALL") == []


async def test_or_of_text_keys_with_uid_sets(box: Mailbox) -> None:
    a = await box.append(build_message(subject="rapport annuel", body="chiffres"))
    b = await box.append(build_message(subject="autre", body="le rapport"))
    await box.append(build_message(subject="rien"))
    assert await box.search("OR SUBJECT rapport BODY rapport") == [a, b]
    assert await box.search(f"UID {b}:* OR SUBJECT rapport BODY rapport") == [b]


# -- the corpus: real messages never break the engine -------------------------------------


async def test_every_corpus_message_survives_every_kind_of_key(box: Mailbox) -> None:
    paths = sorted(CORPUS.glob("*.eml"))
    uids = [await box.append(path.read_bytes()) for path in paths]
    for criteria in (
        "TEXT the",
        "BODY a",
        'HEADER Content-Type ""',
        "SUBJECT re",
        "FROM @",
        "TO example",
        "CC a",
        "BCC a",
        "SENTSINCE 1-Jan-1990",
        "SENTBEFORE 1-Jan-2100",
        "LARGER 1",
    ):
        found = await box.search(criteria)
        assert set(found) <= set(uids), criteria
    typed = [
        uid
        for uid, path in zip(uids, paths, strict=True)
        if "content-type" in {name.lower() for name in email.message_from_bytes(path.read_bytes())}
    ]
    assert await box.search('HEADER Content-Type ""') == typed
    creme = "crème".encode()
    assert await box.search(b"SUBJECT {%d}\r\n" % len(creme) + creme) == [
        uids[paths.index(CORPUS / "13-iso-8859-1.eml")]
    ]


async def test_dates_at_the_ends_of_the_calendar_never_fail(box: Mailbox) -> None:
    uid = await box.append(build_message())
    for day in (date(1, 1, 1), date(1, 1, 2), date(9999, 12, 31)):
        for key in ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"):
            context = box.context()
            result = await imap_search.search(box.services, context, c.SearchDate(key, day))
            assert result.uids in ([], [uid]), (key, day)
    assert await box.search("SINCE 1-Jan-0001") == [uid]
    assert await box.search("BEFORE 31-Dec-9999") == [uid]
