"""rag.tasks: chat frontends' background prompts, recognised as the frontends fill them in and
answered in the shape each frontend parses; real questions are never taken for one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rag.conversation import Turn
from rag.errors import ModelError
from rag.generation import Message
from rag.tasks import Task, TaskAnswerer, clean_title, recognise_task, rule_title
from tests.fakes import ScriptedGenerator
from tests.frontend_requests import (
    DESCALING,
    FOLLOW_UP,
    OPEN_WEBUI_KINDS,
    librechat_prompt,
    open_webui_prompt,
)

QUESTION = DESCALING[0]["content"]


def only_user(prompt: str) -> list[Turn]:
    return [Turn("user", prompt)]


# --- what Open WebUI does with the reply (open_webui/utils/middleware.py, utils/task.py) ---


def parsed_like_open_webui(kind: str, content: str) -> Any:
    """The value Open WebUI 0.12.4 takes from a task's reply."""
    if kind in ("title", "tags"):  # background_tasks_handler: first '{' to last '}'
        return json.loads(content[content.find("{") : content.rfind("}") + 1])[kind]
    if kind == "follow_ups":  # parse_follow_ups: a list of strings, each at most 400 chars
        data = json.loads(content[content.find("{") : content.rfind("}") + 1])
        assert all(isinstance(s, str) and 0 < len(s) <= 400 for s in data["follow_ups"])
        return data["follow_ups"]
    if kind == "queries":  # chat_completion_files_handler: from the LAST '{' to the last '}'
        return json.loads(content[content.rfind("{") : content.rfind("}") + 1])["queries"]
    if kind == "image_prompt":
        return json.loads(content)["prompt"]
    return json.loads(content)["text"]


# --- recognition ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", OPEN_WEBUI_KINDS)
@pytest.mark.parametrize("history", [DESCALING, FOLLOW_UP], ids=["first", "follow-up"])
def test_every_open_webui_template_is_recognised_filled_in(
    kind: str, history: list[dict[str, str]]
) -> None:
    prompt = open_webui_prompt(kind, history, typed="How do I desc", date="2031-12-24")
    task = recognise_task(only_user(prompt))
    assert task is not None and (task.kind, task.frontend) == (kind, "open-webui")
    quoted = [t.content for t in task.history]
    # Each template quotes the last few messages: the last question is always among them.
    assert quoted[-2] == history[-2]["content"] or kind == "title"
    assert [t.role for t in task.history][-1] == "assistant"
    assert task.questions[-1] == history[-2]["content"]
    if kind == "autocomplete":
        assert task.text == "How do I desc"


def test_a_multi_line_message_in_the_history_stays_one_turn() -> None:
    history = [
        {"role": "user", "content": "Compare these:\n- USER: guide\n- the Aurora manual"},
        {"role": "assistant", "content": "Line one.\n\nLine two [1]."},
    ]
    task = recognise_task(only_user(open_webui_prompt("tags", history)))
    assert task is not None
    # A line inside a message that merely starts like a role is not mistaken for one when it
    # does not start the line.
    assert task.history[0].content.startswith("Compare these:")
    assert task.history[-1] == Turn("assistant", "Line one.\n\nLine two [1].")


def test_a_customised_open_webui_template_is_still_recognised() -> None:
    # An administrator's own wording: the header, the quoted history and the JSON key remain.
    prompt = (
        "### Task:\nSuggest a short name for this chat, in French.\n### Output:\n"
        '{ "title": "..." }\n### Chat History:\n<chat_history>\nUSER: '
        f"{QUESTION}\nASSISTANT: Every 200 cycles [1].\n</chat_history>"
    )
    task = recognise_task(only_user(prompt))
    assert task is not None and task.kind == "title" and task.questions == [QUESTION]


def test_the_emoji_prompt_is_recognised() -> None:
    task = recognise_task(only_user(open_webui_prompt("emoji", DESCALING)))
    assert task is not None and task.kind == "emoji" and task.text == DESCALING[0]["content"]
    assert TaskAnswerer(None).answer(task) == "🙂"


