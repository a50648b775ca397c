"""The word, sentence and named-term helpers of rag.text."""

from __future__ import annotations

from rag.text import (
    content_words,
    defined_term,
    entry_labels,
    entry_sentence,
    entry_term,
    is_entry_label,
    label_kind,
    labelled_sentences,
    long_options,
    lookup_words,
    named_terms,
    names_option,
    names_option_value,
    names_term,
    numbers,
    option_item,
    option_value,
    split_sentences,
    unmentioned_terms,
    word_bases,
    word_tokens,
)

TEXT = (
    "Descale the machine every 200 brewing cycles. The cycle takes about 25 minutes. "
    "The warranty lasts two years and covers the pump."
)


def test_words_and_numbers_are_read_as_written() -> None:
    assert word_tokens("Use sys.monitoring in Python 3.11, 1,000 x-rays!") == [
        "Use",
        "sys",
        "monitoring",
        "in",
        "Python",
        "3.11",
        "1,000",
        "x-rays",
    ]
    assert numbers("Python 3.11 costs 0 and sha256 hashes 1,000 times.") == {
        "3.11",
        "0",
        "256",
        "1,000",
    }
    assert numbers("no digits here") == set()


def test_content_words_are_lower_cased_without_stopwords() -> None:
    assert content_words("How long is the Warranty of the pump?") == {"long", "warranty", "pump"}
    # Words about the question or answer itself say nothing of the topic.
    assert content_words("According to the passage, the answer is: 200 cycles") == {
        "200",
        "cycles",
    }
    assert content_words("It is what it is.") == set()


def test_split_sentences() -> None:
    assert split_sentences(TEXT) == [
        "Descale the machine every 200 brewing cycles.",
        "The cycle takes about 25 minutes.",
        "The warranty lasts two years and covers the pump.",
    ]
    # List items and paragraphs end a sentence too; pieces too short to support anything go.
    listed = "Install it first with pip, then:\n- Run the  server on port 8000\n- ok\n\nDone."
    assert split_sentences(listed) == [
        "Install it first with pip, then:",
        "- Run the server on port 8000",
    ]
    # An ellipsis between spaces leaves out part of a sentence; one after a word ends it.
    elided = (
        "Use DROP ... IF EXISTS to drop it quietly. It goes on and on... "
        "It ends there, once and for all."
    )
    assert split_sentences(elided) == [
        "Use DROP ... IF EXISTS to drop it quietly.",
        "It goes on and on...",
        "It ends there, once and for all.",
    ]


def test_a_definition_term_labels_its_first_sentence() -> None:
    text = "work_mem (integer)\n\nSets the base maximum amount of memory. It is 4MB by default."
    assert labelled_sentences(text) == [
        "work_mem (integer): Sets the base maximum amount of memory.",
        "It is 4MB by default.",
    ]
    assert labelled_sentences("a short last line with no stop") == [
        "a short last line with no stop"
    ]


def test_a_question_that_asks_what_a_named_term_is_or_does_defines_it() -> None:
    assert defined_term("What does work_mem control?") == "work_mem"
    assert defined_term("what's GIL?") == "GIL"
    assert defined_term("So what is the `http.postBuffer` setting for?") == "http.postBuffer"
    assert defined_term("what does the := operator do?") is None  # names nothing
    assert defined_term("What is a list comprehension?") is None  # a plain word
    # A question asking how to do something with a code name is answered by its entry too;
    # an option is a defining question's term only, and a comparison has none.
    assert entry_term("What does work_mem control?") == "work_mem"
    assert entry_term("How do I read rows as dicts with csv.DictReader?") == "csv.DictReader"
    assert entry_term("How do I set work_mem? And shared_buffers?") == "work_mem"
    assert entry_term("How do I run git gc --auto?") is None
    assert entry_term("How do I use a Counter?") is None  # a name, not code
    assert entry_term("What is the difference between re.match and re.search?") is None
    assert defined_term("How do I set work_mem?") is None  # asks how, not what
    assert defined_term("what's the difference between re.match and re.search?") is None
    # An option named in the question is what it asks about, wherever it stands.
    assert defined_term("What does git gc --aggressive do differently?") == "--aggressive"
    assert defined_term("What is the -j option of pg_restore for?") == "-j"
    assert defined_term("What does a non-empty string mean?") is None  # a hyphenated word
    # An option given a named value is asked about the value, one item of the option's entry.
    assert defined_term("What does the -X frozen_modules option do?") == "frozen_modules"
    assert defined_term("What does python -X importtime show?") == "-X"  # a plain word
    # Only the first sentence's option; a comparison is not answered by one entry.
    assert defined_term('What is work_mem? I ran psql -c "show work_mem".') == "work_mem"
    assert defined_term("What is the difference between -c and -C?") is None


