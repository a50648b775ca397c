"""Request and response bodies of the REST API, and the string types every request body uses.

Text from a request reaches file systems, SQLite, the tokenizer and JSON responses, none of
which takes every Python string: a lone UTF-16 surrogate (JSON allows ``"\\ud800"``) cannot be
encoded as UTF-8, a NUL cannot be in a path. ``Text`` refuses those and the other C0 control
characters except tab, newline and carriage return, with a 422 that names the field; ``Name``
and ``PathText`` also cap the length.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def refuse_unsafe_characters(value: str) -> str:
    """``value`` unchanged, or ValueError naming the first lone surrogate or control
    character (tab, newline and carriage return are allowed)."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return value
    char = found.group()
    what = "a lone UTF-16 surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    raise ValueError(f"{what} (U+{ord(char):04X}) at position {found.start()} is not allowed")


Text = Annotated[str, AfterValidator(refuse_unsafe_characters)]
"""Any length (a setting limits it where it is read); no surrogates, no control characters."""
Name = Annotated[str, StringConstraints(max_length=256), AfterValidator(refuse_unsafe_characters)]
"""A model, collection or user name: ``Text`` of at most 256 characters."""
PathText = Annotated[
    str, StringConstraints(max_length=4096), AfterValidator(refuse_unsafe_characters)
]
"""A file or folder path: ``Text`` of at most 4096 characters (PATH_MAX on Linux)."""


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Text = Field(description="The question to answer from the documents.")
    collection: Name | None = Field(None, description="Collection (default: the configured one).")
    source_prefix: PathText | None = Field(
        None, description="Only use documents whose path starts with this folder or file."
    )


class CitationModel(BaseModel):
    n: int = Field(description="The [n] marker in the answer.")
    source: str = Field(description="Path of the cited file.")
    display_source: str = Field(
        "",
        description="The file's path relative to the folder it was ingested from (an "
        "uploaded file's name): what to show people. Default: the file's name.",
    )
    title: str
    chunk_id: str
    score: float = Field(description="Fused retrieval score (DBSF or RRF, see RAG_FUSION).")
    quote: str = Field(
        description="The cited chunk's text; for a quoted answer, all that it quotes: the chunk "
        "with its neighbours in its section."
    )
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = None
    supporting: list[str] = Field(
        default_factory=list,
        description="Sentences of `quote` that support the answer, as written with their "
        "whitespace collapsed: for a generated answer, those the grounding check found for "
        "its claims; for a quoted answer, those it sets in bold.",
    )

    @model_validator(mode="after")
    def _named(self) -> CitationModel:
        if not self.display_source:
            self.display_source = PurePath(self.source).name or self.source
        return self


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationModel]
    abstained: bool = Field(description="True when the documents hold nothing relevant enough.")
    extractive: bool = Field(
        False,
        description="True when the answer quotes a passage instead of the model's text (quote "
        "mode, or the model's answer failed the grounding check).",
    )
    timings: dict[str, float] = Field(description="Milliseconds spent per stage.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text
    k: int = Field(5, ge=1, le=100)
    collection: Name | None = None
    source_prefix: PathText | None = None


class SearchHit(BaseModel):
    score: float
    similarity: float = Field(description="Cosine similarity of the chunk to the query.")
    chunk_id: str
    source: str
    display_source: str = Field(
        description="The file's path relative to the folder it was ingested from (an "
        "uploaded file's name): what to show people."
    )
    title: str
    heading_path: list[str]
    page: int | None
    start: int
    end: int
    text: str
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="Facts about the document beyond its text: an e-mail's subject, from, to, "
        "cc and date (its attachments carry the same).",
    )


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    timings: dict[str, float]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class HealthResponse(BaseModel):
    status: str
    collection: str = Field(description="The default collection.")
    chunks: int = Field(description="Chunks in the default collection.")
    embedding_model: str = Field(
        description="The embedding model: a package name, or a folder by its name alone."
    )
    generator: str = Field(
        description="The language model: a package or server model name, or a file or folder "
        "by its name alone."
    )
