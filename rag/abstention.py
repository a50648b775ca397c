"""When an answer is withheld for what its passages do not say.

Before a prompt: the question names a term the best passages do not mention, an option no
retrieved page has, or uses a word the collection never or barely holds (``unmentioned``).
After a quote is chosen: the quote leaves out a term the question names, or the option it
asks about, or names each term only in passing (``refusal``). Terms a large share of the
collection holds ("Python" in the Python docs) are never a reason, nor are those the question
names only to compare with or as an example ("without installing axios", "like nodemon").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rag.choosing import searchable
from rag.entries import defined_term, entry_labels, long_options, names_option
from rag.grounding import named_in_passing
from rag.retrieval import HybridRetriever
from rag.store.base import bm25_terms
from rag.text import asked_about, named_terms, unmentioned_terms
from rag.types import Chunk, Citation, Hit

log = logging.getLogger(__name__)

# A question's named terms must appear in one of this many best passages. Since results are
# spread over files, the ones further down are often other pages that name a term in passing;
# fewer would abstain on a question whose term only the 3rd passage names.
NAMED_TERM_PASSAGES = 3


def quoted_names(terms: Sequence[str]) -> str:
    """Terms quoted for a message: 'Django', 'AWS'."""
    return ", ".join(f"'{t}'" for t in terms)


class Abstention:
    """The reasons to withhold an answer, from the question, its passages and the
    collection's word counts (``retriever``)."""

    def __init__(self, retriever: HybridRetriever) -> None:
        self._retriever = retriever

    def unmentioned(
        self,
        query: str,
        hits: Sequence[Hit],
        attached: Sequence[Chunk],
        *,
        known: Sequence[str] = (),
    ) -> list[str]:
        """The named terms of ``query`` (but for those it names only to compare with or as
        an example, ``asked_about``) that none of the ``NAMED_TERM_PASSAGES`` best ``hits``
        mentions, then the long options that none of the pages of ``hits`` has
        (``_unheld_options``), then its words that the collection never holds, or holds
        rarely and not in those hits (``HybridRetriever.unmentioned_words``); words of the
        ``attached`` text are known, and so are the ``known`` terms (one whose entry was
        found, ``EntryLookup.entry_first``)."""
        top = hits[:NAMED_TERM_PASSAGES]
        texts = [searchable(h) for h in top]
        query = asked_about(query)
        unmentioned = [t for t in self._unnamed(query, texts) if t not in known]
        unmentioned += [o for o in self._unheld_options(query, hits, attached) if o not in known]
        named = {t.lower() for t in unmentioned}
        # The collection's word counts do not know the attached text's words.
        held = bm25_terms("\n".join(c.text for c in attached)) if attached else set()
        unmentioned += [
            w
            for w in self._retriever.unmentioned_words(query, top)
            if w not in named and not bm25_terms(w) <= held
        ]
        return unmentioned

    def _unheld_options(
        self, query: str, hits: Sequence[Hit], attached: Sequence[Chunk]
    ) -> list[str]:
        """The long options ``query`` names that neither the ``attached`` text nor any page of
        ``hits`` has, as written or as "--[no-]name". A manual's page lists every option of
        its command, and one asked about that none lists is most often one from another
        version ("pg_basebackup --incremental") or another program. Only the hits are read
        while they have them all; then their pages, each once."""
        missing = [
            option
            for option in long_options(query)
            if not any(names_option(searchable(h), option) for h in hits)
            and not any(names_option(c.text, option) for c in attached)
        ]
        own = {c.source for c in attached}
        for source in dict.fromkeys(h.chunk.source for h in hits if h.chunk.source not in own):
            if not missing:
                break
            page = "\n".join(c.text for c in self._retriever.store.source_chunks(source))
            missing = [option for option in missing if not names_option(page, option)]
        return missing

    def refusal(self, asked: str, seen: Sequence[str], cited: Citation) -> str:
        """Why a quote does not answer ``asked``, or "" when it may: none of ``seen`` (the
        quote, the title and file its citation names) mentions a term the question names (a
        quote about something else that names it nearby; ``asked_about``: not one it names to
        compare with or as an example) or the option a defining question
        asks about (``defined_term``), or the quote names every such term only in passing."""
        unnamed = self._unnamed(asked_about(asked), seen)
        option = defined_term(asked)
        if option is not None and option.startswith("-"):
            # An option's entry names it; a quote that never does is about another one ("-o").
            # Short options run together ("-fd") are named by the first one's entry ("-f").
            named = any(names_option(text, form) for text in seen for form in entry_labels(option))
            unnamed += [] if named else [option]
        if unnamed:
            log.info("abstaining: the quote does not mention %s", unnamed)
            return f"The passage that comes closest does not mention {quoted_names(unnamed)}."
        passing = self._in_passing(asked, cited)
        if passing:
            log.info("abstaining: the quote names %s only in passing", passing)
            return f"The passage that comes closest names {quoted_names(passing)} only in passing."
        return ""

    def _unnamed(self, asked: str, texts: Sequence[str]) -> list[str]:
        """The named terms of ``asked`` that none of ``texts`` mentions, but for those that a
        large share of the collection holds (``HybridRetriever.common_terms``): a term the
        collection is about is no reason to abstain. Passages that name "JavaScript" only in
        passing do not answer a question about JavaScript; a Python collection's need not say
        "Python"."""
        # Whether the passages mention a term at all: "URL" is mentioned by a config key's
        # "url", though a quote is chosen by the name as written (``naming_first``).
        missing = unmentioned_terms(asked, texts, acronyms_any_case=True)
        if not missing:
            return []
        common = set(self._retriever.common_terms(missing))
        return [t for t in missing if t not in common]

    def _in_passing(self, asked: str, cited: Citation) -> list[str]:
        """The named terms of ``asked`` when the quote names each of them only in passing
        (``named_in_passing``), else none: one term the quote is about is reason enough to
        answer. Terms the collection is about are left out, as in ``_unnamed``."""
        terms = named_terms(asked)
        if not terms:
            return []
        common = set(self._retriever.common_terms(terms))
        terms = [t for t in terms if t not in common]
        about = "\n".join([*cited.heading_path, cited.title or "", cited.source])
        passing = named_in_passing(asked, terms, cited.quote, about)
        return passing if terms and len(passing) == len(terms) else []
