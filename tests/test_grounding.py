from __future__ import annotations

from dataclasses import replace

import pytest

from rag.answering import Answerer, quote, quoted_where
from rag.config import Settings
from rag.context import Passage, Support
from rag.grounding import (
    check_claims,
    degenerate_lines,
    identifiers,
    named_in_passing,
    supporting_sentences,
    unsupported_claims,
)
from rag.quoting import excerpt, join_chunks
from rag.retrieval import HybridRetriever, neighbours
from rag.store.base import VectorStore
from rag.types import Chunk, Hit
from tests.fakes import HashEmbedder, ScriptedGenerator, make_hit

TEXT = (
    "Descale the machine every 200 brewing cycles. The cycle takes about 25 minutes. "
    "The warranty lasts two years and covers the pump."
)


def passage(text: str = TEXT, n: int = 1) -> Passage:
    chunk = Chunk(id="x", source="/d/m.md", title="Manual", text=text)
    return Passage(n, Hit(chunk, 0.5, 0.5), text)


def test_supported_answer_passes() -> None:
    assert unsupported_claims("Descale it every 200 brewing cycles [1].", [passage()]) == []


def test_the_check_names_the_sentences_that_support_each_claim() -> None:
    answer = "Descale it every 200 brewing cycles [1]. The warranty covers the pump [2]."
    labelled = "Warranty\n\nThe warranty lasts two years and covers the pump. It is free."
    check = check_claims(answer, [passage(), passage(labelled, n=2)])
    assert check.unsupported == []
    assert check.support == {
        1: ["Descale the machine every 200 brewing cycles."],
        2: ["The warranty lasts two years and covers the pump."],  # without its label
    }
    # Uncited, a claim finds its support in any passage; an unsupported one finds none.
    check = check_claims("The cycle takes about 25 minutes. Pumps fly.", [passage()])
    assert check.unsupported == ["Pumps fly."]
    assert check.support == {1: ["The cycle takes about 25 minutes."]}


def test_invented_number_or_words_fail() -> None:
    assert unsupported_claims("Descale every 300 brewing cycles [1].", [passage()])
    assert unsupported_claims("Use the Bubble Sort algorithm for dynamic allocation.", [passage()])


def test_supporting_sentence_is_the_closest_one() -> None:
    support = supporting_sentences("how long is the warranty", [passage()], HashEmbedder())
    assert support[0].text == "The warranty lasts two years and covers the pump."
    assert support[0].n == 1


def test_quote_is_the_whole_passage_as_written_with_its_number() -> None:
    passage = Passage(2, make_hit("A tuple holds items. It is immutable.\n", "/d/b.md"), "...")
    text, cited, bold = quote(passage)
    assert text == "A tuple holds items. It is immutable. [2]" and bold == []
    assert (cited.n, cited.source, cited.quote) == (
        2,
        "/d/b.md",
        "A tuple holds items. It is immutable.",
    )


def test_a_quotes_heading_line_names_its_page_when_its_headings_do_not() -> None:
    def heading_line(title: str, *headings: str) -> str:
        chunk = Chunk(id="x", source="/d/p.html", title=title, text="Body.", heading_path=headings)
        return quote(Passage(1, Hit(chunk, 0.5, 0.5), chunk.text))[0].split("\n\n")[0]

    # A manual page's section alone says nothing of which page it is on.
    assert heading_line("tool-sync(1)", "OPTIONS") == "*tool-sync(1) › OPTIONS*"
    # A first heading that begins the title, or that the title begins, says it once.
    assert (
        heading_line("zorb — Zorbs — Docs 2.1", "zorb — Zorbs", "Usage") == "*zorb — Zorbs › Usage*"
    )
    assert heading_line("zorb", "zorb(1) Manual", "Usage") == "*zorb(1) Manual › Usage*"
    # A site's heading over every page goes, from the heading the title begins with on.
    assert (
        heading_line("Zorb | Acme 2.1 Documentation", "Acme 2.1 documentation", "Zorb", "Usage")
        == "*Zorb › Usage*"
    )
    # No headings, no heading line.
    assert heading_line("Manual") == "Body. [1]"
    assert quoted_where("", ("  Spaced   out ",)) == ["Spaced out"]


