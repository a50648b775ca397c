"""Model ids: one model per collection, 'rag-<collection>'.

The configured collection is always listed, even before anything was ingested into it.
"""

from __future__ import annotations

from rag.api.errors import OpenAIError
from rag.api.openai.schemas import ModelCard, ModelList
from rag.api.state import ServiceState
from rag.catalog import list_collections
from rag.config import Settings

MODEL_PREFIX = "rag-"


def model_id(collection: str) -> str:
    return f"{MODEL_PREFIX}{collection}"


def collections(settings: Settings) -> list[str]:
    """The collections there are, the configured one always among them."""
    names = set(list_collections(settings))
    names.add(settings.collection)
    return sorted(names)


def names_a_collection(model: str, settings: Settings) -> bool:
    """Whether ``model`` is 'rag-<collection>' for a collection there is."""
    return model.startswith(MODEL_PREFIX) and model.removeprefix(MODEL_PREFIX) in collections(
        settings
    )


def list_models(state: ServiceState) -> ModelList:
    return ModelList(
        data=[ModelCard(id=model_id(c), created=state.started) for c in collections(state.settings)]
    )


def _model_not_found(model: str, settings: Settings) -> OpenAIError:
    known = ", ".join(model_id(c) for c in collections(settings))
    return OpenAIError(
        404,
        f"The model '{model}' does not exist. Models here are 'rag-<collection>': {known}.",
        param="model",
        code="model_not_found",
    )


def collection_for(model: str, settings: Settings) -> str:
    """The collection a model id names, or 404 model_not_found."""
    name = model.removeprefix(MODEL_PREFIX) if model.startswith(MODEL_PREFIX) else None
    if name == settings.collection:
        return name  # no listing needed for the usual case
    if name is None or name not in collections(settings):
        raise _model_not_found(model, settings)
    return name


def get_model(model: str, state: ServiceState) -> ModelCard:
    collection_for(model, state.settings)
    return ModelCard(id=model, created=state.started)
