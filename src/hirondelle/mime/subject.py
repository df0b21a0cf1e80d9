"""Base subject for threading and SORT: RFC 5256 §2.1, then lowercased (the i;unicode-casemap
comparison of RFC 5051 is approximated by :meth:`str.lower`).
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_TRAILER = re.compile(r"(?:\s|\(fwd\))+$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER = re.compile(rf"^(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:\s*|\s+)", re.IGNORECASE)
_LEADING_BLOB = re.compile(rf"^{_BLOB}")
_FWD_WRAPPER = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)


MAX_SUBJECT = 1024
"""Characters of a subject considered; the rules are applied repeatedly at both ends, so an
absurd subject is cut first to keep the work linear."""


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 steps 1-6 on an already RFC 2047-decoded subject."""
    text = _WHITESPACE.sub(" ", subject[:MAX_SUBJECT])  # step 1
    while True:
        text = _TRAILER.sub("", text)  # step 2: (fwd) and whitespace trailers
        while True:
            before = text
            text = _LEADER.sub("", text, count=1)  # step 3: subj-leader
            match = _LEADING_BLOB.match(text)
            if match and text[match.end() :]:  # step 4: a blob, if something remains
                text = text[match.end() :]
            if text == before:  # step 5: repeat 3 and 4 until nothing changes
                break
        wrapped = _FWD_WRAPPER.match(text)  # step 6: "[fwd:" subject "]"
        if not wrapped:
            break
        text = wrapped.group(1)
    return text.strip().lower()
