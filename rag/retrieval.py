"""Question -> hybrid search in the store (dense + BM25, fused there) -> hits spread over files.

The store fuses the two rankings (DBSF by default, or RRF: RAG_FUSION); an optional
cross-encoder then re-scores the fused candidates. Also here: the question's words that the
collection does not hold, or holds only outside the retrieved hits, which the answerer reads
as reasons to abstain.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.rerank import Reranker
from rag.store.base import SearchQuery, VectorStore, bm25_terms
from rag.text import lookup_words, rows_meet, word_bases
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

# From this size on, a word that only a chunk or two hold is evidence too
# (rare_unretrieved_words).
LARGE_COLLECTION_CHUNKS = 5_000
# From this size on, a word of everyday language (one the embedding model's vocabulary holds
# whole) that no chunk holds, or only one or two do, is evidence too: a collection this broad
# that never says "poetry" is not about it, while a narrower one may well never say "forum"
# or "people" and still answer the question.
BROAD_COLLECTION_CHUNKS = 20_000
# In a large collection, a question word this few chunks hold, none of them among the best
# passages, is only mentioned in passing (rare_unretrieved_words). Kept low: a word of an
# answerable question may be nearly as rare, so a higher count would abstain on it.
RARE_WORD_CHUNKS = 2
# A term at least this share of a collection's chunks holds is what the collection is about
# ("Python" in Python's documentation): that the best passages do not say it tells nothing.
COMMON_TERM_SHARE = 0.05
# ... in a collection of at least this many chunks: in a small one a share is a handful.
COMMON_TERM_MIN_CHUNKS = 20
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# How many chunks before its own a window reaches back for the header row of a table that it
# starts inside: a longer table's quote goes without its header rather than grow unbounded.
_TABLE_REACH = 3


def check_question(question: str, *, max_chars: int, field: str = "question") -> str:
    """The question stripped; InvalidInputError (naming ``field``) when it is empty or
    longer than ``max_chars``."""
    text = question.strip()
    if not text:
        raise InvalidInputError("the question is empty", field=field)
    if len(text) > max_chars:
        raise InvalidInputError(
            f"the question has {len(text)} characters; the limit is {max_chars} "
            "(RAG_MAX_QUESTION_CHARS)",
            field=field,
        )
    return text


class HybridRetriever:
    """Searches one collection: its embedder, its store and, optionally, a re-ranker."""

    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        settings: Settings,
        reranker: Reranker | None = None,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._settings = settings
        self._reranker = reranker

    @property
    def store(self) -> VectorStore:
        return self._store

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def warm_up(self) -> None:
        """Load the embedding model, and the re-ranker when there is one, now rather than
        on the first search."""
        self._embedder.warm_up()
        if self._reranker is not None:
            self._reranker.warm_up()

    def unknown_words(self, question: str) -> list[str]:
        """Words of the question that no document of the collection contains: the documents
        then cannot be about what is asked ("matplotlib", "bcrypt").

        In a collection under ``BROAD_COLLECTION_CHUNKS`` chunks only rare words count, those
        the embedding model's vocabulary does not hold whole: a folder that never says "often"
        (or a manual that never says "forum") tells nothing. In a broad one any content word
        counts: a collection that size that never uses a common word ("poetry", "tomorrow") is
        not about it. A derived word counts as known when a word it may derive from is
        ("subfolders": "folders", "sown": "sow")."""
        return self._unknown(self._word_counts(question))

    def rare_unretrieved_words(self, question: str, hits: Sequence[Hit]) -> list[str]:
        """Words of the question that a large collection holds in 1 to ``RARE_WORD_CHUNKS``
        chunks, none of them among ``hits`` (text, headings, file name): the documents mention
        it in passing at best, and "How do I create a virtual environment with conda?" is not
        answered by the venv page that comes first. Under ``BROAD_COLLECTION_CHUNKS`` only
        words the embedding model does not hold whole count, as in ``unknown_words``.

        BM25 ranks a rare word high, so a chunk about it would be among the hits. Words in no
        chunk at all are ``unknown_words``' business, and a rare form of a word that more
        chunks hold (``word_bases``: "slowest", "slow") is no rare word."""
        return self._rare_unretrieved(self._word_counts(question), hits)

    def unmentioned_words(self, question: str, hits: Sequence[Hit]) -> list[str]:
        """``unknown_words`` and then ``rare_unretrieved_words``, from one lookup of the
        question's words in the store (this runs for every question)."""
        counts = self._word_counts(question)
        return self._unknown(counts) + self._rare_unretrieved(counts, hits)

    def common_terms(self, terms: Sequence[str]) -> list[str]:
        """The ``terms`` that at least ``COMMON_TERM_SHARE`` of the collection's chunks hold,
        in a collection of ``COMMON_TERM_MIN_CHUNKS`` chunks or more. Only terms that are one
        BM25 word are counted: a dotted, underscored or multi-word name is specific, whatever
        its parts ("any_value" is not "value", which BM25 keeps of it)."""
        total = self._store.count(exact=False)
        if total < COMMON_TERM_MIN_CHUNKS:
            return []
        single = [t for t in terms if _PLAIN_WORD.fullmatch(t) and len(bm25_terms(t)) == 1]
        if not single:
            return []
        needed = max(2, math.ceil(COMMON_TERM_SHARE * total))
        counts = self._store.word_counts([t.lower() for t in single], up_to=needed)
        return [t for t in single if counts.get(t.lower(), 0) >= needed]

    def _word_counts(self, question: str) -> tuple[bool, dict[str, int]]:
        """Whether the collection is large, and the question's words with their chunk counts
        (up to one more than rare). One under ``BROAD_COLLECTION_CHUNKS`` counts only the
        words its embedding model does not hold whole (see ``unknown_words``)."""
        words = lookup_words(question)
        # An estimate decides the size class: this runs for every question.
        size = self._store.count(exact=False) if words else 0
        if size < BROAD_COLLECTION_CHUNKS:
            words = [w for w in words if self._embedder.count_tokens(w) > 1]
        large = size >= LARGE_COLLECTION_CHUNKS
        return large, self._store.word_counts(words, up_to=RARE_WORD_CHUNKS + 1)

    def _unknown(self, counted: tuple[bool, dict[str, int]]) -> list[str]:
        return self._with_rare_bases([w for w, n in counted[1].items() if n == 0], most=0)

    def _with_rare_bases(self, words: list[str], *, most: int) -> list[str]:
        """The ``words`` none of whose bases (``word_bases``) more than ``most`` chunks hold:
        a derived form or another spelling of a word the collection holds is no rarer than
        that word. A base the store does not count (a stopword) counts as held."""
        bases = {w: word_bases(w) for w in words}
        wanted = sorted({b for found in bases.values() for b in found})
        if not wanted:
            return words
        counts = self._store.word_counts(wanted, up_to=most + 1)
        return [w for w in words if all(counts.get(b, most + 1) <= most for b in bases[w])]

    def _rare_unretrieved(
        self, counted: tuple[bool, dict[str, int]], hits: Sequence[Hit]
    ) -> list[str]:
        large, counts = counted
        rare = [w for w, n in counts.items() if 1 <= n <= RARE_WORD_CHUNKS]
        if not large or not rare:
            return []
        # A rare form of a common word ("slowest" of "slow") names nothing the collection
        # lacks: only a word whose bases are rare as well is a reason to abstain.
        rare = self._with_rare_bases(rare, most=RARE_WORD_CHUNKS)
        if not rare:
            return []
        seen = bm25_terms("\n".join(f"{h.chunk.embedding_text}\n{h.chunk.source}" for h in hits))
        return [w for w in rare if not bm25_terms(w) <= seen]

    def around(self, chunk: Chunk) -> list[Chunk]:
        """The chunk with the chunks just before and after it in its file, those of them in
        the same section (heading path and page): what a quote of it needs around it."""
        return neighbours(self._store.source_chunks(chunk.source), chunk)

    def search(
        self, question: str, *, k: int | None = None, source_prefix: str | None = None
    ) -> list[Hit]:
        """The ``k`` best hits (TOP_K when not given, 1 to 100), best first, spread over files
        as ``spread_sources`` does; only files under ``source_prefix`` when given."""
        text = check_question(question, max_chars=self._settings.max_question_chars)
        if k is not None and not 1 <= k <= 100:
            raise InvalidInputError(f"k must be between 1 and 100, got {k}", field="k")
        wanted = k or self._settings.top_k
        per_source = self._settings.max_chunks_per_source
        # More candidates than wanted, so that skipping a file's further chunks still leaves
        # ``wanted`` hits from other files.
        fetch = max(min(4 * wanted, 100), 20) if per_source else wanted
        if self._reranker:
            fetch = max(fetch, self._settings.rerank_candidates)
        query = SearchQuery(
            text=text,
            vector=self._embedder.embed_query(text),
            k=fetch,
            prefetch_k=max(self._settings.prefetch_k, fetch),
            fusion=self._settings.fusion,
            rrf_k=self._settings.rrf_k,
            source_prefix=source_prefix or None,
        )
        hits = self._store.search(query)
        if self._reranker is not None and hits:
            scores = self._reranker.scores(text, [h.chunk.embedding_text for h in hits])
            ranked = sorted(zip(scores, hits, strict=True), key=lambda pair: -pair[0])
            hits = [replace(hit, score=score) for score, hit in ranked]
        return spread_sources(hits, wanted, per_source)