def section(text: str, start: int, id: str) -> Chunk:
    return Chunk(id=id, source="/d/b.md", title="B", text=text, start=start, end=start + len(text))


def test_a_quote_takes_the_chunks_around_it_in_its_section() -> None:
    before = section("namedtuple(typename, field_names)", 0, "a")
    middle = section("Returns a new tuple subclass named typename.", before.end + 1, "b")
    after = section("Example: Point = namedtuple('Point', 'x y')", middle.end + 2, "c")
    passage = Passage(3, Hit(middle, 0.5, 0.5), middle.text)
    text, cited, _ = quote(passage, [before, middle, after])
    assert text == (  # a line, not a sentence, ends the first chunk: the break is kept
        "namedtuple(typename, field_names)\nReturns a new tuple subclass named typename.\n\n"
        "Example: Point = namedtuple('Point', 'x y') [3]"
    )
    assert cited.quote == text.removesuffix(" [3]") and cited.chunk_id == "b"
    # A window without the passage's own chunk is not its window.
    assert quote(passage, [before])[0] == f"{middle.text} [3]"


def test_joined_chunks_say_an_overlap_once() -> None:
    first = section("one two three four", 0, "a")
    second = section("three four five six", 8, "b")
    assert join_chunks([first, second]) == "one two three four five six"
    assert join_chunks([first]) == "one two three four"


def test_a_table_split_between_chunks_is_joined_row_by_row() -> None:
    """The chunker splits a long table at its lines and a long paragraph at its sentences;
    one character apart, rows keep their line break and sentences their space."""
    rows = section("Model | Tank\nZephyr-9 | 1.2 l", 0, "a")
    more = section("Zephyr-12 | 1.8 l\nZephyr-20 | 2.5 l", rows.end + 1, "b")
    assert join_chunks([rows, more]) == (
        "Model | Tank\nZephyr-9 | 1.2 l\nZephyr-12 | 1.8 l\nZephyr-20 | 2.5 l"
    )
    said = section("The pump primes itself.", 0, "c")
    then = section("It takes ten seconds.", said.end + 1, "d")
    assert join_chunks([said, then]) == "The pump primes itself. It takes ten seconds."
    quoted = excerpt(join_chunks([rows, more]), ["Zephyr-12 | 1.8 l"])
    assert quoted.text.splitlines() == [
        "| Model | Tank |",
        "| --- | --- |",
        "| **Zephyr-12** | **1.8 l** |",
        "| Zephyr-20 | 2.5 l |",
    ]
    # A row may end in a full stop, like a sentence: between two rows it is still a row.
    noted = section("Model | Note\nZephyr-9 | Descale monthly.", 0, "e")
    after = section("Zephyr-12 | Descale weekly.", noted.end + 1, "f")
    assert join_chunks([noted, after]).splitlines()[-1] == "Zephyr-12 | Descale weekly."


def test_an_entry_quote_starts_at_its_label_even_when_its_sentence_came_before() -> None:
    text = (
        "Intro to the options.\n\n--data-only\n\nOnly meaningful for plain-text output. "
        "Dumps only the data.\n\n--clean\n\nOnly meaningful for plain-text output. "
        "Drops the objects first."
    )
    first = "Only meaningful for plain-text output."
    quoted = excerpt(text, [first], entry_label="--clean")
    assert (
        quoted.text
        == "--clean\n\n**Only meaningful for plain-text output.** Drops the objects first."
    )
    # Without the label, the first block holding the sentence is quoted, with what leads to it.
    assert excerpt(text, [first]).text.startswith("Intro to the options.")


