"""Deterministic, realistic test messages for the benchmarks.

:func:`generate` builds the same list of messages for the same seed on every machine:

- 70% ``text/plain`` of 2-20 KB,
- 20% ``multipart/alternative`` (text + quoted-printable HTML),
- 10% ``multipart/mixed`` with one base64 attachment of 50-500 KB,

with From/To/Cc (some display names as RFC 2047 encoded words), subjects (some encoded),
Date, Message-ID, and for 30% In-Reply-To/References to an earlier message, so that
threads form. Word frequencies follow a Zipf law over a vocabulary of common words and
generated ones, so the full-text index sees a realistic spread of terms. One message in
100 contains :data:`MARKER_WORD`, for search benchmarks.

Every message is CRLF-terminated, as it arrives from SMTP.
"""

from __future__ import annotations

import base64
import itertools
import quopri
import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime

MARKER_WORD = "quokka"
MARKER_EVERY = 100  # one message in MARKER_EVERY holds MARKER_WORD

_COMMON_TEXT = """
the of and to in is that it for was on are as with his they at be this have from or one
had by word but not what all were we when your can said there use an each which she do how
their if will up other about out many then them these so some her would make like him into
time has look two more write go see number no way could people my than first water been
call who oil its now find long down day did get come made may part meeting project budget
report review please thanks regards attached schedule tomorrow today next week monday
friday update question answer team customer invoice contract draft version release server
mail calendar contact account password backup network office holiday lunch coffee agenda
minutes deadline proposal quarterly figures sales marketing support ticket issue bug fix
deploy test build plan travel flight hotel conference slides notes summary action items
"""
_ACCENTED_TEXT = "réunion équipe déjà très prévu café naïve Genève Zürich façade élève"
_ACCENTED_WORDS = _ACCENTED_TEXT.split(" ")

_FIRST_NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "François",
    "Gaëlle",
    "Hélène",
    "Ivan",
    "Jürgen",
    "Karin",
    "Léa",
    "Mónica",
    "Noé",
    "Olivia",
    "Pierre",
    "Quentin",
    "Renée",
    "Søren",
    "Thomas",
    "Ursula",
    "Véronique",
    "William",
    "Zoë",
]
_LAST_NAMES = [
    "Martin",
    "Dupré",
    "Müller",
    "Smith",
    "García",
    "Rossi",
    "Lefèvre",
    "Nowak",
    "Jensen",
    "Öztürk",
    "Brown",
    "Moreau",
    "Fischer",
    "Novák",
    "Young",
]
_DOMAINS = [
    "example.test",
    "partner.example",
    "customer.example",
    "lists.example.org",
    "mail.example.net",
]
_ATTACHMENTS = [
    ("application/pdf", "report-{n}.pdf"),
    ("image/jpeg", "photo-{n}.jpg"),
    ("application/zip", "archive-{n}.zip"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "figures-{n}.xlsx"),
    ("application/pdf", "facture-n°{n}.pdf"),  # non-ASCII name: RFC 2231 encoded
]


@dataclass(frozen=True, slots=True)
class Message:
    raw: bytes
    kind: str  # "plain", "alternative" or "mixed"
    has_marker: bool


def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    syllables = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"]
    seen: set[str] = set()
    result: list[str] = []
    while len(result) < count:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen and word != MARKER_WORD:
            seen.add(word)
            result.append(word)
    return result


