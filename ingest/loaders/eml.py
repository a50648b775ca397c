"""E-mail (``.eml``): the subject as title, the sender and date on top, the body, and the text
of attached files in supported formats.

The stdlib ``email`` package parses the message (``policy.default``). The first section opens
with ``From:``, ``To:``, ``Cc:`` and ``Date:`` lines (a ``Document`` has no metadata fields,
and these are what people ask about), followed by the body: the text/plain part, else the
HTML part through the HTML loader's extractor. An ingested file is one document, so an
attachment whose name has a supported extension (not ``.eml``: no nesting) is read by that
format's loader and its sections follow the body under ``("Attachment: NAME", ...)``, pages
kept; an attachment that fails to load is skipped with a logged warning, the message still
goes in. At most ``EML_MAX_ATTACHMENTS`` are read. Binary content and a file without any
header are refused with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ingest.loaders.base import FormatLoader, TitledSections, looks_binary, strip_blank_edges
from ingest.loaders.html import html_sections
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    from email.message import EmailMessage, Message

logger = logging.getLogger(__name__)

EML_MAX_ATTACHMENTS = 20
_META_HEADERS = ("From", "To", "Cc", "Date")
_MAX_NAME_CHARS = 120


def load_eml(
    path: Path, data: bytes, *, attachment_loaders: Mapping[str, FormatLoader]
) -> TitledSections:
    """Title and sections of an e-mail message; ``attachment_loaders`` by file extension."""
    import email
    from email import policy

    if looks_binary(data):
        raise LoaderError(str(path), "binary content, not an e-mail message")
    message = email.message_from_bytes(data, policy=policy.default)
    if not message.keys():
        raise LoaderError(str(path), "not an e-mail message (no headers)")
    subject = _header(message, "Subject")
    meta = "\n".join(
        f"{name}: {value}" for name in _META_HEADERS if (value := _header(message, name))
    )
    body_part = message.get_body(preferencelist=("plain", "html"))
    sections = _body_sections(body_part) if body_part is not None else []
    if meta:
        if sections and not sections[0].heading_path:
            sections[0] = Section(text=f"{meta}\n\n{sections[0].text}")
        else:
            sections.insert(0, Section(text=meta))
    sections += _attachment_sections(path, message, body_part, attachment_loaders)
    return subject, sections


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError, AttributeError):  # a malformed header
        value = None
    return " ".join(str(value).split()) if value is not None else ""


def _body_sections(part: Message) -> list[Section]:
    text = _part_text(part)
    if part.get_content_subtype() == "html":
        return html_sections(text)[1]
    text = strip_blank_edges(text.replace("\r\n", "\n").replace("\r", "\n"))
    return [Section(text=text)] if text else []


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, ValueError, AssertionError):
        content = None  # an unknown charset or a broken transfer encoding
    if isinstance(content, str):
        return content
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


def _attachment_sections(
    path: Path,
    message: EmailMessage,
    body_part: Message | None,
    loaders: Mapping[str, FormatLoader],
) -> list[Section]:
    sections: list[Section] = []
    read = 0
    for part in message.walk():
        if part is body_part or part.is_multipart():
            continue
        # Only the name's last component counts: it is a label, never a path to write to.
        raw_name = " ".join((part.get_filename() or "").split()).replace("\\", "/")
        name = PurePosixPath(raw_name).name[:_MAX_NAME_CHARS]
        ext = PurePosixPath(name).suffix.lower()
        loader = loaders.get(ext)
        if loader is None:
            continue
        if read == EML_MAX_ATTACHMENTS:
            logger.warning(
                "%s: more than %d attachments; the rest are not read", path, EML_MAX_ATTACHMENTS
            )
            break
        read += 1
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            logger.warning("%s: attachment %r is empty; skipped", path, name)
            continue
        try:
            _, found = loader(path, payload)
        except MemoryError:
            raise
        except Exception as exc:  # a bad attachment must not sink the message it came with
            reason = exc.reason if isinstance(exc, LoaderError) else f"{type(exc).__name__}: {exc}"
            logger.warning("%s: attachment %r skipped: %s", path, name, reason)
            continue
        heading = f"Attachment: {name}"
        sections += [
            Section(text=s.text, heading_path=(heading, *s.heading_path), page=s.page)
            for s in found
        ]
    return sections