def test_long_options_are_matched_as_written_or_in_their_no_form() -> None:
    asked = "Can pg_zorb --incremental or --no-sync-- skip -c, co-operate, or use --x?"
    assert long_options(asked) == ["--incremental", "--no-sync"]
    assert long_options("What does a non-empty string mean?") == []
    assert names_option("-j njobs\n--jobs=njobs", "--jobs")
    assert names_option("See --[no-]verify below.", "--no-verify")
    assert names_option("See --[no-]verify below.", "--verify")
    assert not names_option("--verify", "--no-verify")  # the negation is its own option
    assert not names_option("--incremental-wal", "--incremental")
    assert not names_option("--exclude-table=pattern", "--exclude-extension")


def test_short_options_run_together_are_looked_up_by_the_first() -> None:
    assert entry_labels("-fd") == ["-fd", "-f"]
    assert entry_labels("-Werror") == ["-Werror", "-W"]
    assert entry_labels("-f") == ["-f"]
    assert entry_labels("--force") == ["--force"]
    assert entry_labels("work_mem") == ["work_mem"]


def test_short_options_are_matched_as_written() -> None:
    assert names_option("-O\n\nRemove assert statements.", "-O")
    assert not names_option('elif o in ("-o", "--output"):', "-O")  # -o is another option
    assert not names_option("-OO", "-O") and not names_option("--O", "-O")
    assert names_term("Run it with -O first.", "-O") and not names_term("with -o", "-O")


def test_an_option_given_a_value_is_asked_about_that_item() -> None:
    assert option_value("What does python -X importtime do?") == ("-X", "importtime")
    assert option_value("What does the -W error option do?") == ("-W", "error")
    assert option_value("What does pg_zorb --format tar do?") == ("--format", "tar")
    # No value: the word after the option names the option itself, or is a function word.
    assert option_value("What does the -O option do?") is None
    assert option_value("What does -v mean?") is None
    assert option_value("What does -x do?") is None
    assert option_value("How do I use -X importtime?") is None  # not a defining question
    assert names_option_value("Try -X importtime=2.", "-X", "importtime")
    assert names_option_value("-Werror    # Convert to exceptions", "-W", "error")
    assert names_option_value("--format=tar", "--format", "tar")
    assert not names_option_value("--formattar", "--format", "tar")  # a long one is apart
    assert not names_option_value("-X importtimes", "-X", "importtime")
    entry = (
        "-Z\n\nReserved for options. The values are:\n\n"
        "-Z faultless to be faultless;\n\n-Z slowimport to show how long each import takes. "
        "It shows module names.\n\n"
        "-Wdefault   # Warn once\n-Werror     # Convert to exceptions"
    )
    asked = "What does -Z slowimport do?"
    assert option_item(asked, entry) == "-Z slowimport to show how long each import takes."
    # In preformatted lines, the line that names it.
    assert option_item("What is -W error for?", entry) == "-Werror     # Convert to exceptions"
    # A paragraph a file wrapped at a fixed width: the sentence, not the line, names it.
    wrapped = (
        "Tracing of imports is turned on with the option -Z slowimport, which prints how\n"
        "long each import takes in microseconds."
    )
    assert option_item(asked, wrapped) == wrapped.replace("\n", " ")
    assert option_item("What does -Z quick do?", entry) is None
    assert option_item("What does -Z do?", entry) is None


