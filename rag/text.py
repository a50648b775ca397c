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
MAX_LABEL_CHARS = 60  # a label line: a definition list's term, an option's form
# Function words, and the words a question or an answer uses about itself ("according to the
# passage", "the answer is"): none of them tells what a text is about.
STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from as is are was were be been
    being it its this that these those there here which who whom whose what when where why how
    can could may might must shall should will would do does did done not no yes so such than
    too very just also only into over under about after before between through during out up
    down off again further once all any both each few more most other some own same you your
    yours we our ours they their them he she his her i me my mine us answer question context
    passage passages according based provided information""".split()
)
# Parts joined by "/" are one name: "PL/pgSQL" and "TCP/IP" are not "PL" and "TCP".
_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(?:[./][A-Za-z_][A-Za-z0-9_]*)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([A-Za-z_][\w.]*)")
# An acronym as a question writes it: capitals, perhaps a plural "s" ("URL", "GPG", "CPUs").
_ACRONYM = re.compile(r"[A-Z]{2,}s?")
# A phrase that names something to compare with or as an example: its opening words, then
# at most a determiner and four words (a name, an option and its value), more joined by
# "or", "and" or a comma; it ends at punctuation or at a word that starts another phrase.
_CONTRAST_OPENING = (
    r"(?:without(?:\s+(?:installing|using|writing|needing|a|an|the))?|instead\s+of|rather\s+than"
    r"|like|such\s+as|e\.g\.,?|(?:for\s+(?:example|instance),?)(?:\s+(?:in|on|with))?"
    r"|similar\s+to|equivalent\s+(?:of|to)|alternative\s+to|unlike|compared\s+(?:to|with))"
)
_PHRASE_END = (
    r"for|with|to|in|on|at|by|from|into|so|that|which|who|when|where|while|because|but|if"
    r"|how|what|why|without|instead|rather|using|does|do|is|are|was|were|can|will|would"
)
_CONTRAST_WORD = rf"(?!(?:{_PHRASE_END}|or|and)\b)[^\s,;:?!]+"
_CONTRAST_ITEM = (
    rf"(?:(?:a|an|the|my|your|our|some)\s+)?{_CONTRAST_WORD}(?:\s+{_CONTRAST_WORD}){{0,3}}"
)
_CONTRASTED = re.compile(
    rf"\b{_CONTRAST_OPENING}\s+{_CONTRAST_ITEM}(?:(?:\s*,\s*|\s+(?:or|and)\s+){_CONTRAST_ITEM})*",
    re.IGNORECASE,
)
# Word-forming prefixes and inflections the BM25 stemmer does not take off: "subfolders" is
# known when "folders" is, "sown" when "sow" is.
_DERIVING_PREFIXES = ("auto", "de", "dis", "mis", "multi", "non", "over", "pre", "re", "sub", "un")
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
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in STOPWORDS}


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
        short = len(line) <= MAX_LABEL_CHARS and not line.endswith((".", "!", "?", ":"))
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
            and word.lower() not in STOPWORDS
        )
        if (identifier or mixed_case or capitalized) and word not in names:
            names.append(word)
    return names


def asked_about(question: str) -> str:
    """The question without the things it names only for comparison or as an example: "How
    can I make a GET request without installing axios?", "... like nodemon?", "... instead of
    require('fs')?", "..., for example in a Docker image?". What such a phrase names is not
    what the answer is about, and the documents need not mention it."""
    return _CONTRASTED.sub(" ", question)


def unmentioned_terms(
    question: str, texts: Sequence[str], *, acronyms_any_case: bool = False
) -> list[str]:
    """The question's named terms that none of ``texts`` mention, as whole words.

    Names with two or more capitals are matched as written (``AWS`` is not asyncio's ``aws``
    argument); others in any case, and so are acronyms when ``acronyms_any_case``
    (``names_term``). A name followed by ``/`` and a word heads a path, which is no mention
    of it: 'Australia/Melbourne' is a time zone. A question naming something the retrieved
    passages never mention is one the documents most likely cannot answer.
    """
    joined = "\n".join(texts)
    return [
        term
        for term in named_terms(question)
        if not names_term(joined, term, acronyms_any_case=acronyms_any_case)
    ]


def names_term(text: str, term: str, *, acronyms_any_case: bool = False) -> bool:
    """Whether ``text`` mentions a named term, as ``unmentioned_terms`` matches it. With
    ``acronyms_any_case``, an acronym (capitals, perhaps a plural "s") is matched in any case:
    documents write one in lower case where they mean it (a configuration file's "url = ...",
    the "gpg" command), a mention of it though not the name as written."""
    exact = as_written(term) and not (acronyms_any_case and _ACRONYM.fullmatch(term))
    pattern = rf"(?<![\w.]){re.escape(term if exact else term.lower())}(?![\w]|/\w)"
    return re.search(pattern, text if exact else text.lower()) is not None


def as_written(term: str) -> bool:
    """Whether a named term is matched as written rather than in any case: one with two
    capitals or more (``AWS`` is not asyncio's ``aws`` argument), or a command-line option
    (``-O`` is not ``-o``)."""
    return sum(c.isupper() for c in term) >= 2 or term.startswith("-")


def first_sentence(question: str) -> str:
    """A question's first sentence, up to its first question mark."""
    return _SENTENCE_END.split(question, maxsplit=1)[0].split("?", 1)[0]


def lookup_words(question: str) -> list[str]:
    """The question's words worth looking up in the collection's vocabulary: lower-cased
    content words of three letters or more that are not numbers, in order, each once."""
    seen: list[str] = []
    for word in _WORD.findall(question):
        w = word.lower().strip("'-_")
        if len(w) >= 3 and not w[0].isdigit() and w not in STOPWORDS and w not in seen:
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
