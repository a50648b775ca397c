"""Request and response bodies of the OpenAI-compatible API (/v1/models, /v1/chat/completions,
/v1/embeddings).

Requests accept unknown fields: OpenAI clients send many (``user``, ``seed``, ``metadata``,
``parallel_tool_calls``, ...). Fields we read are typed here; what we cannot honour is refused
or ignored by rag.api.openai.chat and rag.api.openai.embeddings, with OpenAI-style errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.api.schemas import CitationModel, Name, PathText, Text

# --- models ------------------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str = Field(description="'rag-<collection>': choosing the model chooses the collection.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the service started.")
    owned_by: str = "rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- chat completions --------------------------------------------------------------------


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")

    type: Name
    text: Text | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None
    name: Name | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Name = Field(description="'rag-<collection>', as listed by GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, description="Caps RAG_LLM_MAX_NEW_TOKENS.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Same as max_tokens.")
    stop: Text | list[Text] | None = Field(
        None, description="Stop sequences (RAG_CHAT_MAX_STOP, RAG_CHAT_MAX_STOP_CHARS)."
    )
    n: int | None = Field(None, ge=1, description="Only 1 is supported.")
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Name | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: Name | dict[str, Any] | None = None
    # Accepted and ignored: answers are deterministic and grounded.
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: Name | None = None
    source_prefix: PathText | None = Field(
        None, description="Not OpenAI: only use documents under this folder or file path."
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RagInfo(BaseModel):
    """Not OpenAI: how the answer was made."""

    retrieval_query: str = Field(description="What was searched (a follow-up made explicit).")
    abstained: bool = Field(description="True when the documents held nothing relevant enough.")
    extractive: bool = Field(
        description="True when the answer quotes the documents instead of the model's text "
        "(quote mode, or the model's answer failed the grounding check)."
    )
    timings: dict[str, float] = Field(description="Milliseconds spent per stage.")


def _absent(value: object) -> bool:
    return value is None


class ChatCompletion(BaseModel):
    """``citations`` and ``rag`` come with every answer from the documents and are left out
    of a frontend's background task; ``sources`` only when Open WebUI's source events are on
    (RAG_SOURCE_EVENTS)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage
    citations: list[CitationModel] | None = Field(
        None,
        description="Not OpenAI: the sources behind the [n] markers in the answer.",
        exclude_if=_absent,
    )
    rag: RagInfo | None = Field(None, exclude_if=_absent)
    sources: list[dict[str, Any]] | None = Field(
        None,
        description="Not OpenAI: the citations as Open WebUI's sources (RAG_SOURCE_EVENTS).",
        exclude_if=_absent,
    )


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """One streamed event. ``citations`` and ``rag`` appear only on the chunk with the
    finish_reason, ``usage`` only on the last chunk when stream_options.include_usage, an
    ``event`` (Open WebUI's source event, RAG_SOURCE_EVENTS) only on a chunk without choices
    before the finish_reason's."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: list[CitationModel] | None = None
    rag: RagInfo | None = None
    event: dict[str, Any] | None = None


# --- embeddings --------------------------------------------------------------------------


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Name = Field(description="A 'rag-<collection>' id or the embedding model's name.")
    input: Text | list[Text] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token arrays are refused)."
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="Must equal the model's dimension.")
    user: Name | None = None


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
