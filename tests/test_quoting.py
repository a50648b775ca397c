from __future__ import annotations

from rag.answering import Answerer, quote
from rag.config import Settings
from rag.context import Passage
from rag.entries import entry_sentence
from rag.quoting import excerpt
from rag.retrieval import HybridRetriever
from rag.store.base import VectorStore
from rag.types import Chunk, Hit
from tests.fakes import HashEmbedder, ScriptedGenerator

TABLE = (
    "The pump modes are listed below.\n\n"
    "Mode | Pressure | Use\n"
    "eco | 6 bar | daily brewing at a lower noise level\n"
    "boost | 15 bar | espresso with a thick crema layer\n"
    "rinse | 1 bar | flushing the circuit after descaling\n\n"
    "Switch modes with the dial on the front."
)


def test_a_quoted_table_is_rows_under_their_header() -> None:
    quoted = excerpt(TABLE, ["boost | 15 bar | espresso with a thick crema layer"], span=180)
    lines = quoted.text.splitlines()
    assert lines[:3] == [
        "| Mode | Pressure | Use |",
        "| --- | --- | --- |",
        "| **boost** | **15 bar** | **espresso with a thick crema layer** |",
    ]
    assert "| rinse | 1 bar | flushing the circuit after descaling |" in lines
    assert "eco" not in quoted.text  # rows before the answer are left out
    assert quoted.supporting == ["boost | 15 bar | espresso with a thick crema layer"]
    assert "**" not in quoted.plain
    # With room left, what leads up to the table comes along.
    assert excerpt(TABLE, ["boost | 15 bar | espresso"]).text.startswith("The pump modes")


def test_a_row_whose_last_cell_is_empty_keeps_its_cells() -> None:
    table = (
        "Item | Upper limit | Comment\n"
        "columns per table | 1,600 | less for wide types\n"
        "parameters | 65,535 |"
    )
    quoted = excerpt(table, ["parameters | 65,535"])
    assert quoted.text.splitlines()[-1] == "| **parameters** | **65,535** |  |"


def test_preformatted_text_with_pipes_is_quoted_as_written_not_as_a_table() -> None:
    synopsis = (
        "SET [ SESSION | LOCAL ] ROLE role_name\nSET [ SESSION | LOCAL ] ROLE NONE\nRESET ROLE"
    )
    shell = "=> SELECT * FROM modes;\n mode | bar\n------+-----\n eco  |   6\n(1 row)"
    grammar = 'sign  ::=  "+" | "-"\ndigit ::=  "0" | "1"'
    for text in (synopsis, shell, grammar):
        quoted = excerpt(f"The forms are these.\n\n{text}", ["The forms are these."])
        assert "---" not in quoted.text.replace("------+-----", "")
        assert text in quoted.plain, text  # line for line, as the document has it
    # A table whose cells hold brackets, one of them left open, is still a table.
    atoms = "Atom | Description\n(re) | a group\n( | an open bracket\n[chars] | a set"
    assert excerpt(atoms, ["(re) | a group"]).text.startswith("| Atom | Description |\n| ---")


def test_the_supporting_sentence_is_bold_and_what_follows_comes_along() -> None:
    text = (
        "The grinder has twelve settings.\n\n"
        "Setting 1 is the finest grind and suits espresso machines with pressurised baskets "
        "and small doses.\n\nSetting 12 is the coarsest grind, for French press and cold brew "
        "steeped for many hours."
    )
    quoted = excerpt(
        text, ["Setting 12 is the coarsest grind, for French press and cold brew"], span=200
    )
    assert quoted.text.startswith("Setting 1 is the finest")  # a short block brings no label
    assert "**Setting 12 is the coarsest grind, for French press and cold brew**" in quoted.text
    # Far-away text does not come along: a quote is as long as its answer needs.
    long_text = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(10))
    short = excerpt(long_text, ["Paragraph 4 word word word"], span=900)
    assert short.plain.startswith("Paragraph 3") or short.plain.startswith("Paragraph 4")
    assert "Paragraph 9" not in short.plain


