"""Words, sentences and named terms: the text helpers retrieval, abstention, grounding and
conversation share.

Every function here is pure and deterministic (regular expressions and a fixed stopword
list, no model), so the query side can apply them to every question at no cost. A "word" is
one ``word_tokens`` token: a run of letters, digits, ``_``, ``'`` and ``-`` starting with a
letter, or a number with its separators ("3.11", "1,000", "12:30").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'-]*|\d+(?:[.,:]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# An ellipsis between spaces elides part of a sentence ("DROP ... IF EXISTS"): it ends none.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\s\.\.\.)\s+(?=[A-Z0-9\"'(\[])|\n{2,}|\n(?=[-*•]\s)")
CELL = " | "  # how the loaders join a table row's cells
# A sentence that starts with one of these says more of the one before it.
POINTS_BACK = re.compile(r"(?:it|its|this|these|they|their|that|such|the same|also)\b", re.I)
# A line break inside a sentence, as a file wrapped at a fixed width has one: a line of some
# length that ends in a word, a comma or a semicolon, and a next line that goes on in lower
# case.
_WRAPPED = re.compile(r"(?<=[^\n]{40})(?<=[\w,;])[ \t]*\n(?=[a-z0-9(])")
_MIN_SENTENCE_CHARS = 20
_MAX_LABEL_CHARS = 60
# Function words, and the words a question or an answer uses about itself ("according to the
# passage", "the answer is"): none of them tells what a text is about.
_STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from as is are was were be been
    being it its this that these those there here which who whom whose what when where why how
    can could may might must shall should will would do does did done not no yes so such than
    too very just also only into over under about after before between through during out up
    down off again further once all any both each few more most other some own same you your
    yours we our ours they their them he she his her i me my mine us answer question context
    passage passages according based provided information""".split()
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
_OPTION_FORM = re.compile(r"--?(?:\[no-\])?[A-Za-z][\w-]*")  # a label's: also "--[no-]verify"
_MAX_ENTRY_LABEL_CHARS = 120  # a label line's length, but for a signature's (below)
# A label that is a name and one signature may be longer: many arguments with their defaults.
_MAX_SIGNATURE_CHARS = 400
_RETURN_TYPE = re.compile(r"\s*(?:->\s*[\w.\[\], |]+)?")
# Words after an option that are no value of it: "the -O option", "-v mean".
_NOT_VALUES = _STOPWORDS | {
    "argument",
    "flag",
    "mean",
    "means",
    "option",
    "parameter",
    "setting",
    "switch",
}
_MAX_OPTION_FORMS = 4  # lines of an option's label: "-c", "--clean", "--clean=<when>"
# The words a reference writes before the name it defines: "class csv.DictReader(f)".
_DECLARING = (
    "(?:abstractmethod|async|attribute|awaitable|class|classmethod|coroutine|data|decorator"
    "|enum|exception|function|macro|method|module|property|staticmethod|struct|type|var)"
)
# Parts joined by "/" are one name: "PL/pgSQL" and "TCP/IP" are not "PL" and "TCP".
_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([A-Za-z_][\w.]*)")
# Word-forming prefixes and inflections the BM25 stemmer does not take off: "subfolders" is
# known when "folders" is, "sown" when "sow" is.
_DERIVING_PREFIXES = ("auto", "multi", "non", "over", "pre", "re", "sub", "un")
_INFLECTIONS = ("ing", "ers", "est", "ed", "en", "er", "es", "ly", "d", "n", "s")
# British spellings and the American ones most documentation uses: "initialise" is known when
# "initialize" is, "colour" when "color", "centre" when "center", "catalogue", "cancelled".
_SPELLINGS = (
    (re.compile(r"(?<=[a-z]{2})is(e|ed|es|ing|ation|ations|er|ers)$"), r"iz\1"),
    (re.compile(r"(?<=[a-z])ys(e|ed|es|ing|er|ers)$"), r"yz\1"),
    (re.compile(r"(?<=[a-z]{3})our(s|ed|ing|ite|ites|able|er|ers)?$"), r"or\1"),
    (re.compile(r"(?<=[a-z]{2})tre(s)?$"), r"ter\1"),
    (re.compile(r"(?<=[a-z]{2})tr(ed|ing)$"), r"ter\1"),
    (re.compile(r"(?<=[a-z]{3})ogue(s)?$"), r"og\1"),
    (re.compile(r"(?<=[a-z]{2}[aeiou])ll(ed|ing|er|ers)$"), r"l\1"),
    (re.compile(r"^(licen|defen|offen|preten)ce(s|d)?$"), r"\1se\2"),
)


def word_tokens(text: str) -> list[str]:
    """The words and numbers of ``text``, in order and as written."""
    return _WORD.findall(text)


