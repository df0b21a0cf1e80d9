"""SELECT after changes made elsewhere: the listener keeps the UID/modseq columns of
the mailboxes it opened and brings them forward from the change journal
(``store.emails.patched_columns``) instead of reading every row again. What the client
is told must be exactly what a full read gives: EXISTS, UIDNEXT, HIGHESTMODSEQ, FLAGS,
and the sequence numbers, UIDs, flags and modseqs a later FETCH returns.

Each test checks that the journal path really ran (a spy on ``patched_columns``), and
compares with the store's rows and with a SELECT whose columns were read in full."""

from __future__ import annotations

import random
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from hirondelle.store import emails, schema
from tests.imap.conftest import ImapServer, RawClient
from tests.messages import simple_message


@dataclass(frozen=True)
class Selected:
    """What SELECT said, in the terms a client keeps."""

    flags: frozenset[str]
    exists: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int


@dataclass(frozen=True)
class Row:
    seq: int
    uid: int
    flags: frozenset[str]
    modseq: int


class Spy:
    """Records what every ``patched_columns`` call returned: True when the columns were
    brought forward from the journal, False when the store had to read them again."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.outcomes: list[bool] = []
        self.force_full_read = False
        original = emails.patched_columns

        def spy(*args: Any, **kwargs: Any) -> tuple[array[int], array[int]] | None:
            if self.force_full_read:
                self.outcomes.append(False)
                return None
            result = original(*args, **kwargs)
            self.outcomes.append(result is not None)
            return result

        monkeypatch.setattr(emails, "patched_columns", spy)

    def take(self) -> list[bool]:
        outcomes, self.outcomes = self.outcomes, []
        return outcomes


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


def _number(lines: list[bytes], code: bytes) -> int:
    for line in lines:
        match = re.search(rb"\[" + code + rb" (\d+)\]", line)
        if match:
            return int(match.group(1))
    raise AssertionError((code, lines))


def _selected(lines: list[bytes]) -> Selected:
    flags = next(line for line in lines if line.startswith(b"* FLAGS ("))
    exists = [int(line.split()[1]) for line in lines if line.endswith(b" EXISTS")]
    assert len(exists) == 1, lines
    return Selected(
        flags=frozenset(flags[len(b"* FLAGS (") : -1].decode().split()),
        exists=exists[0],
        uidnext=_number(lines, b"UIDNEXT"),
        uidvalidity=_number(lines, b"UIDVALIDITY"),
        highestmodseq=_number(lines, b"HIGHESTMODSEQ"),
    )


_FETCH = re.compile(rb"\* (\d+) FETCH \((.*)\)")


def _rows(client: RawClient) -> list[Row]:
    """FETCH 1:* (UID FLAGS MODSEQ) as rows, in sequence order."""
    lines = client.command("FETCH 1:* (UID FLAGS MODSEQ)")[:-1]
    rows = []
    for line in lines:
        match = _FETCH.fullmatch(line)
        assert match, line
        items = match.group(2)
        uid = re.search(rb"UID (\d+)", items)
        modseq = re.search(rb"MODSEQ \((\d+)\)", items)
        flags = re.search(rb"FLAGS \(([^)]*)\)", items)
        assert uid and modseq and flags, line
        rows.append(
            Row(
                int(match.group(1)),
                int(uid.group(1)),
                frozenset(flags.group(1).decode().split()),
                int(modseq.group(1)),
            )
        )
    return rows


def _store_rows(imap: ImapServer) -> tuple[list[tuple[int, int]], int, int]:
    """The Inbox as the store has it: (UID, modseq) in UID order, UIDNEXT and the
    mailbox's highest modseq."""
    inbox = imap.mailbox("INBOX")
    mm = schema.mailbox_messages

    def read(conn: sa.Connection) -> list[tuple[int, int]]:
        rows = conn.execute(
            sa.select(mm.c.uid, mm.c.modseq).where(mm.c.mailbox_id == inbox.id).order_by(mm.c.uid)
        )
        return [(int(uid), int(modseq)) for uid, modseq in rows]

    return imap.run(imap.services.database.read(read)), inbox.uidnext, inbox.highest_modseq


def _client(imap: ImapServer) -> RawClient:
    client = imap.raw()
    client.login()
    return client


def _append(client: RawClient, flags: str = "", mailbox: str = "INBOX") -> int:
    message = simple_message(subject="appended")
    head = b"a APPEND %s (%s) {%d+}\r\n" % (mailbox.encode(), flags.encode(), len(message))
    client.send(head + message + b"\r\n")
    lines = client.until_tagged(b"a")
    assert lines[-1].startswith(b"a OK"), lines
    return _number(lines, rb"APPENDUID \d+")


