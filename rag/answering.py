"""ask(): retrieve -> numbered context -> generate with [n] citations, or abstain.

An answer is one of three things: an abstention (nothing retrieved is close enough, or the
question names something, or uses a word, that the closest passages do not mention); the
model's answer, whose citations point only at passages it was shown (the best one when it
cites none); or, when the model's answer fails the grounding check and the context has
supporting sentences, a passage quoted as written with the chunks around it, cited as one
(which passage: ``rag.choosing``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from rag.abstention import Abstention, quoted_names
from rag.attachments import Attachment, attached_chunks, attached_hits, merge_hits
from rag.choosing import SHOWN_SENTENCES, QuoteChooser
from rag.chunking import below_site_headings, make_chunker
from rag.config import Settings
from rag.context import Passage, Support, build_passages, evidence_passages, render_context
from rag.entries import defined_term, entry_term
from rag.errors import InvalidInputError
from rag.generation import Generator, Message, PassageJudge
from rag.grounding import ClaimCheck, check_claims, supporting_sentences
from rag.lookup import EntryLookup
from rag.quoting import excerpt, quoted_text
from rag.retrieval import HybridRetriever
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
    entry: Chunk | None = None
    """The entry of the term the question asks about (``EntryLookup.entry_first``): the
    first hit's chunk, and what a quote quotes."""

    @property
    def abstain_message(self) -> str:
        if not self.unmentioned:
            return ABSTAIN_MESSAGE
        # "Closest": a term may still occur elsewhere in the collection in passing, but no
        # passage that could answer the question mentions it.
        names = quoted_names(self.unmentioned)
        return f"{ABSTAIN_MESSAGE} The passages closest to the question do not mention {names}."


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


def quoted_where(title: str, heading_path: Sequence[str]) -> list[str]:
    """Where a quote stands, as its heading line shows it: the heading path, after the
    document's title when neither begins the other. A manual page's sections ("OPTIONS",
    "EXAMPLES") say nothing of which page they belong to; a page whose first heading is its
    title ("os — Miscellaneous ...", titled "os — Miscellaneous ... — Python documentation")
    says it once; one whose title begins with a later heading, from that heading on
    (``below_site_headings``). No heading path, no heading line."""
    headings = [" ".join(h.split()) for h in heading_path if h.strip()]
    own = below_site_headings(title, headings)
    if own is not None:
        return own
    title = " ".join(title.split())
    if not headings or not title or title.startswith(headings[0]) or headings[0].startswith(title):
        return headings
    return [title, *headings]


