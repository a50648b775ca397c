"""Where a query falls on a collection's embedding map: near the chunks most like it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.explore.maps import CollectionMap
from rag.store.base import VectorStore


@dataclass(frozen=True)
class LocatedHit:
    id: str
    similarity: float
    """Cosine similarity to the query."""
    source: str
    title: str
    text: str
    x: float | None
    y: float | None
    """Its place on the map; None for a chunk written since the map was built."""


@dataclass(frozen=True)
class Location:
    x: float | None
    y: float | None
    """The similarity-weighted mean of the mapped hits' places; None when none is mapped."""
    hits: list[LocatedHit]
    """The query's nearest chunks, best first."""


def locate(store: VectorStore, built: CollectionMap, vector: np.ndarray, *, k: int) -> Location:
    """Place the query (its embedding ``vector``) among its ``k`` nearest chunks, found by the
    store's dense query on the collection's own vectors: the query lands at the mean of their
    places on the map, weighted by their cosine similarity. Placing it through the layout
    itself would mean loading the fitted t-SNE for one point; its neighbours' places say where
    the layout put what the query is like."""
    hits = store.search_one("dense", text="", vector=vector, k=k)
    wanted = {h.chunk.id for h in hits}
    rows = {str(i): r for r, i in enumerate(built.ids.tolist()) if str(i) in wanted}
    located = []
    for hit in hits:
        row = rows.get(hit.chunk.id)
        x, y = (None, None) if row is None else (float(built.xy[row, 0]), float(built.xy[row, 1]))
        chunk = hit.chunk
        located.append(
            LocatedHit(chunk.id, hit.similarity, chunk.source, chunk.title, chunk.text, x, y)
        )
    mapped = [h for h in located if h.x is not None and h.y is not None]
    if not mapped:
        return Location(None, None, located)
    places = np.array([(h.x, h.y) for h in mapped], dtype=np.float64)
    # Negative similarities would push the query away: they count as nothing, and when
    # nothing is similar at all the neighbours count alike.
    weights = np.clip([h.similarity for h in mapped], 0.0, None)
    if weights.sum() <= 0:
        weights = np.ones(len(mapped))
    x, y = (weights @ places / weights.sum()).tolist()
    return Location(x, y, located)
