"""Background-task prompts as chat frontends send them, for the recognition tests.

``frontend_prompts/open-webui/`` holds Open WebUI 0.12.4's default task templates as its
``open_webui/config.py`` defines them (DEFAULT_*_PROMPT_TEMPLATE); ``open_webui_prompt`` fills
one in as its ``open_webui/utils/task.py`` does: the last N messages as 'ROLE: content' lines,
the date, the typed text. Open WebUI sends the result as the only (user) message of a
non-streamed request. ``frontend_prompts/librechat/`` holds LibreChat's title prompts (the
``@librechat/agents`` completion and structured prompts, and the older system-message one),
whose ``{convo}`` is 'User: ...' and 'AI: ...'. ``open-webui/rag.txt`` is Open WebUI's
DEFAULT_RAG_TEMPLATE, which wraps the text of files attached in a chat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROMPTS = Path(__file__).parent / "frontend_prompts"
OPEN_WEBUI_KINDS = ("title", "tags", "follow_ups", "queries", "image_prompt", "autocomplete")

DESCALING = [
    {"role": "user", "content": "How often should I descale the Aurora 3000 espresso machine?"},
    {
        "role": "assistant",
        "content": "Descale it every 200 cycles [1].\n\n**Sources**\n\n"
        "- [1] Aurora 3000 Manual — `manuals/aurora.md`",
    },
]
FOLLOW_UP = [
    *DESCALING,
    {"role": "user", "content": "And how long does the cycle take?"},
    {"role": "assistant", "content": "About 25 minutes [1]."},
]


def _messages_text(messages: Sequence[dict[str, Any]]) -> str:
    return "\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)


def open_webui_prompt(
    kind: str,
    messages: Sequence[dict[str, Any]],
    *,
    typed: str = "",
    completion_type: str = "General",
    date: str = "2026-03-14",
) -> str:
    """Open WebUI's default ``kind`` template filled in for ``messages``."""
    template = (PROMPTS / "open-webui" / f"{kind}.txt").read_text()
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    prompt = typed or last_user

    def last(match: re.Match[str]) -> str:
        return _messages_text(messages[-int(match.group(1)) :])

    text = re.sub(r"\{\{MESSAGES:END:(\d+)\}\}", last, template)
    text = text.replace("{{TYPE}}", completion_type)
    text = re.sub(r"(?i)\{\{prompt\}\}", lambda _: prompt, text)
    return text.replace("{{CURRENT_DATE}}", date)


def librechat_prompt(variant: str, question: str, answer: str) -> str:
    """LibreChat's ``variant`` title prompt for a first exchange."""
    template = (PROMPTS / "librechat" / f"{variant}.txt").read_text()
    if variant == "legacy-system":
        convo = f'||>User:\n"{question}"\n||>Response:\n"{answer}"'
    else:
        convo = f"User: {question}\nAI: {answer}"
    return template.replace("{convo}", convo)


def task_request(prompt: str, **body: Any) -> dict[str, Any]:
    """The body Open WebUI posts for a task: one user message, not streamed."""
    return {
        "model": "rag-default",
        "messages": [{"role": "user", "content": prompt}],
        "stream": False,
        "max_tokens": 1000,
    } | body


def open_webui_attachment(
    messages: Sequence[dict[str, Any]],
    files: Sequence[tuple[str, str]],
    *,
    system_context: bool = False,
    template: str | None = None,
) -> list[dict[str, Any]]:
    """``messages`` as Open WebUI sends them when ``files`` (name, text) are attached to the
    last one: each text in a ``<source>`` tag (its ``get_source_context``), in the RAG template
    (``rag_template``), put before the last user message's text, or after the system message
    with RAG_SYSTEM_CONTEXT (``add_or_update_user_message`` / ``add_or_update_system_message``);
    the user message lists the files in ``<attached_files>`` before the typed question."""
    ids = [f"b391dc2f-6dcf-411f-a6d0-5cac99cf76c{i}" for i in range(len(files))]
    context = "".join(
        f'<source id="{i}" name="{name}" resource-type="file" resource-id="{ids[i - 1]}">'
        f"{text}</source>\n"
        for i, (name, text) in enumerate(files, start=1)
    ).strip()
    # The frontend lists the attached files (no text) before the typed question.
    listed = "".join(
        f'<file type="file" id="{id_}" url="{id_}" content_type="text/plain" name="{name}"/>\n'
        for id_, (name, _) in zip(ids, files, strict=True)
    )
    question = f"<attached_files>\n{listed}</attached_files>\n\n{messages[-1]['content']}"
    wrapper = template or (PROMPTS / "open-webui" / "rag.txt").read_text()
    wrapper = wrapper.replace("{{CONTEXT}}", context).replace("{{QUERY}}", question)
    sent = [dict(m) for m in messages]
    sent[-1]["content"] = question
    if not system_context:
        sent[-1]["content"] = f"{wrapper}\n{question}"
    elif sent[0]["role"] == "system":
        sent[0]["content"] = f"{sent[0]['content']}\n{wrapper}"
    else:
        sent.insert(0, {"role": "system", "content": wrapper})
    return sent
