"""Chat frontends' background tasks: recognised, and answered without retrieval.

Open WebUI and LibreChat send their own housekeeping prompts to the chat model: a title for
the chat, tags, suggested next messages, search queries, an autocompletion, an emoji. Each
quotes the conversation inside a template and expects a fixed output (Open WebUI parses
JSON). Taken as questions they would be searched for in the documents and abstained from.
Here they are recognised by their templates' structure, not by one exact text, so a filled-in
date, a reworded guideline or any conversation still match, and answered directly:

- a title from the conversation's first question: its names and key words, or, when a
  capable model is at hand (RAG_TASK_TITLES), the model's few words, checked to name the
  question's subject and to add no number of their own;
- tags, follow-ups, queries, an autocompletion and an emoji by cheap rules.

A real question does not match: an Open WebUI task starts with its ``### Task:`` header,
quotes the conversation between ``<chat_history>`` tags and asks for one of its JSON keys
outside them; a LibreChat title prompt asks for a title of the conversation in a few words
and quotes it. Either is the only user message of its request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.attachments import without_file_list
from rag.conversation import Conversation, Role, Turn, rewrite_with_rules, topic_words
from rag.errors import RagError
from rag.generation import Generator, Message
from rag.text import lookup_words, named_terms, numbers

log = logging.getLogger(__name__)

TaskKind = Literal[
    "title", "tags", "follow_ups", "queries", "image_prompt", "autocomplete", "emoji"
]
Frontend = Literal["open-webui", "librechat"]

# --- Open WebUI (open_webui/config.py: DEFAULT_*_PROMPT_TEMPLATE) ---------------------------
_TASK_HEADER = re.compile(r"\A\s*#{1,6}\s*task\s*:", re.IGNORECASE)
_JSON_KEYS: tuple[tuple[TaskKind, re.Pattern[str]], ...] = (
    ("follow_ups", re.compile(r'"follow_ups"\s*:')),
    ("queries", re.compile(r'"queries"\s*:')),
    ("tags", re.compile(r'"tags"\s*:')),
    ("title", re.compile(r'"title"\s*:')),
    ("image_prompt", re.compile(r'"prompt"\s*:')),
    ("autocomplete", re.compile(r'"text"\s*:')),
)
_ROLE_LINE = re.compile(r"^(USER|ASSISTANT|SYSTEM|TOOL|DEVELOPER):[ \t]?", re.MULTILINE)
_ROLES: dict[str, Role] = {"user": "user", "system": "system", "developer": "system"}
_EMOJI_OPENING = (
    "your task is to reflect the speaker's likely facial expression through a fitting emoji"
)
_EMOJI_MESSAGE = "Message: ```"
_FENCE = "```"

# --- LibreChat (@librechat/agents: createCompletionTitleRunnable, createTitleRunnable) -------
_LC_TITLE = re.compile(
    r"\btitle for (?:this|the) conversation\b|\AAnalyze this conversation and provide:"
    r".{0,200}?\bconcise title\b",
    re.IGNORECASE | re.DOTALL,
)
_LC_FEW_WORDS = re.compile(r"\b(?:5|five)[- ]words?\b|\b5-word-or-less\b", re.IGNORECASE)
_LC_CONVERSATION = re.compile(r"^(?:Conversation:[ \t]*\n)?(?:\|\|>)?User:[ \t]*", re.MULTILINE)
_LC_REPLY = re.compile(r"^(?:\|\|>)?(?:AI|Assistant|Response):[ \t]*", re.MULTILINE)
_LC_LANGUAGE = re.compile(r"\A\s*Language:\s*\S", re.IGNORECASE)

_TITLE_PROMPT = (
    "You write short titles for chats: two to five words naming the topic of the user's "
    "question. You never answer the question."
)
_TITLE_ASK = "Question: {question}\nTitle for this chat:"
_TITLE_EXAMPLES = (
    ("How do I reset the password of my home router?", "Router Password Reset"),
    ("What time does the city museum open on Sundays?", "Museum Sunday Opening Hours"),
    ("Why does my bread dough not rise?", "Bread Dough Not Rising"),
)
_TITLE_TOKENS = 16
_TITLE_MAX_WORDS = 6
_TITLE_MAX_CHARS = 60
_QUESTION_CHARS = 500
_FOLLOW_UPS = 3
_TAGS = 3
# Words that shape a question rather than name its subject.
_QUESTION_WORDS = frozenset(
    """many much far long often deep big large small old need needs want get use make tell
    know please does did let best way ways kind type""".split()
)
# Words that make a line a sentence rather than a title.
_SENTENCE_WORDS = frozenset(
    "is are was were be been can cannot could should would will shall has have had".split()
)
_SOURCE_TITLE = re.compile(r"^- \[\d+\] (.+?) — `", re.MULTILINE)
_NEUTRAL_EMOJI = "🙂"


@dataclass(frozen=True)
class Task:
    """A recognised background task."""

    kind: TaskKind
    frontend: Frontend
    history: tuple[Turn, ...] = ()
    """The conversation the prompt quotes, oldest first."""
    text: str = ""
    """For an autocompletion, the text to continue; for an emoji, the message."""
    output: Literal["json", "text"] = "json"
    """What the frontend parses: a JSON object, or the bare text (a LibreChat title)."""
    keys: tuple[str, ...] = field(default=())
    """For a JSON title, the keys besides ``title`` that the prompt asks for."""

    @property
    def questions(self) -> list[str]:
        """The user messages of the quoted conversation, oldest first."""
        return [t.content for t in self.history if t.role == "user" and t.content.strip()]


def recognise_task(turns: Sequence[Turn]) -> Task | None:
    """The background task a request carries, or None for a conversation to answer."""
    users = [t for t in turns if t.role == "user"]
    if len(users) != 1 or any(t.role == "assistant" for t in turns):
        return None
    prompt = users[0].content
    task = _open_webui(prompt) or _librechat(prompt)
    if task is None:
        systems = [t.content for t in turns if t.role == "system"]
        # LibreChat's older title prompt: the instructions and the conversation are the
        # system message, the user message only names the language.
        if _LC_LANGUAGE.match(prompt) and systems:
            task = _librechat(systems[-1])
    return task


def _between(text: str, opening: str, closing: str, start: int = 0) -> tuple[int, int] | None:
    """Where the text between the first ``opening`` (from ``start``) and the last ``closing``
    after it begins and ends. (Plain searches: a regular expression could take quadratic
    time on a long prompt full of openings.)"""
    begin = text.find(opening, start)
    end = text.rfind(closing)
    if begin < 0 or end < begin + len(opening):
        return None
    return begin + len(opening), end


def _open_webui(prompt: str) -> Task | None:
    if prompt.lstrip()[: len(_EMOJI_OPENING)].lower() == _EMOJI_OPENING:
        message = _between(prompt.rstrip(), _EMOJI_MESSAGE, _FENCE)
        if message is None or not prompt.rstrip().endswith(_FENCE):
            return None
        return Task("emoji", "open-webui", text=prompt[slice(*message)].strip(), output="text")
    if not _TASK_HEADER.match(prompt):
        return None
    history = _between(prompt, "<chat_history>", "</chat_history>")
    if history is None:
        return None
    begin, end = history
    instructions = prompt[:begin] + prompt[end:]
    kind = next((kind for kind, key in _JSON_KEYS if key.search(instructions)), None)
    if kind is None:
        return None
    text = ""
    if kind == "autocomplete":
        typed = _between(prompt, "<text>", "</text>", end)
        if typed is None or "<type>" not in instructions:
            return None
        text = prompt[slice(*typed)].strip()
    return Task(kind, "open-webui", _open_webui_history(prompt[begin:end]), text)


def _open_webui_history(quoted: str) -> tuple[Turn, ...]:
    """Open WebUI writes each message as 'ROLE: content' (open_webui/utils/misc.py,
    get_messages_content); a message's later lines follow it unmarked."""
    turns: list[Turn] = []
    marks = list(_ROLE_LINE.finditer(quoted))
    for mark, after in zip(marks, [*marks[1:], None][: len(marks)], strict=True):
        # A user turn quotes the files attached to it by name only: not its topic.
        content = without_file_list(quoted[mark.end() : after.start() if after else len(quoted)])
        content = content.strip()
        role = mark.group(1).lower()
        turns.append(Turn(_ROLES.get(role, "assistant"), content))
    return tuple(turns)


