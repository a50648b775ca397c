"""Conversation rules: follow-ups recognised and made self-contained, the conversation split
into question, earlier questions and client instructions (no models)."""

from __future__ import annotations

import pytest

from rag.conversation import (
    Conversation,
    QueryRewriter,
    Turn,
    is_follow_up,
    rewrite_with_rules,
    split_conversation,
    topic_words,
)
from rag.errors import InvalidInputError
from tests.fakes import ScriptedGenerator

LIGHTHOUSE = "How far can the Lighthouse beam be seen?"


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        ("And when is its lamp lit?", True),
        ("What about pear trees?", True),
        ("Where is it?", True),
        ("What should I use instead?", True),
        ("How do I change it?", True),
        ("tell me more", True),
        ("How deep should tomato seeds be sown?", False),
        ("Which export format was removed in Skylark 4.2?", False),
        ("How many apple trees grow in the orchard?", False),
    ],
)
def test_follow_ups_are_recognised(question: str, follow_up: bool) -> None:
    assert is_follow_up(question) is follow_up


def test_a_follow_up_gets_the_names_of_earlier_turns() -> None:
    conversation = Conversation("And when is its lamp lit?", [LIGHTHOUSE])
    rewrite = rewrite_with_rules(conversation)
    assert rewrite.follow_up
    assert rewrite.query == "Lighthouse And when is its lamp lit?"


def test_without_names_the_previous_turns_content_words_are_used() -> None:
    words = topic_words(["how often should the espresso machine be descaled?"], exclude="and?")
    assert words[:3] == ["often", "espresso", "machine"]
    rewrite = rewrite_with_rules(
        Conversation("What about the grinder?", ["how often should I descale the machine?"])
    )
    assert rewrite.query.startswith("often descale machine") and "grinder" in rewrite.query


def test_standalone_questions_and_first_questions_are_left_alone() -> None:
    assert rewrite_with_rules(Conversation(LIGHTHOUSE)).query == LIGHTHOUSE
    standalone = Conversation("How deep should tomato seeds be sown?", [LIGHTHOUSE])
    assert rewrite_with_rules(standalone).query == standalone.question
    assert not rewrite_with_rules(standalone).follow_up


def test_rewriting_is_off_when_asked() -> None:
    conversation = Conversation("And its lamp?", [LIGHTHOUSE])
    assert QueryRewriter("off").rewrite(conversation).query == "And its lamp?"


def test_the_model_rewrites_when_asked_and_the_rules_catch_a_bad_rewrite() -> None:
    conversation = Conversation("And when is its lamp lit?", [LIGHTHOUSE])
    good = ScriptedGenerator(['Rewritten question: "When is the Lighthouse lamp lit?"'])
    rewrite = QueryRewriter("model", generator=good).rewrite(conversation)
    assert rewrite.query == "When is the Lighthouse lamp lit?"
    assert "Last question: And when is its lamp lit?" in good.prompts[0][1]["content"]
    # An answer instead of a rewrite keeps none of the question's words: the rules decide.
    bad = ScriptedGenerator(["22 nautical miles."])
    rewrite = QueryRewriter("model", generator=bad).rewrite(conversation)
    assert rewrite.query == "Lighthouse And when is its lamp lit?"


def test_conversation_split_takes_the_last_user_message_and_client_system_messages() -> None:
    conversation = split_conversation(
        [
            Turn("system", "Be nice."),
            Turn("user", LIGHTHOUSE),
            Turn("assistant", "22 miles [1]"),
            Turn("user", " And its lamp? "),
        ]
    )
    assert conversation.question == "And its lamp?"
    assert conversation.earlier == [LIGHTHOUSE]
    assert conversation.instructions == ["Be nice."]
    for turns in ([], [Turn("user", "q"), Turn("assistant", "a")], [Turn("user", "  ")]):
        with pytest.raises(InvalidInputError) as info:
            split_conversation(turns)
        assert info.value.field == "messages"
