from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from rag import choosing
from rag.abstention import Abstention
from rag.answering import ABSTAIN_MESSAGE, Answerer, build_messages, cite
from rag.choosing import (
    QuoteChooser,
    fallback_ranking,
    names_subject,
    naming_first,
    page_subject,
)
from rag.chunking import chunk_id
from rag.config import Settings
from rag.context import Passage, Support, build_passages
from rag.embedding import Embedder
from rag.errors import InvalidInputError
from rag.lookup import EntryLookup, entry_chunk
from rag.retrieval import HybridRetriever
from rag.store.base import CollectionInfo, VectorStore
from rag.store.factory import open_store
from rag.types import Chunk, Hit
from tests.fakes import FixedJudge, HashEmbedder, ScriptedGenerator, make_hit


@contextmanager
def stored(
    settings: Settings, embedder: Embedder, texts: Mapping[str, str]
) -> Iterator[VectorStore]:
    """A real Edge store holding one chunk per source -> text, closed afterwards."""
    with stored_chunks(
        settings, embedder, [make_hit(t, s).chunk for s, t in texts.items()]
    ) as store:
        yield store


@contextmanager
def stored_chunks(
    settings: Settings, embedder: Embedder, chunks: Sequence[Chunk]
) -> Iterator[VectorStore]:
    """A real Edge store holding ``chunks``, closed afterwards."""
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    try:
        store.upsert(list(chunks), embedder.embed_documents([c.embedding_text for c in chunks]))
        yield store
    finally:
        store.close()


def page_chunks(source: str, parts: Sequence[str]) -> list[Chunk]:
    """One page's chunks in order, each starting two characters after the last one ends,
    titled by the file's stem."""
    chunks: list[Chunk] = []
    start = 0
    for n, text in enumerate(parts):
        end = start + len(text)
        title = source.rsplit("/", 1)[-1].split(".")[0]
        chunks.append(Chunk(chunk_id(source, text, n), source, title, text, start=start, end=end))
        start = end + 2
    return chunks


def test_cite_keeps_valid_markers_and_drops_invented_ones() -> None:
    passages = [
        Passage(1, make_hit("one", "/d/1.txt"), "one"),
        Passage(2, make_hit("two", "/d/2.txt"), "two"),
    ]
    text, citations = cite("Two is right [2], not [7].", passages)
    assert text == "Two is right [2], not ."
    assert [(c.n, c.source) for c in citations] == [(2, "/d/2.txt")]
    assert citations[0].quote == "two"


def test_cite_falls_back_to_the_best_passage_when_the_model_cites_nothing() -> None:
    passages = [
        Passage(1, make_hit("one", "/d/1.txt"), "one"),
        Passage(2, make_hit("two", "/d/2.txt"), "two"),
    ]
    text, citations = cite("An answer without markers.", passages)
    assert text.endswith("[1]")
    assert [c.source for c in citations] == ["/d/1.txt"]


def test_passages_fit_the_budget_and_are_numbered_best_first() -> None:
    hits = [make_hit(" ".join(["word"] * 100), f"/d/{i}.txt") for i in range(5)]
    count = lambda s: len(s.split())  # noqa: E731
    passages = build_passages(hits, count_tokens=count, budget=260)
    assert [p.n for p in passages] == [1, 2, 3]
    assert sum(count(p.render()) + 2 for p in passages) <= 260
    assert passages[-1].text.endswith("...")  # the third one was cut to fit


def test_prompt_numbers_passages_and_asks_for_citations() -> None:
    messages = build_messages("Why?", [Passage(1, make_hit("because"), "because")])
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
    assert "[1] A\nbecause" in messages[1]["content"]
    assert messages[1]["content"].rstrip().endswith("citing passages like [1].")


def test_answer_cites_the_retrieved_source(
    coffee_answerer: tuple[Answerer, ScriptedGenerator],
) -> None:
    answerer, generator = coffee_answerer
    answer = answerer.ask("how often do I descale the machine")
    assert not answer.abstained
    assert answer.citations[0].source == "/d/coffee.md"
    # The citation carries the passage sentence that supports the generated claim.
    assert answer.citations[0].supporting == ("descale the machine every 200 cycles",)
    assert "descale the machine" in generator.prompts[0][1]["content"]
    assert {"retrieve_ms", "generate_ms", "total_ms"} <= answer.timings.keys()


