"""Conversations: the question in a chat, and a follow-up made self-contained for retrieval.

Chat clients send the whole conversation with every request. Retrieval needs one query that
carries the topic: "And when is its lamp lit?" finds nothing on its own. A small model
cannot be trusted to rewrite it, so by default a follow-up is recognised by rules (an
opener such as "and ..." or "what about ...", a pronoun, or very few content words and no
name of its own) and the key words of the earlier user turns are put in front of it: their
names and numbers, or the content words of the turn just before when they name nothing.
When the question alone finds nothing relevant, it is tried once more with those key words,
since the rules cannot recognise every follow-up. The model is shown the question as asked,
after the question just before it when it is a follow-up.

Only user turns are used: assistant turns may be wrong or long, and system turns are
instructions, not topics.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.attachments import Attachment, unwrap
from rag.errors import InvalidInputError, RagError
from rag.generation import Generator, Message
from rag.text import content_words

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_'’-]*|\d+(?:[.,:]\d+)*[A-Za-z]*")
_OPENERS = re.compile(
    r"^\s*(?:and|but|also|so|then|or|plus|ok(?:ay)?|"
    r"what about|how about|what else|what of|same (?:for|with)|"
    r"tell me more|more (?:on|about)|in that case)\b",
    re.IGNORECASE,
)
_ANAPHORA = frozenset(
    """it its it's itself they them their theirs themselves this these those he him his she
    her hers former latter""".split()
)
_FOLLOW_UP_WORDS = frozenset(
    "and but also so then or plus ok okay about else more tell same case".split()
)
_MAX_CONTENT_WORDS_OF_A_FOLLOW_UP = 3
_TOPIC_TURNS = 3
_TOPIC_WORDS = 8
_EARLIER_SHOWN = 1
_EARLIER_CHARS = 300
_SCAN_CHARS = 2000  # a pasted document in an earlier turn: its beginning tells the topic


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str


@dataclass(frozen=True)
class Conversation:
    """A chat as the answerer needs it: the last user message and what came before."""

    question: str
    earlier: list[str] = field(default_factory=list)
    """Previous user messages, oldest first."""
    instructions: list[str] = field(default_factory=list)
    """The client's system (or developer) messages."""
    attachments: list[Attachment] = field(default_factory=list)
    """Text the client attached (rag.attachments), the latest of each name."""


@dataclass(frozen=True)
class Rewrite:
    query: str
    """What retrieval searches for."""
    follow_up: bool
    """True when the question depends on the earlier turns."""


def split_conversation(turns: Sequence[Turn]) -> Conversation:
    """The last user message is the question; the conversation must end with it. A frontend's
    attachment wrapper is taken out of the messages (rag.attachments)."""
    if not turns or turns[-1].role != "user":
        raise InvalidInputError(
            "the last message must be a user message (the question)", field="messages"
        )
    attached: dict[str, Attachment] = {}
    texts: list[tuple[Role, str]] = []
    for turn in turns:
        if turn.role == "assistant":
            continue
        unwrapped = unwrap(turn.content, question=turn.role == "user")
        attached.update((a.name, a) for a in unwrapped.attachments)
        texts.append((turn.role, unwrapped.text.strip()))
    question = texts[-1][1]
    if not question:
        raise InvalidInputError("the last user message is empty", field="messages")
    earlier = [text for role, text in texts[:-1] if role == "user" and text]
    instructions = [text for role, text in texts if role == "system" and text]
    return Conversation(question, earlier, instructions, list(attached.values()))


def _starts_sentence(text: str, at: int) -> bool:
    i = at - 1
    while i >= 0 and (text[i].isspace() or text[i] in "\"'“‘(*_-") and text[i] != "\n":
        i -= 1
    return i < 0 or text[i] in ".!?:;\n"


def _words(text: str) -> list[tuple[str, bool]]:
    """Tokens with whether each is a name or number: capitalised inside a sentence, all
    capitals, or containing a digit."""
    words = []
    for match in _TOKEN.finditer(text[:_SCAN_CHARS]):
        word = match.group(0).rstrip("'’").removesuffix("'s").removesuffix("’s")
        starts_sentence = _starts_sentence(text, match.start())
        entity = bool(content_words(word)) and (
            any(c.isdigit() for c in word)
            or (len(word) > 1 and word.isupper())
            or (word[0].isupper() and not starts_sentence)
        )
        words.append((word, entity))
    return words