@pytest.mark.parametrize("variant", ["completion", "completion-older", "structured"])
def test_librechat_title_prompts_are_recognised(variant: str) -> None:
    prompt = librechat_prompt(variant, QUESTION, "Descale it every 200 cycles [1].")
    task = recognise_task(only_user(prompt))
    assert task is not None and (task.kind, task.frontend) == ("title", "librechat")
    assert task.history == (
        Turn("user", QUESTION),
        Turn("assistant", "Descale it every 200 cycles [1]."),
    )
    assert task.output == ("json" if variant == "structured" else "text")


def test_librechats_older_title_prompt_in_the_system_message_is_recognised() -> None:
    system = librechat_prompt("legacy-system", QUESTION, "Every 200 cycles.")
    task = recognise_task([Turn("system", system), Turn("user", "Language: English")])
    assert task is not None and task.kind == "title" and task.questions == [QUESTION]
    assert task.output == "text"


REAL_QUESTIONS = [
    QUESTION,
    "Write a concise title for this conversation",
    "Can you suggest a title for the conversation chapter of the user guide?",
    "What does the follow_ups key in the export JSON mean?",
    'The docs show { "title": "Stock Trends" }: where is that format described?',
    "### Task: summarise the descaling procedure in 3 steps",
    "Generate 1-3 broad tags for the Aurora manual, please.",
    "Language: English",
    "What does this Open WebUI prompt do?\n### Task:\nGenerate a concise title.\n"
    '{ "title": "x" }\n<chat_history>\nUSER: hi\n</chat_history>',
    "User: how do I descale?\nAI: every 200 cycles\nWhat is the title for the conversation "
    "in 5 words or less, according to the style guide?",
]


@pytest.mark.parametrize("question", REAL_QUESTIONS)
def test_real_questions_are_not_tasks(question: str) -> None:
    assert recognise_task(only_user(question)) is None
    system = Turn("system", "You are a helpful assistant.")
    assert recognise_task([system, *only_user(question)]) is None


def test_a_template_inside_a_longer_conversation_is_a_question() -> None:
    prompt = open_webui_prompt("title", DESCALING)
    turns = [Turn("user", QUESTION), Turn("assistant", "Every 200 cycles."), Turn("user", prompt)]
    assert recognise_task(turns) is None


# --- answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tags", "follow_ups", "queries", "image_prompt", "autocomplete"])
def test_rule_answers_parse_as_open_webui_parses_them(kind: str) -> None:
    task = recognise_task(only_user(open_webui_prompt(kind, FOLLOW_UP, typed="How do I")))
    assert task is not None
    value = parsed_like_open_webui(kind, TaskAnswerer(None).answer(task))
    expected: dict[str, Any] = {
        "tags": ["Aurora"],
        "follow_ups": ["Tell me more about Aurora 3000."],
        # The follow-up made self-contained, so Open WebUI's own search finds the topic.
        "queries": ["Aurora 3000 And how long does the cycle take?"],
        "image_prompt": "And how long does the cycle take?",
        "autocomplete": "",
    }
    assert value == expected[kind]


def test_follow_ups_suggest_the_cited_documents() -> None:
    task = recognise_task(only_user(open_webui_prompt("follow_ups", DESCALING)))
    assert task is not None
    assert parsed_like_open_webui("follow_ups", TaskAnswerer(None).answer(task)) == [
        "Tell me more about Aurora 3000.",
        "What else does Aurora 3000 Manual cover?",
    ]


def test_a_query_keeps_no_brace_that_would_cut_open_webuis_json() -> None:
    history = [{"role": "user", "content": "What does {placeholder} mean in templates?"}]
    task = recognise_task(only_user(open_webui_prompt("queries", [*history, DESCALING[1]])))
    assert task is not None
    content = TaskAnswerer(None).answer(task)
    assert parsed_like_open_webui("queries", content) == [
        "What does placeholder mean in templates?"
    ]


def test_tags_without_names_use_key_words_or_general() -> None:
    history = [{"role": "user", "content": "how do i sow tomato seeds"}, DESCALING[1]]
    task = recognise_task(only_user(open_webui_prompt("tags", history)))
    assert task is not None
    assert parsed_like_open_webui("tags", TaskAnswerer(None).answer(task)) == ["Sow", "Tomato"]
    assert parsed_like_open_webui("tags", TaskAnswerer(None).answer(Task("tags", "open-webui")))
    assert json.loads(TaskAnswerer(None).answer(Task("tags", "open-webui"))) == {
        "tags": ["General"]
    }