def _librechat(prompt: str) -> Task | None:
    start = _LC_CONVERSATION.search(prompt)
    if start is None:
        return None
    instructions = prompt[: start.start()]
    if not (_LC_TITLE.search(instructions) and _LC_FEW_WORDS.search(instructions)):
        return None
    quoted = prompt[start.end() :]
    reply = _LC_REPLY.search(quoted)
    asked = quoted[: reply.start()] if reply else quoted
    history = [Turn("user", asked.strip().strip('"').strip())]
    if reply:
        history.append(Turn("assistant", quoted[reply.end() :].strip().strip('"').strip()))
    structured = instructions.lstrip().lower().startswith("analyze this conversation")
    return Task(
        "title",
        "librechat",
        tuple(history),
        output="json" if structured else "text",
        keys=("language",) if structured else (),
    )


class TaskAnswerer:
    """Answers recognised tasks: a title with ``generator`` (None: by rule), the rest by
    rule, so only a title with a generator takes the model."""

    def __init__(self, generator: Generator | None) -> None:
        self._generator = generator

    def answer(self, task: Task) -> str:
        """The reply's text, in the shape the task's frontend parses."""
        if task.kind == "title":
            title = self.title(task.questions)
            if task.output == "text":
                return title
            extra = {"language": "English"} if "language" in task.keys else {}
            return _json({"title": title} | extra)
        if task.kind == "tags":
            return _json({"tags": tags(task.questions)})
        if task.kind == "follow_ups":
            return _json({"follow_ups": follow_ups(task.history)})
        if task.kind == "queries":
            return _json({"queries": queries(task.questions)})
        if task.kind == "image_prompt":
            return _json({"prompt": task.questions[-1] if task.questions else ""})
        if task.kind == "autocomplete":
            return _json({"text": ""})  # the template's own answer when unsure
        return _NEUTRAL_EMOJI

    def title(self, questions: Sequence[str]) -> str:
        """A few words naming the chat: the model's, when usable, else the key words."""
        question = next((q for q in questions if q.strip()), "")
        if not question:
            return "New Chat"
        if self._generator is not None:
            messages: list[Message] = [{"role": "system", "content": _TITLE_PROMPT}]
            for asked, title in _TITLE_EXAMPLES:
                messages.append({"role": "user", "content": _TITLE_ASK.format(question=asked)})
                messages.append({"role": "assistant", "content": title})
            ask = _TITLE_ASK.format(question=question[:_QUESTION_CHARS])
            messages.append({"role": "user", "content": ask})
            try:
                written = "".join(self._generator.stream(messages, max_new_tokens=_TITLE_TOKENS))
            except RagError as exc:
                log.warning("title by the model failed (%s); using the question's words", exc)
            else:
                cleaned = clean_title(written, question)
                if cleaned:
                    return cleaned
        return rule_title(question)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def clean_title(text: str, question: str) -> str:
    """The model's title on one line without a label, quotes or trailing punctuation; empty
    when it is no title of the question: too long, a question or a sentence, sharing none of
    its words, or holding a number it does not (an answer slipped in)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = re.sub(r"^(?:chat\s+)?title\s*:\s*", "", lines[0], flags=re.IGNORECASE)
    line = re.sub(r"\s*\[\d+\]", "", line)  # a citation marker out of habit
    line = line.strip().strip("\"'“”‘’*#`_").strip()
    if line.endswith("?"):
        return ""  # the question again, or another one
    line = line.rstrip(".!:;,").strip()
    words = line.split()
    if not words or len(words) > _TITLE_MAX_WORDS or len(line) > _TITLE_MAX_CHARS:
        return ""
    if _SENTENCE_WORDS & {w.lower() for w in words}:
        return ""  # a sentence: most likely an answer
    stems = {w[:5] for w in lookup_words(question)}
    if not any(w[:5] in stems for w in lookup_words(line)):
        return ""  # not about the question
    if numbers(line) - numbers(question):
        return ""  # a number of its own: an answer, made up
    return line


def rule_title(question: str) -> str:
    """The question's names and key words, in Title Case: 'Tomato Seeds Sown'."""
    words = _topic(question, limit=4)
    if not words:
        return " ".join(question.split()[:5])[:_TITLE_MAX_CHARS] or "New Chat"
    return " ".join(w if any(c.isupper() for c in w) else w.capitalize() for w in words)


