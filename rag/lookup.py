"""Where the entry of the term a question asks about is found, before a prompt is built.

A question that asks what a named term or an option is or does ("What does work_mem
control?", "What does pg_dump --clean do?"), or how to do something with a code name, is
answered by the term's entry: a short label line that names it, then its text. The entry is
looked for on the retrieved pages, those that name the question's other terms first; an
option's, which no search reads, also in the rest of the collection: first on the page whose
usage line lists it for the program the question names, then on any page that labels it
(``EntryLookup``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from rag.choosing import described
from rag.entries import (
    defined_term,
    entry_labels,
    entry_term,
    is_entry_label,
    names_option_value,
    option_value,
    programs_before,
    usage_options,
)
from rag.retrieval import HybridRetriever, follows, same_section
from rag.store.base import bm25_terms
from rag.text import split_blocks, split_sentences, unmentioned_terms
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

# Words that say an option is asked about, not which program has it.
_OPTION_WORDS = "option flag switch argument parameter command"


def entry_chunk(term: str, chunks: Sequence[Chunk]) -> Chunk | None:
    """The chunk that holds the first sentence of ``term``'s entry (``is_entry_label``) in
    ``chunks``, one file's in reading order: the label's own chunk, or the next one in its
    section when the label ends its chunk and the entry goes on there. None when no entry is
    labelled so, or none says anything (``entry_sentence`` finds its sentence)."""
    for i, chunk in enumerate(chunks):
        blocks = split_blocks(chunk.text)
        following = chunks[i + 1] if i + 1 < len(chunks) else None
        for k, block in enumerate(blocks):
            if not is_entry_label(term, block):
                continue
            # A function's signatures may label one entry together, a line each.
            text = [b for b in blocks[k + 1 :] if not is_entry_label(term, b)]
            if text:
                if split_sentences(text[0]):
                    return chunk
            # The entry goes on in the next chunk of its section, a blank line apart at most.
            elif following is not None and follows(chunk, following, gap=2):
                first = split_blocks(following.text)[:1]
                if first and split_sentences(first[0]):
                    return following
    return None


def _labelled_entry(term: str, chunks: Sequence[Chunk]) -> Chunk | None:
    """``entry_chunk`` of the first of the terms that answer for ``term`` (``entry_labels``:
    "-fd" is answered by "-f" too) that ``chunks`` label an entry with; None when none."""
    return next(filter(None, (entry_chunk(label, chunks) for label in entry_labels(term))), None)


def _entry_after_usage(term: str, chunks: Sequence[Chunk], usages: set[str]) -> Chunk | None:
    """``_labelled_entry`` from the first of the ``usages`` chunks (those with the program's
    usage line) that one follows: a page of several commands (a shell's builtins) labels
    "-e" under each, and the program's own is the one after its usage line. The page's
    first, when none follows one."""
    for at, chunk in enumerate(chunks):
        if chunk.id in usages and (entry := _labelled_entry(term, chunks[at:])) is not None:
            return entry
    return _labelled_entry(term, chunks)


def _item_chunk(asked: str, entry: Chunk, chunks: Sequence[Chunk]) -> Chunk:
    """The chunk of ``entry``'s section, from ``entry`` on, that names the option ``asked``
    asks about with the value it gives it (``option_value``: "-X importtime" is an item
    further down -X's entry); ``entry`` when there is none."""
    valued = option_value(asked)
    if valued is None:
        return entry
    at = next(i for i, c in enumerate(chunks) if c.id == entry.id)
    for chunk in chunks[at:]:
        if not same_section(entry, chunk):
            break
        if names_option_value(chunk.text, *valued):
            return chunk
    return entry


def _asked_option(asked: str, attached: Sequence[Chunk]) -> str | None:
    """The command-line option a defining question asks about ("-X" of "What does python -X
    importtime do?"), unless the ``attached`` text labels it, which is then what was asked
    about; None for any other question."""
    valued = option_value(asked)
    option = valued[0] if valued is not None else defined_term(asked)
    if option is None or not option.startswith("-"):
        return None
    labels = entry_labels(option)
    if any(is_entry_label(t, b) for c in attached for b in split_blocks(c.text) for t in labels):
        return None
    return option


class EntryLookup:
    """Finds the entry of what a question asks about, through ``retriever``'s store."""

    def __init__(self, retriever: HybridRetriever) -> None:
        self._retriever = retriever

    def entry_first(
        self,
        asked: str,
        hits: Sequence[Hit],
        attached: Sequence[Chunk],
        *,
        source_prefix: str | None = None,
    ) -> tuple[list[Hit], Chunk | None]:
        """``hits`` with the entry of the term ``asked`` asks about (``_found_entry``) first, in
        place of its page's hit, and the entry's chunk: the prompt reads the definition before
        anything else, and a defining question's quote is the entry. The entry of an option
        given to a program comes from the page whose usage line lists it for that program
        (``_usage_entry``) before any other; an option's entry on a page no hit came from
        (``_usage_entry``, ``_option_elsewhere``, under ``source_prefix``) takes the last
        hit's place. ``hits`` as they are and None when there is none."""
        if not hits:
            return [], None
        option = _asked_option(asked, attached)
        found = None if option is None else self._usage_entry(asked, option, hits, source_prefix)
        found = found or self._found_entry(asked, hits, attached)
        if found is None and option is not None:
            elsewhere = self._option_elsewhere(asked, option, hits, source_prefix)
            found = None if elsewhere is None else (len(hits) - 1, elsewhere)
        if found is None:
            return list(hits), None
        at, entry = found
        others = [h for i, h in enumerate(hits) if i != at and h.chunk.id != entry.id]
        return [replace(hits[at], chunk=entry), *others], entry

    def _found_entry(
        self, asked: str, hits: Sequence[Hit], attached: Sequence[Chunk]
    ) -> tuple[int, Chunk] | None:
        """For a question whose answer is a term's entry (``entry_term``: "What does work_mem
        control?", "How do I read rows as dicts with csv.DictReader?"), the position in
        ``hits`` of the best page that labels an entry with the term, of those that leave out
        the fewest of the question's named terms, and the entry's chunk; None otherwise. A
        page that labels an entry with the term defines it there, while the passage that
        ranks best may only use it (a note that names work_mem in passing)."""
        term = entry_term(asked)
        if term is None:
            return None
        # The pages whose title or file name names what the question names come first: "the
        # --if-exists option of pg_dump" is pg_dump's entry, not pg_restore's. The page, not
        # the chunk, is counted, so the entry is the same once it stands in its page's place.
        missing = [
            len(unmentioned_terms(asked, [h.chunk.title or "", h.chunk.source])) for h in hits
        ]
        searched: set[str] = set()
        for at in sorted(range(len(hits)), key=missing.__getitem__):
            chunk = hits[at].chunk
            if chunk.source in searched:
                continue
            searched.add(chunk.source)
            from_attached = any(c.id == chunk.id for c in attached)
            chunks = (
                [c for c in attached if c.source == chunk.source]
                if from_attached
                else self._retriever.store.source_chunks(chunk.source)
            )
            found = _labelled_entry(term, chunks)
            if found is not None:
                log.info("the entry of %s in %s", term, chunk.source)
                return at, _item_chunk(asked, found, chunks)
        return None

    def _usage_entry(
        self, asked: str, option: str, hits: Sequence[Hit], source_prefix: str | None
    ) -> tuple[int, Chunk] | None:
        """For a defining question on an ``option`` (``_asked_option``) it gives a program
        ("What does python -i do?"), the entry of the option on a page whose usage line of
        that program lists it (``usage_options``: "python [-bBdEhiIOqsSuvVWx?] ..."), and
        the position in ``hits`` of that page's hit, else of the last: compileall's "-i
        list" and the interpreter's "-i" both label an entry -i, whichever pages were
        retrieved, and the program the question names tells which. Of the pages with such a
        line, the one that labels an entry with the option is taken ("python -m timeit [-n
        N]" lists -m, and describes only timeit's options), its entry after that line where
        the page documents several programs (``_entry_after_usage``); None when none does,
        or more than one."""
        programs = programs_before(asked, option)
        if not programs:
            return None
        usages: dict[str, set[str]] = {}  # page: its chunks with such a usage line
        # A usage line holds the word before the option followed by a bracket or an option.
        for text in (f"{programs[-1]} [", f"{programs[-1]} -"):
            for chunk in self._retriever.store.containing(text, source_prefix=source_prefix):
                if any(
                    option in usage_options(line, program)
                    for line in chunk.text.splitlines()
                    for program in programs
                ):
                    usages.setdefault(chunk.source, set()).add(chunk.id)
        entries: dict[str, tuple[Chunk, list[Chunk]]] = {}
        for source in sorted(usages):
            chunks = self._retriever.store.source_chunks(source)
            entry = _entry_after_usage(option, chunks, usages[source])
            if entry is not None:
                entries[source] = entry, chunks
        if len(entries) != 1:
            return None
        ((source, (entry, chunks)),) = entries.items()
        log.info("the entry of %s in %s, whose usage line lists it", option, source)
        at = next((i for i, h in enumerate(hits) if h.chunk.source == source), len(hits) - 1)
        return at, _item_chunk(asked, entry, chunks)

    def _option_elsewhere(
        self, asked: str, option: str, hits: Sequence[Hit], source_prefix: str | None
    ) -> Chunk | None:
        """The entry of the ``option`` a defining question asks about (``_asked_option``:
        "What does python -B do?") on a page of the collection that no hit came from, when
        no retrieved page has it: neither the bi-encoder nor BM25 reads "-B", and the
        question's other words name the program at most. The pages that label an entry with
        the option (as written) are found by their text; one of them is taken when it is the
        only one, or the only one whose title, headings or file name names the most of the
        question's other words ("git tag -a" is git-tag's "-a"). None otherwise: an option
        that many pages list is not guessed at."""
        labels = entry_labels(option)
        retrieved = {h.chunk.source for h in hits}
        about: dict[str, str] = {}  # page: its title, the entry's headings, its file
        for chunk in self._retriever.store.containing(labels[-1], source_prefix=source_prefix):
            if chunk.source not in retrieved and any(
                is_entry_label(label, block)
                for label in labels
                for block in split_blocks(chunk.text)
            ):
                about[chunk.source] = described(chunk)
        words = bm25_terms(asked) - bm25_terms(f"{option} {_OPTION_WORDS}")
        named = {source: len(words & bm25_terms(text)) for source, text in about.items()}
        most = max(named.values(), default=0)
        best = [source for source, n in named.items() if n == most]
        if len(best) != 1 or (len(named) > 1 and most == 0):
            return None
        chunks = self._retriever.store.source_chunks(best[0])
        entry = _labelled_entry(option, chunks)
        if entry is None:
            return None
        log.info("the entry of %s in %s, which no hit came from", option, best[0])
        return _item_chunk(asked, entry, chunks)
