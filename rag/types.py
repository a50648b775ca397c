"""The nouns every stage shares: documents, chunks, hits, citations and answers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text with one heading path (HTML, Markdown, reST) or one page (PDF)."""

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded file: its extracted text split into sections, in reading order.

    ``text`` is the sections joined by ``SECTION_SEPARATOR``; chunk offsets point into it.
    """

    source: str
    title: str
    sections: tuple[Section, ...]
    metadata: tuple[tuple[str, str], ...] = ()
    """Named facts about the file that are not its text (an e-mail's sender and date), kept
    with every chunk."""
    attachments: tuple[Document, ...] = ()
    """Files carried inside this one (an e-mail's attachments), each a document of its own
    under a source below this one's."""

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(s.text for s in self.sections)


SECTION_SEPARATOR = "\n\n"
# Between the parts of a chunk's ``context`` (its title and headings, "Guide > Setup").
HEADING_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document small enough for the embedding model to read whole."""

    id: str
    source: str
    title: str
    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    start: int = 0
    end: int = 0

    context: str = ""
    """Title and heading path as embedded with the text, so a chunk keeps its context."""
    metadata: tuple[tuple[str, str], ...] = ()
    """Its document's ``metadata``."""

    @property
    def embedding_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk returned by retrieval: its fused rank score and its cosine similarity."""

    chunk: Chunk
    score: float
    similarity: float


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    source: str
    title: str
    chunk_id: str
    score: float
    quote: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    supporting: tuple[str, ...] = ()
    """Sentences of ``quote`` (as written, whitespace collapsed) that support the answer: for
    a generated answer, those the grounding check found for its claims; for a quote, those it
    sets in bold."""


@dataclass(frozen=True, slots=True)
class SupportingSentence:
    """A context sentence that best supports an answer, with its passage number."""

    n: int
    text: str


@dataclass(slots=True)
class Answer:
    answer: str
    citations: list[Citation]
    abstained: bool
    timings: dict[str, float] = field(default_factory=dict)
    supporting: list[SupportingSentence] = field(default_factory=list)
    extractive: bool = False
    """True when the answer quotes the passages: in quote mode (RAG_ANSWER_MODE), or when the
    model's answer failed the grounding check."""