def neighbours(chunks: Sequence[Chunk], chunk: Chunk) -> list[Chunk]:
    """``chunk`` with the chunks just before and after it in ``chunks`` (one file's, in
    reading order) that share its section (heading path and page); ``[chunk]`` when
    ``chunks`` does not hold it (the file changed since the search). A window that starts
    inside a table reaches back, up to ``_TABLE_REACH`` chunks more, to the table's header
    row, without which its rows would be quoted under a row of data."""
    index = next((i for i, c in enumerate(chunks) if c.id == chunk.id), None)
    if index is None:
        return [chunk]
    before = index > 0 and same_section(chunks[index - 1], chunk)
    first = index - 1 if before else index
    reach = first - _TABLE_REACH
    while first > max(reach, 0) and _continues_table(chunks[first - 1], chunks[first]):
        first -= 1
    after = index + 1 < len(chunks) and same_section(chunks[index + 1], chunk)
    return list(chunks[first : index + 2 if after else index + 1])


def same_section(one: Chunk, other: Chunk) -> bool:
    """Whether two chunks of a file share their section: heading path and page."""
    return (one.heading_path, one.page) == (other.heading_path, other.page)


def follows(before: Chunk, chunk: Chunk, *, gap: int) -> bool:
    """Whether ``chunk`` goes on from ``before`` in one section: it starts after ``before``
    does (an overlap allowed) and at most ``gap`` characters after ``before`` ends."""
    return before.start < chunk.start <= before.end + gap and same_section(before, chunk)


def _continues_table(before: Chunk, chunk: Chunk) -> bool:
    """Whether ``chunk`` goes on with a table that ``before`` left unfinished: it follows
    (overlapping, or split at a line) with a table row on each side."""
    return follows(before, chunk, gap=1) and rows_meet(before.text, chunk.text)


def spread_sources(hits: Sequence[Hit], k: int, per_source: int) -> list[Hit]:
    """The ``k`` best hits, at most ``per_source`` of them from one file as long as other
    files' hits remain; then the skipped hits in rank order. 0: the ``k`` best, as they come."""
    if not per_source:
        return list(hits[:k])
    picked: list[Hit] = []
    skipped: list[Hit] = []
    taken: Counter[str] = Counter()
    for hit in hits:
        if len(picked) == k:
            break
        if taken[hit.chunk.source] < per_source:
            taken[hit.chunk.source] += 1
            picked.append(hit)
        else:
            skipped.append(hit)
    return picked + skipped[: k - len(picked)]
