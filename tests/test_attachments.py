"""Files attached in a chat frontend: taken out of Open WebUI's wrapper, searched beside the
collection and cited by their names (no models; the real path is in test_openai_frontends)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.attachments import Attachment, attached_chunks, attached_hits, merge_hits, unwrap
from rag.chunking import TokenChunker
from rag.conversation import Turn, split_conversation
from rag.errors import InvalidInputError
from rag.types import Hit
from tests.fakes import HashEmbedder, make_hit
from tests.frontend_requests import open_webui_attachment

PUMP = "The Zephyr-9 pump must be primed with 40 ml of water before first use."
ASKED = "How much water does the pump need before first use?"


def _turns(messages: list[dict[str, str]]) -> list[Turn]:
    return [Turn(m["role"], m["content"]) for m in messages]  # type: ignore[arg-type]


def test_open_webuis_wrapper_in_the_user_message_leaves_the_typed_question() -> None:
    sent = open_webui_attachment([{"role": "user", "content": ASKED}], [("pump.txt", PUMP)])
    assert "### Task:" in sent[-1]["content"] and len(sent[-1]["content"]) > 1000
    conversation = split_conversation(_turns(sent))
    assert conversation.question == ASKED
    assert conversation.attachments == [Attachment("pump.txt", PUMP)]
    assert conversation.instructions == []


def test_open_webuis_wrapper_in_the_system_message_keeps_the_clients_own_instructions() -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": ASKED},
    ]
    sent = open_webui_attachment(messages, [("pump.txt", PUMP)], system_context=True)
    conversation = split_conversation(_turns(sent))
    assert conversation.question == ASKED
    assert conversation.instructions == ["You are a helpful assistant."]
    assert [a.name for a in conversation.attachments] == ["pump.txt"]


def test_a_template_that_quotes_the_question_in_user_query_tags() -> None:
    template = (
        "Use the context.\n<context>\n{{CONTEXT}}\n</context>\n<user_query>{{QUERY}}</user_query>"
    )
    sent = open_webui_attachment(
        [{"role": "user", "content": ASKED}], [("pump.txt", PUMP)], template=template
    )
    assert split_conversation(_turns(sent)).question == ASKED


def test_chunks_of_one_file_are_joined_and_names_unescaped() -> None:
    message = (
        '<context>\n<source id="1" name="R&amp;D notes.md">first part</source>\n'
        '<source id="1" name="R&amp;D notes.md">second part</source>\n'
        '<source id="2">no name</source>\n<source id="3" name="empty"> </source>\n</context>\n'
        "What do the notes say?"
    )
    unwrapped = unwrap(message, question=True)
    assert unwrapped.text == "What do the notes say?"
    assert unwrapped.attachments == [
        Attachment("R&D notes.md", "first part\n\nsecond part"),
        Attachment("attachment 2", "no name"),
    ]


@pytest.mark.parametrize(
    "message",
    [
        "How do I write <source> tags in XML?",  # no tag with a body
        "Plain question with <context> but no sources </context>",
    ],
)
def test_a_message_without_sources_is_left_as_it_is(message: str) -> None:
    assert unwrap(message, question=True).text == message
    assert unwrap(message, question=True).attachments == []


def test_a_wrapper_with_no_question_after_it_is_an_empty_question() -> None:
    sent = open_webui_attachment([{"role": "user", "content": ""}], [("pump.txt", PUMP)])
    with pytest.raises(InvalidInputError, match="empty"):
        split_conversation(_turns(sent))


def test_attached_text_is_chunked_ranked_and_named(embedder: HashEmbedder) -> None:
    chunker = TokenChunker(embedder.count_tokens, max_tokens=64, chunk_size=40, chunk_overlap=0)
    filler = " ".join(f"Paragraph {i} is about gardening and soil." for i in range(12))
    chunks = attached_chunks([Attachment("pump.txt", f"{filler}\n\n{PUMP}")], chunker)
    assert len(chunks) > 2 and {c.source for c in chunks} == {"pump.txt"}
    assert {c.title for c in chunks} == {"pump.txt"}
    hits = attached_hits(ASKED, chunks, embedder)
    assert PUMP in hits[0].chunk.text
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)


def _hit(text: str, source: str, similarity: float) -> Hit:
    return replace(make_hit(text, source), similarity=similarity)


def test_merged_hits_keep_the_collections_order_and_place_attached_hits_by_similarity() -> None:
    collection = [
        _hit("a", "/d/a.md", 0.7),
        _hit("b", "/d/b.md", 0.8),  # fusion ranked it second
        _hit("c", "/d/c.md", 0.3),
    ]
    attached = [_hit("x", "pump.txt", 0.75), _hit("y", "pump.txt", 0.1)]
    merged = merge_hits(collection, attached, 4)
    assert [h.chunk.text for h in merged] == ["x", "a", "b", "c"]
    assert [h.chunk.text for h in merge_hits(collection, attached, 2)] == ["x", "a"]
    assert [h.chunk.text for h in merge_hits([], attached, 5)] == ["x", "y"]


def test_the_list_of_attached_files_is_not_part_of_the_question() -> None:
    sent = open_webui_attachment([{"role": "user", "content": ASKED}], [("pump.txt", PUMP)])
    assert "<attached_files>" in sent[-1]["content"]
    assert split_conversation(_turns(sent)).question == ASKED
    listed_only = '<attached_files>\n<file type="file" name="a.txt"/>\n</attached_files>\n\nWhy?'
    assert unwrap(listed_only, question=True).text == "Why?"