def test_a_lead_in_or_a_label_comes_with_the_sentence_it_introduces() -> None:
    text = (
        "Unrelated opening paragraph about the warranty terms of the machine and its parts.\n\n"
        "To reset the machine:\n\nHold the power button for ten seconds until the lamp blinks."
    )
    quoted = excerpt(
        text, ["Hold the power button for ten seconds until the lamp blinks."], span=100
    )
    assert quoted.text.startswith("To reset the machine:\n\n**Hold the power button")
    assert "warranty" not in quoted.text
    labelled = "timeout_seconds\n\nHow long a request may wait for the pump before it fails."
    quoted = excerpt(labelled, ["timeout_seconds: How long a request may wait for the pump"])
    assert quoted.text.startswith("timeout_seconds\n\n**How long a request may wait")


def test_an_entry_with_several_signatures_is_quoted_from_its_first() -> None:
    """A function's signatures label its entry together, a block each, before its text."""
    signatures = "zorb ( n integer ) → setof integer\n\nzorb ( n bigint ) → setof bigint"
    text = f"Other functions come first.\n\n{signatures}\n\nMakes a series of zorbs up to n."
    assert entry_sentence("zorb", text) == (
        "zorb ( n integer ) → setof integer",
        "Makes a series of zorbs up to n.",
    )
    quoted = excerpt(
        text,
        ["Makes a series of zorbs up to n."],
        entry_label="zorb ( n integer ) → setof integer",
    )
    assert quoted.text == f"{signatures}\n\n**Makes a series of zorbs up to n.**"


def test_a_quote_from_an_entry_ends_where_the_next_entry_of_its_kind_starts() -> None:
    options = (
        "-d\n--descale\n\nRuns the descaling cycle, then exits.\n\n"
        "Rinse the tank before you brew again.\n\n"
        "-e\n--eco\n\nBrews at a lower temperature to save power.\n\n"
        "-f filter\n--filter=filter\n\nNames the filter in use."
    )
    text = f"Usage notes come first, and say how options are given.\n\n{options}"
    # The entry of the option asked about: what it says comes along; the next option does
    # not, nor what stands above its label.
    quoted = excerpt(text, ["Runs the descaling cycle, then exits."], entry_label="-d\n--descale")
    assert quoted.plain == (
        "-d\n--descale\n\nRuns the descaling cycle, then exits.\n\n"
        "Rinse the tank before you brew again."
    )
    functions = (
        "zorb ( n integer ) → setof integer\n\nMakes a series of zorbs up to n.\n\n"
        "zorb(3) → 1, 2, 3\n\nzarp ( z zorb ) → integer\n\nCounts a zorb's parts."
    )
    quoted = excerpt(
        functions,
        ["Makes a series of zorbs up to n."],
        entry_label="zorb ( n integer ) → setof integer",
    )
    # Its own example (the same name) stays; the next function's entry does not.
    assert quoted.plain.endswith("zorb(3) → 1, 2, 3")
    # Help's "-?" labels an entry as any other option does.
    helps = "-?\n-h\n--help\n\nPrints the options and exits.\n\n--help-env\n\nPrints the variables."
    quoted = excerpt(helps, ["Prints the options and exits."], entry_label="-?\n-h\n--help")
    assert quoted.plain == "-?\n-h\n--help\n\nPrints the options and exits."
    # A label that only came along with the best sentence stops nothing: the option asked
    # about may be one of those that follow.
    plain = excerpt(text, ["Runs the descaling cycle, then exits."]).plain
    assert plain.startswith("Usage notes") and plain.endswith("Names the filter in use.")


