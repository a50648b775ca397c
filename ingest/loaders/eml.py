"""E-mail (``.eml``): the subject as title, the sender and date as metadata and on top of the
text, the body, and attached files in supported formats as documents of their own.

The stdlib ``email`` package parses the message (``policy.default``). The subject, sender,
recipients and date are the document's metadata; the first section also opens with ``From:``,
``To:``, ``Cc:`` and ``Date:`` lines, since these are what people ask about. The body is the
text/plain part, else the HTML part through the HTML loader's extractor. An attachment whose
name has a supported extension (not ``.eml``: no nesting) is read by that format's loader and
returned by name, to become a document of its own; one that fails to load is skipped with a
logged warning, the message still goes in. At most ``EML_MAX_ATTACHMENTS`` are read. Binary
content and a file without any header are refused with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ingest.loaders.base import (
    Container,
    FormatLoader,
    TitledSections,
    looks_binary,
    strip_blank_edges,
)
from ingest.loaders.html import html_sections
from rag.errors import LoaderError
from rag.types import Section

if TYPE_CHECKING:
    from email.message import EmailMessage, Message

logger = logging.getLogger(__name__)

EML_MAX_ATTACHMENTS = 20
_META_HEADERS = ("From", "To", "Cc", "Date")
_METADATA = ("Subject", *_META_HEADERS)
_MAX_NAME_CHARS = 120


def load_eml(
    path: Path, data: bytes, *, attachment_loaders: Mapping[str, FormatLoader]
) -> Container:
    """An e-mail message and its attachments; ``attachment_loaders`` by file extension."""
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
    metadata = {name.lower(): value for name in _METADATA if (value := _header(message, name))}
    attached = _attachments(path, message, body_part, attachment_loaders)
    return Container(subject, sections, metadata, attached)


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


def _attachments(
    path: Path,
    message: EmailMessage,
    body_part: Message | None,
    loaders: Mapping[str, FormatLoader],
) -> list[tuple[str, TitledSections]]:
    """Loaded attachments by name, names made unique within the message."""
    attached: list[tuple[str, TitledSections]] = []
    taken: set[str] = set()
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
        name = _unique(name, taken)
        try:
            loaded = loader(path / name, payload)  # messages and titles name the attachment
        except MemoryError:
            raise
        except Exception as exc:  # a bad attachment must not sink the message it came with
            reason = exc.reason if isinstance(exc, LoaderError) else f"{type(exc).__name__}: {exc}"
            logger.warning("%s: attachment %r skipped: %s", path, name, reason)
            continue
        attached.append((name, loaded))
    return attached


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).ext`` and so on when the message already has one so named."""
    stem, ext = PurePosixPath(name).stem, PurePosixPath(name).suffix
    unique, n = name, 1
    while unique.lower() in taken:
        n += 1
        unique = f"{stem} ({n}){ext}"
    taken.add(unique.lower())
    return unique
