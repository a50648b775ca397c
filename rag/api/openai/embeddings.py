"""/v1/embeddings: the service's embedder behind OpenAI's embeddings API.

Vectors are the embedder's document vectors, as floats or, like OpenAI, base64 of their
little-endian float32 bytes. The model is a 'rag-<collection>' id or the embedding model's
own name; texts only (token arrays are refused), within RAG_EMBEDDING_MAX_INPUTS and
RAG_EMBEDDING_MAX_INPUT_CHARS.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from rag.api.errors import OpenAIError
from rag.api.openai.models import names_a_collection
from rag.api.openai.schemas import (
    EmbeddingItem,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
)
from rag.api.state import ServiceState
from rag.config import Settings


def _check_embedding_model(model: str, state: ServiceState) -> None:
    names = {state.settings.embedding_model, state.embedder.model_name}
    if model in names or names_a_collection(model, state.settings):
        return
    raise OpenAIError(
        404,
        f"The model '{model}' does not exist. Embeddings take a 'rag-<collection>' id or "
        f"'{state.settings.embedding_model}'.",
        param="model",
        code="model_not_found",
    )


def _texts(body: EmbeddingRequest, settings: Settings) -> list[str]:
    raw = body.input
    texts: list[Any] = [raw] if isinstance(raw, str) else list(raw)
    if not texts:
        raise OpenAIError(400, "input is empty.", param="input")
    if any(not isinstance(t, str) for t in texts):
        raise OpenAIError(
            400,
            "token arrays are not supported: send text (LangChain: "
            "OpenAIEmbeddings(check_embedding_ctx_length=False)).",
            param="input",
            code="unsupported_value",
        )
    if len(texts) > settings.embedding_max_inputs:
        raise OpenAIError(
            400,
            f"input has {len(texts)} texts; the limit is {settings.embedding_max_inputs} "
            "(RAG_EMBEDDING_MAX_INPUTS).",
            param="input",
        )
    for i, text in enumerate(texts):
        if not text.strip():
            raise OpenAIError(400, f"input[{i}] is empty.", param="input")
        if len(text) > settings.embedding_max_input_chars:
            raise OpenAIError(
                400,
                f"input[{i}] has {len(text)} characters; the limit is "
                f"{settings.embedding_max_input_chars} (RAG_EMBEDDING_MAX_INPUT_CHARS).",
                param="input",
            )
    return texts


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # As OpenAI: the little-endian float32 bytes, base64-encoded.
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in np.asarray(vector, dtype=np.float32).tolist()]


def create_embeddings(body: EmbeddingRequest, state: ServiceState) -> EmbeddingResponse:
    _check_embedding_model(body.model, state)
    embedder = state.embedder
    if body.dimensions is not None and body.dimensions != embedder.dimension:
        # The model was not trained for shortened vectors (no Matryoshka training).
        raise OpenAIError(
            400,
            f"dimensions must be {embedder.dimension}, the model's dimension; this model's "
            "vectors cannot be shortened.",
            param="dimensions",
            code="unsupported_value",
        )
    texts = _texts(body, state.settings)
    vectors = embedder.embed_documents(texts)
    tokens = sum(embedder.count_tokens(t) for t in texts)
    return EmbeddingResponse(
        data=[
            EmbeddingItem(index=i, embedding=encode_vector(v, body.encoding_format))
            for i, v in enumerate(vectors)
        ],
        model=body.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
