"""Small message builders for tests (the realistic corpus lives in tests/corpus)."""

from __future__ import annotations

import itertools

_counter = itertools.count(1)


def simple_message(
    *,
    subject: str = "Hello",
    sender: str = "Carol <carol@elsewhere.test>",
    to: str = "alice@example.test",
    body: str = "Just a short note.\r\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    extra_headers: str = "",
) -> bytes:
    number = next(_counter)
    message_id = message_id or f"msg{number}@elsewhere.test"
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Sun, 22 Nov 2026 10:00:00 +0100",
        f"Message-ID: <{message_id}>",
    ]
    if in_reply_to:
        headers.append(f"In-Reply-To: <{in_reply_to}>")
        headers.append(f"References: <{in_reply_to}>")
    headers.append("MIME-Version: 1.0")
    headers.append("Content-Type: text/plain; charset=utf-8")
    text = "\r\n".join(headers) + "\r\n" + extra_headers + "\r\n" + body
    return text.encode("utf-8")