def _topic(text: str, *, limit: int) -> list[str]:
    """Names first, then key words, each once; the words that only shape a question ("how
    many", "how often") left out."""
    chosen: list[str] = []
    for word in [*named_terms(text), *lookup_words(text)]:
        lower = word.lower()
        if lower in _QUESTION_WORDS:
            continue
        # One name once: "Zephyr" and "Zephyr-9" are one, shown by the fuller form.
        same = next((i for i, c in enumerate(chosen) if _parts(c) & _parts(word)), None)
        if same is None:
            chosen.append(word)
        elif chosen[same].lower() in lower and len(word) > len(chosen[same]):
            chosen[same] = word
    return chosen[:limit]


def _parts(word: str) -> set[str]:
    return {p for p in re.split(r"[^0-9a-z]+", word.lower()) if p and not p.isdigit()}


def tags(questions: Sequence[str]) -> list[str]:
    """The names the questions mention, or their first key words; 'General' for none."""
    names: list[str] = []
    for question in questions:
        for name in named_terms(question):
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
    if not names and questions:
        names = [w.capitalize() for w in lookup_words(questions[0])[:2]]
    return names[:_TAGS] or ["General"]


def follow_ups(history: Sequence[Turn]) -> list[str]:
    """Next messages to suggest: more on the last question's topic, and what else the
    documents cited in the last answer hold."""
    questions = [t.content for t in history if t.role == "user" and t.content.strip()]
    if not questions:
        return []
    # The conversation's names and numbers (newest first), else the last question's key words.
    topic = topic_words(questions, limit=3) or _topic(questions[-1], limit=3)
    suggestions = [f"Tell me more about {' '.join(topic)}."] if topic else []
    answers = [t.content for t in history if t.role == "assistant"]
    for title in _SOURCE_TITLE.findall(answers[-1] if answers else ""):
        suggestion = f"What else does {title.strip()} cover?"
        if suggestion not in suggestions:
            suggestions.append(suggestion)
    return suggestions[:_FOLLOW_UPS]


def queries(questions: Sequence[str]) -> list[str]:
    """The last question, made self-contained with the earlier ones' key words when it reads
    like a follow-up. Braces are dropped: Open WebUI cuts the JSON at the last '{'."""
    if not questions:
        return []
    rewrite = rewrite_with_rules(Conversation(questions[-1].strip(), list(questions[:-1])))
    query = " ".join(re.sub(r"[{}]", " ", rewrite.query).split())
    return [query] if query else []
