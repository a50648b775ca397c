"""The word, sentence and named-term helpers of rag.text."""

from __future__ import annotations

from rag.text import (
    asked_about,
    content_words,
    labelled_sentences,
    lookup_words,
    named_terms,
    names_term,
    numbers,
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


def test_acronyms_in_any_case_when_asked_whether_a_text_mentions_them_at_all() -> None:
    texts = ["[submodule]\n\tpath = lib\n\turl = https://example.com/lib.git"]
    asked = "Where does git record the URL of each submodule?"
    assert unmentioned_terms(asked, texts) == ["URL"]
    assert unmentioned_terms(asked, texts, acronyms_any_case=True) == []
    assert names_term("the number of cpus", "CPUs", acronyms_any_case=True)
    assert not names_term("the number of cpus", "CPUs")
    # Only acronyms: a mixed-case name is still matched as written, and a word whole.
    assert unmentioned_terms("Is NumPy here?", ["import numpy"], acronyms_any_case=True) == [
        "NumPy"
    ]
    assert not names_term("awsome", "AWS", acronyms_any_case=True)


def test_lookup_words_and_the_bases_a_word_may_derive_from() -> None:
    assert lookup_words("How do I plot with matplotlib 3.8 in my app? Plot it!") == [
        "plot",
        "matplotlib",
        "app",
    ]
    assert "folders" in word_bases("subfolders") and "sow" in word_bases("sown")
    assert "typed" in word_bases("mistyped") and "allowed" in word_bases("disallowed")
    assert "serialized" in word_bases("deserialized")
    assert "set" not in word_bases("preset")  # too short a base to tell
    assert word_bases("matplotlib") == word_bases("bcrypt") == []
    # British spellings, for documents written the American way.
    assert "initialize" in word_bases("initialise") and "analyzing" in word_bases("analysing")
    assert "colors" in word_bases("colours") and "centered" in word_bases("centred")
    assert "catalog" in word_bases("catalogue") and "canceled" in word_bases("cancelled")
    assert "license" in word_bases("licence") and word_bases("hour") == []


def test_what_a_question_names_to_compare_with_or_as_an_example_is_not_asked_about() -> None:
    def named(question: str) -> list[str]:
        return named_terms(asked_about(question))

    assert named("How do I make a GET request without installing Axios or Got?") == ["GET"]
    assert named("Can I restart the app on every edit, like Nodemon?") == []
    assert named("Why write require('node:fs') instead of require('fs')?") == []
    assert named("Which variable passes flags to Node, for example in a Docker image?") == ["Node"]
    assert lookup_words(asked_about("How do I parse options like --verbose or -o out.txt?")) == [
        "parse",
        "options",
    ]
    # What a question asks about stays: "like" as a verb, "with" and the subject.
    assert named("What will the weather be like in Paris tomorrow?") == ["Paris"]
    assert named("I would like to use Django with Python. How?") == ["Django", "Python"]
    assert named("How do I lock dependencies with Poetry?") == ["Poetry"]
