"""Document -> chunks that the embedding model reads whole, with stable ids and offsets.

Sizes are counted in the embedding model's own tokens: the model reads at most ``max_tokens``
word pieces and silently truncates the rest, so a chunk plus its heading context must fit.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

from rag.config import Settings
from rag.embedding import Embedder
from rag.types import HEADING_SEPARATOR, SECTION_SEPARATOR, Chunk, Document

log = logging.getLogger(__name__)

# Fixed namespace: the same source and content give the same id on every machine and run.
CHUNK_NAMESPACE = uuid.UUID("6f1c1f7e-3b5a-4f0e-9a51-2d7c0a3c9b10")
CHUNKER_VERSION = "1"
_SPECIAL_TOKENS = 2  # [CLS] and [SEP], which the model adds to every input
_MIN_BODY_TOKENS = 32
_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def chunk_id(source: str, text: str, ordinal: int) -> str:
    """Derived from the source and the chunk's content; ``ordinal`` tells repeats apart."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{source}\x1f{ordinal}\x1f{text}"))


def below_site_headings(title: str, headings: Sequence[str]) -> list[str] | None:
    """The headings from the one the title begins with, when that is not the first: those
    above it are the site's ("Buffer | Node.js v18 Documentation" over "Node.js v18
    documentation › Buffer › ..."), not the page's. None when the title begins the path, or
    no heading begins the title."""
    title = " ".join(title.split())
    names = [" ".join(h.split()) for h in headings]
    if not names or not title or title.startswith(names[0]) or names[0].startswith(title):
        return None
    return next((names[i:] for i in range(1, len(names)) if title.startswith(names[i])), None)


def context_header(title: str, heading_path: tuple[str, ...]) -> list[str]:
    """Title then headings, without the repeat when the first heading is the title, and
    without the site's headings above the page's own (``below_site_headings``)."""
    own = below_site_headings(title, [h for h in heading_path if h.strip()])
    if own is not None:
        return own
    parts: list[str] = []
    for part in (title, *heading_path):
        part = " ".join(part.split())
        if part and (not parts or parts[-1] != part):
            parts.append(part)
    return parts


class TokenChunker:
    """Splits each section with LangChain's recursive splitter, sized in model tokens."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        max_tokens: int,
        chunk_size: int,
        chunk_overlap: int,
    ) -> None:
        # LangChain's splitter counts most pieces twice (to split, then to merge); the cache
        # tokenizes each piece once.
        self._count = lru_cache(maxsize=8192)(count_tokens)
        # The hard limit is what the model reads, less its special tokens.
        self._limit = max_tokens - _SPECIAL_TOKENS
        self._size = min(chunk_size, self._limit)
        self._overlap = min(chunk_overlap, self._size // 2)

    @property
    def signature(self) -> str:
        """What shaped the chunks; a change means stored chunks are stale."""
        return f"v{CHUNKER_VERSION}:size={self._size}:overlap={self._overlap}:limit={self._limit}"

    def chunk(self, document: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        seen: Counter[str] = Counter()
        offset = 0
        for section in document.sections:
            header = self._fit_header(context_header(document.title, section.heading_path))
            header_tokens = self._count(header + "\n") if header else 0
            budget = max(_MIN_BODY_TOKENS, min(self._size, self._limit) - header_tokens)
            for start, text in self._fitted(section.text, budget, header):
                ordinal = seen[text]
                seen[text] += 1
                chunks.append(
                    Chunk(
                        id=chunk_id(document.source, text, ordinal),
                        source=document.source,
                        title=document.title,
                        text=text,
                        heading_path=section.heading_path,
                        page=section.page,
                        start=offset + start,
                        end=offset + start + len(text),
                        context=header,
                        metadata=document.metadata,
                    )
                )
            offset += len(section.text) + len(SECTION_SEPARATOR)
        return chunks

    def _fit_header(self, parts: list[str]) -> str:
        """Keep the innermost headings when the full path would crowd out the text."""
        while parts and self._count(HEADING_SEPARATOR.join(parts)) > self._size // 3:
            parts = parts[1:]
        return HEADING_SEPARATOR.join(parts)

    def _split(self, text: str, budget: int) -> Iterator[tuple[int, str]]:
        # Imported here: it pulls in langchain_core, slow to import, which a sync that finds
        # nothing changed never needs.
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=budget,
            chunk_overlap=min(self._overlap, budget // 2),
            length_function=self._count,
            separators=_SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )
        # Offsets are found here, not by the splitter's add_start_index, which loses its place
        # when overlapping pieces repeat text. Pieces come in order, each starting after the last.
        cursor = 0
        for piece in splitter.split_text(text):
            start = text.find(piece, cursor)
            if start < 0:
                start = text.find(piece)
            cursor = start + 1
            # Token counts of merged pieces are not exactly additive: re-split any overflow.
            if self._count(piece) > budget:
                for sub_start, sub in self._split(piece, max(8, budget - 8)):
                    yield start + sub_start, sub
            elif piece:
                yield start, piece

    def _fitted(self, text: str, budget: int, header: str) -> Iterator[tuple[int, str]]:
        """Pieces whose header plus body fit the model; never one it would truncate."""
        for start, piece in self._split(text, budget):
            over = self._count(f"{header}\n{piece}" if header else piece) - self._limit
            if over > 0:
                for sub_start, sub in self._fitted(piece, max(8, budget - over - 4), header):
                    yield start + sub_start, sub
            else:
                yield start, piece


def make_chunker(settings: Settings, embedder: Embedder) -> TokenChunker:
    """The chunker the settings ask for, sized in ``embedder``'s tokens."""
    return TokenChunker(
        embedder.count_tokens,
        max_tokens=embedder.max_tokens,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )
