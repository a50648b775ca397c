"""Files attached in a chat frontend: found in the message, then searched beside the collection.

A chat frontend sends an attached file's text inside the message, wrapped in its own prompt.
Open WebUI (its default RAG template, in the user message or, with RAG_SYSTEM_CONTEXT, in the
system message) sends::

    ### Task: ... instructions ...
    <context>
    <source id="1" name="notes.txt">...the file's text, or its best chunks...</source>
    </context>

    <attached_files>
    <file type="file" id="..." name="notes.txt"/>
    </attached_files>

    How long must the pump be primed?

``unwrap`` takes the sources and the file list out and leaves the question the user typed;
``attached_hits`` cuts the sources into chunks as ingestion does and ranks them for the
question by the same embedding model, so they can stand among the collection's hits and be
cited by their name.
The same tags carry Open WebUI's web-search and knowledge results; they are passages the user
chose to send, and are treated alike.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunking import TokenChunker
from rag.embedding import Embedder
from rag.types import Chunk, Document, Hit, Section

_SOURCE = re.compile(r"<source\b([^>]*)>(.*?)</source>", re.DOTALL | re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_CONTEXT = re.compile(r"<context>(.*?)</context>", re.DOTALL | re.IGNORECASE)
# Open WebUI lists the attached files (names and ids, no text) before the question.
_FILE_LIST = re.compile(r"<attached_files>.*?</attached_files>", re.DOTALL | re.IGNORECASE)
_USER_QUERY = re.compile(r"<user_query>(.*?)</user_query>", re.DOTALL | re.IGNORECASE)
# Where Open WebUI's default template (and templates written after it) starts.
_TEMPLATE_START = re.compile(r"^#{1,4}\s*Task\s*:", re.MULTILINE | re.IGNORECASE)
_NAME_CHARS = 200


@dataclass(frozen=True)
class Attachment:
    """Text a client sent with the question, and the name it is cited by."""

    name: str
    text: str


@dataclass(frozen=True)
class Unwrapped:
    text: str
    """The message without the wrapper: the question, or the rest of a system message."""
    attachments: list[Attachment]


def _name(attributes: str, index: int) -> str:
    found = {
        m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _ATTRIBUTE.finditer(attributes)
    }
    name = html.unescape(found.get("name", "")).strip()
    name = " ".join(name.split())[:_NAME_CHARS]
    return name or f"attachment {found.get('id') or index}"


def _sources(text: str) -> list[Attachment]:
    """The tagged sources, one attachment per name (a file's chunks joined in order)."""
    bodies: dict[str, list[str]] = {}
    for index, match in enumerate(_SOURCE.finditer(text), start=1):
        body = match.group(2).strip()
        if body:
            bodies.setdefault(_name(match.group(1), index), []).append(body)
    return [Attachment(name, "\n\n".join(parts)) for name, parts in bodies.items()]


def unwrap(message: str, *, question: bool) -> Unwrapped:
    """``message`` without a frontend's attachment wrapper, and the attachments it carried.

    ``question``: the message is the user's (the question follows the wrapper, or sits in a
    ``<user_query>`` tag); else it is a system message, whose own text before the wrapper is
    kept. A message without ``<source>`` tags is returned as it is.
    """
    message = without_file_list(message)
    if "<source" not in message.lower():
        return Unwrapped(message, [])
    context = _CONTEXT.search(message)
    region = context.group(1) if context else message
    attachments = _sources(region)
    if not attachments:
        return Unwrapped(message, [])
    if context:
        before, after = message[: context.start()], message[context.end() :]
    else:
        tags = list(_SOURCE.finditer(message))
        before, after = message[: tags[0].start()], message[tags[-1].end() :]
    if question:
        asked = _USER_QUERY.search(after) or _USER_QUERY.search(before)
        text = asked.group(1) if asked else after
    else:
        start = _TEMPLATE_START.search(before)
        text = (before[: start.start()] if start else before) + after
    return Unwrapped(text.strip(), attachments)


def without_file_list(text: str) -> str:
    """``text`` without a frontend's list of attached files (Open WebUI's
    ``<attached_files>``), which names them but holds none of their text."""
    if "<attached_files>" not in text.lower():
        return text
    return _FILE_LIST.sub("", text).strip()


def attached_chunks(attachments: Sequence[Attachment], chunker: TokenChunker) -> list[Chunk]:
    """The attachments cut into chunks as an ingested file would be, named by the attachment."""
    chunks: list[Chunk] = []
    for attachment in attachments:
        document = Document(attachment.name, attachment.name, (Section(attachment.text),))
        chunks.extend(chunker.chunk(document))
    return chunks


def attached_hits(query: str, chunks: Sequence[Chunk], embedder: Embedder) -> list[Hit]:
    """``chunks`` ranked for ``query`` by cosine similarity, best first."""
    if not chunks:
        return []
    vectors = np.asarray(embedder.embed_documents([c.embedding_text for c in chunks]))
    asked = np.asarray(embedder.embed_query(query))
    norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(asked)), 1e-12)
    similarities = vectors @ asked / np.maximum(norms, 1e-12)
    order = np.argsort(-similarities, kind="stable")
    return [Hit(chunks[i], float(similarities[i]), float(similarities[i])) for i in order]


def merge_hits(collection: Sequence[Hit], attached: Sequence[Hit], k: int) -> list[Hit]:
    """The ``k`` best of both lists. The collection's hits keep their fused order; an attached
    hit goes before the first collection hit it is more similar to the question than."""
    merged: list[Hit] = []
    i = j = 0
    while len(merged) < k and (i < len(collection) or j < len(attached)):
        take_attached = j < len(attached) and (
            i >= len(collection) or attached[j].similarity >= collection[i].similarity
        )
        if take_attached:
            merged.append(attached[j])
            j += 1
        else:
            merged.append(collection[i])
            i += 1
    return merged
