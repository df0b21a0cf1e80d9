"""The main correctness net of the search engine: random search-key trees evaluated by
imap/search.py + mail/search.py equal a plain Python evaluation (an oracle written from
RFC 9051 §6.4.4 and the documented deviations) over the same messages, on SQLite."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hirondelle.imap.proto import commands as c
from hirondelle.imap.proto.sequence_set import STAR, SequenceSet
from hirondelle.imap.search import SearchContext, search
from hirondelle.mime.headers import parse_date
from hirondelle.services import Services
from hirondelle.store.search import fold, words

from .search_fixtures import Mailbox

VOCABULARY = [
    "alpha",
    "beta",
    "gamma",
    "rapport",
    "réunion",
    "Genève",
    "hello",
    "world",
    "quick",
    "brown",
    "x-ray",
    "naïve",
    "projet",
    "2026",
]
FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft", "Projet-X"]
ZONES = ["+0100", "-0500", "+0000", "+1300"]
DAY = 86_400


@dataclass
class Model:
    """What the oracle knows of one message: exactly what was put in it."""

    uid: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    flags: set[str] = field(default_factory=set)
    received_at: int = 0
    size: int = 0
    modseq: int = 0

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def _addresses(values: list[str]) -> str:
    """An address header as the engine searches it: "Name <mailbox@host>, ..."."""
    out = []
    for value in values:
        match = re.fullmatch(r"(.*?)\s*<(.*)>", value)
        name, address = (match.group(1), match.group(2)) if match else ("", value)
        out.append(f"{name} <{address}>" if name else f"<{address}>")
    return ", ".join(out)


def _body_matches(needle: str, body: str) -> bool:
    """The documented BODY rule (and TEXT's, on the header text too): every word of the
    string begins a word of the text (the index), and the whole string is a substring
    (the check)."""
    folded = fold(needle)
    if not folded:
        return True
    body_words = words(body)
    if not all(any(t.startswith(w) for t in body_words) for w in words(needle)):
        return False
    return folded in fold(body)


def _written_day(model: Model) -> date | None:
    values = model.header("Date")
    parsed = parse_date(values[0].encode()) if values else None
    return parsed.date() if parsed else None


@dataclass
class World:
    mailbox: Mailbox
    models: list[Model]
    context: SearchContext
    now: float

    def oracle(self, key: c.SearchKey, m: Model) -> bool:
        if isinstance(key, c.SearchAll):
            return True
        if isinstance(key, c.SearchFlag):
            if key.flag == "\\Recent":
                return (m.uid in self.context.recent_uids) is key.present
            has = key.flag.lower() in {f.lower() for f in m.flags}
            return has is key.present
        if isinstance(key, c.SearchNew):
            return m.uid in self.context.recent_uids and "\\seen" not in {
                f.lower() for f in m.flags
            }
        if isinstance(key, c.SearchText):
            needle = fold(key.value)
            if key.field == "SUBJECT":
                return needle in fold(m.header("Subject")[0])
            if key.field in ("FROM", "TO", "CC", "BCC"):
                return needle in fold(_addresses(m.header(key.field)))
            if key.field == "BODY":
                return _body_matches(key.value, m.body)
            # TEXT: the header text goes through the index as the body does (documented
            # in mail/search.py): the same word-start rule, then the substring.
            header_text = "\n".join(f"{name}: {value}" for name, value in m.headers)
            return _body_matches(key.value, header_text) or _body_matches(key.value, m.body)
        if isinstance(key, c.SearchHeader):
            needle = fold(key.value)
            return any(needle in fold(value) for value in m.header(key.field))
        if isinstance(key, c.SearchDate):
            if key.key.startswith("SENT"):
                day = _written_day(m)
                if day is None:
                    return False
            else:
                day = datetime.fromtimestamp(m.received_at / 1_000_000).date()
            relation = key.key.removeprefix("SENT")
            if relation == "BEFORE":
                return day < key.day
            if relation == "ON":
                return day == key.day
            return day >= key.day
        if isinstance(key, c.SearchSize):
            return m.size > key.size if key.larger else m.size < key.size
        if isinstance(key, c.SearchWithin):
            age = self.now - m.received_at / 1_000_000
            return age > key.seconds if key.older else age <= key.seconds
        if isinstance(key, c.SearchSet):
            view = list(self.context.uids)
            if key.numbers.saved:
                return m.uid in (self.context.saved_uids or ())
            if key.uid:
                return key.numbers.contains(m.uid, view[-1])
            return m.uid in view and key.numbers.contains(view.index(m.uid) + 1, len(view))
        if isinstance(key, c.SearchModSeq):
            return m.modseq >= key.modseq
        if isinstance(key, c.SearchNot):
            return not self.oracle(key.key, m)
        if isinstance(key, c.SearchOr):
            return self.oracle(key.left, m) or self.oracle(key.right, m)
        assert isinstance(key, c.SearchAnd)
        return all(self.oracle(k, m) for k in key.keys)


def _message(rng: random.Random, number: int) -> tuple[list[tuple[str, str]], str]:
    def phrase(low: int, high: int) -> str:
        return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(low, high)))

    subject = phrase(1, 3)
    if rng.random() < 0.3:
        subject = "Re: " + subject
    domain = rng.choice(["example.test", "hirondelle.fr"])
    sender = f"{rng.choice(VOCABULARY)}{number}@{domain}"
    if rng.random() < 0.6:
        sender = f"{rng.choice(VOCABULARY).capitalize()} <{sender}>"
    headers = [("From", sender), ("To", f"{rng.choice(VOCABULARY)}@example.test")]
    if rng.random() < 0.5:
        headers.append(("Cc", f"{rng.choice(VOCABULARY).capitalize()} <cc{number}@{domain}>"))
    headers.append(("Subject", subject))
    if rng.random() < 0.85:
        day, hour = rng.randint(1, 25), rng.choice([0, 1, 12, 22, 23])
        headers.append(("Date", f"{day:02d} Nov 2026 {hour:02d}:30:00 {rng.choice(ZONES)}"))
    if rng.random() < 0.4:
        headers.append(("X-Tag", phrase(1, 2)))
    body = phrase(3, 10) + rng.choice([".", "!", " - fin", ""])
    return headers, body


def _contents() -> list[tuple[list[tuple[str, str]], str]]:
    """The header fields (all of them, in order) and body of each message."""
    rng = random.Random(4)
    contents = []
    for number in range(16):
        headers, body = _message(rng, number)
        headers += [("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8")]
        contents.append((headers, body))
    return contents


def _raw(headers: list[tuple[str, str]], body: str) -> bytes:
    text = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (text + "\r\n" + body + "\r\n").encode()


async def build_world(services: Services) -> World:
    rng = random.Random(4)
    box = await Mailbox.create(services)
    now = time.time()
    models: list[Model] = []
    for headers, body in _contents():
        raw = _raw(headers, body)
        flags = {flag for flag in FLAGS if rng.random() < 0.35}
        received_at = int((now - (rng.randint(0, 20) + 0.5) * DAY) * 1_000_000)
        uid = await box.append(raw, flags=sorted(flags), received_at=received_at)
        models.append(Model(uid, headers, body, flags, received_at, len(raw)))
    # A gap in the UIDs, and later changes that give messages distinct modseqs.
    await box.expunge(models[5].uid)
    del models[5]
    for model in models[::4]:
        await box.set_flags(model.uid, "$Later")
        model.flags.add("$Later")
    modseqs = await box.modseqs()
    for model in models:
        model.modseq = modseqs[model.uid]
    uids = [m.uid for m in models]
    context = box.context(saved=uids[1::3], recent=uids[-4:])
    return World(box, models, context, now)


def _needles(models: list[Model]) -> list[str]:
    """Strings that occur in the messages (whole words, prefixes, inner substrings,
    phrases, address pieces), and some that do not."""
    found: set[str] = {"", "zzz", "@", "ell", "é", "re:", "x-r"}
    for model in models:
        texts = [model.body, *(value for _, value in model.headers)]
        for text in texts:
            for word in text.split():
                found.update({word, word[:3], word[1:4]})
            if len(text) > 8:
                found.update({text[2:9], text[:12]})
    return sorted(found)


_WORLD_NEEDLES = _needles([Model(headers=headers, body=body) for headers, body in _contents()])


def _sets() -> st.SearchStrategy[SequenceSet]:
    number = st.one_of(st.integers(1, 18), st.just(STAR))
    pair = st.tuples(number, number)
    return st.one_of(
        st.lists(pair, min_size=1, max_size=3).map(lambda p: SequenceSet(tuple(p))),
        st.just(SequenceSet.saved_result()),
    )


TRICKY_NEEDLES = [
    "@",
    "-",
    " ",
    "hello alpha",
    "alpha hello",
    "quick brown",
    "brown quick",
    "ell",
    "lo wor",
    "x-r",
    "ray",
    "genève",
    "GENEVE",
    "naive",
    "é",
    "026",
    "re: ",
    "example.test",
]
SIZES = sorted({len(_raw(h, b)) + delta for h, b in _contents() for delta in (-1, 0, 1)})


def _leaves(needles: list[str]) -> st.SearchStrategy[c.SearchKey]:
    needle = st.one_of(
        st.sampled_from(TRICKY_NEEDLES),
        st.sampled_from(needles),
        st.text("abeélo @.-x", max_size=5),
    )
    day = st.integers(1, 26).map(lambda d: date(2026, 11, d))
    return st.one_of(
        st.just(c.SearchAll()),
        st.builds(c.SearchFlag, st.sampled_from([*FLAGS, "$later", "\\Recent"]), st.booleans()),
        st.just(c.SearchNew()),
        st.builds(
            c.SearchText,
            st.sampled_from(["SUBJECT", "FROM", "TO", "CC", "BCC", "BODY", "TEXT"]),
            needle,
        ),
        st.builds(
            c.SearchHeader, st.sampled_from(["Subject", "x-tag", "From", "Date", "Cc"]), needle
        ),
        st.builds(
            c.SearchDate,
            st.sampled_from(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]),
            day,
        ),
        st.builds(c.SearchSize, st.booleans(), st.sampled_from(SIZES)),
        st.builds(c.SearchWithin, st.booleans(), st.integers(0, 22).map(lambda d: d * DAY)),
        st.builds(c.SearchSet, _sets(), st.booleans()),
        st.builds(c.SearchModSeq, st.integers(0, 40)),
    )


def _keys(needles: list[str]) -> st.SearchStrategy[c.SearchKey]:
    return st.recursive(
        _leaves(needles),
        lambda children: st.one_of(
            st.builds(c.SearchNot, children),
            st.builds(c.SearchOr, children, children),
            st.lists(children, min_size=2, max_size=3).map(lambda k: c.SearchAnd(tuple(k))),
        ),
        max_leaves=6,
    )


@pytest.fixture
async def world(services: Services) -> World:
    return await build_world(services)


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=_keys(_WORLD_NEEDLES))
async def test_engine_agrees_with_a_plain_python_evaluation(world: World, key: c.SearchKey) -> None:
    result = await search(world.mailbox.services, world.context, key, charset="UTF-8")
    expected = [m.uid for m in world.models if world.oracle(key, m)]
    assert result.uids == expected, key