def _full_read(imap: ImapServer, spy: Spy) -> tuple[Selected, list[Row]]:
    """A SELECT whose columns are read in full (the patch refused), and its FETCH."""
    spy.force_full_read = True
    try:
        client = _client(imap)
        selected = _selected(client.command("SELECT INBOX"))
        rows = _rows(client)
        client.close()
    finally:
        spy.force_full_read = False
    return selected, rows


@pytest.fixture
def clients(imap: ImapServer) -> Iterator[tuple[RawClient, RawClient]]:
    reader, actor = _client(imap), _client(imap)
    yield reader, actor
    reader.close()
    actor.close()


def test_select_after_flags_expunge_and_append_by_another_session_is_exact(
    imap: ImapServer, spy: Spy, clients: tuple[RawClient, RawClient]
) -> None:
    for number in range(8):
        imap.deliver(simple_message(subject=f"message {number}"))
    reader, actor = clients
    first = _selected(reader.command("SELECT INBOX"))
    assert first.exists == 8 and first.uidnext == 9
    reader.command("UNSELECT")

    actor.command("SELECT INBOX")
    actor.command("UID STORE 2 +FLAGS (\\Flagged $important)")
    actor.command("UID STORE 3,5 +FLAGS.SILENT (\\Deleted)")
    actor.command("EXPUNGE")
    appended = _append(actor, "\\Seen $later")
    imap.deliver(simple_message(subject="delivered"))
    actor.command("UID STORE 8 -FLAGS.SILENT (\\Seen)")  # a no-op: no journal row
    actor.command("UID STORE 7 +FLAGS.SILENT (\\Answered)")

    spy.take()
    selected = _selected(reader.command("SELECT INBOX"))
    assert spy.take() == [True]  # brought forward from the journal, not read again
    rows = _rows(reader)

    store_rows, uidnext, highest = _store_rows(imap)
    assert appended == 9
    assert [uid for uid, _ in store_rows] == [1, 2, 4, 6, 7, 8, 9, 10]
    assert selected.exists == 8 == len(rows)
    assert selected.uidnext == uidnext == 11
    assert selected.highestmodseq == highest
    assert selected.highestmodseq == max(modseq for _, modseq in store_rows)
    assert selected.uidvalidity == first.uidvalidity
    assert {"$important", "$later"} <= selected.flags
    assert [(r.seq, r.uid, r.modseq) for r in rows] == [
        (seq, uid, modseq) for seq, (uid, modseq) in enumerate(store_rows, start=1)
    ]
    by_uid = {r.uid: r.flags for r in rows}
    assert by_uid[2] == {"\\Flagged", "$important"}
    assert by_uid[7] == {"\\Answered"}
    assert by_uid[9] == {"\\Seen", "$later"}
    assert by_uid[10] == set()
    # The same answer as when every row is read.
    assert _full_read(imap, spy) == (selected, rows)


def test_select_after_random_changes_matches_a_full_read(
    imap: ImapServer, spy: Spy, clients: tuple[RawClient, RawClient]
) -> None:
    """Rounds of random flag changes, expunges, appends, copies in and moves out made
    by another session between two SELECTs: every SELECT through the journal equals a
    SELECT that reads everything."""
    rng = random.Random(4)
    reader, actor = clients
    actor.command("CREATE Other")
    for number in range(12):
        imap.deliver(simple_message(subject=f"message {number}"))
    reader.command("SELECT INBOX")
    patched = 0
    flags = ["\\Seen", "\\Flagged", "\\Answered", "$work", "$home"]
    for _round in range(8):
        actor.command("SELECT INBOX")
        uids = [uid for uid, _ in _store_rows(imap)[0]]
        for _ in range(rng.randint(1, 5)):
            action = rng.choice(["flag", "unflag", "expunge", "append", "copy_in", "move_out"])
            some = ",".join(str(u) for u in rng.sample(uids, min(len(uids), rng.randint(1, 3))))
            if action == "flag" and uids:
                actor.command(f"UID STORE {some} +FLAGS.SILENT ({rng.choice(flags)})")
            elif action == "unflag" and uids:
                actor.command(f"UID STORE {some} -FLAGS.SILENT ({rng.choice(flags)})")
            elif action == "expunge" and uids:
                actor.command(f"UID STORE {some} +FLAGS.SILENT (\\Deleted)")
                actor.command(f"UID EXPUNGE {some}")
            elif action == "append":
                _append(actor, rng.choice(flags))
            elif action == "copy_in":
                actor.command("SELECT Other")
                _append(actor, mailbox="Other")
                actor.command("COPY 1:* INBOX")
                actor.command("SELECT INBOX")
            elif action == "move_out" and uids:
                actor.command(f"UID MOVE {some} Other")
            uids = [uid for uid, _ in _store_rows(imap)[0]]
        reader.command("UNSELECT")
        spy.take()
        selected = _selected(reader.command("SELECT INBOX"))
        outcomes = spy.take()
        assert False not in outcomes  # never read in full ([] when nothing changed)
        patched += len(outcomes)
        rows = _rows(reader)
        store_rows, uidnext, highest = _store_rows(imap)
        assert [(r.uid, r.modseq) for r in rows] == store_rows
        assert (selected.exists, selected.uidnext, selected.highestmodseq) == (
            len(store_rows),
            uidnext,
            highest,
        )
        assert _full_read(imap, spy) == (selected, rows)
    assert patched >= 6