def test_a_quote_does_not_end_at_a_label_without_what_it_labels() -> None:
    filler = (
        "The pump is primed before the first brew and after every descaling cycle. " * 3
    ).strip()
    text = (
        f"Descale the machine every 200 brewing cycles.\n\n{filler}\n\n"
        "--eco\n\nBrews at a lower temperature to save power.\n\n"
        f"{filler}\n\nNote\n\n" + "The warranty does not cover scale. " * 20
    )
    best = ["Descale the machine every 200 brewing cycles."]
    # Room ends after an option's label, or after a heading: the label or heading goes.
    quoted = excerpt(text, best, span=len(filler) + 60).plain
    assert quoted.endswith("after every descaling cycle.") and "--eco" not in quoted
    quoted = excerpt(text, best, span=2 * len(filler) + 110).plain
    assert quoted.endswith("after every descaling cycle.") and "Note" not in quoted
    assert "--eco\n\nBrews at a lower temperature to save power." in quoted
    # Nor at a lead-in whose example did not fit, nor at that example's first line alone.
    example = "Example:\n\nimport zorb\n\n" + "zorb.brew(strength=3, cups=2)\n" * 5
    lead_in = excerpt(f"{best[0]}\n\n{filler}\n\n{example}", best, span=300)
    assert lead_in.plain.endswith("after every descaling cycle.")
    # A signature of a name labelled above is an example of it, which may end a quote.
    functions = "zorb ( n integer ) → setof integer\n\nMakes zorbs.\n\nzorb(3) → 1, 2, 3"
    assert excerpt(functions, ["Makes zorbs."]).plain.endswith("zorb(3) → 1, 2, 3")
    assert not excerpt(functions + "\n\nzarp(z)", ["Makes zorbs."]).plain.endswith("zarp(z)")


def test_what_leads_up_to_a_quote_does_not_open_with_the_end_of_another_entry() -> None:
    text = (
        "brew.pour(cup)\n\nPours one cup. The cup must be warm.\n\n"
        "Deprecated since version 2.1: The optional parameter spout.\n\n"
        "brew.grind(beans, fineness)\n\nGrinds the beans.\n\n"
        "A finer grind extracts more flavour from the same beans."
    )
    best = ["A finer grind extracts more flavour from the same beans."]
    # Room for the blocks above the answer but not for pour's label: grind's entry opens it.
    quoted = excerpt(text, best, span=len(text) - 40).plain
    assert quoted.startswith("brew.grind(beans, fineness)"), quoted
    # Room for all: pour's entry comes whole, from its label.
    assert excerpt(text, best).plain.startswith("brew.pour(cup)")
    # A version note is about what came before it, label or not.
    long = f"{best[0]} It takes longer to pour, and the cup comes out stronger and more bitter."
    notes = f"Grinders are sold apart.\n\nNew in version 2.0.\n\n{long} {long}"
    quoted = excerpt(notes, best, span=len(notes) - 10).plain
    assert quoted.startswith(best[0])


def test_a_quote_that_opens_inside_an_entry_names_its_label() -> None:
    text = (
        "--dry-run\n\nShow what would be brewed.\n\n"
        "--strength[=<level>]\n--no-strength\n\nSet how strong the brew is.\n\n"
        "The possible levels are:\n\n"
        "mild - Brews a light cup that most guests drink without sugar or milk in it.\n\n"
        "bold - Brews a dark cup with a thick crema that stands for a minute or more."
    )
    best = ["bold - Brews a dark cup with a thick crema that stands for a minute or more."]
    # Room for the levels but not for the label: the quote says whose levels they are.
    quoted = excerpt(text, best, span=200)
    assert quoted.plain.startswith("The possible levels are:"), quoted.plain
    assert quoted.entry == "--strength[=<level>], --no-strength"
    # A quote that opens at the label, or above every label, needs none.
    assert excerpt(text, best).entry is None
    assert excerpt(TABLE, ["Switch modes with the dial on the front."]).entry is None
    # The heading line ends with it; the levels fill a quote's span.
    long = text.replace("in it.", "in it." + " Mild is the default." * 60)
    chunk = Chunk(
        id="s", source="/d/brew.1.html", title="brew(1)", text=long, heading_path=("OPTIONS",)
    )
    line = quote(Passage(1, Hit(chunk, 0.5, 0.5), long), best=best)[0].split("\n\n")[0]
    assert line == "*brew(1) › OPTIONS › --strength[=<level>], --no-strength*", line