def test_an_entry_label_is_a_short_line_that_starts_with_the_term() -> None:
    for label in (
        "work_mem (integer)",
        "EAFP",
        "exception UnboundLocalError",  # a keyword first
        "json.dumps(obj, *, skipkeys=False)",  # a qualified name
    ):
        term = label.split("(")[0].split()[-1].rsplit(".", 1)[-1]
        assert is_entry_label(term, label), label
    assert is_entry_label("json.dumps", "json.dumps(obj, *, skipkeys=False)")
    assert not is_entry_label("dataclasses.field", "class dataclasses.Field")  # as written
    assert not is_entry_label("work_mem", "maintenance_work_mem (integer)")  # another term
    assert not is_entry_label("work_mem", "work_mem.extra")
    assert not is_entry_label("search_path", "SHOW search_path")  # a command, not a label
    assert not is_entry_label("EAFP", "EAFP is a style.")  # a sentence
    assert not is_entry_label("EAFP", "EAFP\nLBYL")  # two lines
    assert not is_entry_label("AWS", "aws (list)")  # names with capitals match as written
    assert not is_entry_label("CPython", "in CPython debug builds, all warnings are shown")
    assert not is_entry_label("CPython", "CPython debug builds show all warnings")
    assert not is_entry_label("asyncio.gather", "asyncio.gather() is faster. (By Yury.)")
    assert not is_entry_label("max_connections", "max_connections = 100")  # an example
    assert is_entry_label("sys.path", "sys.path")
    # A signature may run long with many arguments; a line as long of anything else is text.
    arguments = ", ".join(f"arg{n}=None" for n in range(15))
    assert is_entry_label("zorb.run", f"zorb.run(args, *, {arguments})")
    assert is_entry_label("Zorb", f"class zorb.Zorb({arguments}) -> Zorb")
    assert not is_entry_label("zorb.run", f"zorb.run(args) takes {arguments}")
    assert not is_entry_label("zorb.run", f"zorb.run(args, {arguments}")  # never closed
    assert not is_entry_label("zorb.run", f"zorb.run({arguments * 3})")  # too long
    # An option's label lists its forms, a line each.
    assert is_entry_label("--clean", "-c\n--clean")
    assert is_entry_label("--jobs", "-j njobs\n--jobs=njobs")
    assert is_entry_label("--force-with-lease", "--[no-]force-with-lease\n--force-with-lease=<ref>")
    assert not is_entry_label("-c", "-C\n--create")  # options are matched as written
    assert not is_entry_label("--no", "--no-blobs")
    assert is_entry_label("--verbose", "-v, --verbose")  # forms on one line
    assert not is_entry_label("--clean", "--clean Drop the objects first")  # and its text
    assert not is_entry_label("--clean", "-c\n--clean\nDrops objects first.")  # a sentence


def test_a_label_kind_is_an_option_or_a_signature_and_what_it_names() -> None:
    assert label_kind("-l\n--list") == ("option", "-l")
    assert label_kind("-j njobs\n--jobs=njobs") == ("option", "-j")
    assert label_kind("--ignored[=<mode>]") == ("option", "--ignored")
    assert label_kind("-a, --all") == ("option", "-a")
    assert label_kind("--[no-]rinse") == ("option", "--[no-]rinse")
    assert label_kind("class zorb.Spool(max_size=0, mode='w+b')") == ("signature", "zorb.Spool")
    assert label_kind("brew_temp (integer)") == ("signature", "brew_temp")
    assert label_kind("zorb ( n integer ) → setof integer") == ("signature", "zorb")
    # A list item, a sentence and two words are no labels.
    for block in ("- foam the milk", "Returns the size of the tank.", "Descale often", "--"):
        assert label_kind(block) is None


