"""Which passage an extractive answer quotes, and the window of chunks quoted with it.

A question that asks what a named term is or does is answered by that term's entry, when a
retrieved page has one (``rag.lookup``, before the prompt is built); one that asks how to
do something with a code name has the entry first among its passages. Otherwise the
retrieved passages are ranked by their best supporting sentence and their retrieval rank;
those that name the most of the question's named terms come first; the language model
judges the two best when their scores are close; then another section of the chosen page
may be quoted instead when it answers better. A question that names the program or command
of a retrieved manual page ("... with initdb", "git commit") is quoted from that page.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import MutableMapping, Sequence

from rag.context import Passage, Support
from rag.entries import (
    defined_term,
    entry_labels,
    entry_sentence,
    entry_term,
    option_item,
)
from rag.errors import ModelError
from rag.generation import PassageJudge
from rag.grounding import supporting_sentences
from rag.quoting import excerpt, join_chunks, quoted_text
from rag.retrieval import HybridRetriever, neighbours
from rag.text import named_terms, names_term, split_sentences, unmentioned_terms
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)

_RANK_PRIOR = 0.2  # added to a passage's best sentence score, divided by its rank
SHOWN_SENTENCES = 3  # supporting sentences an answer reports, and a quote is centred on
# The best passages that the language model judges, when it can (PassageJudge). Each costs a
# forward pass over its quoted window; judging more gained little for the cost.
_JUDGED_PASSAGES = 2
# A lead in score this large is not judged: the judge's likelihoods (mean log-probabilities,
# added 1 : 1) did not overturn one on the dev sets, and a judgement costs more model time
# than the answer's prompt.
_JUDGE_MARGIN = 0.2
# The chosen page's chunks searched for a section that answers better than the quoted one.
_PAGE_CANDIDATES = 6
# A rival section of the page is judged only when its best sentence scores within this of the
# quoted passage's: further behind, the judge did not carry one past the margin.
_RIVAL_BEHIND = 0.1


def searchable(hit: Hit) -> str:
    """What a passage mentions: its text, title, headings and file path."""
    return "\n".join([hit.chunk.text, described(hit.chunk)])


def described(chunk: Chunk) -> str:
    """What a chunk is about, besides its text: its title, headings and file path."""
    return "\n".join([chunk.title or "", *chunk.heading_path, chunk.source])


def fallback_ranking(
    passages: Sequence[Passage], support: Sequence[Support]
) -> list[tuple[Passage, float]]:
    """The passages that may be quoted, best first, with their scores: the best score of
    their supporting sentences, plus a prior for their retrieval rank (``_RANK_PRIOR / n``).
    Fusion ranked whole chunks on dense and BM25 evidence that one sentence's score does not
    see. Passages without a supporting sentence are left out."""
    best = best_sentence_scores(support)
    scored = [(p, best[p.n] + _RANK_PRIOR / p.n) for p in passages if p.n in best]
    return sorted(scored, key=lambda pair: -pair[1])


def best_sentence_scores(support: Sequence[Support]) -> dict[int, float]:
    """Per passage number, the score of its best sentence in ``support``, best passage
    first when ``support`` is ranked best first."""
    best: dict[int, float] = {}
    for sentence in support:
        best[sentence.n] = max(best.get(sentence.n, float("-inf")), sentence.score)
    return best


def naming_first(
    question: str, ranked: Sequence[tuple[Passage, float]]
) -> list[tuple[Passage, float]]:
    """The ranked passages that leave out the fewest of the question's named terms, in their
    order. A quote should name what the question names: for "how do I compute the SHA-256
    checksum" a checksum passage that never says SHA may score best, while one from hashlib's
    page names sha256. When all leave out as many (the question names nothing, or no passage
    names its terms), all are kept."""
    missing = [len(unmentioned_terms(question, [searchable(p.hit)])) for p, _ in ranked]
    fewest = min(missing, default=0)
    return [pair for pair, miss in zip(ranked, missing, strict=True) if miss == fewest]


# A title's leading section number ("F.2. amcheck") and a manual's section ("git-commit(1)").
_SECTION_NUMBER = re.compile(r"^[A-Z]?\d*(?:\.\d+)*\.\s+")
_MANUAL_SECTION = re.compile(r"\(\d\w*\)$")
_SUBJECT = re.compile(r"[A-Za-z_][\w.-]*|[A-Z][A-Z_]*(?: [A-Z][A-Z_]*)+")
# The heading a manual page (a program's or a command's) has, and other pages do not.
_MANUAL_HEADING = "synopsis"


def page_subject(title: str | None) -> str | None:
    """What a page is the reference of, from its title: one name ("initdb", "pg_dump",
    "git-commit(1)" -> "git-commit", "pathlib — Object-oriented filesystem paths" ->
    "pathlib") or an upper-case command ("CREATE DATABASE"); None for a title in prose
    ("23.2. Creating a Database")."""
    if not title:
        return None
    head = title.split(" — ")[0].strip()
    head = _MANUAL_SECTION.sub("", _SECTION_NUMBER.sub("", head)).strip()
    return head if len(head) >= 3 and _SUBJECT.fullmatch(head) else None


def names_subject(question: str, subject: str) -> bool:
    """Whether ``question`` names a page's subject, as written or with its hyphens read as
    spaces ("git commit" names "git-commit")."""
    return any(names_term(question, form) for form in {subject, subject.replace("-", " ")})


class QuoteChooser:
    """Chooses what an extractive answer quotes, from the passages retrieved for a question
    and their supporting sentences; ``judge``, when there is one, reads the close calls."""

    def __init__(self, retriever: HybridRetriever, judge: PassageJudge | None = None) -> None:
        self._retriever = retriever
        self._judge = judge

    def choose(
        self,
        asked: str,
        passages: Sequence[Passage],
        support: Sequence[Support],
        *,
        attached: Sequence[Chunk] = (),
        timings: MutableMapping[str, float] | None = None,
    ) -> tuple[Passage, list[Chunk]]:
        """The passage to quote for the question ``asked`` and its window (the chunks around
        it in its section), when no entry answers it (``entry_first``): of the passages that
        name the most of the question's named terms, the best by their scores. The judge adds
        its question likelihood to the scores of the best ``_JUDGED_PASSAGES``, read with
        their windows as they would be quoted, unless the best leads the next by more than
        ``_JUDGE_MARGIN``. Then ``_on_page`` may quote another section of the chosen
        passage's page. ``attached``: the chunks of text attached to the question, whose
        passages take their windows from there; ``timings['judge_ms']`` adds up the judge's
        time."""
        spent = {} if timings is None else timings
        ranked = self._manual_first(asked, naming_first(asked, fallback_ranking(passages, support)))
        ranked = ranked[:_JUDGED_PASSAGES]
        if not ranked:  # no sentence long enough to rank: the best retrieved passage
            first = passages[0]
            return first, self.window(first.hit.chunk, attached)
        if self._judge is None or len(ranked) == 1 or ranked[0][1] - ranked[1][1] > _JUDGE_MARGIN:
            best = ranked[0][0]
            window = self.window(best.hit.chunk, attached)
            return self._on_page(asked, best, window, attached=attached, timings=spent)
        windows = [self.window(p.hit.chunk, attached) for p, _ in ranked]
        likelihoods = self._judged(asked, [p for p, _ in ranked], windows, spent)
        if likelihoods is None:  # the scores alone still choose a good passage
            return ranked[0][0], windows[0]
        totals = [score + likely for (_, score), likely in zip(ranked, likelihoods, strict=True)]
        chosen = max(range(len(ranked)), key=totals.__getitem__)
        return self._on_page(
            asked,
            ranked[chosen][0],
            windows[chosen],
            attached=attached,
            timings=spent,
            judged=likelihoods[chosen],
        )

    def _manual_first(
        self, asked: str, ranked: Sequence[tuple[Passage, float]]
    ) -> list[tuple[Passage, float]]:
        """The ranked passages from manual pages whose subject ``asked`` names, in their
        order, when there are any; else all. Asked how to do something with initdb,
        initdb's page answers, not the chapter on checksums that mentions it in passing; a
        manual lists every option of its program. Subjects that a large share of the
        collection holds (``HybridRetriever.common_terms``: "git" in Git's manual) say
        nothing about which page is meant, and a page is a manual when it has a Synopsis."""
        named: list[tuple[tuple[Passage, float], str]] = []
        for pair in ranked:
            subject = page_subject(pair[0].hit.chunk.title)
            if subject is not None and names_subject(asked, subject):
                named.append((pair, subject))
        if not named:
            return list(ranked)
        common = {t.lower() for t in self._retriever.common_terms([s for _, s in named])}
        manuals: dict[str, bool] = {}
        kept = []
        for pair, subject in named:
            source = pair[0].hit.chunk.source
            if subject.lower() in common:
                continue
            if source not in manuals:
                manuals[source] = any(
                    heading.lower() == _MANUAL_HEADING
                    for c in self._retriever.store.source_chunks(source)
                    for heading in c.heading_path
                )
            if manuals[source]:
                kept.append(pair)
        return kept or list(ranked)

    def best_sentences(
        self, asked: str, passage: Passage, window: Sequence[Chunk]
    ) -> tuple[list[str], str | None]:
        """The sentences of the quoted text that best answer the question, best first: the
        quote is centred on sentence-level evidence, not on the passage's score alone. When
        the text holds the entry of the term the question asks about (``entry_term``), its
        first sentence comes first whatever its rank, and its label is returned too; asked
        about an option with a value ("-X importtime", ``option_item``), the sentence that
        names the two comes first instead. Asked what a term is, with no entry to quote, the
        first sentence that names the term comes first: a section introduces what it is about
        ("The pg_stat_activity view will have one row per server process"), and short
        sentences under a heading that names the term (a view's columns) can outrank it.
        Either way, a quote around that sentence that would leave out a named term of the
        question which the text names elsewhere is centred on the best sentence that names it
        instead (``_naming``)."""
        text = quoted_text(passage, window)
        whole = Passage(passage.n, passage.hit, text)
        # Every sentence ranked (grounding caps how many it embeds): one further down may be
        # the one that names what the question names.
        ranked = supporting_sentences(asked, [whole], self._retriever.embedder, top=10_000)
        best = [s.text for s in ranked[:SHOWN_SENTENCES]]
        term = entry_term(asked)
        labels = entry_labels(term) if term else []
        entry = next(filter(None, (entry_sentence(t, text) for t in labels)), None)
        label: str | None = None
        first: str | None = None
        # "-X importtime" is one item of -X's entry, perhaps far down it: the item answers.
        item = option_item(asked, text)
        if entry is not None:
            label, first = entry
            first = item or first
        elif item is not None:
            first = item
        else:
            if defined := defined_term(asked):
                first = next((s for s in split_sentences(text) if names_term(s, defined)), None)
            centre = best if first is None else [first]
            about = described(passage.hit.chunk)
            named = self._naming(asked, text, about, centre, [s.text for s in ranked])
            first = named or first
        if first is None:
            return best, None
        return [first, *(b for b in best if b != first)], label

    def _naming(
        self, asked: str, text: str, about: str, best: Sequence[str], ranked: Sequence[str]
    ) -> str | None:
        """The best-ranked sentence of ``text`` that names the question's named terms that a
        quote around ``best`` would leave out while ``text`` names them (collection-wide terms
        aside, and those that ``about``, the quote's title, headings and file, names); None
        when the quote leaves out none, or no sentence names them all. The sentence that
        ranks best, or first names what is asked about, may stand too far from "DO NOTHING"
        for a quote of it to reach there, and a quote that leaves out what was asked about
        is refused."""
        terms = [t for t in named_terms(asked) if names_term(text, t)]
        if not terms:
            return None
        shown = f"{excerpt(text, best).plain}\n{about}"
        missing = [t for t in terms if not names_term(shown, t)]
        common = set(self._retriever.common_terms(missing)) if missing else set()
        missing = [t for t in missing if t not in common]
        if not missing:
            return None
        return next((s for s in ranked if all(names_term(s, t) for t in missing)), None)

    def window(self, chunk: Chunk, attached: Sequence[Chunk] = ()) -> list[Chunk]:
        """The chunk's window: from the ``attached`` text when it came from there, else from
        the collection (``HybridRetriever.around``)."""
        if any(c.id == chunk.id for c in attached):
            return neighbours([c for c in attached if c.source == chunk.source], chunk)
        return self._retriever.around(chunk)

    def _on_page(
        self,
        asked: str,
        chosen: Passage,
        window: list[Chunk],
        *,
        attached: Sequence[Chunk],
        timings: MutableMapping[str, float],
        judged: float | None = None,
    ) -> tuple[Passage, list[Chunk]]:
        """The chosen passage, or another section of its page that answers better: a
        reference page's answer is often an entry further down (``insort`` below
        ``bisect_left``) that the search ranked under other pages' chunks. The page's best
        ``_PAGE_CANDIDATES`` chunks outside the window are ranked by their sentences with the
        chosen one; the best, unless its sentence trails by ``_RIVAL_BEHIND`` or more, is
        judged beside it and quoted instead when its sentence score plus the judge's
        likelihood leads by more than ``_JUDGE_MARGIN`` (``judged``: the chosen one's
        likelihood, when the judge has read it already). The citation stays on the page."""
        source = chosen.hit.chunk.source
        if self._judge is None or any(c.id == chosen.hit.chunk.id for c in attached):
            return chosen, window
        shown = {c.id for c in window} | {chosen.hit.chunk.id}
        others = [
            h
            for h in self._retriever.search(asked, k=_PAGE_CANDIDATES, source_prefix=source)
            if h.chunk.source == source and h.chunk.id not in shown
        ]
        if not others:
            return chosen, window
        candidates = [Passage(1, chosen.hit, chosen.hit.chunk.text)] + [
            Passage(i + 2, h, h.chunk.text) for i, h in enumerate(others)
        ]
        # Every sentence ranked (grounding caps how many it embeds), so each chunk has its best.
        ranked = supporting_sentences(asked, candidates, self._retriever.embedder, top=10_000)
        best = best_sentence_scores(ranked)
        rivals = [n for n in best if n != 1]
        if 1 not in best or not rivals or best[rivals[0]] - best[1] <= -_RIVAL_BEHIND:
            return chosen, window
        first = candidates[rivals[0] - 1]
        rival = Passage(chosen.n, first.hit, first.text)  # cited as the passage it replaces
        rival_window = self.window(rival.hit.chunk, attached)
        if judged is None:
            read = self._judged(asked, [chosen, rival], [window, rival_window], timings)
        else:
            read = self._judged(asked, [rival], [rival_window], timings)
            read = None if read is None else [judged, *read]
        if read is None:
            return chosen, window
        lead = best[rivals[0]] + read[1] - best[1] - read[0]
        if lead > _JUDGE_MARGIN:
            log.info("quoting another section of %s: it leads by %.2f", source, lead)
            return rival, rival_window
        return chosen, window

    def _judged(
        self,
        asked: str,
        passages: Sequence[Passage],
        windows: Sequence[list[Chunk]],
        timings: MutableMapping[str, float],
    ) -> list[float] | None:
        """The judge's likelihood of the question after each passage read with its window
        and headings, as the quote shows it ("Removed features" under "Skylark 4.2 Release
        Notes" is what makes a passage answer "What was removed in 4.2?"); None when the
        judge fails."""
        assert self._judge is not None
        started = time.perf_counter()
        read = [
            "\n".join([p.hit.chunk.context, join_chunks(w)]).strip()
            for p, w in zip(passages, windows, strict=True)
        ]
        try:
            likelihoods = self._judge.question_likelihoods(asked, read)
        except ModelError as exc:
            log.warning("the fallback judge failed, quoting by the scores alone: %s", exc)
            return None
        spent = (time.perf_counter() - started) * 1000
        timings["judge_ms"] = timings.get("judge_ms", 0.0) + spent
        return likelihoods
