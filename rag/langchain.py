"""A LangChain retriever over a collection: in this process (an open ``rag.Documents``), or
over HTTP from `rag serve`'s ``POST /v1/search``. Built on ``langchain-core`` alone.

Each hit becomes a ``Document`` whose text is the chunk's and whose metadata holds
``source``, ``display_source``, ``title``, ``heading_path``, ``page``, ``chunk_id``,
``score`` and ``similarity``, the same either way, and the document's own metadata (an
e-mail's ``subject``, ``from``, ``to``, ``cc``, ``date``) beside them.
"""

from __future__ import annotations

from typing import Any, Self

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, SecretStr, model_validator

from rag.errors import RagError
from rag.library import Documents
from rag.types import Hit

__all__ = ["RagRetriever", "ServiceError"]


class ServiceError(RagError):
    """`rag serve` refused a search (``status``: its HTTP status) or could not be reached
    (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RagRetriever(BaseRetriever):
    """The ``k`` best chunks for a query, as LangChain Documents.

    In process: ``RagRetriever(documents=rag.open(...))``. Over HTTP:
    ``RagRetriever(url="http://127.0.0.1:8000", api_key="...")``, whose ``collection``
    (default: the server's) is searched. Either way ``k`` and ``source_prefix`` apply.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    documents: Documents | None = Field(None, description="An open collection, searched here.")
    url: str | None = Field(None, description="Base URL of `rag serve`, searched over HTTP.")
    api_key: SecretStr | None = Field(None, description="A key of the server's RAG_API_KEYS.")
    collection: str | None = Field(None, description="Over HTTP: the collection to search.")
    k: int = Field(5, ge=1, le=100, description="Chunks per query.")
    source_prefix: str | None = Field(None, description="Only files under this path prefix.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for the server.")

    @model_validator(mode="after")
    def _one_backend(self) -> Self:
        if (self.documents is None) == (self.url is None):
            raise ValueError("give either documents (in process) or url (over HTTP)")
        if self.documents is not None and self.collection is not None:
            raise ValueError("collection applies over HTTP; documents is one open collection")
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.documents is not None:
            hits = self.documents.search(query, k=self.k, source_prefix=self.source_prefix)
            return [_from_hit(h, self.documents.display_source(h.chunk.source)) for h in hits]
        with httpx.Client(timeout=self.timeout) as http:
            try:
                response = http.post(self._endpoint(), json=self._body(query), headers=self._auth())
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
        return self._documents(response)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.documents is not None:
            docs = self.documents
            hits = await docs.asearch(query, k=self.k, source_prefix=self.source_prefix)
            return [_from_hit(h, docs.display_source(h.chunk.source)) for h in hits]
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            try:
                response = await http.post(
                    self._endpoint(), json=self._body(query), headers=self._auth()
                )
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
        return self._documents(response)

    # --- over HTTP ----------------------------------------------------------------------

    def _endpoint(self) -> str:
        base = (self.url or "").rstrip("/")
        base = base.removesuffix("/v1")  # the OpenAI base URL names the same server
        return f"{base}/v1/search"

    def _body(self, query: str) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "k": self.k}
        if self.collection is not None:
            body["collection"] = self.collection
        if self.source_prefix is not None:
            body["source_prefix"] = self.source_prefix
        return body

    def _auth(self) -> dict[str, str]:
        if self.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}

    def _unreachable(self, exc: httpx.HTTPError) -> ServiceError:
        return ServiceError(f"could not reach rag serve at {self.url}: {exc}")

    def _documents(self, response: httpx.Response) -> list[Document]:
        if response.status_code != httpx.codes.OK:
            raise _refusal(response, self._endpoint())
        return [_from_json(hit) for hit in response.json()["hits"]]


def _refusal(response: httpx.Response, endpoint: str) -> ServiceError:
    """The server's own error message (its ``{"error": {"message"}}`` body), with what to do
    about a key it refused."""
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:200] or response.reason_phrase
    status = response.status_code
    if status == httpx.codes.UNAUTHORIZED:
        message += " (pass api_key=, one of the server's RAG_API_KEYS)"
    return ServiceError(f"{endpoint} answered {status}: {message}", status=status)


def _from_hit(hit: Hit, display_source: str) -> Document:
    chunk = hit.chunk
    return _document(
        chunk.text,
        source=chunk.source,
        display_source=display_source,
        title=chunk.title,
        heading_path=list(chunk.heading_path),
        page=chunk.page,
        chunk_id=chunk.id,
        score=hit.score,
        similarity=hit.similarity,
        extra=dict(chunk.metadata),
    )


def _from_json(hit: dict[str, Any]) -> Document:
    return _document(
        hit["text"],
        source=hit["source"],
        display_source=hit["display_source"],
        title=hit["title"],
        heading_path=list(hit["heading_path"]),
        page=hit["page"],
        chunk_id=hit["chunk_id"],
        score=hit["score"],
        similarity=hit["similarity"],
        extra=hit.get("metadata") or {},
    )


def _document(text: str, **fields: Any) -> Document:
    # The document's own metadata (an e-mail's sender, date) never replaces the hit's fields.
    metadata = {**fields.pop("extra", {}), **fields}
    return Document(page_content=text, metadata=metadata, id=metadata["chunk_id"])