def is_follow_up(question: str) -> bool:
    """Does the question lean on earlier turns? (Not for a first question.)"""
    if _OPENERS.match(question):
        return True
    words = _words(question)
    if any(entity for _, entity in words):
        return False  # names its own subject: "Which format was removed in Skylark 4.2?"
    lowered = {w.lower() for w, _ in words}
    if lowered & _ANAPHORA:
        return True
    return len(content_words(question)) <= _MAX_CONTENT_WORDS_OF_A_FOLLOW_UP


def topic_words(
    earlier: Sequence[str], *, exclude: str = "", limit: int = _TOPIC_WORDS
) -> list[str]:
    """Key words of the last few user turns: their names and numbers (newest turn first), or
    when they have none, the content words of the turn just before the question."""
    skip = {w.lower() for w, _ in _words(exclude)}
    entities: list[str] = []
    others: list[str] = []
    for age, text in enumerate(reversed(earlier[-_TOPIC_TURNS:])):
        for word, entity in _words(text):
            lower = word.lower()
            if lower in skip or lower in _FOLLOW_UP_WORDS or not content_words(word):
                continue
            if entity:
                entities.append(word)
            elif age == 0:
                others.append(word)
    # Names carry the topic; other words ("far", "seen") would pull retrieval back to the
    # earlier question's answer, so they are used only when there is no name.
    chosen: list[str] = []
    seen: set[str] = set()
    for word in entities or others:
        if word.lower() not in seen:
            seen.add(word.lower())
            chosen.append(word)
    return chosen[:limit]


def with_topic(conversation: Conversation) -> Rewrite:
    """The question with the earlier turns' key words in front (as a follow-up)."""
    question = conversation.question
    topic = topic_words(conversation.earlier, exclude=question)
    return Rewrite(f"{' '.join(topic)} {question}" if topic else question, True)


def rewrite_with_rules(conversation: Conversation) -> Rewrite:
    if not conversation.earlier or not is_follow_up(conversation.question):
        return Rewrite(conversation.question, False)
    return with_topic(conversation)


REWRITE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation. "
    "Keep its meaning, name its subject explicitly, and reply with the rewritten question only."
)


class QueryRewriter:
    """Makes the last question self-contained for retrieval, as RAG_QUERY_REWRITE says."""

    def __init__(
        self,
        mode: Literal["rules", "model", "off"],
        *,
        generator: Generator | None = None,
        max_chars: int = 2000,
    ) -> None:
        if mode == "model" and generator is None:
            raise ValueError("query_rewrite='model' needs a generator")
        self._mode = mode
        self._generator = generator
        self._max_chars = max_chars

    def rewrite(self, conversation: Conversation) -> Rewrite:
        if self._mode == "off" or not conversation.earlier:
            return Rewrite(conversation.question, False)
        by_rules = rewrite_with_rules(conversation)
        result = by_rules
        if self._mode == "model":
            result = self._rewrite_with_model(conversation) or by_rules
        if len(result.query) > self._max_chars:
            return Rewrite(conversation.question, result.follow_up)
        if result.query != conversation.question:
            log.info("retrieval query for a follow-up: %r", result.query)
        return result

    def _rewrite_with_model(self, conversation: Conversation) -> Rewrite | None:
        assert self._generator is not None
        asked = "".join(f"User: {q}\n" for q in conversation.earlier[-_TOPIC_TURNS:])
        messages: list[Message] = [
            {"role": "system", "content": REWRITE_PROMPT},
            {
                "role": "user",
                "content": f"Conversation:\n{asked}\nLast question: {conversation.question}\n"
                "Rewritten question:",
            },
        ]
        try:
            text = "".join(self._generator.stream(messages, max_new_tokens=64))
        except RagError as exc:
            log.warning("query rewrite by the model failed (%s); using the rules", exc)
            return None
        rewritten = clean_rewrite(text)
        asked_words = content_words(conversation.question)
        kept = content_words(rewritten) & asked_words
        if not rewritten or len(rewritten) > 3 * len(conversation.question) + 200:
            return None
        if asked_words and len(kept) < len(asked_words) / 2:
            return None  # it answered or changed the question instead of rewriting it
        return Rewrite(rewritten, rewritten != conversation.question)


def clean_rewrite(text: str) -> str:
    """First line of a model's rewrite, without a label or quotes."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = re.sub(r"^(?:rewritten question|question)\s*:\s*", "", lines[0], flags=re.IGNORECASE)
    return line.strip().strip("\"'“”").strip()


def shown_earlier(conversation: Conversation, rewrite: Rewrite) -> list[str]:
    """The earlier question the model sees: the one just before, shortened, and only for a
    follow-up (a small model is easily distracted by more)."""
    if not rewrite.follow_up:
        return []
    return [q[:_EARLIER_CHARS] for q in conversation.earlier[-_EARLIER_SHOWN:]]
