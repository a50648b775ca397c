from __future__ import annotations

import pytest
from pydantic import ValidationError

from rag.config import Settings


def test_env_prefix_and_key_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_API_KEYS", "one, two ,")
    settings = Settings()
    assert settings.top_k == 7
    assert [k.get_secret_value() for k in settings.api_keys] == ["one", "two"]
    monkeypatch.setenv("RAG_INGEST_EXCLUDE", "_sources, drafts/*.md")
    assert Settings().ingest_exclude == ["_sources", "drafts/*.md"]


def test_models_dir_defaults_under_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert Settings(data_dir=tmp_path).models_dir == tmp_path / "models"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chunk_overlap": 200, "chunk_size": 100}, "chunk_overlap"),
        ({"store": "qdrant"}, "qdrant_url"),
        ({"generator": "openai"}, "openai_base_url"),
        ({"collection": "../etc"}, "collection"),
        ({"top_k": 0}, "top_k"),
    ],
)
def test_unsafe_values_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**kwargs)  # type: ignore[arg-type]
    assert field in str(info.value)


def test_the_context_budget_follows_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = {"generator": "openai", "openai_base_url": "http://u.test/v1", "openai_model": "m"}
    assert Settings().context_tokens == 192  # the local model's prompts are read by a CPU
    assert Settings(**upstream).context_tokens == 256
    monkeypatch.setenv("RAG_LLM_CONTEXT_TOKENS", "512")
    assert Settings().context_tokens == Settings(**upstream).context_tokens == 512
    with pytest.raises(ValidationError, match="llm_context_tokens"):
        Settings(llm_context_tokens=32)


def test_answers_are_quoted_by_default_with_the_local_model_only() -> None:
    upstream = {"generator": "openai", "openai_base_url": "http://u.test/v1", "openai_model": "m"}
    assert Settings().quotes_answers and not Settings(**upstream).quotes_answers
    assert Settings(**upstream, answer_mode="quote").quotes_answers
    assert not Settings(answer_mode="generate").quotes_answers