def test_the_entry_sentence_is_the_first_after_its_label() -> None:
    text = (
        "seq_page_cost (floating point)\n\nSets the cost of a sequential fetch.\n\n"
        "Uses work_mem in passing.\n\nwork_mem (integer)\n\n"
        "Sets the base maximum amount of memory. It is 4MB by default."
    )
    assert entry_sentence("work_mem", text) == (
        "work_mem (integer)",
        "Sets the base maximum amount of memory.",
    )
    assert entry_sentence("seq_page_cost", text) == (
        "seq_page_cost (floating point)",
        "Sets the cost of a sequential fetch.",
    )
    options = (
        "-c\n--clean\n\nDrop the database objects first. Then create them.\n\n"
        "-C\n--create\n\nCreate the database itself first."
    )
    assert entry_sentence("--clean", options) == ("-c\n--clean", "Drop the database objects first.")
    assert entry_sentence("-C", options) == ("-C\n--create", "Create the database itself first.")
    # A definition after a colon is no label: the next entry's sentence is not EAFP's.
    glossary = "EAFP: Easier to ask\n\nGIL: The lock that the interpreter holds while it runs."
    assert entry_sentence("EAFP", glossary) is None
    assert entry_sentence("shared_buffers", text) is None
    assert entry_sentence("work_mem", "work_mem (integer)") is None  # a label with no entry


def test_named_terms_are_identifiers_and_names_not_plain_words() -> None:
    assert named_terms("How do I define a Django model with a foreign key?") == ["Django"]
    assert named_terms("How do I set max_connections in postgresql.conf?") == [
        "max_connections",
        "postgresql.conf",
    ]
    assert named_terms("Use the @typing.override decorator with NumPy on AWS.") == [
        "typing.override",
        "NumPy",
        "AWS",
    ]
    assert named_terms("what's the difference between a list and a tuple?") == []
    assert named_terms("How To Read A File In Python") == []  # Title Case: capitals say nothing
    assert named_terms("I read it, e.g. twice. Then what?") == []  # "I", "e.g", sentence starts
    # A name in parts joined by a slash is one name, as a path is one path.
    assert named_terms("How do I write a PL/pgSQL function over TCP/IP?") == ["PL/pgSQL", "TCP/IP"]
    assert named_terms("Can I keep hooks in .git/hooks?") == []


def test_unmentioned_terms_match_whole_words_and_acronyms_as_written() -> None:
    texts = ["coroutine asyncio.wait(aws, *, timeout=None)", "Django is not here. Lambda is."]
    assert unmentioned_terms("How do I deploy to AWS Lambda?", texts) == ["AWS"]
    assert unmentioned_terms("Does django support it?", texts) == []
    assert unmentioned_terms("How does asyncio.wait work?", texts) == []
    assert unmentioned_terms("How does asyncio.waiter work?", texts) == ["asyncio.waiter"]
    # The head of a path is no mention: a time zone name does not speak of the country.
    zones = ["For example, 'US/Eastern', 'Australia/Melbourne' or 'Europe/Amsterdam'."]
    assert unmentioned_terms("What is the capital of Australia?", zones) == ["Australia"]
    assert unmentioned_terms("What time is it in Amsterdam?", zones) == []
    # A name joined by a slash is mentioned whole, not as a path's head.
    assert unmentioned_terms("How do I write a PL/pgSQL trigger?", ["Write it in PL/pgSQL."]) == []


def test_lookup_words_and_the_bases_a_word_may_derive_from() -> None:
    assert lookup_words("How do I plot with matplotlib 3.8 in my app? Plot it!") == [
        "plot",
        "matplotlib",
        "app",
    ]
    assert "folders" in word_bases("subfolders") and "sow" in word_bases("sown")
    assert "set" not in word_bases("preset")  # too short a base to tell
    assert word_bases("matplotlib") == word_bases("bcrypt") == []
    # British spellings, for documents written the American way.
    assert "initialize" in word_bases("initialise") and "analyzing" in word_bases("analysing")
    assert "colors" in word_bases("colours") and "centered" in word_bases("centred")
    assert "catalog" in word_bases("catalogue") and "canceled" in word_bases("cancelled")
    assert "license" in word_bases("licence") and word_bases("hour") == []