def test_select_reads_everything_again_when_the_journal_was_compacted(
    imap: ImapServer, spy: Spy, clients: tuple[RawClient, RawClient]
) -> None:
    for _ in range(4):
        imap.deliver(simple_message())
    reader, actor = clients
    reader.command("SELECT INBOX")
    reader.command("UNSELECT")
    actor.command("SELECT INBOX")
    actor.command("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    actor.command("EXPUNGE")
    account_id = imap.account.id if imap.account else 0

    def compact(conn: sa.Connection) -> None:
        accounts = schema.accounts
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(journal_floor=accounts.c.modseq)
        )

    imap.run(imap.services.database.write(lambda ctx: compact(ctx.conn)))
    spy.take()
    selected = _selected(reader.command("SELECT INBOX"))
    assert spy.take() == [False]  # the journal no longer reaches back: read again
    assert selected.exists == 3
    assert [r.uid for r in _rows(reader)] == [1, 3, 4]
    reader.command("UNSELECT")
    spy.take()
    reader.command("SELECT INBOX")
    assert spy.take() == []  # nothing changed since: the columns are used as they are


def test_select_reads_everything_again_after_many_changes(
    imap: ImapServer,
    spy: Spy,
    clients: tuple[RawClient, RawClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(emails, "PATCH_LIMIT", 3)
    for _ in range(6):
        imap.deliver(simple_message())
    reader, actor = clients
    reader.command("SELECT INBOX")
    reader.command("UNSELECT")
    actor.command("SELECT INBOX")
    actor.command("STORE 1:2 +FLAGS.SILENT (\\Seen)")
    spy.take()
    reader.command("SELECT INBOX")
    assert spy.take() == [True]  # 2 journal rows: patched
    reader.command("UNSELECT")
    actor.command("STORE 1:4 +FLAGS.SILENT (\\Flagged)")
    spy.take()
    reader.command("SELECT INBOX")
    assert spy.take() == [False]  # 4 rows > 3: read again
    rows = _rows(reader)
    assert [r.flags for r in rows] == [{"\\Seen", "\\Flagged"}] * 2 + [{"\\Flagged"}] * 2 + [
        set()
    ] * 2


# -- the pure patch, without a store -----------------------------------------------------

uid_sets = st.sets(st.integers(1, 300), max_size=80)


@given(uid_sets, st.data())
def test_patch_columns_equals_the_new_state(before: set[int], data: st.DataObject) -> None:
    """Whatever happened to the touched UIDs, the patched columns are the rows as they
    are now: untouched UIDs keep their modseq, touched ones take theirs or go."""
    modseq_of = {uid: uid % 7 + 1 for uid in before}
    touched = data.draw(st.sets(st.integers(1, 400), max_size=40))
    now_present = (
        data.draw(st.sets(st.sampled_from(sorted(touched)), max_size=40)) if touched else set()
    )
    present = {uid: 1000 + uid for uid in now_present}
    uids = array("I", sorted(before))
    modseqs = array("Q", [modseq_of[u] for u in sorted(before)])
    kept_uids, kept_modseqs = array("I", uids), array("Q", modseqs)
    new_uids, new_modseqs = emails.patch_columns(uids, modseqs, sorted(touched), present)
    expected = {u: m for u, m in modseq_of.items() if u not in touched} | present
    assert list(new_uids) == sorted(expected)
    assert list(new_modseqs) == [expected[u] for u in sorted(expected)]
    assert (uids, modseqs) == (kept_uids, kept_modseqs)  # the inputs are shared: unchanged
