"""`rag explore`: the embedding map, clusters, similar documents and outliers of a collection,
and where a query falls on the map."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rag.cli_common import CollectionOpt, JsonOpt, err, errors, load_settings
from rag.config import Settings

if TYPE_CHECKING:
    from rag.explore.maps import CollectionMap
    from rag.store.base import VectorStore

explore_app = typer.Typer(
    help="See a collection: its embedding map, clusters, similar documents, outliers and "
    "where a query falls.",
    no_args_is_help=True,
)

RefreshOpt = Annotated[
    bool, typer.Option("--refresh", help="Build the map again even if it is up to date.")
]


def _open(settings: Settings) -> VectorStore:
    from rag.catalog import open_collection
    from rag.embedding import build_embedder

    # The embedder is not loaded: the collection is only checked against its name and size.
    return open_collection(settings, build_embedder(settings))


def _map_of(settings: Settings, refresh: bool) -> CollectionMap:
    """``_current_map`` of the configured collection, which is opened and closed around it."""
    with errors():
        store = _open(settings)
        try:
            return _current_map(settings, store, refresh)
        finally:
            store.close()


def _current_map(settings: Settings, store: VectorStore, refresh: bool) -> CollectionMap:
    """The cached map, built first when there is none (or ``refresh``); a stale one is used
    with a warning."""
    from rag.explore.maps import is_stale, load_map, refresh_map

    built = None if refresh else load_map(settings, store.collection)
    if built is not None:
        if is_stale(settings, store, built.meta):
            err.print("the collection changed since its map was built: --refresh rebuilds it")
        return built
    last = [""]

    def progress(phase: str, done: int, total: int) -> None:
        if phase != last[0]:
            last[0] = phase
            err.print(f"map: {phase} ({total} chunks)" if phase == "reading" else f"map: {phase}")

    return refresh_map(settings, store, progress)


@explore_app.command("map")
def explore_map(
    collection: CollectionOpt = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Draw the map into this PNG file.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Points printed (a uniform random sample).")
    ] = 20,
    refresh: RefreshOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Place every chunk in 2-D and group them into clusters.

    The map is built on first use and cached per collection version. Prints a sample of the
    points (chunk id, x, y, cluster, source) and the clusters.
    """
    settings = load_settings(collection)
    built = _map_of(settings, refresh)
    if png is not None:
        from rag.explore.render import render_png

        drawn = render_png(built, png)
        err.print(f"drew {drawn} of {len(built.ids)} points into {png}")
    n = min(limit, len(built.ids))
    points = [
        {
            "id": str(built.ids[i]),
            "x": float(built.xy[i, 0]),
            "y": float(built.xy[i, 1]),
            "cluster": int(built.cluster[i]),
            "source": built.sources[int(built.doc[i])],
        }
        for i in range(n)
    ]
    if as_json:
        meta = asdict(built.meta)
        meta.pop("outliers")
        typer.echo(json.dumps(meta | {"points": points}, indent=2))
        return
    typer.echo(
        f"{built.meta.total} chunks of {len(built.sources)} documents, "
        f"{len(built.meta.clusters)} clusters (fitted on {built.meta.fit_sample} chunks); "
        f"{n} points at random:"
    )
    for p in points:
        typer.echo(f"  {p['x']:8.3f} {p['y']:8.3f}  cluster {p['cluster']:>2}  {p['source']}")
    _print_clusters(built)


def _print_clusters(built: CollectionMap) -> None:
    for c in built.meta.clusters:
        typer.echo(f"cluster {c.id} ({c.size} chunks): {', '.join(c.terms)}")
        for example in c.examples:
            typer.echo(f"    {example['source']}")


@explore_app.command("clusters")
def explore_clusters(
    collection: CollectionOpt = None, refresh: RefreshOpt = False, as_json: JsonOpt = False
) -> None:
    """The map's clusters: size, distinctive terms, example documents."""
    settings = load_settings(collection)
    built = _map_of(settings, refresh)
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in built.meta.clusters], indent=2))
        return
    _print_clusters(built)