def quote(
    passage: Passage,
    window: Sequence[Chunk] = (),
    best: Sequence[str] = (),
    *,
    entry_label: str | None = None,
) -> tuple[str, Citation, list[str]]:
    """The extractive answer: the passage's heading path in italics, ending with the label of
    the entry the quote opens inside (``Excerpt.entry``; the label alone on a page without
    headings), then its text around the
    first of the ``best`` sentences found in it (``excerpt``: that sentence in bold, tables
    as rows under their header), with the chunks just before and after it in its section
    (``window``, in reading order, holding the passage's chunk). Also its citation, whose
    quote is what was quoted, and the sentences set in bold.

    A chunk alone often leaves out what its neighbours say: the name a definition belongs to,
    the example after it. A window without the passage's own chunk is ignored."""
    chunk = passage.hit.chunk
    quoted = excerpt(quoted_text(passage, window), best, entry_label=entry_label)
    cited = replace(citation(passage), quote=quoted.plain, supporting=tuple(quoted.supporting))
    where = quoted_where(chunk.title, chunk.heading_path)
    heading = " › ".join([*where, quoted.entry] if quoted.entry else where)
    body = f"*{heading}*\n\n{quoted.text}" if heading else quoted.text
    return f"{body} [{passage.n}]", cited, quoted.supporting


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
        self._chooser = QuoteChooser(retriever, judge)
        self._lookup = EntryLookup(retriever)
        self._abstention = Abstention(retriever)
        self._observe = observe

    @property
    def retriever(self) -> HybridRetriever:
        return self._retriever

    @property
    def generator(self) -> Generator:
        return self._generator

    def warm_up(self) -> None:
        """Load every model an answer needs (the retriever's, the generator, which is also
        the local judge) now rather than on the first question."""
        self._retriever.warm_up()
        self._generator.warm_up()

    @property
    def quoting(self) -> bool:
        """Whether answers are quoted from the passages without generating
        (``Settings.quotes_answers``)."""
        return self._settings.quotes_answers

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
        return min(self._settings.context_tokens, room)

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
        # Asked what a term is or does, or how to use a code name, the prompt starts from its
        # entry, and so does a defining question's quote; a retrieved page that has one holds
        # what was asked about.
        retrieved = hits
        hits, entry = self._lookup.entry_first(query, hits, chunks, source_prefix=source_prefix)
        if self._settings.abstain_on_unmentioned:
            known = [entry_term(query) or ""] if entry is not None else []
            unmentioned = self._abstention.unmentioned(query, retrieved, chunks, known=known)
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
                support = supporting_sentences(query, passages, embedder, top=SHOWN_SENTENCES)
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
            entry=entry,
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
        supporting = [SupportingSentence(s.n, s.text) for s in prepared.support[:SHOWN_SENTENCES]]
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
            asked = prepared.query or prepared.question
            refusals: list[str] = []
            for passage, window in self._quoted(asked, prepared):
                # Cited as the quoted passage, not by markers found in the quote: documents
                # hold brackets of their own (argv[1], a[0]) that must stay as written.
                best, label = self._chooser.best_sentences(asked, passage, window)
                answer, cited, bold = quote(passage, window, best, entry_label=label)
                # What the reader sees: the quote, and the file its citation names.
                seen = [answer, cited.title, cited.source]
                refusal = (
                    self._abstention.refusal(asked, seen, cited)
                    if self._settings.abstain_on_unmentioned
                    else ""
                )
                if not refusal:
                    break
                refusals.append(refusal)
            else:  # every passage that may be quoted was refused: the first one's reason
                return Answer(f"{ABSTAIN_MESSAGE} {refusals[0]}", [], True, prepared.timings)
            citations = [cited]
            supporting = [SupportingSentence(passage.n, b) for b in bold] + [
                s for s in supporting if s.n == passage.n and s.text not in bold
            ]
        else:
            answer, citations = cite(text, prepared.passages, check.support)
        return Answer(answer, citations, False, prepared.timings, supporting, extractive)

    def _quoted(self, asked: str, prepared: PreparedAnswer) -> list[tuple[Passage, list[Chunk]]]:
        """The passages a quote may quote, with their windows, the first that is not refused
        to be quoted: the entry of the term a defining question asks about when there is one,
        else the chooser's choice. Asked how to do something with a code name, the entry is
        one passage among the others and the chooser's choice may be another (a worked
        example may show how better: "How do I send an email with smtplib.SMTP?" is answered
        by the FAQ's mail sender); the entry then comes second, for when that quote names the
        code only in passing."""
        found = prepared.entry
        entry = next((p for p in prepared.passages if found and p.hit.chunk.id == found.id), None)

        def entry_quoted(entry: Passage) -> tuple[Passage, list[Chunk]]:
            return entry, self._chooser.window(entry.hit.chunk, prepared.attached)

        if entry is not None and defined_term(asked) is not None:
            return [entry_quoted(entry)]
        chosen = self._chooser.choose(
            asked,
            prepared.passages,
            prepared.support,
            attached=prepared.attached,
            timings=prepared.timings,
        )
        # The entry's window is read only when the entry is not the chooser's choice already.
        if entry is None or entry.hit.chunk.id == chosen[0].hit.chunk.id:
            return [chosen]
        return [chosen, entry_quoted(entry)]

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
