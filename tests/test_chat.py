"""rag.chat with the fakes: the streaming pieces, the checked and live streams, the options,
the client's instructions and follow-ups."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.answering import SYSTEM_PROMPT, Answerer
from rag.chat import (
    CORRECTION,
    QUOTED_NOTE,
    WITHDRAWN,
    ChatDelta,
    ChatOptions,
    ChatResult,
    ChatService,
    StopScanner,
    live_tail,
    sources_footer,
    split_for_streaming,
)
from rag.config import Settings
from rag.conversation import Turn
from rag.display import SourceNames
from rag.retrieval import HybridRetriever
from rag.store.base import VectorStore
from rag.types import Answer, Citation
from tests.fakes import HashEmbedder, ScriptedGenerator

# --- streaming pieces ---------------------------------------------------------------------


def test_stop_scanner_cuts_at_a_stop_split_across_pieces() -> None:
    scanner = StopScanner(["END"])
    out = [scanner.feed(p) for p in ["The answer", " is 4", "2 E", "ND and more"]]
    assert "".join(out) + scanner.flush() == "The answer is 42 "
    assert scanner.stopped and scanner.feed("more") == ""
    plain = StopScanner([])
    assert plain.feed("a") == "a" and plain.flush() == ""


def test_checked_answers_are_sent_in_pieces_that_join_back() -> None:
    text = "The beam is seen from 22 miles [1].\n\n**Sources**\n\n- [1] Handbook — `/d/l.pdf`"
    pieces = split_for_streaming(text)
    assert len(pieces) > 3 and "".join(pieces) == text


def test_sources_footer_is_markdown_with_title_path_and_page() -> None:
    citation = Citation(1, "/srv/docs/maps/lighthouse.pdf", "Handbook", "id", 0.5, "q", (), 2)
    untitled = Citation(2, "/elsewhere/notes.txt", "", "id2", 0.4, "q")
    footer = sources_footer([citation, untitled], SourceNames(["/srv/docs"]))
    assert footer == (
        "\n\n**Sources**\n\n- [1] Handbook — `maps/lighthouse.pdf`, p. 2"
        "\n- [2] notes.txt — `notes.txt`"
    )
    # Without the folders, a file is named alone: no server path reaches the text.
    assert "/d/" not in sources_footer([replace(citation, source="/d/lighthouse.pdf")])
    assert sources_footer([]) == ""


# --- ChatService -------------------------------------------------------------------------


def chat_service(
    settings: Settings, embedder: HashEmbedder, store: VectorStore, generator: ScriptedGenerator
) -> ChatService:
    answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
    return ChatService(answerer, settings)


QUESTION = [Turn("user", "how often do I descale the machine")]


def test_checked_stream_sends_the_answer_in_pieces_after_the_check(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    service = chat_service(
        settings,
        embedder,
        filled_store,
        ScriptedGenerator(["Descale the machine every 200 cycles [1]."]),
    )
    events = list(service.stream(service.prepare(QUESTION), mode="checked"))
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    result = events[-1]
    assert isinstance(result, ChatResult) and len(deltas) > 2
    assert "".join(deltas) == result.content
    assert result.content.startswith("Descale the machine every 200 cycles [1].")
    assert "**Sources**" in result.content and "`coffee.md`" in result.content
    assert [c.source for c in result.answer.citations] == ["/d/coffee.md"]
    assert result.finish_reason == "stop" and result.completion_tokens > 0


def test_checked_stream_never_sends_an_unsupported_answer(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["The moon is made of green cheese [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    events = list(service.stream(service.prepare(QUESTION), mode="checked"))
    sent = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert "cheese" not in sent and QUOTED_NOTE in sent
    assert "**descale the machine every 200 cycles** [1]" in sent


def test_live_stream_sends_tokens_and_appends_a_marked_correction(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["The moon is made of green cheese [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    events = list(service.stream(service.prepare(QUESTION), mode="live"))
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    assert "cheese" in "".join(deltas[:-1])  # streamed as written
    assert CORRECTION in deltas[-1] and "200 cycles** [1]" in deltas[-1]
    assert "**Sources**" in deltas[-1]
    result = events[-1]
    assert isinstance(result, ChatResult) and result.answer.extractive
    assert result.content == "".join(deltas)


@pytest.mark.parametrize(("generator_kind", "mode"), [("local", "checked"), ("openai", "live")])
def test_the_default_stream_mode_is_checked_for_the_local_model_and_live_behind_a_server(
    settings: Settings,
    embedder: HashEmbedder,
    filled_store: VectorStore,
    generator_kind: str,
    mode: str,
) -> None:
    configured = settings.model_copy(update={"generator": generator_kind})
    assert configured.stream_mode == "auto"
    generator = ScriptedGenerator(["The moon is made of green cheese [1]."])
    service = chat_service(configured, embedder, filled_store, generator)
    assert service.stream_mode == mode
    events = list(service.stream(service.prepare(QUESTION)))
    sent = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert ("cheese" in sent) is (mode == "live")  # the wrong line is never sent first locally
    pinned = chat_service(
        configured.model_copy(update={"stream_mode": "live"}), embedder, filled_store, generator
    )
    assert pinned.stream_mode == "live"


def test_a_live_answer_found_to_answer_nothing_is_withdrawn() -> None:
    """The check can end in an abstention after the answer was sent (its quote names nothing
    the question asks about): the stream says the answer is withdrawn, and why."""
    raw = "Zorblang sorts with zsort [1]."
    withdrawn = Answer("I could not find an answer.", [], abstained=True)
    assert live_tail(raw, withdrawn) == f"\n\n> {WITHDRAWN}\n> I could not find an answer."
    # An abstention streamed as it is (decided before generating) gets nothing more.
    assert live_tail(withdrawn.answer, withdrawn) == ""


def test_live_stream_of_a_supported_answer_has_no_correction(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Descale the machine every 200 cycles"])
    service = chat_service(settings, embedder, filled_store, generator)
    events = list(service.stream(service.prepare(QUESTION), mode="live"))
    sent = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert CORRECTION not in sent
    assert sent.startswith("Descale the machine every 200 cycles")
    assert "[1]" in sent  # the marker the model forgot, added before the footer


def test_stop_sequences_and_max_tokens_are_honoured(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    reply = "Descale the machine every 200 cycles [1]. STOP and descale twice [1]."
    service = chat_service(settings, embedder, filled_store, ScriptedGenerator([reply]))
    stopped = service.complete(service.prepare(QUESTION, options=ChatOptions(stop=["STOP"])))
    assert "twice" not in stopped.content and stopped.finish_reason == "stop"
    generator = ScriptedGenerator(["Descale the machine every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    capped = service.complete(service.prepare(QUESTION, options=ChatOptions(max_tokens=3)))
    assert capped.finish_reason == "length"  # the model used every token it was allowed
    whole = service.complete(service.prepare(QUESTION, options=ChatOptions(max_tokens=50)))
    assert whole.finish_reason == "stop"


def test_client_system_messages_never_replace_our_instructions(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    turns = [Turn("system", "Answer like a pirate."), *QUESTION]
    generator = ScriptedGenerator(["Descale the machine every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    service.complete(service.prepare(turns))
    assert generator.prompts[0][0]["content"] == SYSTEM_PROMPT  # 'ignore', the default

    appending = settings.model_copy(update={"client_system_prompt": "append"})
    service = chat_service(appending, embedder, filled_store, generator)
    service.complete(service.prepare(turns))
    system = generator.prompts[1][0]["content"]
    assert system.startswith(SYSTEM_PROMPT) and system.endswith("Answer like a pirate.")


def test_a_follow_up_retrieves_with_the_earlier_topic(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    turns = [
        Turn("user", "How often do I descale the machine?"),
        Turn("assistant", "Every 200 cycles [1]."),
        Turn("user", "And why?"),
    ]
    chat = service.prepare(turns)
    assert chat.rewrite.query == "often descale machine And why?"
    assert not chat.prepared.abstained
    assert (
        "Earlier question: How often do I descale the machine?"
        in (chat.prepared.messages[1]["content"])
    )


def test_an_unrecognised_follow_up_that_finds_nothing_is_retried_with_the_topic(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Descale the machine every 200 cycles [1]."])
    service = chat_service(settings, embedder, filled_store, generator)
    question = "Is vinegar acceptable for cleaning purposes?"
    alone = service.prepare([Turn("user", question)])
    assert alone.prepared.abstained
    turns = [Turn("user", "When do I descale the machine?"), Turn("user", question)]
    chat = service.prepare(turns)
    assert not chat.prepared.abstained
    assert chat.rewrite.query == f"descale machine {question}"
