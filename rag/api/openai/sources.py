"""Citations as Open WebUI's sources, and whether a request wants them (RAG_SOURCE_EVENTS).

Open WebUI (0.12.4) reads a streamed chunk's ``event`` and handles it as one of its own
events (open_webui/utils/middleware.py); an event of type ``source`` is saved with the message
(open_webui/socket/main.py), so the answer's ``[n]`` becomes a clickable chip and a "N Sources"
panel lists them. Its chat page numbers the sources by their ``metadata.source`` (or
``source.id``), one number per distinct id, so each citation gets an id of its own and the
n-th source is the answer's ``[n]``. A chip shows ``metadata.name``, the panel and its dialog
the name, ``document`` (rendered as Markdown) and ``metadata.page`` counted from 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from rag.config import Settings
from rag.types import Citation

# aiohttp's default User-Agent, which Open WebUI's requests to a model server carry.
_AIOHTTP_AGENT = re.compile(r"^Python/\d+\.\d+ aiohttp/", re.IGNORECASE)
_OPEN_WEBUI_HEADER = "x-openwebui-"


def wants_source_events(settings: Settings, headers: Mapping[str, str]) -> bool:
    """Whether to send Open WebUI's source events for a request with these headers."""
    if settings.source_events != "auto":
        return settings.source_events == "openwebui"
    if any(name.lower().startswith(_OPEN_WEBUI_HEADER) for name in headers):
        return True
    return bool(_AIOHTTP_AGENT.match(headers.get("user-agent", "")))


def open_webui_source(citation: Citation, display: str) -> dict[str, Any]:
    """One citation as an Open WebUI source: ``{"source", "document", "metadata",
    "distances"}``, one document each. ``display``: the file's name to show."""
    headings = [h for h in citation.heading_path if h and h != citation.title]
    label = citation.title or display
    name = f"{label} › {headings[-1]}" if headings else label
    where = ", ".join(
        part
        for part in (" › ".join(headings), f"p. {citation.page}" if citation.page else "")
        if part
    )
    header = f"**{label}** · `{display}`" + (f" · {where}" if where else "")
    ident = f"{display}#{citation.n}"
    metadata: dict[str, Any] = {
        "source": ident,
        "name": name,
        "file": display,
        "path": citation.source,
        "title": citation.title,
        "heading_path": list(citation.heading_path),
        "n": citation.n,
        "chunk_id": citation.chunk_id,
    }
    if citation.page:
        metadata["page"] = citation.page - 1  # Open WebUI shows page + 1
    return {
        "source": {"id": ident, "name": name},
        "document": [f"{header}\n\n{citation.quote}"],
        "metadata": [metadata],
        "distances": [citation.score],
    }


def open_webui_sources(
    citations: list[Citation], names: Callable[[str], str]
) -> list[dict[str, Any]]:
    return [open_webui_source(c, names(c.source)) for c in citations]


def source_event(source: dict[str, Any]) -> dict[str, Any]:
    """The ``event`` of a stream chunk that hands Open WebUI one source."""
    return {"type": "source", "data": source}
