"""The full-text index's folding and tokenising (store/search.py) against their plain
definitions, kept here: the fast forms must index exactly the same words."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hirondelle.mime import parse_message
from hirondelle.store import emails, search


def fold_plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens_plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", fold_plain(text), re.UNICODE))


SAMPLES = [
    "",
    "   ",
    "Genève, Zürich; ÅNGSTRÖM — ﬁnance ½ Ⅻ",
    "carol@elsewhere.test https://x.example/a_b?c=d",
    "ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ Ǆemal İstanbul ß ﬀ",
    "日本語のテキスト　ｶﾀｶﾅ 한국어 ",
    "e\u0301\u0327\u0316 a\u20dd q\U0001d17e",
    "\x1c\x1dword\x1e\x1f",
]


def test_samples() -> None:
    for text in SAMPLES:
        assert search.fold(text) == fold_plain(text)
        assert search._tokens(text) == tokens_plain(text)


@settings(max_examples=500)
@given(st.text())
def test_fold_and_tokens_are_the_plain_definitions(text: str) -> None:
    assert search.fold(text) == fold_plain(text)
    assert search._tokens(text) == tokens_plain(text)


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x2FF)))
def test_on_latin_text(text: str) -> None:
    assert search._tokens(text) == tokens_plain(text)


def test_the_corpus_documents() -> None:
    for path in sorted((Path(__file__).parent.parent / "corpus").glob("*.eml")):
        document = emails.search_document(parse_message(path.read_bytes()))
        for text in (document.subject, document.participants, document.body, document.headers):
            assert search._tokens(text) == tokens_plain(text), path.name


def test_tokens_of_a_document_are_its_fields_tokens() -> None:
    document = search.SearchDocument(
        subject="Réunion", participants="Carol <carol@x.test>", body="Ça va? ﬁn", attachments=""
    )
    assert search.tokens(document) == ("reunion", "carol carol x test", "ca va fin", "", "")
    assert search.with_tokens(document).tokens == search.tokens(document)