@explore_app.command("outliers")
def explore_outliers(
    collection: CollectionOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=50, help="How many.")] = 10,
    refresh: RefreshOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The documents farthest from the rest of the collection."""
    settings = load_settings(collection)
    built = _map_of(settings, refresh)
    found = built.meta.outliers[:k]
    if as_json:
        typer.echo(json.dumps([asdict(o) for o in found], indent=2))
        return
    for o in found:
        typer.echo(f"{o.distance:.3f}  {o.source}  ({o.chunks} chunks)")


@explore_app.command("similar")
def explore_similar(
    source: Annotated[str, typer.Argument(help="The document's source path, as stored.")],
    collection: CollectionOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=50, help="How many.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """The documents nearest to one, found by Qdrant from their stored vectors."""
    from rag.explore.neighbours import similar_documents

    settings = load_settings(collection)
    with errors():
        store = _open(settings)
        try:
            found = similar_documents(store, source, k=k)
        finally:
            store.close()
    if as_json:
        rows: list[dict[str, Any]] = [asdict(d) for d in found]
        typer.echo(json.dumps(rows, indent=2))
        return
    for d in found:
        typer.echo(f"{d.score:.3f}  {d.source}")
        typer.echo(f"       {d.text[:160].replace(chr(10), ' ')}")


@explore_app.command("locate")
def explore_locate(
    query: Annotated[str, typer.Argument(help="The question or search query.")],
    collection: CollectionOpt = None,
    k: Annotated[
        int, typer.Option("--k", "-k", min=1, max=50, help="Nearest chunks to place it among.")
    ] = 10,
    refresh: RefreshOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Where a query falls on the map: among its nearest chunks (the store's dense query),
    at the mean of their places weighted by their cosine similarity."""
    from rag.embedding import build_embedder
    from rag.explore.locate import locate
    from rag.explore.maps import is_stale
    from rag.retrieval import check_question

    settings = load_settings(collection)
    with errors():
        text = check_question(query, max_chars=settings.max_question_chars, field="query")
        embedder = build_embedder(settings)
        store = _open(settings)
        try:
            built = _current_map(settings, store, refresh)
            where = locate(store, built, embedder.embed_query(text), k=k)
            stale = is_stale(settings, store, built.meta)
        finally:
            store.close()
    if as_json:
        found = asdict(where) | {"query": text, "stale": stale}
        typer.echo(json.dumps(found, indent=2))
        return
    if where.x is None or where.y is None:
        typer.echo("none of its nearest chunks is on the map: --refresh rebuilds it")
    else:
        typer.echo(f"at {where.x:.3f} {where.y:.3f}, among {len(where.hits)} nearest chunks:")
    for h in where.hits:
        place = "   (not mapped)  " if h.x is None or h.y is None else f"{h.x:8.3f} {h.y:8.3f}"
        typer.echo(f"  {h.similarity:.3f}  {place}  {h.source}")


@explore_app.command("shift")
def explore_shift(
    collection: CollectionOpt = None, refresh: RefreshOpt = False, as_json: JsonOpt = False
) -> None:
    """How the collection shifted between its two latest maps of different versions.

    Documents added and removed, chunks per cluster (of the earlier map) before and after,
    and the cosine distance between the mean vectors of all chunks before and after. A map
    built after the collection changed measures it; --refresh builds one now.
    """
    from rag.explore.maps import is_stale, load_shift

    settings = load_settings(collection)
    with errors():
        store = _open(settings)
        try:
            built = _current_map(settings, store, refresh)
            stale = is_stale(settings, store, built.meta)
        finally:
            store.close()
    shift = load_shift(settings, built.meta.collection)
    if as_json:
        typer.echo(json.dumps(None if shift is None else asdict(shift), indent=2))
        return
    if shift is None:
        typer.echo("no shift yet: the map has not been rebuilt since the collection changed")
        return
    if stale:
        typer.echo("(the collection changed again since: --refresh measures the latest shift)")
    distance = "unknown" if shift.centroid_distance is None else f"{shift.centroid_distance:.5f}"
    typer.echo(
        f"{shift.chunks_before} -> {shift.chunks_after} chunks; "
        f"{shift.documents_added} documents added, {shift.documents_removed} removed; "
        f"mean vector moved by {distance} (cosine distance)"
    )
    for label, sources in (("added", shift.added), ("removed", shift.removed)):
        for source in sources:
            typer.echo(f"  {label}: {source}")
    for c in sorted(shift.clusters, key=lambda c: -abs(c.share_moved)):
        typer.echo(
            f"cluster {c.id} ({', '.join(c.terms[:4])}): {c.before} -> {c.after} chunks, "
            f"share {c.share_moved * 100:+.1f} points"
        )