def test_quote_mode_answers_without_generating(
    settings: Settings, embedder: HashEmbedder, filled_store: VectorStore
) -> None:
    quoting = settings.model_copy(update={"answer_mode": "quote"})
    generator = ScriptedGenerator(["never asked [1]."])
    answerer = Answerer(HybridRetriever(embedder, filled_store, quoting), generator, quoting)
    assert answerer.quoting
    answer = answerer.ask("how often do I descale the machine")
    assert answer.extractive and not answer.abstained
    assert answer.answer == "**descale the machine every 200 cycles** [1]"
    assert answer.supporting[0].text == "descale the machine every 200 cycles"
    assert generator.prompts == []  # nothing was generated
    # 'auto' quotes with the local model and generates with an OpenAI-compatible one.
    auto = settings.model_copy(update={"answer_mode": "auto"})
    assert Answerer(answerer.retriever, generator, auto).quoting
    upstream = auto.model_copy(update={"generator": "openai"})
    assert not Answerer(answerer.retriever, generator, upstream).quoting


def test_quote_mode_quotes_the_best_passage_when_no_sentence_ranks(settings: Settings) -> None:
    from rag.answering import PreparedAnswer
    from tests.fakes import make_hit

    hit = make_hit("x = 1\ny = 2", "/d/code.md")  # no sentence long enough to rank
    prepared = PreparedAnswer("what is y", [hit], [Passage(1, hit, hit.chunk.text)], [], False)

    class Alone:
        embedder = HashEmbedder()

        def around(self, chunk: Chunk) -> list[Chunk]:
            return [chunk]

    quoting = settings.model_copy(update={"answer_mode": "quote"})
    answerer = Answerer(Alone(), ScriptedGenerator(), quoting)  # type: ignore[arg-type]
    answer = answerer.finish(prepared, "")
    assert answer.extractive and answer.answer == "x = 1\ny = 2 [1]"
    assert [c.source for c in answer.citations] == ["/d/code.md"]


def test_lines_wrapped_at_a_fixed_width_are_joined_and_others_kept() -> None:
    text = (
        "Fill the water tank with 500 ml of water and one sachet of descaler, place a large\n"
        "cup under the spout and hold both buttons for five seconds. The cycle\n"
        "takes about 25 minutes.\n"
        "Rinse the tank afterwards.\n\n"
        "Opening hours\nThe office opens at 8:00.\n\n"
        "import os\nimport sys\n    x = os.getcwd()"
    )
    quoted = excerpt(text, ["The cycle takes about 25 minutes."])
    first, second, third = quoted.text.split("\n\n")
    assert first == (
        "Fill the water tank with 500 ml of water and one sachet of descaler, place a large "
        "cup under the spout and hold both buttons for five seconds. "
        "**The cycle takes about 25 minutes.**\nRinse the tank afterwards."
    )
    assert second == "Opening hours\nThe office opens at 8:00."  # a heading line stays
    assert third == "import os\nimport sys\n    x = os.getcwd()"  # code stays as written
    assert quoted.supporting == ["The cycle\ntakes about 25 minutes."]


def test_bold_markers_hold_no_spaces_inside() -> None:
    text = "Zephyr-9 quick start  \nThe Zephyr-9 pump must be primed with 40 ml of water."
    quoted = excerpt(text, [text])
    assert quoted.text == (
        "**Zephyr-9 quick start**  \n**The Zephyr-9 pump must be primed with 40 ml of water.**"
    )
