"""Chat: a conversation in, a checked answer with citations out, whole or as it is written.

This is what /v1/chat/completions does, apart from the OpenAI wire format (rag.api):

1. the conversation is split into the question, the earlier questions, the client's system
   messages and the text of files attached in the chat (rag.conversation, rag.attachments);
2. a follow-up is made self-contained for retrieval (RAG_QUERY_REWRITE);
3. the Answerer retrieves (attached text is searched beside the collection), builds the
   prompt (our rules first; the client's system messages only appended when
   RAG_CLIENT_SYSTEM_PROMPT=append) and generates;
4. the answer passes the grounding check; its text keeps its [n] markers and gets a short
   Markdown "Sources" footer for clients that show only text, which names each file by its
   path relative to the folder it was ingested from (rag.display).

Streaming follows RAG_STREAM_MODE: 'live' sends tokens as they come and appends a marked
correction when the answer fails the check; 'checked' sends nothing of the answer before it
passed the check; 'auto' (the default) is checked with the local model, live behind a model
server.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Literal

from rag.answering import Answerer, PreparedAnswer
from rag.config import Settings
from rag.conversation import (
    QueryRewriter,
    Rewrite,
    Turn,
    shown_earlier,
    split_conversation,
    with_topic,
)
from rag.display import FILE_NAMES
from rag.errors import InvalidInputError
from rag.retrieval import check_question
from rag.types import Answer, Citation

log = logging.getLogger(__name__)

FinishReason = Literal["stop", "length"]

QUOTED_NOTE = (
    "_(Quoted from your documents: the generated answer did not pass the check against them.)_"
)
QUOTE_NOTE = "_(Quoted from your documents.)_"
WITHDRAWN = "**Correction:** the answer above is not supported by your documents."
CORRECTION = f"{WITHDRAWN} What they say:"
_CLIENT_INSTRUCTIONS_CHARS = 2000
_WORDS_PER_CHUNK = 4


@dataclass(frozen=True)
class ChatOptions:
    max_tokens: int | None = None
    """Caps the configured RAG_LLM_MAX_NEW_TOKENS; never raises it."""
    stop: Sequence[str] = ()
    """The answer ends before the first of these (as OpenAI's ``stop``)."""
    footer: bool = True
    """End the text with the Markdown Sources footer (a client that shows the citations in
    its own way, as Open WebUI does from source events, needs none)."""


@dataclass
class ChatPrepared:
    prepared: PreparedAnswer
    rewrite: Rewrite
    options: ChatOptions
    started: float = field(default_factory=time.perf_counter)


@dataclass
class ChatResult:
    content: str
    """Everything the client was sent as the message: answer, correction, sources footer."""
    answer: Answer
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    retrieval_query: str


@dataclass(frozen=True)
class ChatDelta:
    text: str


ChatEvent = ChatDelta | ChatResult


def sources_footer(citations: Sequence[Citation], names: Callable[[str], str] = FILE_NAMES) -> str:
    """A Markdown list of the cited files, for clients that render only the text; ``names``
    gives the name each file is shown by (default: its file name)."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        shown = names(c.source)
        title = c.title or shown
        page = f", p. {c.page}" if c.page else ""
        lines.append(f"- [{c.n}] {title} — `{shown}`{page}")
    return "\n\n**Sources**\n\n" + "\n".join(lines)


def split_for_streaming(text: str, words: int = _WORDS_PER_CHUNK) -> list[str]:
    """Pieces of a few words each, whitespace kept, that join back into ``text``."""
    tokens = re.findall(r"\s*\S+", text)
    pieces = ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]
    rest = text[len("".join(pieces)) :]
    if rest:
        pieces.append(rest)
    return pieces


class StopScanner:
    """Releases streamed text up to the first stop sequence, holding back a possible prefix."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._buffer = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return piece
        self._buffer += piece
        cut = min((i for s in self._stops if (i := self._buffer.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._buffer = self._buffer[:cut], ""
            return out
        keep = len(self._buffer) - self._hold
        out, self._buffer = self._buffer[: max(keep, 0)], self._buffer[max(keep, 0) :]
        return out

    def flush(self) -> str:
        out, self._buffer = ("" if self.stopped else self._buffer), ""
        return out


def stream_mode(settings: Settings) -> Literal["checked", "live"]:
    """RAG_STREAM_MODE, with 'auto' decided for the generator: checked for the local model,
    live behind a model server."""
    if settings.stream_mode == "auto":
        return "checked" if settings.generator == "local" else "live"
    return settings.stream_mode


def live_tail(raw: str, answer: Answer) -> str:
    """What a live stream sends after the model's ``raw`` text once ``answer`` is checked: a
    marked correction quoting the documents when it failed (or withdrawing it when no passage
    answers), else what the check added (the [n] a model forgot)."""
    if answer.extractive:
        quoted = "\n".join(f"> {line}" for line in answer.answer.splitlines())
        return f"\n\n> {CORRECTION}\n{quoted}"
    if answer.answer.startswith(raw.strip()):
        return answer.answer[len(raw.strip()) :]
    if answer.abstained:  # no passage answers after all: the answer sent is withdrawn
        return f"\n\n> {WITHDRAWN}\n> {answer.answer}"
    return ""


class ChatService:
    def __init__(
        self,
        answerer: Answerer,
        settings: Settings,
        *,
        names: Callable[[str], str] = FILE_NAMES,
    ) -> None:
        """``names``: how the Sources footer names a file (rag.display)."""
        self._answerer = answerer
        self._settings = settings
        self._names = names
        self._max_chars = settings.max_question_chars
        self._rewriter = QueryRewriter(
            settings.query_rewrite,
            generator=answerer.generator,
            max_chars=settings.max_question_chars,
        )

    @property
    def answerer(self) -> Answerer:
        return self._answerer

    @property
    def names(self) -> Callable[[str], str]:
        """How the answers name a file."""
        return self._names

    def prepare(
        self,
        turns: Sequence[Turn],
        *,
        options: ChatOptions | None = None,
        source_prefix: str | None = None,
    ) -> ChatPrepared:
        """Everything that can fail on bad input happens here, before a stream starts."""
        conversation = split_conversation(turns)
        try:
            check_question(conversation.question, max_chars=self._settings.max_question_chars)
        except InvalidInputError as exc:
            raise InvalidInputError(f"last user message: {exc}", field="messages") from None
        attached = sum(len(a.text) for a in conversation.attachments)
        if attached > self._settings.max_attached_chars:
            names = ", ".join(a.name for a in conversation.attachments)
            raise InvalidInputError(
                f"the attached text ({names}) has {attached} characters; the limit is "
                f"{self._settings.max_attached_chars} (RAG_MAX_ATTACHED_CHARS)",
                field="messages",
            )
        rewrite = self._rewriter.rewrite(conversation)
        instructions = None
        if self._settings.client_system_prompt == "append" and conversation.instructions:
            instructions = "\n".join(conversation.instructions)[:_CLIENT_INSTRUCTIONS_CHARS]

        def attempt(rewrite: Rewrite) -> PreparedAnswer:
            try:
                return self._answerer.prepare(
                    conversation.question,
                    source_prefix=source_prefix,
                    retrieval_query=rewrite.query,
                    earlier=shown_earlier(conversation, rewrite),
                    instructions=instructions,
                    attached=conversation.attachments,
                )
            except InvalidInputError as exc:
                if exc.field == "question":
                    raise InvalidInputError(str(exc), field="messages") from None
                raise

        prepared = attempt(rewrite)
        if prepared.abstained and not rewrite.follow_up and self._settings.query_rewrite != "off":
            # A follow-up the rules did not recognise ("What colour is the badge?"): the
            # question alone found nothing, so try once more with the conversation's topic.
            retry = with_topic(conversation)
            if retry.query != conversation.question and len(retry.query) <= self._max_chars:
                again = attempt(retry)
                if not again.abstained:
                    log.info("retried with the conversation's topic: %r", retry.query)
                    prepared, rewrite = again, retry
        return ChatPrepared(prepared, rewrite, options or ChatOptions())

    def complete(self, chat: ChatPrepared) -> ChatResult:
        """The whole answer, checked, with its footer."""
        result: ChatResult | None = None
        for event in self._checked(chat, pieces=False):
            if isinstance(event, ChatResult):
                result = event
        assert result is not None
        return result

    @property
    def stream_mode(self) -> Literal["checked", "live"]:
        return stream_mode(self._settings)

    def stream(
        self, chat: ChatPrepared, *, mode: Literal["auto", "checked", "live"] = "auto"
    ) -> Iterator[ChatEvent]:
        """Text deltas, then the ChatResult (whose ``content`` is all the deltas joined).
        ``mode`` 'auto' is the configured stream mode (``stream_mode``)."""
        if mode == "auto":
            mode = self.stream_mode
        if mode == "live" and not self._answerer.quoting:  # a quote has no tokens to stream
            return self._live(chat)
        return self._checked(chat, pieces=True)

    # --- internals ---------------------------------------------------------------------

    def _limit(self, chat: ChatPrepared) -> int:
        limit = self._settings.llm_max_new_tokens
        if chat.options.max_tokens is not None:
            limit = max(1, min(limit, chat.options.max_tokens))
        return limit

    def _generate(self, chat: ChatPrepared, scanner: StopScanner) -> Generator[str, None, None]:
        pieces = self._answerer.stream(chat.prepared, max_new_tokens=self._limit(chat))
        try:
            for piece in pieces:
                out = scanner.feed(piece)
                if out:
                    yield out
                if scanner.stopped:
                    break
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # a stop sequence ends generation early
        tail = scanner.flush()
        if tail:
            yield tail

    def _finish_reason(self, chat: ChatPrepared, raw: str, scanner: StopScanner) -> FinishReason:
        if chat.prepared.abstained or scanner.stopped:
            return "stop"
        generated = self._answerer.generator.count_tokens(raw)
        return "length" if generated >= self._limit(chat) else "stop"

    def _result(
        self, chat: ChatPrepared, content: str, answer: Answer, finish: FinishReason
    ) -> ChatResult:
        generator = self._answerer.generator
        messages = chat.prepared.messages
        prompt = (
            generator.prompt_tokens(messages)
            if messages
            else generator.count_tokens(chat.prepared.question)
        )
        answer.timings["total_ms"] = (time.perf_counter() - chat.started) * 1000
        return ChatResult(
            content=content,
            answer=answer,
            finish_reason=finish,
            prompt_tokens=prompt,
            completion_tokens=generator.count_tokens(content),
            retrieval_query=chat.rewrite.query,
        )

    def _checked(self, chat: ChatPrepared, *, pieces: bool) -> Iterator[ChatEvent]:
        scanner = StopScanner(chat.options.stop)
        started = time.perf_counter()
        raw = "".join(self._generate(chat, scanner))
        answer = self._answerer.finish(chat.prepared, raw)
        if not chat.prepared.abstained:
            answer.timings["generate_ms"] = (time.perf_counter() - started) * 1000
        # A replaced answer is whole, so it did not end for want of tokens.
        finish = "stop" if answer.extractive else self._finish_reason(chat, raw, scanner)
        content = answer.answer
        if answer.extractive:
            content += f"\n\n{QUOTE_NOTE if self._answerer.quoting else QUOTED_NOTE}"
        if chat.options.footer:
            content += sources_footer(answer.citations, self._names)
        if pieces:
            for piece in split_for_streaming(content):
                yield ChatDelta(piece)
        yield self._result(chat, content, answer, finish)

    def _live(self, chat: ChatPrepared) -> Iterator[ChatEvent]:
        scanner = StopScanner(chat.options.stop)
        started = time.perf_counter()
        sent: list[str] = []
        # Closed as soon as this stream is: a reader that stops ends the generation.
        with closing(self._generate(chat, scanner)) as pieces:
            for piece in pieces:
                sent.append(piece)
                yield ChatDelta(piece)
        raw = "".join(sent)
        answer = self._answerer.finish(chat.prepared, raw)
        if not chat.prepared.abstained:
            answer.timings["generate_ms"] = (time.perf_counter() - started) * 1000
        finish = self._finish_reason(chat, raw, scanner)
        if answer.extractive:
            log.info("live answer failed the grounding check; appending a correction")
        tail = live_tail(raw, answer)
        if chat.options.footer:
            tail += sources_footer(answer.citations, self._names)
        if tail:
            sent.append(tail)
            yield ChatDelta(tail)
        yield self._result(chat, "".join(sent), answer, finish)