def test_a_window_that_starts_inside_a_table_reaches_back_to_its_header() -> None:
    """The header row is two chunks before the quoted one: without it, the quote would show
    a row of data as the table's header."""
    chunks, start = [], 0
    for i, text in enumerate(
        [
            "Tanks of the models.",
            "Model | Tank\nZephyr-9 | 1.2 l",
            "Zephyr-12 | 1.8 l\nZephyr-16 | 2.1 l",
            "Zephyr-20 | 2.5 l\nZephyr-24 | 3.0 l",
            "Zephyr-30 | 3.6 l",
        ]
    ):
        chunks.append(section(text, start, f"t{i}"))
        start = chunks[-1].end + (2 if i == 0 else 1)
    window = neighbours(chunks, chunks[3])
    assert [c.id for c in window] == ["t1", "t2", "t3", "t4"]
    quoted = excerpt(join_chunks(window), ["Zephyr-20 | 2.5 l"])
    assert quoted.text.splitlines()[:3] == [
        "| Model | Tank |",
        "| --- | --- |",
        "| **Zephyr-20** | **2.5 l** |",
    ]
    # Text that is no table, or a table in another section, is not reached for.
    assert [c.id for c in neighbours(chunks, chunks[1])] == ["t0", "t1", "t2"]
    # Overlapping chunks (a chunker with overlap) reach back as well.
    overlapped = [replace(c, start=c.start - 3 * i) for i, c in enumerate(chunks)]
    assert neighbours(overlapped, overlapped[3])[0].id == "t1"
    other = replace(chunks[2], heading_path=("Other",))
    assert [c.id for c in neighbours([*chunks[:2], other, *chunks[3:]], chunks[3])] == ["t3", "t4"]


def test_a_quoted_passage_keeps_its_own_brackets_and_cites_only_itself(
    settings: Settings,
) -> None:
    from rag.answering import PreparedAnswer

    hit = make_hit("Read sys.argv[1] and a[0] to descale every 200 cycles.", "/d/c.md")
    prepared = PreparedAnswer(
        "how often",
        [hit],
        [Passage(1, hit, hit.chunk.text)],
        [],
        False,
        support=[Support(1, hit.chunk.text, 0.9)],
    )

    class Alone:  # the retriever as finish() uses it: the chunk has no neighbours
        embedder = HashEmbedder()

        def around(self, chunk: Chunk) -> list[Chunk]:
            return [chunk]

    answerer = Answerer(Alone(), ScriptedGenerator(), settings)  # type: ignore[arg-type]
    answer = answerer.finish(prepared, "Every 999 days [1].")
    assert answer.extractive
    assert answer.answer == "**Read sys.argv[1] and a[0] to descale every 200 cycles.** [1]"
    assert [c.n for c in answer.citations] == [1]


def test_an_answer_that_states_nothing_is_not_accepted() -> None:
    assert unsupported_claims("The answer is: [1].", [passage()])
    assert unsupported_claims("", [passage()])


def test_a_claim_is_checked_against_the_passage_it_cites() -> None:
    coffee = passage(n=1)
    office = passage("Bicycles go in the basement cage reached by the ramp on Dock Lane.", n=2)
    assert unsupported_claims("Descale every 200 brewing cycles [1].", [coffee, office]) == []
    assert unsupported_claims("Descale every 200 brewing cycles [2].", [coffee, office])
    assert (
        unsupported_claims(
            "Descale every 200 brewing cycles [1]. Bicycles go in the basement cage [2].",
            [coffee, office],
        )
        == []
    )


def test_a_question_naming_what_no_passage_mentions_abstains(
    settings: Settings,
    embedder: HashEmbedder,
    filled_store: VectorStore,
    coffee_answerer: tuple[Answerer, ScriptedGenerator],
) -> None:
    answerer, generator = coffee_answerer
    answer = answerer.ask("how often do I descale the machine with Kubernetes")
    assert answer.abstained and "'Kubernetes'" in answer.answer
    assert generator.prompts == []  # nothing generated
    allowed = settings.model_copy(update={"abstain_on_unmentioned": False})
    answerer = Answerer(HybridRetriever(embedder, filled_store, allowed), generator, allowed)
    assert not answerer.ask("how often do I descale the machine with Kubernetes").abstained