def test_unrelated_question_abstains_without_generating(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator()
    answerer = Answerer(HybridRetriever(embedder, filled_store, settings), generator, settings)
    answer = answerer.ask("quantum chromodynamics lattice")
    assert answer.abstained and answer.answer == ABSTAIN_MESSAGE and not answer.citations
    assert generator.prompts == []


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
def test_bad_questions_name_the_field(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore, question: str
) -> None:
    answerer = Answerer(
        HybridRetriever(embedder, filled_store, settings), ScriptedGenerator(), settings
    )
    with pytest.raises(InvalidInputError) as info:
        answerer.ask(question)
    assert info.value.field == "question"


def test_context_budget_always_fits_the_window(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    small = ScriptedGenerator(window=600)
    answerer = Answerer(HybridRetriever(embedder, filled_store, settings), small, settings)
    question = "how often " * 50
    budget = answerer.context_budget(question)
    prepared = answerer.prepare(question)
    used = small.prompt_tokens(prepared.messages)
    assert budget < settings.context_tokens  # shrunk for the small window
    assert used + settings.llm_max_new_tokens <= small.context_window
    with pytest.raises(InvalidInputError, match="too long for the language model"):
        answerer.context_budget("word " * 400)


def test_ungrounded_answer_falls_back_to_quoting_the_source(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    generator = ScriptedGenerator(["Descale it every 999 days with vinegar [1]."])
    answerer = Answerer(HybridRetriever(embedder, filled_store, settings), generator, settings)
    answer = answerer.ask("how often do I descale the machine")
    assert answer.extractive
    assert answer.answer == "**descale the machine every 200 cycles** [1]"  # its support in bold
    assert answer.supporting[0].text == "descale the machine every 200 cycles"
    assert [c.source for c in answer.citations] == ["/d/coffee.md"]


def test_evidence_keeps_the_best_sentences_within_budget_in_reading_order() -> None:
    from rag.context import evidence_passages

    passages = [
        Passage(1, make_hit("a", "/d/1.txt"), "first. second."),
        Passage(2, make_hit("b", "/d/2.txt"), "third."),
    ]
    ranked = [
        Support(2, "Third sentence here.", 0.9, 2),
        Support(1, "Second sentence here.", 0.8, 1),
        Support(1, "First sentence here.", 0.7, 0),
        Support(1, "A long sentence " + "word " * 50, 0.6, 3),
    ]
    count = lambda s: len(s.split())  # noqa: E731
    shown = evidence_passages(passages, ranked, count_tokens=count, budget=20)
    # Passage numbers are kept so citations point at the whole chunk; the long one is left out.
    assert [(p.n, p.text) for p in shown] == [
        (1, "First sentence here. Second sentence here."),
        (2, "Third sentence here."),
    ]
    assert shown[0].hit is passages[0].hit
    assert sum(count(p.render()) + 2 for p in shown) <= 20 + 2 * len(shown)


def test_sentence_context_prompt_holds_only_supporting_sentences(
    coffee_answerer: tuple[Answerer, ScriptedGenerator],
) -> None:
    answerer, generator = coffee_answerer
    answer = answerer.ask("how often do I descale the machine")
    prompt = generator.prompts[0][1]["content"]
    assert "[1] A\ndescale the machine every 200 cycles" in prompt
    assert answer.supporting[0].text == "descale the machine every 200 cycles"
    assert prompt.index("descale") < prompt.index("basement")  # best passage first


def test_sentence_context_falls_back_to_whole_passages_without_sentences(
    settings: Settings, embedder: HashEmbedder
) -> None:
    from rag.store.base import CollectionInfo
    from rag.store.factory import open_store

    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    try:
        chunk = make_hit("descale 200", "/d/table.md").chunk  # too short to be a sentence
        store.upsert([chunk], embedder.embed_documents([chunk.embedding_text]))
        generator = ScriptedGenerator(["200 [1]."])
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        answerer.ask("descale 200")
        assert "[1] A\ndescale 200" in generator.prompts[0][1]["content"]
    finally:
        store.close()


@pytest.mark.real_models
def test_a_rare_word_no_document_contains_abstains_but_a_common_one_does_not(
    settings: Settings, real_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = ScriptedGenerator(["Every 200 cycles [1]."])
    # The real tokenizer decides what is rare: "often" is one word piece, "bcrypt" is not.
    store = open_store(
        settings, CollectionInfo(real_embedder.model_name, real_embedder.dimension), create=True
    )
    try:
        chunks = [
            make_hit("Descale the espresso machine every 200 cycles.", "/d/coffee.md").chunk,
            make_hit("Store passwords only as salted hashes.", "/d/security.md").chunk,
            make_hit("Sow tomato seeds 5 mm deep.", "/d/garden.md").chunk,
            make_hit("Customize the machine's grind size.", "/d/settings.md").chunk,
        ]
        store.upsert(chunks, real_embedder.embed_documents([c.embedding_text for c in chunks]))
        answerer = Answerer(HybridRetriever(real_embedder, store, settings), generator, settings)
        answer = answerer.ask("How do I hash a password with bcrypt?")
        assert answer.abstained and "'bcrypt'" in answer.answer
        assert answerer.retriever.unknown_words("how often should I descale it") == []
        # Rare but derived from a word the documents hold ("sown": "sow").
        assert answerer.retriever.unknown_words("How deep should tomato seeds be sown?") == []
        # Another spelling of a word the documents hold ("customise": "customize").
        assert answerer.retriever.unknown_words("How do I customise the machine?") == []
        assert answerer.retriever.unknown_words("Should I normalise it?") == ["normalise"]
        assert not answerer.ask("How often should I descale the espresso machine?").abstained
        # In a large collection that is not broad, still only rare words count: a narrow
        # one may never say "often" and answer the question.
        monkeypatch.setattr("rag.retrieval.LARGE_COLLECTION_CHUNKS", 3)
        assert answerer.retriever.unknown_words("how often should I descale it") == []
        assert answerer.retriever.unknown_words("Can it hash with bcrypt?") == ["bcrypt"]
        # In a broad collection a common word that no chunk holds counts too.
        monkeypatch.setattr("rag.retrieval.BROAD_COLLECTION_CHUNKS", 3)
        assert answerer.retriever.unknown_words("how often should I descale it") == ["often"]
        assert answerer.retriever.unknown_words("How deep should tomato seeds be sown?") == []
    finally:
        store.close()


def test_the_fallback_quotes_the_best_sentence_with_a_prior_for_retrieval_rank() -> None:
    passages = [
        Passage(n, make_hit(f"passage {n}", f"/d/{n}.md"), f"passage {n}") for n in (1, 2, 3)
    ]

    def chosen(*scores: tuple[int, float]) -> int:
        ranked = fallback_ranking(passages, [Support(n, "s", score) for n, score in scores])
        return ranked[0][0].n

    # A slightly better sentence further down does not outweigh the first-ranked passage...
    assert chosen((3, 0.55), (1, 0.50)) == 1
    # ...a clearly better one does; and only passages with a supporting sentence count.
    assert chosen((2, 0.90), (1, 0.50), (1, 0.45)) == 2
    assert chosen((3, 0.20)) == 3
    ranked = fallback_ranking(passages, [Support(2, "s", 0.9), Support(1, "s", 0.5)])
    assert [(p.n, round(score, 3)) for p, score in ranked] == [(2, 1.0), (1, 0.7)]


def test_naming_first_keeps_the_passages_that_name_the_most_named_terms_in_order() -> None:
    texts = [
        "crc32() computes a checksum of the data.",
        "hashlib.sha256() gives a SHA-256 digest; SHA-1 is weaker.",
        "adler32() is another checksum.",
        "The SHA family of hashes, as Unix tools print them.",
    ]
    ranked = [
        (Passage(n, make_hit(text, f"/d/{n}.md"), text), 1.0 - n / 10)
        for n, text in enumerate(texts, start=1)
    ]

    def kept(question: str) -> list[int]:
        return [p.n for p, _ in naming_first(question, ranked)]

    assert kept("how do I compute the SHA-256 checksum of some data?") == [2, 4]
    assert kept("is SHA on Unix the same as hashlib's?") == [4]  # names both terms
    assert kept("how do I compute a checksum?") == [1, 2, 3, 4]  # names nothing
    assert kept("how do I use BLAKE2?") == [1, 2, 3, 4]  # no passage names it
    assert naming_first("what is SHA?", []) == []


def test_the_fallback_quotes_a_passage_that_names_what_the_question_names(
    settings: Settings, embedder: HashEmbedder
) -> None:
    texts = {
        "/d/binascii.md": "Compute a checksum of some data with crc32: the checksum of data.",
        "/d/hashlib.md": "hashlib.sha256(data) returns a SHA-256 hash object.",
        "/d/zlib.md": "zlib compresses data.",
    }
    question = "how do I compute the SHA-256 checksum of some data?"
    with stored(settings, embedder, texts) as store:
        answerer = Answerer(
            HybridRetriever(embedder, store, settings),
            ScriptedGenerator(["Use md5 [1]."]),  # fails the check
            settings,
        )
        prepared = answerer.prepare(question)
        best = fallback_ranking(prepared.passages, prepared.support)[0][0]
        assert best.hit.chunk.source == "/d/binascii.md"  # its sentences score best...
        answer = answerer.ask(question)
        # ...but it never says SHA, and the quote should name what was asked.
        assert answer.extractive
        assert [c.source for c in answer.citations] == ["/d/hashlib.md"]
        assert answer.answer.startswith(f"**{texts['/d/hashlib.md']}**")  # its support, bold


def test_the_judge_chooses_between_the_two_best_passages_read_as_quoted(
    settings: Settings, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = {
        "/d/descale.md": "Descale the machine with the descaling tablets from the kit.",
        "/d/interval.md": "The machine asks to descale every 200 cycles of use.",
        "/d/other.md": "The machine has a descale light next to the power button.",
    }
    question = "how often do I descale the machine"
    with stored(settings, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, settings)
        generator = ScriptedGenerator(["Every 999 days [1]."])  # fails the check
        plain = Answerer(retriever, generator, settings).ask(question)
        assert plain.extractive
        first = plain.citations[0].source
        second = "/d/interval.md" if first != "/d/interval.md" else "/d/descale.md"
        # The judge prefers the second passage by more than the scores separate them.
        judge = FixedJudge({texts[second]: -1.0, texts[first]: -4.0})
        judged = Answerer(retriever, generator, settings, judge).ask(question)
        assert [c.source for c in judged.citations] == [second]
        assert judged.answer.startswith(f"**{texts[second]}**") and "judge_ms" in judged.timings
        asked, read = judge.calls[0]
        assert asked == question and len(read) == 2 and texts[first] in read[0]
        # A preference smaller than the gap in scores does not overturn the order.
        close = FixedJudge({texts[second]: -1.0, texts[first]: -1.001})
        kept = Answerer(retriever, generator, settings, close).ask(question)
        assert [c.source for c in kept.citations] == [first]
        # A grounded answer is not judged.
        grounded = ScriptedGenerator(["The machine asks to descale every 200 cycles."])
        spare = FixedJudge({"descale": -1.0})
        assert not Answerer(retriever, grounded, settings, spare).ask(question).extractive
        assert spare.calls == []
        # A lead in score larger than the margin is not judged.
        prepared = Answerer(retriever, generator, settings).prepare(question)
        ranking = naming_first(question, fallback_ranking(prepared.passages, prepared.support))
        lead = ranking[0][1] - ranking[1][1]
        assert lead > 0
        eager = FixedJudge({texts[second]: -1.0, texts[first]: -4.0})
        monkeypatch.setattr(choosing, "_JUDGE_MARGIN", lead / 2)
        unjudged = Answerer(retriever, generator, settings, eager).ask(question)
        assert eager.calls == [] and unjudged.answer == plain.answer
        monkeypatch.setattr(choosing, "_JUDGE_MARGIN", lead * 2)
        assert (
            Answerer(retriever, generator, settings, eager).ask(question).citations[0].source
            == second
        )
        # A judge that fails leaves the choice to the scores: the answer is still given.
        failing = FixedJudge({})
        rescued = Answerer(retriever, generator, settings, failing).ask(question)
        assert failing.calls and [c.source for c in rescued.citations] == [first]
        assert rescued.answer == plain.answer and "judge_ms" not in rescued.timings


def test_a_quote_that_leaves_out_the_term_asked_about_abstains(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """The passage names the term only far from what it says about the question (as a page
    on lists may name another language in passing): its quote is no answer about that term."""
    filler = " ".join(f"Paragraph {i} says nothing about the question at hand." for i in range(40))
    text = (
        "Sort a list with sorted(items); it returns a new list in order.\n\n"
        f"{filler}\n\nZorblang, a different language, is not covered here."
    )
    failing = ScriptedGenerator(["Use zsort [1]."])  # fails the check: a quote is made
    # The filler dilutes the passage's vector: its similarity is not what is tested here.
    settings = settings.model_copy(update={"min_similarity": -1.0})
    with stored(settings, embedder, {"/d/lists.md": text}) as store:
        retriever = HybridRetriever(embedder, store, settings)
        answer = Answerer(retriever, failing, settings).ask("How do I sort a list in Zorblang?")
        assert answer.abstained and answer.citations == []
        assert answer.answer.startswith(ABSTAIN_MESSAGE) and "'Zorblang'" in answer.answer
        # Without the term, the same quote answers.
        plain = Answerer(retriever, failing, settings).ask("How do I sort a list?")
        assert not plain.abstained and plain.extractive
        assert "Zorblang" not in plain.answer  # the quote indeed stops short of it
    # A term that the cited file's name holds is named where the reader sees it.
    elsewhere = settings.model_copy(update={"collection": "named"})
    with stored(elsewhere, embedder, {"/d/zorblang-lists.md": text}) as store:
        retriever = HybridRetriever(embedder, store, elsewhere)
        named = Answerer(retriever, failing, elsewhere).ask("How do I sort a list in Zorblang?")
        assert not named.abstained and named.extractive


def test_a_quote_that_names_every_asked_term_only_in_passing_abstains(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """A recipe that ends "see the Zorblang manual" names Zorblang, but says nothing about
    Zorblang widgets: quoted for a question about them, it would answer something else."""
    recipe = (
        "Handlers are listed in the dictConfig dictionary under their names, and each gets "
        "its level and its filters. For more on this setup, see the Zorblang manual."
    )
    failing = ScriptedGenerator(["Use zsort [1]."])  # fails the check: a quote is made
    settings = settings.model_copy(update={"min_similarity": -1.0})
    with stored(settings, embedder, {"/d/logging.md": recipe}) as store:
        retriever = HybridRetriever(embedder, store, settings)
        answerer = Answerer(retriever, failing, settings)
        asked = "How do I add a Zorblang widget with a colour to another widget?"
        answer = answerer.ask(asked)
        assert answer.abstained and answer.citations == []
        assert answer.answer.startswith(ABSTAIN_MESSAGE)
        assert "'Zorblang' only in passing" in answer.answer
        # Asked about what the recipe's sentences say, the same quote answers.
        setup = answerer.ask("Where do I read more about the Zorblang handler setup?")
        assert not setup.abstained and setup.extractive
        # So does a question that names a second term the quote is about.
        both = answerer.ask("How do I list handlers in dictConfig for a Zorblang widget?")
        assert not both.abstained
    off = settings.model_copy(update={"abstain_on_unmentioned": False})
    with stored(off, embedder, {"/d/logging.md": recipe}) as store:
        answerer = Answerer(HybridRetriever(embedder, store, off), failing, off)
        assert not answerer.ask(asked).abstained  # the setting turns the rule off


def test_a_question_about_what_a_term_does_quotes_the_terms_entry(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """The passage that ranks first uses the term in passing; a page below it labels the
    term's entry. The entry is quoted from its label on, without the entry above it."""
    texts = {
        "/d/plpgsql.md": "RETURN NEXT buffers the rows in memory and spills to disk past work_mem.",
        "/d/memory.md": (
            "temp_buffers (integer)\n\nSets the most memory used for temporary buffers.\n\n"
            "work_mem (integer)\n\nSets the base maximum amount of memory a query operation "
            "uses before writing to temporary disk files. The default is 4MB.\n\n"
            # The next entry names work_mem in passing: the quote is still work_mem's entry.
            "hash_mem_multiplier (floating point)\n\nA hash table may take work_mem times this."
        ),
    }
    # Hashed vectors are not what is tested: no question is refused for its similarity.
    quoting = settings.model_copy(update={"answer_mode": "quote", "min_similarity": -1.0})
    question = "What does work_mem control?"
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        first, second = retriever.search("work_mem buffers rows in memory spills", k=2)
        assert first.chunk.source == "/d/plpgsql.md"  # the passing use ranks first
        hits, entry = EntryLookup(retriever).entry_first(question, [first, second], [])
        assert entry is not None and entry.source == "/d/memory.md"
        assert [h.chunk for h in hits] == [entry, first.chunk]
        answer = Answerer(retriever, ScriptedGenerator(), quoting).ask(question)
        assert answer.citations[0].source == "/d/memory.md"
        assert answer.answer.startswith("work_mem (integer)\n\n**Sets the base maximum amount")
        assert "temp_buffers" not in answer.answer  # the entry above is another's
        # ... and the quote ends where the next entry starts.
        assert answer.answer.endswith("The default is 4MB. [1]")
        # A prompt, too, reads the entry first: numbered [1], its definition in the context.
        generating = quoting.model_copy(update={"answer_mode": "generate"})
        prepared = Answerer(retriever, ScriptedGenerator(), generating).prepare(question)
        assert prepared.passages[0].hit.chunk.source == "/d/memory.md"
        first = prepared.messages[-1]["content"].split("[1]", 1)[1].split("[2]", 1)[0]
        assert "Sets the base maximum amount of memory" in first
        # Asked how to do something with it, the entry of a code name answers too.
        answerer = Answerer(retriever, ScriptedGenerator(), quoting)
        assert answerer.ask("How do I set work_mem?").answer.startswith("work_mem (integer)")
        # Asked how, naming no code name, the quote is ranked as any other.
        other = answerer.ask("How do the rows of RETURN NEXT spill to disk?")
        assert other.extractive and not other.answer.startswith("work_mem (integer)")


def test_a_question_about_an_option_quotes_its_entry_on_the_page_of_what_it_names(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """Both pages list the option; the question names the program whose page is second."""
    entries = (
        "-c\n--clean\n\nDrop the database objects before creating them again.\n\n"
        "--if-exists\n\nUse IF EXISTS when dropping objects, so that none is reported missing."
    )
    texts = {"/d/pg_restore.md": entries, "/d/pg_dump.md": entries.replace("objects", "things")}
    quoting = settings.model_copy(update={"answer_mode": "quote", "min_similarity": -1.0})
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        hits = sorted(
            retriever.search("--if-exists", k=2), key=lambda h: "restore" not in h.chunk.source
        )
        question = "What is the --if-exists option of pg_dump for?"
        _, entry = EntryLookup(retriever).entry_first(question, hits, [])
        assert entry is not None and entry.source == "/d/pg_dump.md"
        answer = Answerer(retriever, ScriptedGenerator(), quoting).ask(question)
        assert answer.answer.startswith("--if-exists\n\n**Use IF EXISTS when dropping things")
        assert "--clean" not in answer.answer  # the entry above is another's
        assert answer.citations[0].source == "/d/pg_dump.md"


def test_an_options_entry_on_a_page_no_hit_came_from_is_found_by_its_label(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """Neither search reads "-B": the one hit is a page about .pyc files. The one page that
    labels "-B" answers; an option that two pages label is taken only from the page whose
    name the question names, and not at all outside the folder asked about."""
    texts = {
        "/d/tutorial.md": "Python writes .pyc files of compiled modules beside their sources.",
        "/d/cmdline.md": "-B\n\nIf given, no bytecode is saved on import.\n\n"
        "-u\n\nForce the stdout and stderr streams to be unbuffered.\n\n"
        "--no-site\n\nDo not import the site module.",
        "/d/timeit.md": "-u, --unit=U\n\nSpecify a time unit for timer output.",
    }
    quoting = settings.model_copy(
        update={"answer_mode": "quote", "min_similarity": -1.0, "top_k": 1}
    )
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        lookup = EntryLookup(retriever)
        hits = retriever.search("What does python -B do?")
        assert [h.chunk.source for h in hits] == ["/d/tutorial.md"]  # the premise
        found, entry = lookup.entry_first("What does python -B do?", hits, [])
        assert entry is not None and entry.source == "/d/cmdline.md"
        assert [h.chunk for h in found] == [entry]  # in the place of the last hit
        answer = Answerer(retriever, ScriptedGenerator(), quoting).ask("What does python -B do?")
        assert answer.answer.startswith("-B\n\n**If given, no bytecode is saved on import.**")
        assert answer.citations[0].source == "/d/cmdline.md"
        # Nor when the text attached to the question labels it: that is what was asked about.
        own = [make_hit("-B\n\nBuilds every zorb again.", "notes.txt").chunk]
        assert lookup.entry_first("What does python -B do?", hits, own)[1] is None
        # Not from a folder the question was not asked of.
        assert (
            lookup.entry_first("What does python -B do?", hits, [], source_prefix="/e")[1] is None
        )
        # "-u" labels two pages: the question must name one of them, by title, heading or file.
        assert lookup.entry_first("What does the -u flag do?", hits, [])[1] is None
        _, timeit = lookup.entry_first("What does timeit -u do?", hits, [])
        assert timeit is not None and timeit.source == "/d/timeit.md"
        # An option no page labels ("-B" above is written so; "-b" is not it) finds nothing.
        assert lookup.entry_first("What does python -b do?", hits, [])[1] is None
        # A long option whose entry was found is no reason to abstain, as one no page has is.
        asked = "What does --no-site do?"
        assert lookup.entry_first(asked, hits, [])[1] is not None
        abstention = Abstention(retriever)
        assert abstention.unmentioned(asked, hits, [], known=["--no-site"]) == []
        assert abstention.unmentioned(asked, hits, []) == ["--no-site"]


def test_an_options_entry_is_taken_from_the_page_whose_usage_line_lists_it_for_the_program(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """Two pages label "-i": a module's, retrieved, and the interpreter's, not retrieved.
    "What does zorb -i do?" asks about the program whose usage line lists -i."""
    module = (
        "zorb -m packer [-l] [-i list] [directory ...]\n\n"
        "-i list\n\nRead the names of the files to pack from list."
    )
    interpreter = (
        "zorb [-iu] [-c command | -m module-name | script | - ] [args]\n\n"
        "-i\n\nEnter interactive mode after running the script.\n\n"
        "-u\n\nForce the output streams to be unbuffered."
    )
    texts = {"/d/packer.md": module, "/d/cmdline.md": interpreter, "/d/news.md": "$ zorb -i -q"}
    quoting = settings.model_copy(
        update={"answer_mode": "quote", "min_similarity": -1.0, "top_k": 1}
    )
    asked = "What does zorb -i do?"
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        lookup = EntryLookup(retriever)
        hits = retriever.search("packer list files names")
        assert [h.chunk.source for h in hits] == ["/d/packer.md"]  # the premise
        found, entry = lookup.entry_first(asked, hits, [])
        assert entry is not None and entry.source == "/d/cmdline.md"
        assert [h.chunk for h in found] == [entry]  # in the place of the last hit
        # Naming no program, the retrieved page's entry stands.
        assert lookup.entry_first("What does the -i flag do?", hits, [])[1] == hits[0].chunk
        # Text attached to the question that labels it is what was asked about: the
        # collection is not searched for another page.
        own = [make_hit("-i\n\nIndents every zorb.", "notes.txt").chunk]
        assert lookup.entry_first(asked, hits, own)[1] == hits[0].chunk
    # Without the interpreter's usage line, nothing tells the pages apart but retrieval.
    texts["/d/cmdline.md"] = interpreter.split("\n\n", 1)[1]
    with stored(quoting.model_copy(update={"collection": "no-usage"}), embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        hits = retriever.search("packer list files names")
        _, entry = EntryLookup(retriever).entry_first(asked, hits, [])
        assert entry is not None and entry.source == "/d/packer.md"


def test_a_quote_from_the_middle_of_an_options_entry_names_the_option(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """Through a real Edge store: the quote around the best sentence opens below its option's
    label, too far above to come along, and the heading line names that option."""
    manual = (
        "--dry-run\n\nShow what would be brewed.\n\n"
        "--strength[=<level>]\n\nSet how strong the brew is.\n\n"
        + "The mild level suits guests who take milk. "
        * 30
        + "\n\nThe levels are mild, medium and bold.\n\n"
        "The bold level brews a dark cup with a thick crema on top."
    )
    quoting = settings.model_copy(
        update={"answer_mode": "quote", "min_similarity": -1.0, "top_k": 1}
    )
    with stored(quoting, embedder, {"/d/brew.md": manual}) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        answer = Answerer(retriever, ScriptedGenerator(), quoting).ask(
            "Which level brews a dark cup with a thick crema?"
        )
    heading, body = answer.answer.split("\n\n", 1)
    assert "--strength" not in body, body  # the premise: the label is not quoted
    assert "thick crema" in body
    assert heading == "*--strength[=<level>]*", answer.answer


def test_of_the_usage_lines_that_list_an_option_the_page_that_describes_it_answers(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """A module's page runs it with "zorb -m runner", listing -m for zorb, and says nothing
    of -m; the interpreter's page lists and describes it; a retrieved page labels its own
    "-m mode"."""
    texts = {
        "/d/packer.md": "packer [-l] [-m mode] [directory ...]\n\n"
        "-m mode\n\nPack the files in the given mode, one of fast or small.",
        "/d/runner.md": "zorb -m runner [-v] [script]\n\n"
        "-v\n\nPrint each command before it is run.",
        "/d/cmdline.md": "zorb [-iu] [-c command | -m module-name | script | - ] [args]\n\n"
        "-m module-name\n\nRun the named module as a script.",
    }
    quoting = settings.model_copy(
        update={"answer_mode": "quote", "min_similarity": -1.0, "top_k": 1}
    )
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        hits = retriever.search("pack directory mode")
        assert [h.chunk.source for h in hits] == ["/d/packer.md"]  # the premise
        _, entry = EntryLookup(retriever).entry_first("What does zorb -m do?", hits, [])
        assert entry is not None and entry.source == "/d/cmdline.md"


def test_on_a_page_of_several_commands_an_option_is_the_one_after_its_programs_usage_line(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """A shell's manual documents its builtins on one page, and two of them label "-e"."""
    parts = [
        "read [-ers] [-p prompt] [name ...]\n\n-e\n\nRead the line with line editing.",
        "The builtin reads its input one line at a time and splits it into words.",
        "set [-abefx] [-o option-name] [argument ...]",
        "-e\n\nExit at once if a command fails.\n\n-x\n\nPrint each command first.",
    ]
    chunks = page_chunks("/d/builtins.md", parts)
    single = settings.model_copy(update={"top_k": 1, "min_similarity": -1.0})
    with stored_chunks(single, embedder, chunks) as store:
        lookup = EntryLookup(HybridRetriever(embedder, store, single))
        hits = [Hit(chunk=chunks[1], score=1.0, similarity=1.0)]
        assert lookup.entry_first("What does set -e do?", hits, [])[1] == chunks[3]
        assert lookup.entry_first("What does read -e do?", hits, [])[1] == chunks[0]


def test_asked_how_to_use_a_code_name_its_entry_is_quoted_only_when_it_answers_best(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """The reference page labels zmail.Client's entry; a FAQ shows how to send with it."""
    texts = {
        "/d/zmail.md": "class zmail.Client(host)\n\nA Client instance holds one connection.",
        "/d/faq.md": "To send a message with zmail.Client, call send on it:\n\n"
        "client = zmail.Client('relay')\nclient.send('bob', 'a message')",
    }
    quoting = settings.model_copy(update={"answer_mode": "quote", "min_similarity": -1.0})
    with stored(quoting, embedder, texts) as store:
        answerer = Answerer(HybridRetriever(embedder, store, quoting), ScriptedGenerator(), quoting)
        how = "How do I send a message with zmail.Client?"
        prepared = answerer.prepare(how)
        assert prepared.entry is not None and prepared.entry.source == "/d/zmail.md"
        assert prepared.passages[0].hit.chunk.id == prepared.entry.id  # first for a prompt
        answer = answerer.finish(prepared, "")
        assert answer.citations[0].source == "/d/faq.md", answer.answer
        # Asked what it is, the entry is the answer.
        defined = answerer.ask("What is zmail.Client?")
        assert defined.citations[0].source == "/d/zmail.md"
        assert defined.answer.startswith("class zmail.Client(host)")
    # A quote that names the code only in passing gives way to the entry.
    texts["/d/faq.md"] = (
        "Servers send mail over relays. Mail travels through relays and queues every day, "
        "and relays send it on.\n\nSee also zmail.Client."
    )
    quoting = quoting.model_copy(update={"collection": "relays"})
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        answerer = Answerer(retriever, ScriptedGenerator(), quoting)
        how = "How do I send mail over relays with zmail.Client?"
        prepared = answerer.prepare(how)
        chosen, _ = QuoteChooser(retriever).choose(how, prepared.passages, prepared.support)
        assert chosen.hit.chunk.source == "/d/faq.md"  # the premise: the FAQ ranks best
        answer = answerer.finish(prepared, "")
        assert not answer.abstained
        assert answer.citations[0].source == "/d/zmail.md", answer.answer


def test_a_page_subject_is_the_name_a_reference_page_is_titled_by() -> None:
    assert page_subject("initdb") == "initdb"
    assert page_subject("git-commit(1)") == "git-commit"
    assert page_subject("F.2. amcheck") == "amcheck"
    assert page_subject("pathlib — Object-oriented filesystem paths — Python docs") == "pathlib"
    assert page_subject("CREATE DATABASE") == "CREATE DATABASE"
    assert page_subject("23.2. Creating a Database") is None
    assert page_subject("My First Contribution to the Git Project") is None
    assert page_subject("ls") is None and page_subject(None) is None
    assert names_subject("How do I amend the last git commit?", "git-commit")
    assert names_subject("Can vacuumdb update statistics too?", "vacuumdb")
    assert not names_subject("How do I create a database?", "CREATE DATABASE")
    assert not names_subject("What does initdbx do?", "initdb")


def test_a_question_that_names_a_manual_pages_program_is_quoted_from_that_page(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """A chapter that mentions initdb in passing ranks first; initdb's manual page (it has a
    Synopsis) lists the option that answers."""
    chapter = (
        "Data page checksums are turned on for a cluster when it is created with initdb, "
        "and they detect corruption of data pages."
    )
    option = "--data-checksums\n\nUse checksums on data pages to detect corruption."
    synopsis = "initdb [option...] [--pgdata | -D] directory"

    def chunk(source: str, title: str, heading: str, text: str, at: int) -> Chunk:
        return Chunk(
            id=chunk_id(source, text, at),
            source=source,
            title=title,
            text=text,
            heading_path=(heading,),
            start=at * 1000,
            end=at * 1000 + len(text),
            context=f"{title} > {heading}",
        )

    question = "How do I turn on data page checksums when I create a cluster with initdb?"
    # Only a manual page is preferred: a page titled by a name is not one by itself; and not
    # for a name that a large share of the collection holds (every page here runs initdb).
    cases = (("Synopsis", 0, "/d/initdb.md"), ("Usage", 0, "/d/checksums.md"))
    cases += (("Synopsis", 30, "/d/checksums.md"),)
    for manual, others, chosen in cases:
        chunks = [
            chunk("/d/checksums.md", "30.2. Data Checksums", "30.2. Data Checksums", chapter, 0),
            chunk("/d/initdb.md", "initdb", manual, synopsis, 0),
            chunk("/d/initdb.md", "initdb", "Options", option, 1),
        ]
        chunks += [
            chunk(f"/d/tool{n}.md", f"Tool {n}", "Setup", f"Tool {n} runs initdb once.", 0)
            for n in range(others)
        ]
        named = settings.model_copy(update={"collection": f"manual-{manual.lower()}-{others}"})
        info = CollectionInfo(embedder.model_name, embedder.dimension)
        store = open_store(named, info, create=True)
        try:
            store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
            retriever = HybridRetriever(embedder, store, named)
            prepared = Answerer(retriever, ScriptedGenerator(), named).prepare(question)
            ranked = naming_first(question, fallback_ranking(prepared.passages, prepared.support))
            assert ranked[0][0].hit.chunk.source == "/d/checksums.md"  # the premise
            passage, _ = QuoteChooser(retriever).choose(
                question, prepared.passages, prepared.support
            )
            assert passage.hit.chunk.source == chosen
        finally:
            store.close()


def test_the_prompt_and_the_quote_take_the_same_entry_once(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """The first hit is a note on another program's page that names pg_dump in its text; the
    entry stands first in the hits, in its page's place, and is the one quoted."""
    entry = "--if-exists\n\nUse IF EXISTS when dropping objects, so that none is reported."
    texts = {
        "/d/pg_restore.md": f"Unlike pg_dump, this reads archives.\n\n{entry}",
        "/d/pg_dump.md": entry.replace("objects", "things"),
    }
    with stored(settings, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, settings)
        hits = sorted(retriever.search("--if-exists", k=2), key=lambda h: "dump" in h.chunk.source)
        question = "What is the --if-exists option of pg_dump for?"
        lookup = EntryLookup(retriever)
        first, entry = lookup.entry_first(question, hits, [])
        assert [h.chunk.source for h in first] == ["/d/pg_dump.md", "/d/pg_restore.md"]
        assert entry == first[0].chunk
        answerer = Answerer(retriever, ScriptedGenerator(), settings)
        prepared = answerer.prepare(question)
        assert prepared.entry is not None and prepared.entry.source == "/d/pg_dump.md"
        quoted = answerer.finish(prepared, "")
        assert quoted.citations[0].chunk_id == prepared.entry.id
        assert quoted.citations[0].n == 1
        # The entry's own hit, retrieved as well, is not listed twice.
        again, _ = lookup.entry_first(question, [*hits, first[0]], [])
        assert [h.chunk.id for h in again].count(first[0].chunk.id) == 1
        # Asked how to use an option, no entry is looked up: its entry says what it is.
        assert answerer.prepare("How do I use --if-exists with pg_dump?").entry is None


def test_asked_what_a_term_is_without_an_entry_the_quote_centres_on_its_first_mention(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """A view's section: its first sentence says what it is; its columns' short sentences sit
    under a heading that names it and may rank higher."""
    text = (
        "The zorb_view view has one row per server process.\n\n"
        "pid integer: if zorb_view shows null here, the process is internal.\n\n"
        "state text: the state of the process."
    )
    with stored(settings, embedder, {"/d/views.md": text}) as store:
        chooser = QuoteChooser(HybridRetriever(embedder, store, settings))
        [hit] = store.source_chunks("/d/views.md")
        passage = Passage(1, make_hit(text, "/d/views.md"), text)
        best, label = chooser.best_sentences("What is zorb_view?", passage, [hit])
        assert best[0] == "The zorb_view view has one row per server process." and label is None
        # Asked anything else, the sentences stand in their ranked order.
        ranked, _ = chooser.best_sentences("Is zorb_view null for internal?", passage, [hit])
        assert ranked[0].startswith("pid integer")


def test_a_quote_centres_on_a_sentence_that_names_what_its_best_sentence_leaves_out(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """The best sentence is about the question's subject; the one naming its keywords stands
    too far below it for a quote of the best one to reach."""
    filler = "\n\n".join(f"Unrelated paragraph {n} of the zorb manual." for n in range(40))
    best = "Zorb conflicts are resolved by the arbiter index of the table."
    named = "With SKIP LOCKED, locked rows are passed over."
    text = f"{best}\n\n{filler}\n\n{named}"
    with stored(settings, embedder, {"/d/zorb.md": text}) as store:
        chooser = QuoteChooser(HybridRetriever(embedder, store, settings))
        [chunk] = store.source_chunks("/d/zorb.md")
        passage = Passage(1, make_hit(text, "/d/zorb.md"), text)
        asked = "How are zorb conflicts resolved by the arbiter index with SKIP LOCKED?"
        ranked, label = chooser.best_sentences(asked, passage, [chunk])
        assert ranked[0] == named and best in ranked and label is None
        # A term the file's title or headings name is no reason to move the quote.
        titled = Passage(1, replace(passage.hit, chunk=replace(chunk, title="SKIP LOCKED")), text)
        assert chooser.best_sentences(asked, titled, [chunk])[0][0] == best
        # Nor is one the quote around the best sentence already names.
        near = f"{best}\n\n{named}\n\n{filler}"
        close = Passage(1, make_hit(near, "/d/zorb.md"), near)
        assert chooser.best_sentences(asked, close, [])[0][0] == best


def test_a_code_name_whose_entry_a_retrieved_page_holds_is_not_refused(
    settings: Settings, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The passage that ranks first never says zorbs.field; the page below it has its entry,
    so the collection does hold what was asked about."""
    texts = {
        "/d/guide.md": "How do I give a field a default list? A default list is shared.",
        "/d/zorbs.md": "zorbs.field(default)\n\nMakes a field whose default each object copies.",
    }
    quoting = settings.model_copy(update={"answer_mode": "quote", "min_similarity": -1.0})
    monkeypatch.setattr("rag.abstention.NAMED_TERM_PASSAGES", 1)
    question = "How do I give a field a default list with zorbs.field?"
    with stored(quoting, embedder, texts) as store:
        retriever = HybridRetriever(embedder, store, quoting)
        assert retriever.search(question, k=1)[0].chunk.source == "/d/guide.md"  # the premise
        answer = Answerer(retriever, ScriptedGenerator(), quoting).ask(question)
        assert not answer.abstained, answer.answer
        assert answer.answer.startswith("zorbs.field(default)\n\n**Makes a field")
        # A code name no retrieved page has an entry for is still refused.
        other = Answerer(retriever, ScriptedGenerator(), quoting).ask(
            "How do I give a field a default list with zorbs.slot?"
        )
        assert other.abstained and "'zorbs.slot'" in other.answer


def test_an_entry_whose_label_ends_a_chunk_goes_on_in_the_next() -> None:
    def chunk(n: int, text: str, start: int) -> Chunk:
        return Chunk(
            f"c{n}", "/d/glossary.html", "Glossary", text, start=start, end=start + len(text)
        )

    first = chunk(1, "duck-typing\n\nA style that uses EAFP.\n\nEAFP", 0)
    second = chunk(2, "Easier to ask for forgiveness than permission.\n\nLBYL", first.end + 2)
    third = chunk(3, "Look before you leap.", second.end + 2)
    assert entry_chunk("EAFP", [first, second, third]) == second
    assert entry_chunk("LBYL", [first, second, third]) == third
    assert entry_chunk("duck-typing", [first, second, third]) == first
    assert entry_chunk("GIL", [first, second, third]) is None
    apart = chunk(3, "Look before you leap.", second.end + 40)  # not the entry's text
    assert entry_chunk("LBYL", [first, second, apart]) is None
    # Nor is the next section's first chunk, or a label with nothing said after it.
    elsewhere = replace(third, heading_path=("Other",))
    assert entry_chunk("LBYL", [first, second, elsewhere]) is None
    bare = chunk(4, "GIL\n\nSee", 0)
    assert entry_chunk("GIL", [bare]) is None
    # A function's signatures label its entry together; its text may start in the next chunk.
    labels = chunk(5, "zorb ( n integer ) → setof integer\n\nzorb ( n bigint ) → setof bigint", 0)
    text = chunk(6, "Makes a series of zorbs up to n.", labels.end + 2)
    assert entry_chunk("zorb", [labels, text]) == text


def test_a_rare_word_that_no_best_passage_holds_abstains_in_a_large_collection(
    settings: Settings, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = {
        "/d/venv.md": "Create a virtual environment with python -m venv, then activate it.",
        "/d/site.md": "A virtual environment has its own site directory for packages.",
        "/d/install.md": "Create the environment first; pip installs into the active one.",
        "/d/tools.md": "Other tools, like conda, exist; this guide does not cover them.",
        "/d/money.md": "Money amounts need exact decimals, even cheap ones.",
        "/d/price.md": "A cheap price is money too.",
        "/d/budget.md": "Budgets count money, cheap or dear.",
        "/d/deal.md": "The cheapest deal wins.",
    }
    with stored(settings, embedder, texts) as store:
        generator = ScriptedGenerator(["Use python -m venv [1]."])
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        retriever = answerer.retriever
        hits = {h.chunk.source: h for h in retriever.search("virtual environment money", k=8)}
        best = [hits["/d/venv.md"], hits["/d/site.md"], hits["/d/install.md"]]
        question = "How do I create a virtual environment with conda, for money?"
        # A small collection tells nothing by what it rarely says.
        assert retriever.rare_unretrieved_words(question, best) == []
        monkeypatch.setattr("rag.retrieval.LARGE_COLLECTION_CHUNKS", 3)
        # A large one that is not broad, only by words the embedding model does not hold whole
        # (this fake's model holds every word whole).
        assert retriever.rare_unretrieved_words(question, best) == []
        monkeypatch.setattr("rag.retrieval.BROAD_COLLECTION_CHUNKS", 3)
        # 'conda' is in one chunk, not among the best; 'money' is in three: not rare.
        assert retriever.rare_unretrieved_words(question, best) == ["conda"]
        assert retriever.rare_unretrieved_words(question, [*best, hits["/d/tools.md"]]) == []
        # 'cheapest' is in one chunk, but it is a form of 'cheap', which three hold.
        cheapest = "How do I create the cheapest virtual environment with conda?"
        assert retriever.rare_unretrieved_words(cheapest, best) == ["conda"]
        # Words no chunk holds are unknown_words', not rare.
        assert retriever.rare_unretrieved_words("virtual environment with poetry", best) == []
        asked = "How do I create a virtual environment and activate it, with conda?"
        top = [h.chunk.source for h in retriever.search(asked, k=3)]
        assert "/d/tools.md" not in top  # the premise of the next check
        answer = answerer.ask(asked)
        assert answer.abstained and "'conda'" in answer.answer
        assert not answerer.ask("How do I create a virtual environment and activate it?").abstained


def test_a_long_option_that_no_retrieved_page_has_abstains(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """The manual's page lists its options further down than retrieval reaches (one hit); an
    option asked about that the page lists is answered, one it does not list is refused."""
    parts = [
        "zorbackup takes a base backup of a running cluster into a folder.",
        "Options\n\n--wal-method=method\n\nHow the write-ahead log goes into the backup.",
        "--[no-]verify-checksums\n\nWhether checksums are checked while copying.",
    ]
    chunks, start = [], 0
    for n, text in enumerate(parts):
        ids = chunk_id("/d/zorbackup.md", text, n)
        chunks.append(Chunk(ids, "/d/zorbackup.md", "zorbackup", text, start=start))
        start += len(text) + 2
    single = settings.model_copy(update={"top_k": 1, "min_similarity": -1.0})
    store = open_store(single, CollectionInfo(embedder.model_name, embedder.dimension), create=True)
    try:
        store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
        answerer = Answerer(HybridRetriever(embedder, store, single), ScriptedGenerator(), single)
        asked = "How do I take a base backup of a running cluster with zorbackup --incremental?"
        assert [h.chunk.id for h in answerer.retriever.search(asked)] == [chunks[0].id]
        refused = answerer.ask(asked)
        assert refused.abstained and "'--incremental'" in refused.answer
        for held in ("--wal-method", "--no-verify-checksums", "--verify-checksums"):
            answer = answerer.ask(f"How do I take a base backup of a running cluster with {held}?")
            assert not answer.abstained, (held, answer.answer)
    finally:
        store.close()


def test_an_option_given_a_value_quotes_the_item_of_its_entry_that_names_it(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """-Z's entry lists its values over three chunks of one section; the item asked about
    stands in the last, beyond the window of the entry's label."""
    parts = [
        "-Z\n\nReserved for implementation options. The values are:\n\n"
        "-Z faultless to run without faults;",
        "-Z colour to print in colour;\n\n-Z tables to print tables.",
        "-Z dump to write a dump.\n\n-Z slowimport to show how long each import takes. "
        "It shows the module names.",
    ]
    chunks = page_chunks("/d/zython.md", parts)
    single = settings.model_copy(update={"top_k": 1, "min_similarity": -1.0})
    store = open_store(single, CollectionInfo(embedder.model_name, embedder.dimension), create=True)
    try:
        store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
        retriever = HybridRetriever(embedder, store, single)
        asked = "What does -Z slowimport do?"
        label = Hit(chunk=chunks[0], score=1.0, similarity=1.0)
        assert EntryLookup(retriever).entry_first(asked, [label], [])[1] == chunks[2]
        answerer = Answerer(retriever, ScriptedGenerator(), single)
        answer = answerer.ask(asked)
        assert "**-Z slowimport to show how long each import takes.**" in answer.answer
        assert answer.citations[0].chunk_id == chunks[2].id
        # An item just below the label is quoted from the label, the item in bold.
        near = answerer.ask("What does -Z faultless do?").answer
        assert near.startswith("-Z\n\nReserved for implementation options.")
        assert "**-Z faultless to run without faults;**" in near
    finally:
        store.close()


def test_a_quote_that_never_names_the_option_asked_about_abstains(
    settings: Settings, embedder: HashEmbedder
) -> None:
    """Options are compared as written: -o's entry does not answer what -O does."""
    texts = {"/d/zorb.md": "-o file\n\nWrite the output to a file instead of the screen."}
    quoting = settings.model_copy(update={"answer_mode": "quote", "min_similarity": -1.0})
    with stored(quoting, embedder, texts) as store:
        answerer = Answerer(HybridRetriever(embedder, store, quoting), ScriptedGenerator(), quoting)
        refused = answerer.ask("What does the -O option of zorb do?")
        assert refused.abstained and "'-O'" in refused.answer
        answer = answerer.ask("What does the -o option of zorb do?")
        assert not answer.abstained
        assert answer.answer.startswith("-o file\n\n**Write the output to a file")
        # Short options run together: the first one's entry is quoted for them.
        bundled = answerer.ask("What does zorb -ov do?")
        assert bundled.answer.startswith("-o file\n\n**Write the output to a file")
        assert answerer.ask("What does zorb -Ov do?").abstained


def test_the_fallback_quotes_its_passage_with_the_neighbours_in_its_section(
    settings: Settings, embedder: HashEmbedder, tmp_path: Path
) -> None:
    from ingest.loaders import load_document
    from rag.chunking import TokenChunker

    page = tmp_path / "tuples.md"
    page.write_text(
        "# Tuples\n\n## namedtuple\n\n"
        "collections.namedtuple(typename, field_names) is the factory function that the "
        "standard library offers for records with named fields.\n\n"
        "It returns a new tuple subclass whose fields have names, so that code can read "
        "each value by name as well as by its position.\n\n"
        "Point = namedtuple('Point', 'x y') makes one, and Point(1, 2).x reads the first "
        "field of a point by the name it was given.\n\n"
        "## Other\n\nLists are mutable sequences.\n"
    )
    chunker = TokenChunker(embedder.count_tokens, max_tokens=64, chunk_size=32, chunk_overlap=0)
    chunks = chunker.chunk(load_document(page))
    section = [c for c in chunks if c.heading_path[-1:] == ("namedtuple",)]
    assert len(section) == 3
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
    try:
        generator = ScriptedGenerator(["Use the frobnicate module [1]."])  # not in the sources
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        answer = answerer.ask("what does it return? a new tuple subclass whose fields have names")
        assert answer.extractive and len(answer.citations) == 1
        quoted = answer.citations[0].quote
        assert quoted == "\n\n".join(c.text for c in section)
        # Under its heading path, with the sentence that answers in bold.
        heading, body = answer.answer.split("\n\n", 1)
        assert heading == "*Tuples › namedtuple*"
        assert body.replace("**", "") == f"{quoted} [{answer.citations[0].n}]"
        assert "**It returns a new tuple subclass whose fields have names" in body
        assert "Lists are mutable" not in answer.answer  # another section is not its context
    finally:
        store.close()


def test_a_term_the_whole_collection_is_about_is_no_reason_to_abstain(
    settings: Settings, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    try:
        chunks = [
            make_hit("descale the machine every 200 cycles", "/d/manual/descale.md").chunk,
            make_hit("fill the tank with fresh water", "/d/manual/water.md").chunk,
        ] + [
            make_hit(f"Acme announced grinder model {i} today", f"/d/news/{i}.md").chunk
            for i in range(24)
        ]
        store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
        retriever = HybridRetriever(embedder, store, settings)
        answerer = Answerer(
            retriever, ScriptedGenerator(["Descale it every 200 cycles [1]."]), settings
        )
        assert retriever.common_terms(["Acme", "Kubernetes", "Acme.grinder"]) == ["Acme"]
        # BM25 keeps only "grinder" of "the_grinder" (a stopword and an underscore), but an
        # underscored name is as specific as a dotted one.
        assert retriever.common_terms(["the_grinder", "grinder"]) == ["grinder"]
        # The manual's passages never say "Acme", but most of the collection does.
        asked = "how often do I descale the machine from Acme"
        answer = answerer.ask(asked, source_prefix="/d/manual")
        assert not answer.abstained
        assert not answerer.ask(
            "how often do I descale the machine", source_prefix="/d/manual"
        ).abstained
        # A named term the collection holds nowhere, or rarely, still abstains.
        kube = answerer.ask("how often do I descale the machine with Kubernetes")
        assert kube.abstained and "'Kubernetes'" in kube.answer
        # Without the collection statistics, the same question abstains on 'Acme'.
        monkeypatch.setattr("rag.retrieval.COMMON_TERM_SHARE", 1.0)
        refused = answerer.ask(asked, source_prefix="/d/manual")
        assert refused.abstained and "'Acme'" in refused.answer
    finally:
        store.close()


def test_a_term_named_only_to_compare_with_is_no_reason_to_abstain(
    settings: Settings, embedder: HashEmbedder
) -> None:
    texts = {
        "/d/watch.md": "Run the app with --watch to restart it whenever a file changes.",
        "/d/fetch.md": "Use http.get to make a GET request; no package is needed.",
        "/d/other.md": "Timers run callbacks after a delay.",
    }
    with stored(settings, embedder, texts) as store:
        generator = ScriptedGenerator(["Use --watch [1]."] * 4)
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        compared = "How do I restart the app whenever a file changes, like Nodemon does?"
        assert not answerer.ask(compared).abstained
        assert not answerer.ask("How do I make a GET request without installing Axios?").abstained
        # Named as what the question is about, the same term still abstains.
        asked = answerer.ask("How do I restart the app with Nodemon whenever a file changes?")
        assert asked.abstained and "'Nodemon'" in asked.answer


def test_an_acronym_the_passages_write_in_lower_case_is_no_reason_to_abstain(
    settings: Settings, embedder: HashEmbedder
) -> None:
    texts = {
        "/d/gitmodules.md": "The .gitmodules file records each submodule: its path and its url.",
        "/d/other.md": "Timers run callbacks after a delay.",
    }
    with stored(settings, embedder, texts) as store:
        generator = ScriptedGenerator(["Use .gitmodules [1]."] * 4)
        answerer = Answerer(HybridRetriever(embedder, store, settings), generator, settings)
        asked = answerer.ask("Where does git record the path and URL of each submodule?")
        assert not asked.abstained
        # A name that is not an acronym is still matched as written.
        named = answerer.ask("Where does GitLab record the path of each submodule?")
        assert named.abstained and "'GitLab'" in named.answer


def test_the_fallback_quotes_another_section_of_its_page_that_answers_better(
    settings: Settings, embedder: HashEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.loaders import load_document
    from rag.chunking import TokenChunker

    page = tmp_path / "bisect.md"
    left = "bisect_left finds where an item goes in a sorted list of items."
    insort = "insort puts an item in a sorted list of items and keeps the list sorted."
    page.write_text(
        f"# bisect\n\n## bisect_left\n\n{left}\n\n## insort\n\n{insort}\n\n"
        "## Other\n\nDeques are double-ended queues.\n"
    )
    chunker = TokenChunker(embedder.count_tokens, max_tokens=64, chunk_size=32, chunk_overlap=0)
    chunks = chunker.chunk(load_document(page))
    assert len(chunks) == 3  # one per section: no section is another's window
    store = open_store(
        settings, CollectionInfo(embedder.model_name, embedder.dimension), create=True
    )
    store.upsert(chunks, embedder.embed_documents([c.embedding_text for c in chunks]))
    one = settings.model_copy(update={"top_k": 1})  # the other sections are not retrieved
    question = "how do I put an item in a sorted list of items"
    try:
        retriever = HybridRetriever(embedder, store, one)
        generator = ScriptedGenerator(["Use frobnicate [1]."])  # fails the check: a quote
        plain = Answerer(retriever, generator, one).ask(question)
        assert plain.extractive and len(plain.citations) == 1
        first, other = (left, insort) if left in plain.answer else (insort, left)
        # The judge finds the question far likelier after the other section: it is quoted,
        # and the citation stays on the page, numbered as the passage it replaces.
        judge = FixedJudge({other: -1.0, first: -4.0})
        moved = Answerer(retriever, generator, one, judge).ask(question)
        assert other in moved.answer and first not in moved.answer
        assert [(c.source, c.n) for c in moved.citations] == [(str(page), 1)]
        assert moved.citations[0].quote == other and "judge_ms" in moved.timings
        [(asked, read)] = judge.calls
        assert asked == question and first in read[0] and other in read[1]
        assert "Deques" not in "".join(read)  # only the best-ranked rival is judged
        # When the judge has read the chosen passage already, only the rival is read.
        again = FixedJudge({other: -1.0, first: -4.0})
        prepared = Answerer(retriever, generator, one).prepare(question)
        chosen = prepared.passages[0]
        window = retriever.around(chosen.hit.chunk)
        chooser = QuoteChooser(retriever, again)
        quoted, _ = chooser._on_page(question, chosen, window, attached=(), timings={}, judged=-4.0)
        assert quoted.hit.chunk.text == other and quoted.n == chosen.n
        [(_, alone)] = again.calls
        assert len(alone) == 1 and other in alone[0]
        # A preference within the margin keeps the quote the scores chose.
        close = FixedJudge({other: -1.0, first: -1.0 - choosing._JUDGE_MARGIN / 4})
        assert Answerer(retriever, generator, one, close).ask(question).answer == plain.answer
        # A rival whose sentences trail too far is not judged; a failing judge changes nothing.
        behind = choosing._RIVAL_BEHIND
        monkeypatch.setattr(choosing, "_RIVAL_BEHIND", -1.0)
        gated = FixedJudge({other: -1.0, first: -4.0})
        assert Answerer(retriever, generator, one, gated).ask(question).answer == plain.answer
        assert gated.calls == []
        monkeypatch.setattr(choosing, "_RIVAL_BEHIND", behind)
        failing = FixedJudge({})
        assert Answerer(retriever, generator, one, failing).ask(question).answer == plain.answer
        assert failing.calls
    finally:
        store.close()