def test_a_title_is_written_by_the_model_from_the_question_alone() -> None:
    generator = ScriptedGenerator(['"Descaling the Aurora 3000."'])
    task = recognise_task(only_user(open_webui_prompt("title", DESCALING)))
    assert task is not None and task.kind == "title"
    content = TaskAnswerer(generator).answer(task)
    assert parsed_like_open_webui("title", content) == "Descaling the Aurora 3000"
    (prompt,) = generator.prompts
    assert prompt[-1] == Message(role="user", content=f"Question: {QUESTION}\nTitle for this chat:")
    assert "Sources" not in json.dumps(prompt)  # neither the answer nor its footer


def test_without_a_model_a_title_is_the_questions_names_and_key_words() -> None:
    task = recognise_task(only_user(open_webui_prompt("title", DESCALING)))
    assert task is not None
    assert json.loads(TaskAnswerer(None).answer(task)) == {
        "title": "Aurora Descale Espresso Machine"
    }
    assert rule_title("How deep should tomato seeds be sown?") == "Tomato Seeds Sown"
    # A name once, in its fuller form: not "Zephyr Water Prime Zephyr-9".
    assert rule_title("How much water primes the Zephyr-9 pump?") == "Zephyr-9 Water Primes Pump"
    assert rule_title("hi") == "hi" and TaskAnswerer(None).title([]) == "New Chat"


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "Every 200 cycles [1].\nThe machine needs descaling often because of limescale.",
        "The weather is nice today",
        "I could not find an answer in the provided documents about this question at all",
        "The Aurora is descaled monthly",  # a sentence: an answer
        "Aurora Descaling Every 250 Cycles",  # a number the question does not hold
        "How Often Should I Descale the Aurora 3000?",  # the question again
    ],
)
def test_an_unusable_model_title_falls_back_to_the_questions_words(reply: str) -> None:
    answerer = TaskAnswerer(ScriptedGenerator([reply]))
    assert answerer.title([QUESTION]) == rule_title(QUESTION) == "Aurora Descale Espresso Machine"


def test_a_failing_model_still_gives_a_title() -> None:
    class Broken(ScriptedGenerator):
        def stream(self, messages: Any, *, max_new_tokens: int) -> Any:
            raise ModelError("out of memory")

    assert TaskAnswerer(Broken()).title([QUESTION]) == rule_title(QUESTION)


def test_librechat_gets_a_bare_title_or_its_structured_json() -> None:
    answerer = TaskAnswerer(ScriptedGenerator(["Aurora Descaling Schedule"]))
    plain = recognise_task(only_user(librechat_prompt("completion", QUESTION, "Every 200.")))
    structured = recognise_task(only_user(librechat_prompt("structured", QUESTION, "Every 200.")))
    assert plain is not None and structured is not None
    assert answerer.answer(plain) == "Aurora Descaling Schedule"
    assert json.loads(answerer.answer(structured)) == {
        "title": "Aurora Descaling Schedule",
        "language": "English",
    }


def test_clean_title_strips_labels_quotes_and_markers() -> None:
    assert clean_title("Title: **“Aurora Descaling”**\nMore text", QUESTION) == "Aurora Descaling"
    assert clean_title("descale schedule [1].", QUESTION) == "descale schedule"
    assert clean_title("Aurora 3000 Descaling", QUESTION) == "Aurora 3000 Descaling"
    assert clean_title("Aurora " * 12, QUESTION) == ""


def test_a_query_task_leaves_out_the_list_of_attached_files() -> None:
    asked = (
        '<attached_files>\n<file type="file" id="f1" name="pump.txt"/>\n</attached_files>\n\n'
        "How much water does the Zephyr-9 pump need?"
    )
    prompt = open_webui_prompt("queries", [{"role": "user", "content": asked}])
    task = recognise_task([Turn("user", prompt)])
    assert task is not None and task.kind == "queries"
    (query,) = json.loads(TaskAnswerer(None).answer(task))["queries"]
    assert query == "How much water does the Zephyr-9 pump need?"


def test_a_task_with_an_empty_history_is_answered() -> None:
    prompt = open_webui_prompt("queries", [])
    task = recognise_task([Turn("user", prompt)])
    assert task is not None and task.history == ()
    assert json.loads(TaskAnswerer(None).answer(task)) == {"queries": []}
