"""The message corpus (tests/corpus/*.eml): exact ENVELOPE, BODYSTRUCTURE and BODY bytes and
the key JMAP properties of every message (see corpus_expectations for where they come from).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hirondelle.mime import ParsedMessage, parse_message

from .corpus_expectations import EXPECTED
from .imap_reader import read_imap
from .test_mime_properties import check_body_grammar

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
NAMES = sorted(path.stem for path in CORPUS.glob("*.eml"))


def parsed(name: str) -> ParsedMessage:
    return parse_message((CORPUS / f"{name}.eml").read_bytes())


def test_corpus_has_at_least_thirty_messages_all_with_expectations() -> None:
    assert len(NAMES) >= 30
    assert set(NAMES) == set(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_envelope(name: str) -> None:
    assert parsed(name).envelope == EXPECTED[name]["envelope"]


@pytest.mark.parametrize("name", NAMES)
def test_body_structure(name: str) -> None:
    assert parsed(name).body_structure == EXPECTED[name]["body_structure"]


@pytest.mark.parametrize("name", NAMES)
def test_body(name: str) -> None:
    assert parsed(name).body == EXPECTED[name]["body"]


@pytest.mark.parametrize("name", NAMES)
def test_jmap_properties(name: str) -> None:
    message = parsed(name)
    expected = EXPECTED[name]
    assert message.subject == expected["subject"]
    assert [(address.name, address.email) for address in message.from_] == expected["from"]
    sent_at = message.sent_at.isoformat() if message.sent_at else None
    assert sent_at == expected["sent_at"]
    assert message.message_id == expected["message_id"]
    assert message.text_body == expected["text_body"]
    assert message.html_body == expected["html_body"]
    assert message.attachments == expected["attachments"]
    assert message.has_attachment == expected["has_attachment"]
    assert message.preview == expected["preview"]
    assert message.thread_subject == expected["thread_subject"]


@pytest.mark.parametrize("name", NAMES)
def test_rendered_data_is_well_formed_imap(name: str) -> None:
    message = parsed(name)
    for data in (message.envelope, message.body_structure, message.body):
        assert isinstance(read_imap(data), list)
    check_body_grammar(read_imap(message.body_structure), extensible=True)
    check_body_grammar(read_imap(message.body), extensible=False)


@pytest.mark.parametrize("name", NAMES)
def test_part_locations_are_ordered_and_inside_the_message(name: str) -> None:
    message = parsed(name)
    assert message.parts[0].section == ""
    assert message.parts[0].header_start == 0
    assert message.parts[0].end == message.size
    assert message.header_end == message.parts[0].body_start
    sections = [part.section for part in message.parts]
    assert len(sections) == len(set(sections))
    for part in message.parts:
        assert 0 <= part.header_start <= part.body_start <= part.end <= message.size


@pytest.mark.parametrize("name", NAMES)
def test_jmap_part_ids_map_to_sections(name: str) -> None:
    message = parsed(name)
    sections = {part.section for part in message.parts}
    leaves: dict[str, str] = {}
    pending = [message.jmap_body_structure]
    while pending:
        node = pending.pop()
        assert node["section"] in sections
        if node["subParts"] is None:
            leaves[node["partId"]] = node["section"]
        else:
            assert node["partId"] is None
            pending.extend(node["subParts"])
    for part_id in (*message.text_body, *message.html_body, *message.attachments):
        assert part_id in leaves
