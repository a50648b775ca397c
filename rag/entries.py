"""Entries of reference pages, and the questions they answer.

A reference page labels what it defines: "work_mem (integer)", "json.dumps(obj, ...)",
"-c / --clean". A question that asks what a term is or does ("What does work_mem control?",
"What does pg_dump --clean do?"), or how to do something with a code name, is answered by
that term's entry. These helpers say which term a question asks about, whether a block of
text labels its entry, and which sentence opens it. Pure and deterministic, as ``rag.text``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import (
    MAX_LABEL_CHARS,
    STOPWORDS,
    as_written,
    first_sentence,
    named_terms,
    split_blocks,
    split_sentences,
    unwrap_lines,
)

# A question that asks what a named term is or does, the term first after the verb.
_DEFINING = re.compile(
    r"\s*(?:so\s+)?what(?:'s|’s|\s+is|\s+are|\s+does|\s+do)\s+(?:an?\s+|the\s+)?[`'\"]?"
    r"(?P<term>@?[A-Za-z_][\w.]*)?",
    re.I,
)
# A question that compares two things: one entry does not answer it.
_COMPARING = re.compile(r"\b(?:differen(?:ce|t)|vs\.?|versus|compared?)\b", re.I)
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")  # a command-line option: -c, --clean
# A label's option forms: also "--[no-]verify", and "-?", which asks for help as -h does.
_OPTION_FORM = re.compile(r"--?(?:\[no-\])?[A-Za-z][\w-]*|-\?")
_MAX_ENTRY_LABEL_CHARS = 120  # a label line's length, but for a signature's (below)
# A label that is a name and one signature may be longer: many arguments with their defaults.
_MAX_SIGNATURE_CHARS = 400
_RETURN_TYPE = re.compile(r"\s*(?:->\s*[\w.\[\], |]+)?")
# An argument that calls something without arguments: example code's, never a parameter's.
_CALLED = re.compile(r"[A-Za-z_][\w.]*\(\)")
# Words after an option that are no value of it: "the -O option", "-v mean".
_NOT_VALUES = STOPWORDS | {
    "argument",
    "flag",
    "mean",
    "means",
    "option",
    "parameter",
    "setting",
    "switch",
}
# The words of a program's name as a question writes it: "python", "git commit", "pg_dump".
_PROGRAM_WORDS = re.compile(r"[A-Za-z_][\w.]*(?:-[\w.]+)*")
# Short options run together: "-fd", "-am", a usage line's "[-bBdE]".
_RUN_TOGETHER = re.compile(r"-[A-Za-z]{2,}")
_MAX_OPTION_FORMS = 4  # lines of an option's label: "-c", "--clean", "--clean=<when>"
# The words a reference writes before the name it defines: "class csv.DictReader(f)".
_DECLARING = (
    "(?:abstractmethod|async|attribute|awaitable|class|classmethod|coroutine|data|decorator"
    "|enum|exception|function|macro|method|module|property|staticmethod|struct|type|var)"
)


def long_options(question: str) -> list[str]:
    """The long command-line options a question names ("--incremental"), in order, each once.
    Short ones ("-c") are left out: one letter names some option on most pages of a manual."""
    found = [m.group(0).rstrip("-") for m in _OPTION.finditer(question)]
    return list(dict.fromkeys(o for o in found if o.startswith("--") and len(o) > 3))


def names_option(text: str, option: str) -> bool:
    """Whether ``text`` names a command-line option as written ("-O" is not "-o"), or a long
    one in the "--[no-]name" form that manuals give an option and its negation together."""
    forms = [re.escape(option)]
    if option.startswith("--"):
        forms.append(rf"--\[no-\]{re.escape(option[2:].removeprefix('no-'))}")
    return re.search(rf"(?<![\w-])(?:{'|'.join(forms)})(?![\w-])", text) is not None


def defined_term(question: str) -> str | None:
    """The term a question asks to have explained, when it opens by asking what something is
    or does: the first command-line option in its first sentence ("What does git gc
    --aggressive do?"), else the named term (``named_terms``) that follows ("What does
    work_mem control?", "what is EAFP?"). None for any other question, and for one that
    compares ("what is the difference between -c and -C?"), which one entry does not answer."""
    found = _defining(question)
    if found is None:
        return None
    asked = _asked_option(question, found)
    if asked is not None:
        # An option given a named value is asked about that value: "-X frozen_modules" is one
        # item of -X's entry, which names it ("-X frozen_modules determines ...").
        option, value = asked
        named = value is not None and value in named_terms(first_sentence(question))
        return value if value is not None and named else option
    term = (found.group("term") or "").lstrip("@").rstrip(".")
    return term if term and term in named_terms(question) else None


def option_value(question: str) -> tuple[str, str] | None:
    """The option a defining question asks about (``defined_term``) and the value it gives
    it, when a word follows the option: ("-X", "importtime") of "What does python -X
    importtime do?". The option's entry lists its values, and the item that names this one
    answers ("-X importtime to show how long each import takes"). None otherwise, and when
    the word is a function word or names the option itself ("the -O option")."""
    found = _defining(question)
    asked = None if found is None else _asked_option(question, found)
    if asked is None:
        return None
    option, value = asked
    return (option, value) if value is not None and value.lower() not in _NOT_VALUES else None


def names_option_value(text: str, option: str, value: str) -> bool:
    """Whether ``text`` names an option with a value, as written: "-X importtime",
    "--format=tar", or run together as "-Werror"."""
    separator = r"(?:\s+|=)?" if len(option) == 2 else r"(?:\s+|=)"
    pattern = rf"(?<![\w-]){re.escape(option)}{separator}{re.escape(value)}(?![\w-])"
    return re.search(pattern, text) is not None


def programs_before(question: str, option: str) -> list[str]:
    """What a question names right before ``option``, the program it gives the option to,
    longest first: the one to three words before it ("git commit", "commit" of "What does
    git commit -s do?"; "python" of "What does python -i do?"). Empty when the option does
    not follow a word."""
    found = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", question)
    if found is None:
        return []
    words: list[str] = []
    for word in reversed(_PROGRAM_WORDS.findall(question[: found.start()])):
        if word.lower() in STOPWORDS or len(words) == 3:
            break
        words.insert(0, word)
    return [" ".join(words[-n:]) for n in range(len(words), 0, -1)]


def usage_options(line: str, program: str) -> set[str]:
    """The options a usage line of ``program`` lists before its first operand: "python
    [-bBdEhiIOqsSuvVWx?] [-c command | -m module-name | script | - ] [args]" lists -b, -B,
    ... (a bracket of letters run together is one option each), -c and -m; "python -m timeit
    [-n N]" lists only -m for python, since "timeit" is an operand, and -n is timeit's. Empty
    when ``line`` is no usage line of ``program``: one that starts with the program, then an
    option or a bracket, and brackets what may be left out. An example ("$ python -q") runs
    the program with options; it does not list them."""
    rest = line.strip()
    after = rest[len(program) :].lstrip()[:1]
    if not rest.startswith(f"{program} ") or after not in ("[", "-") or "[" not in rest:
        return set()
    listed: set[str] = set()
    depth = 0
    for token in rest[len(program) :].split():
        if depth == 0 and token[0] not in "[-<|(":
            break  # the first operand: what follows belongs to it
        for found in _OPTION.finditer(token):
            option = found.group(0)
            listed.add(option)
            if depth + token.count("[") > 0 and _RUN_TOGETHER.fullmatch(option):
                listed.update(f"-{letter}" for letter in option[1:])
        depth = max(0, depth + token.count("[") - token.count("]"))
    return listed


def entry_labels(term: str) -> list[str]:
    """The terms whose entry answers for ``term``: the term, and for short options run
    together ("-fd", "-am") the first of them, which a manual lists alone ("-f")."""
    bundled = _RUN_TOGETHER.fullmatch(term) is not None
    return [term, term[:2]] if bundled else [term]


def option_item(question: str, text: str) -> str | None:
    """The sentence of ``text`` that names the option a defining question asks about with the
    value it gives it (``option_value``), or the line that does of a block of several lines
    ("-Werror    # Convert to exceptions"); None when the question gives none, or no sentence
    names the two."""
    valued = option_value(question)
    if valued is None:
        return None
    for block in split_blocks(text):
        if not names_option_value(block, *valued):
            continue
        lines = unwrap_lines(block).split("\n")  # a paragraph's wrapped lines are one
        named = [line.strip() for line in lines if names_option_value(line, *valued)]
        if len(lines) > 1 and named:
            return named[0]
        return next((s for s in split_sentences(block) if names_option_value(s, *valued)), None)
    return None


def _defining(question: str) -> re.Match[str] | None:
    """``_DEFINING``'s match of a question that asks what something is or does, None for any
    other question and for one that compares ("what is the difference between -c and -C?")."""
    found = _DEFINING.match(question)
    return None if found is None or _COMPARING.search(question) else found


def _asked_option(question: str, found: re.Match[str]) -> tuple[str, str | None] | None:
    """The first command-line option of a defining question's first sentence, from its
    term on (``_DEFINING``'s match ``found``), and the word after it, if any."""
    first = first_sentence(question)
    option = _OPTION.search(first, found.start("term") if found.group("term") else found.end())
    if option is None:
        return None
    value = re.match(r"\s+([\w.]+)", first[option.end() :])
    return option.group(0), value.group(1) if value is not None else None


def entry_term(question: str) -> str | None:
    """The term whose entry answers a question: the term a defining question asks about
    (``defined_term``); else the first code name of its first sentence (a dotted or
    underscored name: ``csv.DictReader``, ``work_mem``), which a question that asks how to do
    something with it names ("How do I read rows as dictionaries with csv.DictReader?"). None
    for a question that compares, or names none. A command-line option is the term of a
    defining question only: asked how to do something with "git gc --auto", the answer is
    often around the option's entry rather than in it."""
    defined = defined_term(question)
    if defined is not None or _COMPARING.search(question):
        return defined
    names = [t for t in named_terms(first_sentence(question)) if "." in t or "_" in t.strip("_")]
    return names[0] if names else None


def is_entry_label(term: str, block: str) -> bool:
    """Whether a block of text is the label of ``term``'s entry. For a named term: one short
    line that starts with it, perhaps after a declaring keyword or a qualifying prefix, and
    ends there or goes on with a signature (no argument a call: "asyncio.run(main())" is an
    example's line) or a type in brackets; reference pages label the entries that define
    things so: "work_mem (integer)", "EAFP", "exception UnboundLocalError", "json.dumps(obj,
    ...)". The term is matched as ``unmentioned_terms`` matches it, but a dotted name only
    as written. For an option: a few short lines of option forms (an option and at most one
    argument each, "-v, --verbose" two forms), one of them the option as written ("-c" is
    not "-C"): "-c\n--clean", "-j njobs\n--jobs=njobs"."""
    lines = label_lines(block)
    if any(len(line) > _MAX_ENTRY_LABEL_CHARS and not _is_signature(line) for line in lines):
        return False
    if term.startswith("-"):
        named = re.compile(rf"{re.escape(term)}(?![\w-])")
        return any(named.match(form) for form in _option_forms(lines))
    line = lines[0]
    if len(lines) > 1 or line.endswith((".", "!", "?", ":", ".)")) or ". " in line:
        return False  # a sentence, or a line that holds one
    # A dotted code name is labelled as written: dataclasses.field is not dataclasses.Field.
    exact = as_written(term) or "." in term
    named_term = re.escape(term) if exact else f"(?i:{re.escape(term)})"
    # Then the line ends, or goes on with a signature or a type in brackets, not with words
    # ("max_connections = 100" is an example's line, "EAFP: Easier to ..." a definition).
    label = rf"(?:{_DECLARING} )?(?:[\w.]+\.)?{named_term}(?:$|\s*[(\[])"
    return re.match(label, line) is not None and not _calls_in_arguments(line)


def label_lines(block: str) -> list[str]:
    """A block's lines as a label is read: each with its runs of spaces made one."""
    return [" ".join(line.split()) for line in block.strip().split("\n")]


def _option_forms(lines: Sequence[str]) -> list[str]:
    """The option forms of a block's ``lines`` when it is shaped as an option's label: a few
    lines (``_MAX_OPTION_FORMS``) of forms that start with "-", an option and at most one
    argument each ("-v, --verbose" is two forms); none otherwise."""
    forms = [form for line in lines for form in line.split(", ")]
    shaped = len(lines) <= _MAX_OPTION_FORMS and all(
        form.startswith("-") and form.count(" ") <= 1 for form in forms
    )
    return forms if shaped else []


def label_kind(block: str) -> tuple[str, str] | None:
    """What a block labels when it is shaped as an entry's label, and of which kind: a few
    short lines of option forms (``("option", "-l")`` for "-l\n--list", "-j njobs",
    "--[no-]verify", "-?\n--help"), or one signature line (``("signature",
    "tempfile.SpooledTemporaryFile")``, a declaring keyword left out; "work_mem (integer)"
    and "to_date ( text, text ) → date" are signatures too). None for any other block."""
    lines = label_lines(block)
    forms = _option_forms(lines)
    names = [
        m.group(0) for f in forms if len(f) <= MAX_LABEL_CHARS and (m := _OPTION_FORM.match(f))
    ]
    if forms and len(names) == len(forms):
        return "option", names[0]
    # A reference table's signature gives its return type after an arrow: "zorb ( n int ) →".
    line = lines[0].split(" → ")[0]
    if len(lines) == 1 and _is_signature(line):
        return "signature", re.sub(rf"^{_DECLARING} ", "", line[: line.find("(")].strip())
    return None


def _is_signature(line: str) -> bool:
    """Whether a line is one signature of at most ``_MAX_SIGNATURE_CHARS``: a name, perhaps
    after a declaring keyword, its bracketed arguments closed at the line's end, perhaps a
    return type after "->", and no argument a call (``_calls_in_arguments``:
    "datetime.fromtimestamp(time.time())" is a line of example code)."""
    opened = line.find("(")
    if opened < 1 or len(line) > _MAX_SIGNATURE_CHARS:
        return False
    name = re.sub(rf"^{_DECLARING} ", "", line[:opened].strip())
    if not name or " " in name:
        return False
    closed = _closing(line, opened)
    return (
        closed is not None
        and _RETURN_TYPE.fullmatch(line, closed + 1) is not None
        and not _calls_in_arguments(line)
    )


def _closing(line: str, opened: int) -> int | None:
    """Where the bracket opened at ``opened`` closes, or None when the line leaves it open."""
    depth = 0
    for at in range(opened, len(line)):
        depth += {"(": 1, ")": -1}.get(line[at], 0)
        if depth == 0:
            return at
    return None


def _calls_in_arguments(line: str) -> bool:
    """Whether the first brackets of ``line`` hold an argument, not a default, that calls
    something without arguments ("time.time()", "main()"): example code, never a signature,
    whose parameters are names, perhaps with a default that calls ("hi=len(a)")."""
    opened = line.find("(")
    closed = _closing(line, opened) if opened >= 0 else None
    if closed is None:
        return False
    inside, depth, start = line[opened + 1 : closed], 0, 0
    arguments = []
    for at, char in enumerate(inside):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            arguments.append(inside[start:at].strip())
            start = at + 1
    arguments.append(inside[start:].strip())
    return any(_CALLED.fullmatch(a) for a in arguments)


def entry_sentence(term: str, text: str) -> tuple[str, str] | None:
    """The label of ``term``'s entry in ``text`` (``is_entry_label``) and the entry's first
    sentence, the first of the block after the label and any further labels of the term (a
    function's signatures, a line each); None when no entry is there."""
    blocks = split_blocks(text)
    for k, label in enumerate(blocks):
        if is_entry_label(term, label):
            # A function's signatures may label one entry together, a line each.
            block = next((b for b in blocks[k + 1 :] if not is_entry_label(term, b)), "")
            sentences = split_sentences(block)
            if sentences:
                return label, sentences[0]
    return None
