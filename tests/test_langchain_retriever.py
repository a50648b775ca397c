"""rag.langchain.RagRetriever in LCEL chains: in process over a Documents, and over HTTP from
`rag serve` (a server over the fakes on a thread; the real one, with the real models)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from pydantic import SecretStr, ValidationError

import rag
from rag.langchain import RagRetriever, ServiceError
from tests.conftest import API_KEY, LiveServer, free_port, served_on_a_thread
from tests.fakes import HashEmbedder, ScriptedGenerator
from tests.test_loaders_eml import make_eml
from tests.test_python_api import DOC_EXAMPLES, doc_examples, open_docs, write_folder

METADATA = {
    "source",
    "display_source",
    "title",
    "heading_path",
    "page",
    "chunk_id",
    "score",
    "similarity",
}
REPLY = "Every 200 brewing cycles."
PROMPT = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['display_source']}] {d.page_content}" for d in docs)


def rag_chain(retriever: RagRetriever, prompts: list[str]) -> Runnable[str, str]:
    """retriever | format_docs into a prompt, then a fake chat model; ``prompts`` collects
    what the model was given."""

    def seen(prompt: PromptValue) -> PromptValue:
        prompts.append(prompt.to_string())
        return prompt

    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | RunnableLambda(seen)
        | FakeListChatModel(responses=[REPLY])
        | StrOutputParser()
    )


@pytest.fixture
def docs(tmp_path: Path) -> Iterator[rag.Documents]:
    with open_docs(tmp_path) as docs:
        docs.ingest(write_folder(tmp_path / "docs"))
        yield docs


def test_in_process_in_a_chain_sync_and_async(docs: rag.Documents) -> None:
    retriever = RagRetriever(documents=docs, k=2)
    found = retriever.invoke("descale brewing cycles")
    assert len(found) == 2 and set(found[0].metadata) == METADATA
    first = found[0]
    assert first.metadata["display_source"] == "coffee.md"
    assert first.metadata["heading_path"] == ["Brewmaster", "Descaling"]
    assert first.id == first.metadata["chunk_id"] and "200 brewing cycles" in first.page_content

    prompts: list[str] = []
    chain = rag_chain(retriever, prompts)
    assert chain.invoke("How often do I descale?") == REPLY
    assert "[coffee.md] Descale the Brewmaster" in prompts[0]

    async def both() -> list[str]:
        return list(await asyncio.gather(chain.ainvoke("descale?"), chain.ainvoke("bicycles?")))

    assert asyncio.run(both()) == [REPLY, REPLY]
    assert {p.split("Context:\n")[1].split("]")[0] for p in prompts[1:]} == {
        "[coffee.md",
        "[office.txt",
    }
    only = RagRetriever(documents=docs, source_prefix=str(docs.settings.data_dir))
    assert asyncio.run(only.ainvoke("descale")) == []


def test_the_retriever_needs_one_backend(docs: rag.Documents) -> None:
    with pytest.raises(ValidationError, match="either documents"):
        RagRetriever()
    with pytest.raises(ValidationError, match="either documents"):
        RagRetriever(documents=docs, url="http://127.0.0.1:1")
    with pytest.raises(ValidationError, match="collection applies over HTTP"):
        RagRetriever(documents=docs, collection="other")


# --- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[str]:
    """`rag serve`'s app over the fakes, on a loopback port, on a thread: the folder of
    test_python_api ingested into its default collection, the key API_KEY required."""
    from rag.api.app import create_app

    with open_docs(tmp_path) as docs:
        docs.ingest(write_folder(tmp_path / "docs"))
        settings = docs.settings.model_copy(update={"api_keys": [SecretStr(API_KEY)]})
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    with served_on_a_thread(app) as url:
        yield url


def check_http_retriever(url: str, key: str, query: str, expected: str, **extra: Any) -> None:
    """Sync and async, alone and in a chain; a wrong or missing key is a clear error."""
    retriever = RagRetriever(url=url, api_key=key, k=2, **extra)
    found = retriever.invoke(query)
    assert found and set(found[0].metadata) == METADATA
    assert found[0].metadata["display_source"] == expected
    assert found[0].id == found[0].metadata["chunk_id"]
    again = asyncio.run(retriever.ainvoke(query))
    assert [d.metadata["chunk_id"] for d in again] == [d.metadata["chunk_id"] for d in found]

    prompts: list[str] = []
    chain = rag_chain(retriever, prompts)
    assert chain.invoke(query) == REPLY and f"[{expected}]" in prompts[0]
    assert asyncio.run(chain.ainvoke(query)) == REPLY

    for wrong in (RagRetriever(url=url, api_key="wrong-key"), RagRetriever(url=url)):
        with pytest.raises(ServiceError, match=r"answered 401: .*RAG_API_KEYS") as refused:
            wrong.invoke(query)
        assert refused.value.status == 401
        with pytest.raises(ServiceError, match="answered 401"):
            asyncio.run(wrong.ainvoke(query))


def test_over_http(fake_server: str) -> None:
    check_http_retriever(fake_server, API_KEY, "descale brewing cycles", "coffee.md")
    # The OpenAI base URL names the same server.
    assert RagRetriever(url=f"{fake_server}/v1/", api_key=API_KEY).invoke("bicycles basement")
    with pytest.raises(ServiceError, match=r"answered 404: .*nowhere") as missing:
        RagRetriever(url=fake_server, api_key=API_KEY, collection="nowhere").invoke("descale")
    assert missing.value.status == 404
    with pytest.raises(ServiceError, match="answered 400: the question is empty") as bad:
        RagRetriever(url=fake_server, api_key=API_KEY).invoke(" ")
    assert bad.value.status == 400


def test_an_unreachable_server_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError, match=f"could not reach rag serve at {url}") as failed:
        RagRetriever(url=url, api_key=API_KEY, timeout=5).invoke("descale")
    assert failed.value.status is None


@pytest.mark.real_models
def test_over_http_against_rag_serve(live_server: LiveServer) -> None:
    check_http_retriever(
        live_server.url, live_server.key, "Lighthouse beam nautical miles", "lighthouse.pdf"
    )
    found = RagRetriever(url=live_server.url, api_key=live_server.key, k=1).invoke(
        "Lighthouse beam nautical miles"
    )
    assert found[0].metadata["page"] == 2 and found[0].metadata["title"]


@pytest.mark.real_models
def test_the_docs_http_example_runs(
    live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    example = doc_examples()[3]
    assert 'url="http://127.0.0.1:8000", api_key="change-me"' in example
    example = example.replace("http://127.0.0.1:8000", live_server.url)
    example = example.replace("change-me", live_server.key)
    exec(compile(example, str(DOC_EXAMPLES), "exec"), {"__name__": "__main__"})
    assert "aurora.md" in capsys.readouterr().out


def test_a_documents_own_metadata_rides_along(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    make_eml(folder / "roof.eml", attachments={"budget.csv": b"Item,Cost\nScaffolding hire,4200\n"})
    with open_docs(tmp_path) as docs:
        docs.ingest(folder)
        found = RagRetriever(documents=docs, k=1).invoke("scaffolding hire cost")
    assert set(found[0].metadata) == METADATA | {"subject", "from", "to", "date"}
    assert found[0].metadata["display_source"] == "roof.eml/budget.csv"
    assert found[0].metadata["from"] == "Ann Example <ann@example.com>"
    assert found[0].metadata["title"] == "budget"  # the hit's own fields are never replaced
