"""Which term a question asks about, and the entries of reference pages (rag.entries)."""

from __future__ import annotations

from rag.entries import (
    defined_term,
    entry_labels,
    entry_sentence,
    entry_term,
    is_entry_label,
    label_kind,
    long_options,
    names_option,
    names_option_value,
    option_item,
    option_value,
    programs_before,
    usage_options,
)
from rag.text import names_term


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


def test_the_program_a_question_gives_an_option_is_the_words_before_it() -> None:
    assert programs_before("What does zorb -i do?", "-i") == ["zorb"]
    assert programs_before("What does zorb sync -s do?", "-s") == ["zorb sync", "sync"]
    assert programs_before("What does pg_zorb --clean do?", "--clean") == ["pg_zorb"]
    assert programs_before("What is the -u option of zorb for?", "-u") == []  # "the" before
    assert programs_before("What does -E do in zorb?", "-E") == []
    assert programs_before("What does zorb --clean-all do?", "--clean") == []  # not named


def test_a_usage_line_lists_a_programs_options_before_its_first_operand() -> None:
    line = "zorb [-bEiu?] [-c command | -m module-name | script | - ] [args]"
    assert usage_options(line, "zorb") >= {"-b", "-E", "-i", "-u", "-c", "-m"}
    assert "-name" not in usage_options(line, "zorb")  # "module-name" is no option
    # After an operand ("timer", a module run with -m), the options are the module's.
    assert usage_options("zorb -m timer [-n N] [-u U] [statement ...]", "zorb") == {"-m"}
    git = "zit commit [-a | --interactive | --patch] [-s] [-u<mode>] [--amend]"
    assert usage_options(git, "zit commit") == {
        "-a",
        "--interactive",
        "--patch",
        "-s",
        "-u",
        "--amend",
    }
    assert usage_options(git, "commit") == set()  # the line starts with another program
    # An example runs the program; it does not list what it may be given.
    assert usage_options("$ zorb -q -i", "zorb") == set()
    assert usage_options("zorb -q -i", "zorb") == set()  # nothing bracketed: an example too
    assert usage_options("zorb myscript.py [args]", "zorb") == set()  # an operand first
    assert usage_options("zorb  [-q]", "zorb") == {"-q"}  # spaced as a page may space it
    assert usage_options("zorb", "zorb") == set() and usage_options("zorbs [-q]", "zorb") == set()


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
    assert not is_entry_label("zorb.run", "zorb.run(main())")  # an example's call
    assert is_entry_label("zorb.run", "zorb.run(coro, *, debug=None)")
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
    assert label_kind("-?\n-h\n--help") == ("option", "-?")  # help's "-?" is an option
    assert is_entry_label("-h", "-?\n-h\n--help")
    assert label_kind("class zorb.Spool(max_size=0, mode='w+b')") == ("signature", "zorb.Spool")
    assert label_kind("brew_temp (integer)") == ("signature", "brew_temp")
    assert label_kind("zorb ( n integer ) → setof integer") == ("signature", "zorb")
    # A list item, a sentence and two words are no labels.
    blocks = ("- foam the milk", "Returns the size of the tank.", "Descale often", "--", "-? or -h")
    for block in blocks:
        assert label_kind(block) is None
    # A default may call something; an argument that is a call is example code's.
    assert label_kind("zorb.find(a, lo=0, hi=len(a), *, key=None)") == ("signature", "zorb.find")
    assert label_kind("GROUPING ( group_by_expression(s) ) → integer") == ("signature", "GROUPING")
    assert label_kind("zorb.now()") == ("signature", "zorb.now")
    for code in ("zorb.fromtimestamp(time.time())", "zorb.run(main(), debug=True)"):
        assert label_kind(code) is None


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