def test_a_looping_answer_fails_the_check_even_when_its_words_are_in_the_sources() -> None:
    hit = make_hit("tempfile.mkstemp creates a temporary file securely.")
    passages = [Passage(1, hit, hit.chunk.text)]
    looping = "The answer is:\n\n[1] tempfile.mkstemp\n\nThe answer is:\n\n[1]"
    assert "The answer is:" in unsupported_claims(looping, passages)
    stutter = "It creates a temporary temporary temporary file securely [1]."
    assert unsupported_claims(stutter, passages)
    # Said once, the same words pass; two identical one-word lines are not a loop.
    assert (
        unsupported_claims("tempfile.mkstemp creates a temporary file securely [1].", passages)
        == []
    )
    assert degenerate_lines("Yes.\nYes.") == []
    # Six words said again, within a line or across lines, are a loop; five are not.
    echo = (
        "__str__ returns a string representation of the object, while __repr__ returns a "
        "string representation of the object [1]"
    )
    assert degenerate_lines(echo) == [echo.removesuffix(" [1]")]
    across = "Use the argparse module to parse the line.\n\nUse the argparse module to parse"
    assert degenerate_lines(across) == ["Use the argparse module to parse"]
    five = "Use the argparse module now to read it, or use the argparse module now."
    assert degenerate_lines(five) == []
    # A long answer may repeat a phrase far apart.
    filler = " ".join(f"word{i}" for i in range(40))
    assert (
        degenerate_lines(
            f"Use the argparse module to parse it. {filler} Use the argparse module to parse it."
        )
        == []
    )


def test_an_answer_that_announces_itself_fails_the_check() -> None:
    hit = make_hit("The http.server module defines classes for implementing HTTP servers. 3.")
    passages = [Passage(1, hit, hit.chunk.text)]
    for announced in [
        "The answer is: 3 [1]",
        "The answer to your question is:\n\n[1] http.server",
        'The answer to the question "which module serves HTTP?" is http.server [1].',
    ]:
        assert unsupported_claims(announced, passages), announced
    assert degenerate_lines("The http.server module defines classes for HTTP servers [1].") == []
    assert degenerate_lines("Whether the answer is cached depends on the server.") == []


def test_an_answer_that_only_restates_the_question_is_unsupported() -> None:
    asked = "How long does the warranty last?"
    assert unsupported_claims("The warranty lasts [1].", [passage()], question=asked)
    assert unsupported_claims(
        "The warranty lasts as long as it lasts.", [passage()], question=asked
    )
    assert (
        unsupported_claims("The warranty lasts two years [1].", [passage()], question=asked) == []
    )


_JSON = (
    "json.dumps(obj): Serialize obj to a JSON formatted str.\n\n"
    "json.loads(s): Deserialize s, a str holding a JSON document, to a Python object."
)
_TAR = (
    "tarfile.TarFile.add(name): Add the file name to the archive.\n\n"
    "tarfile.TarFile.addfile(tarinfo): Add the TarInfo object tarinfo to the archive, "
    "reading its data from a file object."
)
_BUILD = (
    "The `--keep-going` option builds every target it can after an error. "
    "The `make-docs` script writes the manual."
)
_BUILD_ASKED = "Which option goes on building after an error?"
_BUILD_RIGHT = "The `--keep-going` option builds every target it can after an error [1]."


@pytest.mark.parametrize(
    ("text", "asked", "wrong", "right"),
    [
        pytest.param(
            _JSON,
            "Which function turns a JSON document into a Python object?",
            "json.dumps turns a JSON document into a Python object [1].",
            "json.loads turns a JSON document into a Python object [1].",
            id="a name the passage lists elsewhere",
        ),
        pytest.param(
            _TAR,
            "Which method adds a TarInfo object to the archive?",
            "TarFile.add adds a TarInfo object to the archive [1].",
            "TarFile.addfile adds a TarInfo object to the archive [1].",
            id="a name contained in the supported one",
        ),
        pytest.param(
            _BUILD,
            _BUILD_ASKED,
            "The `--keep` option builds every target it can after an error [1].",
            _BUILD_RIGHT,
            id="an option with hyphens, cut short",
        ),
        pytest.param(
            _BUILD,
            _BUILD_ASKED,
            "The `--keep-going-all` option builds every target after an error [1].",
            _BUILD_RIGHT,
            id="an option with hyphens, made longer",
        ),
    ],
)
def test_a_name_is_support_only_when_the_passage_says_it_whole(
    text: str, asked: str, wrong: str, right: str
) -> None:
    assert unsupported_claims(wrong, [passage(text)], question=asked)
    assert unsupported_claims(right, [passage(text)], question=asked) == []


def test_backticked_names_with_hyphens_are_identifiers() -> None:
    assert identifiers("Run `make-docs` or `--keep-going`, then os.path.join()") == [
        "make-docs",
        "--keep-going",
        "os.path.join",
    ]