class _Vocabulary:
    def __init__(self, rng: random.Random) -> None:
        words = [*_COMMON_TEXT.split(), *_ACCENTED_WORDS, *_pseudo_words(rng, 3000)]
        self.words = words
        self.cum_weights = list(
            itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words)))
        )

    def text(self, rng: random.Random, size: int, marker: bool = False) -> str:
        """Paragraphs of 72-column lines, about ``size`` bytes, CRLF line ends."""
        words = rng.choices(self.words, cum_weights=self.cum_weights, k=max(8, size // 6))
        if marker:
            words[rng.randrange(len(words))] = MARKER_WORD
        lines: list[str] = []
        line: list[str] = []
        width = 0
        total = 0
        for index, word in enumerate(words):
            if width + len(word) + 1 > 72:
                lines.append(" ".join(line))
                total += width + 2
                line, width = [], 0
                if index % 9 == 0:
                    lines.append("")
            line.append(word)
            width += len(word) + 1
            if total >= size:
                break
        if line:
            lines.append(" ".join(line))
        return "\r\n".join(lines) + "\r\n"


def _sized_text(vocabulary: _Vocabulary, rng: random.Random, size: int, marker: bool) -> str:
    """Text of ``size`` UTF-8 bytes give or take one line (``_Vocabulary.text`` comes out
    short of its target): more paragraphs until there is enough, then whole lines cut."""
    text = vocabulary.text(rng, size, marker)
    while len(text.encode()) < size:
        text += vocabulary.text(rng, size - len(text.encode()))
    lines = text.split("\r\n")
    kept: list[str] = []
    total = 0
    for line in lines:
        if total >= size:
            break
        kept.append(line)
        total += len(line.encode()) + 2
    return "\r\n".join(kept) + "\r\n"


def _encoded(text: str) -> str:
    """``text`` as is when ASCII, else RFC 2047 encoded words."""
    if text.isascii():
        return text
    return Header(text, "utf-8").encode()


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    decomposed = unicodedata.normalize("NFKD", f"{first}.{last}".lower())
    local = decomposed.replace("ø", "o").encode("ascii", "ignore").decode()
    return f"{first} {last}", f"{local}@{rng.choice(_DOMAINS)}"


def _address(rng: random.Random) -> str:
    name, email = _person(rng)
    if rng.random() < 0.15:
        return email
    encoded = _encoded(name)
    return f"{encoded} <{email}>" if encoded != name else f'"{name}" <{email}>'


def _qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")


def _base64_lines(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def _html(text: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>\r\n" for p in text.split("\r\n\r\n"))
    return (
        '<!DOCTYPE html>\r\n<html><head><meta charset="utf-8"><style>p{margin:0 0 1em}</style>'
        f"</head>\r\n<body>\r\n{paragraphs}</body></html>\r\n"
    )


def generate(count: int, *, seed: int = 1, size: int | None = None) -> list[Message]:
    """``count`` messages, identical for the same ``seed``.

    With ``size``, every message is about ``size`` bytes (within a few percent): 80%
    ``text/plain``, 20% ``multipart/alternative``, no attachments; the headers, threads
    and vocabulary are as in the mix."""
    rng = random.Random(seed)
    vocabulary = _Vocabulary(random.Random(seed + 1))
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    ids: list[str] = []
    references: list[list[str]] = []
    subjects: list[str] = []
    messages: list[Message] = []
    for n in range(count):
        roll = rng.random()
        if size is None:
            kind = "plain" if roll < 0.7 else "alternative" if roll < 0.9 else "mixed"
        else:
            kind = "plain" if roll < 0.8 else "alternative"
        marker = n % MARKER_EVERY == MARKER_EVERY // 2
        message_id = f"{n}.{rng.getrandbits(48):012x}@{rng.choice(_DOMAINS)}"
        refs: list[str] = []
        if n > 0 and rng.random() < 0.3:
            parent = rng.randrange(max(0, n - 500), n)
            refs = [*references[parent][-9:], ids[parent]]
            base = subjects[parent]
            subject = base if base.startswith("Re: ") else f"Re: {base}"
        else:
            subject = " ".join(
                rng.choices(vocabulary.words[:250], k=rng.randint(2, 8))
            ).capitalize()
            if rng.random() < 0.15:
                subject = f"{rng.choice(_ACCENTED_WORDS).capitalize()} {subject}"
        ids.append(message_id)
        references.append(refs)
        subjects.append(subject)
        date = start + timedelta(minutes=7 * n, seconds=rng.randrange(60))
        headers = [
            f"Return-Path: <{_person(rng)[1]}>",
            f"From: {_address(rng)}",
            "To: " + ", ".join(_address(rng) for _ in range(rng.randint(1, 3))),
        ]
        if rng.random() < 0.4:
            headers.append("Cc: " + ", ".join(_address(rng) for _ in range(rng.randint(1, 4))))
        headers += [
            f"Subject: {_encoded(subject)}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{message_id}>",
        ]
        if refs:
            headers.append(f"In-Reply-To: <{refs[-1]}>")
            headers.append("References: " + "\r\n ".join(f"<{r}>" for r in refs))
        headers.append("MIME-Version: 1.0")
        headers.append("User-Agent: Mozilla Thunderbird")
        # What the body may take of ``size``: the header so far and the MIME lines to come.
        room = 0 if size is None else max(200, size - len("\r\n".join(headers)) - 160)
        if kind == "plain":
            body = (
                _sized_text(vocabulary, rng, room, marker)
                if room
                else vocabulary.text(rng, rng.randint(2_000, 20_000), marker)
            )
            headers.append("Content-Type: text/plain; charset=utf-8; format=flowed")
            headers.append("Content-Transfer-Encoding: 8bit")
        elif kind == "alternative":
            boundary = f"------------alt{rng.getrandbits(64):016x}"
            # The HTML copy, quoted-printable, is about 1.05x the text, plus ~420 bytes.
            text_size = int((room - 420) / 2.05) if room else rng.randint(1_000, 10_000)
            text = (
                _sized_text(vocabulary, rng, max(100, text_size), marker)
                if room
                else vocabulary.text(rng, text_size, marker)
            )
            headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            body = (
                f"This is a multi-part message in MIME format.\r\n--{boundary}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"{text}\r\n--{boundary}\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                f"{_qp(_html(text))}\r\n--{boundary}--\r\n"
            )
        else:
            boundary = f"------------mix{rng.getrandbits(64):016x}"
            text = vocabulary.text(rng, rng.randint(300, 3_000), marker)
            content_type, name_pattern = rng.choice(_ATTACHMENTS)
            filename = name_pattern.format(n=n)
            if filename.isascii():
                name_param = f'name="{filename}"'
                disposition = f'attachment; filename="{filename}"'
            else:
                quoted = "".join(
                    c
                    if c.isascii() and (c.isalnum() or c in "-._")
                    else "".join(f"%{b:02X}" for b in c.encode())
                    for c in filename
                )
                name_param = f"name*=utf-8''{quoted}"
                disposition = f"attachment; filename*=utf-8''{quoted}"
            data = rng.randbytes(rng.randint(50_000, 500_000))
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            body = (
                f"This is a multi-part message in MIME format.\r\n--{boundary}\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"{text}\r\n--{boundary}\r\n"
                f"Content-Type: {content_type}; {name_param}\r\n"
                f"Content-Disposition: {disposition}\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n"
                f"{_base64_lines(data)}\r\n--{boundary}--\r\n"
            )
        raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")
        messages.append(Message(raw=raw, kind=kind, has_marker=marker))
    return messages


def with_trace(raw: bytes, label: str, number: int) -> bytes:
    """``raw`` with a ``Received:`` trace line naming ``label`` in front, as an MTA adds
    one: the same message delivered in two runs is then two different blobs, so the
    store's content deduplication cannot skip the second run's writes."""
    trace = (
        f"Received: from relay.example.net (relay.example.net [192.0.2.7])\r\n"
        f"\tby mail.example.test with ESMTPS id {label}-{number:06d}\r\n"
        f"\tfor <bench@example.test>; Mon, 5 Jan 2026 08:00:00 +0000\r\n"
    )
    return trace.encode("ascii") + raw


def small_message(number: int, *, marker: bool = False) -> bytes:
    """A short plain-text message for synthetic mailbox fills."""
    body = f"Hello, this is message number {number}.\r\n"
    if marker:
        body += f"The {MARKER_WORD} is a small wallaby.\r\n"
    return (
        "From: Carol Martin <carol.martin@example.test>\r\n"
        "To: bench@example.test\r\n"
        f"Subject: Synthetic message {number}\r\n"
        "Date: Mon, 5 Jan 2026 08:00:00 +0000\r\n"
        f"Message-ID: <synthetic.{number}@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}"
    ).encode()
