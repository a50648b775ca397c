"""Request and response bodies of the REST API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question to answer from the documents.")
    collection: str | None = Field(None, description="Collection (default: the configured one).")
    source_prefix: str | None = Field(
        None, description="Only use documents whose path starts with this folder or file."
    )


class CitationModel(BaseModel):
    n: int = Field(description="The [n] marker in the answer.")
    source: str = Field(description="Path of the cited file.")
    title: str
    chunk_id: str
    score: float = Field(description="Fused retrieval score (DBSF or RRF, see RAG_FUSION).")
    quote: str = Field(
        description="The cited chunk's text; for a quoted answer, all that it quotes: the chunk "
        "with its neighbours in its section."
    )
    heading_path: list[str] = Field(default_factory=list)
    page: int | None = None


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationModel]
    abstained: bool = Field(description="True when the documents hold nothing relevant enough.")
    timings: dict[str, float] = Field(description="Milliseconds spent per stage.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    k: int = Field(5, ge=1, le=100)
    collection: str | None = None
    source_prefix: str | None = None


class SearchHit(BaseModel):
    score: float
    similarity: float = Field(description="Cosine similarity of the chunk to the query.")
    chunk_id: str
    source: str
    title: str
    heading_path: list[str]
    page: int | None
    start: int
    end: int
    text: str


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
