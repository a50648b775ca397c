"""ask(): retrieve -> numbered context -> generate with [n] citations, or abstain.

An answer is one of three things: an abstention (nothing retrieved is close enough, or the
question names something, or uses a word, that the closest passages do not mention); the
model's answer, whose citations point only at passages it was shown (the best one when it
cites none); or, when the model's answer fails the grounding check and the context has
supporting sentences, a passage quoted as written with the chunks around it, cited as one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from rag.attachments import Attachment, attached_chunks, attached_hits, merge_hits
from rag.chunking import make_chunker
from rag.config import Settings
from rag.context import Passage, Support, build_passages, evidence_passages, render_context
from rag.errors import InvalidInputError, ModelError
from rag.generation import Generator, Message, PassageJudge
from rag.grounding import ClaimCheck, check_claims, supporting_sentences
from rag.quoting import excerpt
from rag.retrieval import HybridRetriever, neighbours
from rag.store.base import bm25_terms
from rag.text import unmentioned_terms
from rag.types import Answer, Chunk, Citation, Hit, SupportingSentence

log = logging.getLogger(__name__)

ABSTAIN_MESSAGE = "I could not find an answer to that in your documents."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages you are given. "
    "Cite every passage you use with its number in square brackets, like [1]. "
    "If the passages do not contain the answer, say that you do not know. "
    "Be brief and do not invent facts."
)
CLIENT_INSTRUCTIONS_HEADER = (
    "The user's application adds these instructions; follow them only where they agree "
    "with the rules above:"
)

_MARKER = re.compile(r"\[(\d{1,3})\]")
_PROMPT_OVERHEAD = 64  # chat template and framing tokens beyond the counted text
_MIN_CONTEXT = 64
_SUPPORT_RANKED = 16  # candidate sentences for a sentence-level context
_SUPPORT_SHOWN = 3  # supporting sentences reported with an answer
_RANK_PRIOR = 0.2  # added to a passage's best sentence score, divided by its rank
# The fallback's best passages that the language model judges, when it can (PassageJudge).
# Each costs a forward pass over its quoted window; judging more gained little for the cost.
_JUDGED_PASSAGES = 2
# A lead in score this large is not judged: the judge's likelihoods (mean log-probabilities,
# added 1 : 1) did not overturn one on the dev sets, and a judgement costs more model time
# than the answer's prompt.
_JUDGE_MARGIN = 0.2
# A question's named terms must appear in one of this many best passages. Since results are
# spread over files, the ones further down are often other pages that name a term in passing;
# fewer would abstain on a question whose term only the 3rd passage names.
_NAMED_TERM_PASSAGES = 3
# The chosen page's chunks searched for a section that answers better than the quoted one.
_PAGE_CANDIDATES = 6
# A rival section of the page is judged only when its best sentence scores within this of the
# quoted passage's: further behind, the judge did not carry one past the margin.
_RIVAL_BEHIND = 0.1


@dataclass
class PreparedAnswer:
    """Everything decided before generation: the passages, the prompt, or an abstention."""

    question: str
    hits: list[Hit]
    passages: list[Passage]
    messages: list[Message]
    abstained: bool
    timings: dict[str, float] = field(default_factory=dict)
    support: list[Support] = field(default_factory=list)
    unmentioned: list[str] = field(default_factory=list)
    """Named terms of the question that no retrieved passage mentions (a reason to abstain)."""
    query: str = ""
    """What was searched: the question, or a follow-up made self-contained (empty when
    abstaining). The judge of the fallback reads it, as retrieval did."""
    attached: list[Chunk] = field(default_factory=list)
    """The chunks of text attached to the question (rag.attachments), in reading order."""

    @property
    def abstain_message(self) -> str:
        if not self.unmentioned:
            return ABSTAIN_MESSAGE
        # "Closest": a term may still occur elsewhere in the collection in passing, but no
        # passage that could answer the question mentions it.
        names = _names(self.unmentioned)
        return f"{ABSTAIN_MESSAGE} The passages closest to the question do not mention {names}."


def _names(terms: Sequence[str]) -> str:
    """Terms quoted for a message: 'Django', 'AWS'."""
    return ", ".join(f"'{t}'" for t in terms)


def build_messages(
    question: str,
    passages: Sequence[Passage],
    *,
    earlier: Sequence[str] = (),
    instructions: str | None = None,
) -> list[Message]:
    """The prompt: our rules, then the numbered context and the question.

    ``earlier`` are the conversation's previous questions, so a follow-up's "it" can be read;
    ``instructions`` (a chat client's system prompt) come after our rules, never instead.
    """
    system = SYSTEM_PROMPT
    if instructions:
        system += f"\n\n{CLIENT_INSTRUCTIONS_HEADER}\n{instructions}"
    asked = "".join(f"Earlier question: {q}\n" for q in earlier)
    user = (
        f"Context:\n{render_context(passages)}\n\n"
        f"{asked}Question: {question}\n"
        "Answer from the context above, citing passages like [1]."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cite(
    answer: str, passages: Sequence[Passage], support: Mapping[int, Sequence[str]] | None = None
) -> tuple[str, list[Citation]]:
    """Citations for the passages the answer refers to; markers to no passage are removed.
    ``support``: each passage's sentences that support the answer (``check_claims``), which
    its citation carries.

    A small model often forgets the markers. Then the first passage, the best retrieved, is
    cited at the end, so every answer points at a checkable source.
    """
    by_n = {p.n: p for p in passages}
    cited: list[int] = []

    def keep(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in by_n:
            return ""
        if n not in cited:
            cited.append(n)
        return match.group(0)

    text = _MARKER.sub(keep, answer).strip()
    if not cited and passages:
        cited.append(passages[0].n)
        text = f"{text} [{passages[0].n}]".strip()
    found = support or {}
    return text, [
        replace(citation(by_n[n]), supporting=tuple(found.get(n, ()))) for n in sorted(cited)
    ]


def citation(passage: Passage) -> Citation:
    chunk = passage.hit.chunk
    return Citation(
        n=passage.n,
        source=chunk.source,
        title=chunk.title,
        chunk_id=chunk.id,
        score=passage.hit.score,
        quote=chunk.text,
        heading_path=chunk.heading_path,
        page=chunk.page,
    )


def _searchable(hit: Hit) -> str:
    """What a passage mentions: its text, title, headings and file path."""
    chunk = hit.chunk
    return "\n".join([chunk.text, chunk.title or "", *chunk.heading_path, chunk.source])


def quote(
    passage: Passage, window: Sequence[Chunk] = (), best: Sequence[str] = ()
) -> tuple[str, Citation, list[str]]:
    """The extractive answer: the passage's heading path in italics, then its text around the
    first of the ``best`` sentences found in it (``excerpt``: that sentence in bold, tables
    as rows under their header), with the chunks just before and after it in its section
    (``window``, in reading order, holding the passage's chunk). Also its citation, whose
    quote is what was quoted, and the sentences set in bold.

    A chunk alone often leaves out what its neighbours say: the name a definition belongs to,
    the example after it. A window without the passage's own chunk is ignored."""
    chunk = passage.hit.chunk
    quoted = excerpt(quoted_text(passage, window), best)
    cited = replace(citation(passage), quote=quoted.plain, supporting=tuple(quoted.supporting))
    heading = " › ".join(chunk.heading_path)
    body = f"*{heading}*\n\n{quoted.text}" if heading else quoted.text
    return f"{body} [{passage.n}]", cited, quoted.supporting


def quoted_text(passage: Passage, window: Sequence[Chunk] = ()) -> str:
    """What a quote of the passage reads: its window joined, or its chunk alone when the
    window does not hold it."""
    chunk = passage.hit.chunk
    if window and any(c.id == chunk.id for c in window):
        return join_chunks(window)
    return chunk.text.strip()


def join_chunks(chunks: Sequence[Chunk]) -> str:
    """Neighbouring chunks of one file as one text: overlaps cut, a paragraph break between
    chunks that a blank line or more separated (offsets two or more characters apart)."""
    text = ""
    end = -1
    for chunk in chunks:
        body = chunk.text
        if text and chunk.start < end:  # overlapping chunks: skip what was already said
            body = body[end - chunk.start :]
            gap = ""
        else:
            gap = "\n\n" if chunk.start - end >= 2 else " "
        text = f"{text}{gap}{body}" if text else body
        end = max(end, chunk.end)
    return text.strip()


def fallback_ranking(
    passages: Sequence[Passage], support: Sequence[Support]
) -> list[tuple[Passage, float]]:
    """The passages the extractive fallback may quote, best first, with their scores: the best
    score of their supporting sentences, plus a prior for their retrieval rank
    (``_RANK_PRIOR / n``). Fusion ranked whole chunks on dense and BM25 evidence that one
    sentence's score does not see. Passages without a supporting sentence are left out."""
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
    missing = [len(unmentioned_terms(question, [_searchable(p.hit)])) for p, _ in ranked]
    fewest = min(missing, default=0)
    return [pair for pair, miss in zip(ranked, missing, strict=True) if miss == fewest]


AnswerObserver = Callable[[PreparedAnswer, Answer, bool], None]
"""Told of each answer made: what was prepared, the answer, and whether the answerer quotes
by design (RAG_ANSWER_MODE) rather than as a fallback."""


class Answerer:
    def __init__(
        self,
        retriever: HybridRetriever,
        generator: Generator,
        settings: Settings,
        judge: PassageJudge | None = None,
        observe: AnswerObserver | None = None,
    ) -> None:
        """``observe`` is called with every answer ``finish`` makes (the service records
        what became of each question with it)."""
        self._retriever = retriever
        self._generator = generator
        self._settings = settings
        self._judge = judge
        self._observe = observe

    @property
    def retriever(self) -> HybridRetriever:
        return self._retriever

    @property
    def generator(self) -> Generator:
        return self._generator

    @property
    def quoting(self) -> bool:
        """Whether answers are quoted from the passages without generating
        (RAG_ANSWER_MODE: 'quote', or 'auto' with the local model)."""
        mode = self._settings.answer_mode
        return mode == "quote" or (mode == "auto" and self._settings.generator == "local")

    def context_budget(self, question: str) -> int:
        """The configured budget, shrunk so prompt, question and answer fit the window."""
        room = (
            self._generator.context_window
            - self._settings.llm_max_new_tokens
            - _PROMPT_OVERHEAD
            - self._generator.count_tokens(SYSTEM_PROMPT)
            - self._generator.count_tokens(question)
        )
        if room < _MIN_CONTEXT:
            raise InvalidInputError(
                "the question is too long for the language model's context window",
                field="question",
            )
        return min(self._settings.llm_context_tokens, room)

    def prepare(
        self,
        question: str,
        *,
        source_prefix: str | None = None,
        retrieval_query: str | None = None,
        earlier: Sequence[str] = (),
        instructions: str | None = None,
        attached: Sequence[Attachment] = (),
    ) -> PreparedAnswer:
        """Retrieve and build the prompt, or decide to abstain.

        ``retrieval_query`` searches instead of the question when given (a follow-up made
        self-contained); the model is still shown ``question``, after the ``earlier`` ones.
        ``attached`` texts are searched beside the collection (whatever ``source_prefix``)
        and cited by their names.
        """
        started = time.perf_counter()
        query = retrieval_query or question
        hits = self._retriever.search(query, source_prefix=source_prefix)
        chunks: list[Chunk] = []
        if attached:
            embedder = self._retriever.embedder
            chunks = attached_chunks(attached, make_chunker(self._settings, embedder))
            found = attached_hits(query, chunks, embedder)
            hits = merge_hits(hits, found, self._settings.top_k)
        question = question.strip()
        timings = {"retrieve_ms": (time.perf_counter() - started) * 1000}
        best = max((h.similarity for h in hits), default=-1.0)
        if best < self._settings.min_similarity:
            log.info("abstaining: best similarity %.3f < %.3f", best, self._settings.min_similarity)
            return PreparedAnswer(question, hits, [], [], True, timings, attached=chunks)
        if self._settings.abstain_on_unmentioned:
            top = hits[:_NAMED_TERM_PASSAGES]
            unmentioned = self._unnamed(query, [_searchable(h) for h in top])
            named = {t.lower() for t in unmentioned}
            # The collection's word counts do not know the attached text's words.
            held = bm25_terms("\n".join(c.text for c in chunks)) if chunks else set()
            unmentioned += [
                w
                for w in self._retriever.unmentioned_words(query, top)
                if w not in named and not bm25_terms(w) <= held
            ]
            if unmentioned:
                log.info("abstaining: the closest passages do not mention %s", unmentioned)
                return PreparedAnswer(
                    question, hits, [], [], True, timings, unmentioned=unmentioned, attached=chunks
                )
        embedder = self._retriever.embedder
        messages: list[Message] = []
        if self.quoting:  # no prompt: every hit may be quoted, chosen by its sentences
            passages = [Passage(i + 1, hit, hit.chunk.text) for i, hit in enumerate(hits)]
            support = supporting_sentences(query, passages, embedder, top=_SUPPORT_RANKED)
        else:
            framing = "\n".join([*earlier, instructions or "", question])
            budget = self.context_budget(framing)
            count = self._generator.count_tokens
            if self._settings.llm_context == "passages":
                passages = build_passages(hits, count_tokens=count, budget=budget)
                support = supporting_sentences(query, passages, embedder, top=_SUPPORT_SHOWN)
                shown = passages
            else:
                # Every hit can be cited; the model reads only the sentences that bear on the
                # question, so the prompt stays small and a CPU reads it quickly.
                passages = [Passage(i + 1, hit, hit.chunk.text) for i, hit in enumerate(hits)]
                support = supporting_sentences(query, passages, embedder, top=_SUPPORT_RANKED)
                shown = evidence_passages(passages, support, count_tokens=count, budget=budget)
                if not shown:  # no sentence long enough to rank (tables, code): whole passages
                    shown = build_passages(hits, count_tokens=count, budget=budget)
            messages = build_messages(question, shown, earlier=earlier, instructions=instructions)
        timings["context_ms"] = (time.perf_counter() - started) * 1000 - timings["retrieve_ms"]
        return PreparedAnswer(
            question,
            hits,
            passages,
            messages,
            False,
            timings,
            support,
            query=query.strip(),
            attached=chunks,
        )

    def stream(
        self, prepared: PreparedAnswer, *, max_new_tokens: int | None = None
    ) -> Iterator[str]:
        """The answer's text as the model produces it (the abstention message when abstaining,
        nothing when quoting).

        ``max_new_tokens`` can only lower the configured limit, which the context budget
        was computed for.
        """
        if prepared.abstained:
            yield prepared.abstain_message
            return
        if self.quoting:
            return  # the answer is the quote that ``finish`` makes
        limit = self._settings.llm_max_new_tokens
        if max_new_tokens is not None:
            limit = max(1, min(limit, max_new_tokens))
        yield from self._generator.stream(prepared.messages, max_new_tokens=limit)

    def finish(self, prepared: PreparedAnswer, text: str) -> Answer:
        """The answer for the model's ``text``: checked against the passages, then cited as
        it is or replaced by a quote (``extractive``)."""
        answer = self._finish(prepared, text)
        if self._observe is not None:
            self._observe(prepared, answer, self.quoting)
        return answer

    def _finish(self, prepared: PreparedAnswer, text: str) -> Answer:
        if prepared.abstained:
            return Answer(prepared.abstain_message, [], True, prepared.timings)
        supporting = [SupportingSentence(s.n, s.text) for s in prepared.support[:_SUPPORT_SHOWN]]
        if self.quoting:  # the best passage is quoted, even when no sentence of it ranks
            extractive = bool(prepared.passages)
        else:
            check = (
                check_claims(text, prepared.passages, question=prepared.question)
                if text.strip()
                else ClaimCheck([""], {})
            )
            claims = check.unsupported
            # The fallback needs a supporting sentence to choose the passage it quotes.
            extractive = bool(claims) and bool(prepared.support)
        if extractive:
            if not self.quoting:
                log.info("answer failed the grounding check; quoting the sources")
            passage, window = self._fallback(prepared)
            # Cited as the quoted passage, not by markers found in the quote: documents hold
            # brackets of their own (argv[1], a[0]) that must stay as written.
            answer, cited, bold = quote(
                passage, window, self._best_sentences(prepared, passage, window)
            )
            # What the reader sees: the quote, and the file its citation names.
            seen = [answer, cited.title, cited.source]
            asked = prepared.query or prepared.question
            unnamed = self._unnamed(asked, seen) if self._settings.abstain_on_unmentioned else []
            if unnamed:  # a quote about something else that names the asked term nearby
                log.info("abstaining: the quote does not mention %s", unnamed)
                message = f"{ABSTAIN_MESSAGE} The passage that comes closest does not mention "
                return Answer(f"{message}{_names(unnamed)}.", [], True, prepared.timings)
            citations = [cited]
            supporting = [SupportingSentence(passage.n, b) for b in bold] + [
                s for s in supporting if s.n == passage.n and s.text not in bold
            ]
        else:
            answer, citations = cite(text, prepared.passages, check.support)
        return Answer(answer, citations, False, prepared.timings, supporting, extractive)

    def _unnamed(self, asked: str, texts: Sequence[str]) -> list[str]:
        """The named terms of ``asked`` that none of ``texts`` mentions, but for those that a
        large share of the collection holds (``HybridRetriever.common_terms``): a term the
        collection is about is no reason to abstain. Passages that name "JavaScript" only in
        passing do not answer a question about JavaScript; a Python collection's need not say
        "Python"."""
        missing = unmentioned_terms(asked, texts)
        if not missing:
            return []
        common = set(self._retriever.common_terms(missing))
        return [t for t in missing if t not in common]

    def _best_sentences(
        self, prepared: PreparedAnswer, passage: Passage, window: Sequence[Chunk]
    ) -> list[str]:
        """The sentences of the quoted text that best answer the question, best first: the
        quote is centred on sentence-level evidence, not on the passage's score alone."""
        whole = Passage(passage.n, passage.hit, quoted_text(passage, window))
        asked = prepared.query or prepared.question
        ranked = supporting_sentences(asked, [whole], self._retriever.embedder, top=_SUPPORT_SHOWN)
        return [s.text for s in ranked]

    def _fallback(self, prepared: PreparedAnswer) -> tuple[Passage, list[Chunk]]:
        """The passage to quote and its window (the chunks around it in its section): of the
        passages that name the most of the question's named terms, the best by their scores.
        The ``judge``, when there is one, adds its question likelihood to the scores of the
        best ``_JUDGED_PASSAGES``, read with their windows, as they would be quoted; unless
        the best leads the next by more than ``_JUDGE_MARGIN``. Then ``_on_page`` may quote
        another section of the chosen passage's page."""
        asked = prepared.query or prepared.question
        ranking = fallback_ranking(prepared.passages, prepared.support)
        ranked = naming_first(asked, ranking)[:_JUDGED_PASSAGES]
        if not ranked:  # no sentence long enough to rank: the best retrieved passage
            first = prepared.passages[0]
            return first, self._around(prepared, first.hit.chunk)
        if self._judge is None or len(ranked) == 1 or ranked[0][1] - ranked[1][1] > _JUDGE_MARGIN:
            best = ranked[0][0]
            return self._on_page(prepared, best, self._around(prepared, best.hit.chunk))
        windows = [self._around(prepared, p.hit.chunk) for p, _ in ranked]
        likelihoods = self._judged(self._judge, prepared, [p for p, _ in ranked], windows)
        if likelihoods is None:  # the scores alone still choose a good passage
            return ranked[0][0], windows[0]
        totals = [score + likely for (_, score), likely in zip(ranked, likelihoods, strict=True)]
        chosen = max(range(len(ranked)), key=totals.__getitem__)
        return self._on_page(prepared, ranked[chosen][0], windows[chosen], likelihoods[chosen])

    def _on_page(
        self,
        prepared: PreparedAnswer,
        chosen: Passage,
        window: list[Chunk],
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
        judge = self._judge
        if judge is None or any(c.id == chosen.hit.chunk.id for c in prepared.attached):
            return chosen, window
        asked = prepared.query or prepared.question
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
        rival_window = self._around(prepared, rival.hit.chunk)
        if judged is None:
            read = self._judged(judge, prepared, [chosen, rival], [window, rival_window])
        else:
            read = self._judged(judge, prepared, [rival], [rival_window])
            read = None if read is None else [judged, *read]
        if read is None:
            return chosen, window
        lead = best[rivals[0]] + read[1] - best[1] - read[0]
        if lead > _JUDGE_MARGIN:
            log.info("quoting another section of %s: it leads by %.2f", source, lead)
            return rival, rival_window
        return chosen, window

    @staticmethod
    def _judged(
        judge: PassageJudge,
        prepared: PreparedAnswer,
        passages: Sequence[Passage],
        windows: Sequence[list[Chunk]],
    ) -> list[float] | None:
        """The judge's likelihood of the question after each passage read with its window
        and headings, as the quote shows it ("Removed features" under "Skylark 4.2 Release
        Notes" is what makes a passage answer "What was removed in 4.2?"); None when the
        judge fails."""
        started = time.perf_counter()
        read = [
            "\n".join([p.hit.chunk.context, join_chunks(w)]).strip()
            for p, w in zip(passages, windows, strict=True)
        ]
        try:
            likelihoods = judge.question_likelihoods(prepared.query or prepared.question, read)
        except ModelError as exc:
            log.warning("the fallback judge failed, quoting by the scores alone: %s", exc)
            return None
        spent = (time.perf_counter() - started) * 1000
        prepared.timings["judge_ms"] = prepared.timings.get("judge_ms", 0.0) + spent
        return likelihoods

    def _around(self, prepared: PreparedAnswer, chunk: Chunk) -> list[Chunk]:
        """The chunk's window: from the attached text when it came from there, else from the
        collection (``HybridRetriever.around``)."""
        if any(c.id == chunk.id for c in prepared.attached):
            return neighbours([c for c in prepared.attached if c.source == chunk.source], chunk)
        return self._retriever.around(chunk)

    def ask(self, question: str, *, source_prefix: str | None = None) -> Answer:
        started = time.perf_counter()
        prepared = self.prepare(question, source_prefix=source_prefix)
        generate_started = time.perf_counter()
        text = "".join(self.stream(prepared))
        result = self.finish(prepared, text)
        if not prepared.abstained:
            result.timings["generate_ms"] = (time.perf_counter() - generate_started) * 1000
        result.timings["total_ms"] = (time.perf_counter() - started) * 1000
        return result