def test_an_answer_that_copies_a_heading_path_states_nothing() -> None:
    chunk = Chunk(
        id="x",
        source="/d/b.md",
        title="Builder",
        text="The `--keep-going` option builds every target it can after an error.",
        context="builder(1) > OPTIONS",
    )
    shown = [Passage(1, Hit(chunk, 0.5, 0.5), chunk.text)]
    asked = "How do I keep building after an error?"
    assert unsupported_claims("[1] builder(1) > OPTIONS\n\n[1] builder(1)", shown, question=asked)
    said = "The `--keep-going` option builds every target it can after an error [1]."
    assert unsupported_claims(said, shown, question=asked) == []


def test_a_claim_of_the_opposite_polarity_is_unsupported() -> None:
    text = "Guest accounts cannot create repositories. Owners can delete them."
    asked = "Can guest accounts create repositories?"
    yes = "Yes, guest accounts can create repositories [1]."
    assert unsupported_claims(yes, [passage(text)], question=asked)
    no = "No, guest accounts cannot create repositories [1]."
    assert unsupported_claims(no, [passage(text)], question=asked) == []


def test_support_must_come_from_one_sentence_about_the_question() -> None:
    # Every word is in the passage, but spread over sentences about different things.
    asked = "What does the warranty cover?"
    spread = "The warranty covers descaling every 25 minutes [1]."
    assert unsupported_claims(spread, [passage()], question=asked)
    assert (
        unsupported_claims("The warranty covers the pump [1].", [passage()], question=asked) == []
    )


def test_a_term_named_only_in_a_sentence_about_something_else_is_named_in_passing() -> None:
    question = "How do I add a Zorblang widget with a colour to another widget?"
    aside = (
        "Handlers are set up in the config file. For more on this setup, see the Zorblang manual."
    )
    assert named_in_passing(question, ["Zorblang"], aside, "Logging › Handlers") == ["Zorblang"]
    # A sentence naming the term that also says something about the question is no aside,
    # nor is a quote whose heading path, title or source names the term.
    about = aside + " Zorblang widgets take a colour when they are added."
    assert named_in_passing(question, ["Zorblang"], about, "Logging › Handlers") == []
    assert named_in_passing(question, ["Zorblang"], aside, "Zorblang › Setup") == []
    # A term the quote never names is not for this rule (the quote leaves it out).
    assert named_in_passing(question, ["Quux"], aside, "Logging") == []
    # Nor is the term's own entry, whose label names it and nothing else, though the entries
    # after it name the term in passing.
    entries = (
        "zorb_mem (integer)\n\nSets the most memory a sort uses.\n\n"
        "hash_factor (integer)\n\nMultiplies zorb_mem for hash tables."
    )
    assert named_in_passing("What does zorb_mem control?", ["zorb_mem"], entries, "Memory") == []
    others = entries.split("\n\n", 2)[2]  # without zorb_mem's entry
    assert named_in_passing("What does zorb_mem control?", ["zorb_mem"], others, "") == ["zorb_mem"]
    # A question that asks nothing beside the term gives nothing to compare with.
    assert named_in_passing("What is Zorblang?", ["Zorblang"], aside, "Logging") == []


def test_a_term_named_only_under_see_also_is_named_in_passing() -> None:
    """A "See also" list names other documents, each on a line that looks like an entry's
    label: what it names is not the quote's subject, until the next entry's label."""
    question = "How do I make a Zorblang widget of zeros?"
    quote = (
        "Widgets hold values of one type.\n\nSee also\n\nModule gadget\n\n"
        "Packing of gadgets.\n\nZorblang\n\nThe Zorblang package defines another widget."
    )
    assert named_in_passing(question, ["Zorblang"], quote, "widget") == ["Zorblang"]
    # Named in the quote's own text too, it is not in passing.
    named = quote.replace("one type.", "one type, as Zorblang widgets of zeros do.")
    assert named_in_passing(question, ["Zorblang"], named, "widget") == []
    # An entry's label after the list ends it: what follows is the quote's own again.
    entry = quote + "\n\nwidget.zeros(n)\n\nMakes a Zorblang widget of n zeros."
    assert named_in_passing(question, ["Zorblang"], entry, "widget") == []