def numbers(text: str) -> set[str]:
    """The numbers ``text`` states, as written ("3.11", "200"), digits inside words included."""
    return set(_NUMBER.findall(text))


def content_words(text: str) -> set[str]:
    """The lower-cased words and numbers of ``text`` that are not stopwords."""
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS}


def split_sentences(text: str) -> list[str]:
    """Sentences (and list items, table rows, and paragraphs without a full stop) with their
    whitespace collapsed; pieces shorter than ``_MIN_SENTENCE_CHARS`` are left out, as too short to
    support anything on their own."""
    if CELL in text:  # a table row is a sentence of its own
        lines = text.split("\n")
        text = lines[0] + "".join(
            ("\n\n" if CELL in a or CELL in b else "\n") + b for a, b in pairwise(lines)
        )
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [" ".join(p.split()) for p in parts if len(p) >= _MIN_SENTENCE_CHARS]


def split_blocks(text: str) -> list[str]:
    """The blocks of ``text`` (paragraphs, list items run together, code, tables): the parts
    that blank lines separate, without their outer line breaks; empty ones left out."""
    return [b.strip("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]


def unwrap_lines(text: str) -> str:
    """``text`` with the line breaks that only wrap a sentence made spaces."""
    return _WRAPPED.sub(" ", text)


def rows_meet(before: str, after: str) -> bool:
    """Whether ``before`` ends and ``after`` starts with a table row: the two halves of a
    table split between chunks."""
    last = before.rstrip().rsplit("\n", 1)[-1]
    first = after.lstrip().split("\n", 1)[0]
    return CELL in last and CELL in first


def labelled_sentences(text: str) -> list[str]:
    """Sentences, the first after a short label line carrying it: a definition list's term
    ("work_mem (integer)") is what the sentence below it is about."""
    return [
        f"{label}: {sentence}" if label else sentence for label, sentence in sentence_labels(text)
    ]


def sentence_labels(text: str) -> list[tuple[str, str]]:
    """``labelled_sentences`` as (label, sentence) pairs, the sentence as written (whitespace
    collapsed) and the label empty but for the first sentence after a label line."""
    sentences: list[tuple[str, str]] = []
    label = ""
    blocks = re.split(r"\n\s*\n", text)
    for i, block in enumerate(blocks):
        line = " ".join(block.split())
        short = len(line) <= _MAX_LABEL_CHARS and not line.endswith((".", "!", "?", ":"))
        if line and short and i + 1 < len(blocks):
            label = line
            continue
        for k, sentence in enumerate(split_sentences(block)):
            sentences.append((label if k == 0 else "", sentence))
        label = ""
    return sentences


def named_terms(question: str) -> list[str]:
    """What a question names: identifiers (``sys.monitoring``, ``max_connections``), mixed-case
    and upper-case names (``NumPy``, ``AWS``), and capitalized words inside a sentence
    (``Django``), in order, each once. Plain words are left out; so are capitals of a Title
    Case question, which say nothing."""
    words = [w.lstrip("@") for w in _NAME.findall(question)]
    starts = {m.group(1) for m in _SENTENCE_START.finditer(question)}
    title_case = sum(w[:1].isupper() for w in words) > len(words) / 2
    names: list[str] = []
    for word in words:
        identifier = ("." in word and min(map(len, word.split("."))) > 1) or "_" in word.strip("_")
        mixed_case = any(c.isupper() for c in word[1:])
        capitalized = (
            word[:1].isupper()
            and len(word) > 1
            and not title_case
            and word not in starts
            and word.lower() not in _STOPWORDS
        )
        if (identifier or mixed_case or capitalized) and word not in names:
            names.append(word)
    return names


def unmentioned_terms(question: str, texts: Sequence[str]) -> list[str]:
    """The question's named terms that none of ``texts`` mention, as whole words.

    Names with two or more capitals are matched as written (``AWS`` is not asyncio's ``aws``
    argument); others in any case. A name followed by ``/`` and a word heads a path, which is
    no mention of it: 'Australia/Melbourne' is a time zone. A question naming something the
    retrieved passages never mention is one the documents most likely cannot answer.
    """
    joined = "\n".join(texts)
    return [term for term in named_terms(question) if not names_term(joined, term)]


def names_term(text: str, term: str) -> bool:
    """Whether ``text`` mentions a named term, as ``unmentioned_terms`` matches it."""
    exact = _as_written(term)
    pattern = rf"(?<![\w.]){re.escape(term if exact else term.lower())}(?![\w]|/\w)"
    return re.search(pattern, text if exact else text.lower()) is not None


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


def _as_written(term: str) -> bool:
    """Whether a named term is matched as written rather than in any case: one with two
    capitals or more (``AWS`` is not asyncio's ``aws`` argument), or a command-line option
    (``-O`` is not ``-o``)."""
    return sum(c.isupper() for c in term) >= 2 or term.startswith("-")


def _first_sentence(question: str) -> str:
    """A question's first sentence, up to its first question mark."""
    return _SENTENCE_END.split(question, maxsplit=1)[0].split("?", 1)[0]


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
        named = value is not None and value in named_terms(_first_sentence(question))
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


def entry_labels(term: str) -> list[str]:
    """The terms whose entry answers for ``term``: the term, and for short options run
    together ("-fd", "-am") the first of them, which a manual lists alone ("-f")."""
    bundled = re.fullmatch(r"-[A-Za-z]{2,}", term) is not None
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
    first = _first_sentence(question)
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
    names = [t for t in named_terms(_first_sentence(question)) if "." in t or "_" in t.strip("_")]
    return names[0] if names else None


def is_entry_label(term: str, block: str) -> bool:
    """Whether a block of text is the label of ``term``'s entry. For a named term: one short
    line that starts with it, perhaps after a declaring keyword or a qualifying prefix, and
    ends there or goes on with a signature or a type in brackets; reference pages label the
    entries that define things so: "work_mem (integer)", "EAFP", "exception
    UnboundLocalError", "json.dumps(obj, ...)". The term is matched as ``unmentioned_terms``
    matches it, but a dotted name only as written. For an option: a few short lines of
    option forms (an option and at most one argument each, "-v, --verbose" two forms), one of
    them the option as written ("-c" is not "-C"): "-c\n--clean", "-j njobs\n--jobs=njobs"."""
    lines = [" ".join(line.split()) for line in block.strip().split("\n")]
    if any(len(line) > _MAX_ENTRY_LABEL_CHARS and not _is_signature(line) for line in lines):
        return False
    if term.startswith("-"):
        named = re.compile(rf"{re.escape(term)}(?![\w-])")
        return any(named.match(form) for form in _option_forms(lines))
    line = lines[0]
    if len(lines) > 1 or line.endswith((".", "!", "?", ":", ".)")) or ". " in line:
        return False  # a sentence, or a line that holds one
    # A dotted code name is labelled as written: dataclasses.field is not dataclasses.Field.
    exact = _as_written(term) or "." in term
    named_term = re.escape(term) if exact else f"(?i:{re.escape(term)})"
    # Then the line ends, or goes on with a signature or a type in brackets, not with words
    # ("max_connections = 100" is an example's line, "EAFP: Easier to ..." a definition).
    label = rf"(?:{_DECLARING} )?(?:[\w.]+\.)?{named_term}(?:$|\s*[(\[])"
    return re.match(label, line) is not None


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
    "--[no-]verify"), or one signature line (``("signature",
    "tempfile.SpooledTemporaryFile")``, a declaring keyword left out; "work_mem (integer)"
    and "to_date ( text, text ) → date" are signatures too). None for any other block."""
    lines = [" ".join(line.split()) for line in block.strip().split("\n")]
    forms = _option_forms(lines)
    names = [
        m.group(0) for f in forms if len(f) <= _MAX_LABEL_CHARS and (m := _OPTION_FORM.match(f))
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
    return type after "->"."""
    opened = line.find("(")
    if opened < 1 or len(line) > _MAX_SIGNATURE_CHARS:
        return False
    name = re.sub(rf"^{_DECLARING} ", "", line[:opened].strip())
    if not name or " " in name:
        return False
    depth = 0
    for at in range(opened, len(line)):
        depth += {"(": 1, ")": -1}.get(line[at], 0)
        if depth == 0:
            return _RETURN_TYPE.fullmatch(line, at + 1) is not None
    return False


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


def lookup_words(question: str) -> list[str]:
    """The question's words worth looking up in the collection's vocabulary: lower-cased
    content words of three letters or more that are not numbers, in order, each once."""
    seen: list[str] = []
    for word in _WORD.findall(question):
        w = word.lower().strip("'-_")
        if len(w) >= 3 and not w[0].isdigit() and w not in _STOPWORDS and w not in seen:
            seen.append(w)
    return seen


def word_bases(word: str) -> list[str]:
    """What the word may be derived from, or another spelling of: the word without a
    word-forming prefix when 4 characters or more remain ("subfolders" -> "folders"), without
    an inflection when 3 or more remain ("sown" -> "sow"), or spelt the American way
    ("initialised" -> "initialized", "colours" -> "colors"). Empty when it has none."""
    bases = [
        word[len(p) :].lstrip("-")
        for p in _DERIVING_PREFIXES
        if word.startswith(p) and len(word) - len(p) >= 4
    ]
    bases += [word[: -len(s)] for s in _INFLECTIONS if word.endswith(s) and len(word) - len(s) >= 3]
    bases += [pattern.sub(us, word) for pattern, us in _SPELLINGS if pattern.search(word)]
    return bases
