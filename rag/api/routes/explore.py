"""Seeing a collection: its embedding map, clusters, outliers, similar documents, and the
statistics of the questions asked."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from ingest.source_names import names_for
from rag.api.deps import StateDep
from rag.api.schemas import ErrorResponse, Name, PathText, Text
from rag.api.state import ServiceState, collections_in_use
from rag.config import validate_collection_name
from rag.errors import InvalidInputError, NotReadyError
from rag.explore.jobs import MapJob
from rag.explore.locate import locate
from rag.explore.maps import (
    CollectionMap,
    MapMeta,
    Progress,
    folder_legend,
    is_stale,
    load_map,
    load_meta,
    load_shift,
    refresh_map,
    source_folders,
)
from rag.explore.neighbours import similar_documents
from rag.retrieval import check_question

router = APIRouter(
    prefix="/v1",
    tags=["explore"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    },
)

# Folders named in a map's legend: beyond them the app colours points alike.
_LEGEND_FOLDERS = 100


class MapJobResponse(BaseModel):
    collection: str
    status: str = Field(description="running, done or failed")
    phase: str = Field(
        description="starting, reading, fitting, placing, fitting layout, laying out, "
        "labelling, outliers or done"
    )
    done: int = Field(description="Items of the phase done (chunks read or placed).")
    total: int
    started: float
    finished: float | None
    error: str | None


class MapPoint(BaseModel):
    id: str = Field(description="The chunk's id.")
    x: float
    y: float
    cluster: int
    folder: str = Field(
        description="The document's folder relative to the folder all the map's documents "
        'share ("." for that one).'
    )
    source: str
    display_source: str
    title: str


class FolderModel(BaseModel):
    name: str = Field(description="As in the points' `folder`.")
    chunks: int
    documents: int


class ClusterModel(BaseModel):
    id: int
    size: int = Field(description="Chunks in the cluster (of the whole collection).")
    terms: list[str] = Field(description="Its most distinctive words (class-based TF-IDF).")
    examples: list[dict[str, str]] = Field(
        description="Documents (source, title) whose chunks lie nearest its centre."
    )


class MapStatus(BaseModel):
    ready: bool = Field(description="A map has been built (it may be stale).")
    stale: bool = Field(description="The collection changed since the map was built.")
    version: str | None
    built: float | None = Field(description="When the map was built (Unix time).")
    job: MapJobResponse | None = Field(description="The collection's latest map build.")


class MapResponse(MapStatus):
    collection: str
    total: int = Field(description="Chunks in the map.")
    offset: int
    limit: int
    sampling: str = Field(
        description="How the points were chosen. The map's points are stored in a random "
        "order, so each page is a uniform random sample of the collection's chunks."
    )
    fit_sample: int = Field(description="Chunks the projection and clusters were fitted on.")
    layout: str = Field(
        description="How the points were laid out: tsne (RAG_MAP_LAYOUT_SAMPLE chunks fitted, "
        "the rest placed into it) or pca (the first two principal components)."
    )
    points: list[MapPoint]
    clusters: list[ClusterModel]
    folders: list[FolderModel] = Field(
        description=f"The map's folders, the most chunks first (at most {_LEGEND_FOLDERS}), "
        "for colouring the points by folder."
    )


class LocatedHitModel(BaseModel):
    id: str = Field(description="The chunk's id.")
    similarity: float = Field(description="Cosine similarity to the query.")
    source: str
    display_source: str
    title: str
    text: str
    x: float | None = Field(description="Null for a chunk written since the map was built.")
    y: float | None


class LocateResponse(BaseModel):
    collection: str
    query: str
    stale: bool = Field(description="The collection changed since the map was built.")
    version: str
    built: float
    x: float | None = Field(
        description="The query's place: the mean of its mapped hits' places weighted by their "
        "similarity; null when none of them is on the map."
    )
    y: float | None
    hits: list[LocatedHitModel] = Field(description="The query's nearest chunks, best first.")


class ClustersResponse(MapStatus):
    collection: str
    clusters: list[ClusterModel]


class OutlierModel(BaseModel):
    source: str
    display_source: str
    title: str
    chunks: int
    distance: float = Field(
        description="1 minus the mean cosine similarity to its nearest other documents "
        "(in the map's reduced space): higher is farther from the rest."
    )


class OutliersResponse(MapStatus):
    collection: str
    outliers: list[OutlierModel]


class ClusterShiftModel(BaseModel):
    id: int = Field(description="The cluster, of the earlier map.")
    terms: list[str]
    before: int = Field(description="Its chunks in the earlier map.")
    after: int = Field(description="Chunks of the new map nearest its centre.")
    share_moved: float = Field(
        description="Its share of the collection after minus before (0.05: five points more)."
    )


class ShiftModel(BaseModel):
    before_version: str
    after_version: str
    before_built: float
    after_built: float
    chunks_before: int
    chunks_after: int
    documents_added: int
    documents_removed: int
    added: list[str] = Field(description="The first 50 documents added (sources, sorted).")
    removed: list[str] = Field(description="The first 50 documents removed.")
    centroid_distance: float | None = Field(
        description="Cosine distance between the mean of all chunk vectors before and after."
    )
    clusters: list[ClusterShiftModel]


class ShiftResponse(MapStatus):
    collection: str
    shift: ShiftModel | None = Field(
        description="Between the two latest maps of different versions; null until a map is "
        "rebuilt after the collection changed."
    )


class SimilarDocumentModel(BaseModel):
    source: str
    display_source: str
    title: str
    score: float = Field(description="Best cosine similarity between a chunk of each.")
    chunk_id: str
    text: str = Field(description="Its chunk closest to the document.")


class SimilarResponse(BaseModel):
    collection: str
    source: str
    documents: list[SimilarDocumentModel]


class StatsBucketModel(BaseModel):
    start: float = Field(description="Start of the bucket (Unix time).")
    questions: int
    abstention_rate: float
    quote_rate: float = Field(description="Answers that quote a passage (by design or fallback).")
    fallback_rate: float = Field(
        description="Answers quoted because the model's text failed the grounding check."
    )
    similarity_p10: float | None
    similarity_p50: float | None
    similarity_p90: float | None = Field(
        description="Percentiles of each question's best retrieved cosine similarity."
    )


class StatsResponse(BaseModel):
    recording: bool = Field(description="Whether questions are recorded (RAG_RECORD_QUESTIONS).")
    since: float
    bucket_seconds: int
    collection: str | None
    total: StatsBucketModel | None = Field(description="The whole period as one bucket.")
    series: list[StatsBucketModel]


def _name(state: ServiceState, name: str) -> str:
    try:
        return validate_collection_name(name)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="name") from None


def _job(job: MapJob | None) -> MapJobResponse | None:
    return None if job is None else MapJobResponse(**asdict(job))


def start_map_job(state: ServiceState, collection: str) -> MapJob:
    """Build the collection's map on a thread, its collection held open while it runs."""

    def work(progress: Progress) -> None:
        with collections_in_use():
            refresh_map(state.settings, state.store(collection), progress)

    return state.maps.start(collection, work)


def _status(state: ServiceState, collection: str, meta: MapMeta | None) -> MapStatus:
    """Where the collection's map stands; a missing map is started building."""
    store = state.store(collection)
    job = state.maps.get(collection)
    if meta is None and (job is None or job.status != "running"):
        job = start_map_job(state, collection)
    return MapStatus(
        ready=meta is not None,
        stale=meta is not None and is_stale(state.settings, store, meta),
        version=None if meta is None else meta.version,
        built=None if meta is None else meta.built,
        job=_job(job),
    )


def _clusters(meta: MapMeta | None) -> list[ClusterModel]:
    return [] if meta is None else [ClusterModel(**asdict(c)) for c in meta.clusters]


@router.get("/collections/{name}/map", response_model=MapResponse)
def collection_map(
    name: str,
    state: StateDep,
    offset: Annotated[int, Query(ge=0, description="First point of the page.")] = 0,
    limit: Annotated[
        int | None, Query(ge=1, description="Points in the page (at most RAG_MAP_POINTS).")
    ] = None,
) -> MapResponse:
    """The embedding map: each chunk's 2-D position and cluster, with its document. Built
    by a background job (started here when there is no map yet; `job` shows its progress)."""
    collection = _name(state, name)
    built: CollectionMap | None = load_map(state.settings, collection)
    meta = None if built is None else built.meta
    map_status = _status(state, collection, meta)
    most = state.settings.map_points
    if limit is not None and limit > most:
        raise InvalidInputError(f"limit is over RAG_MAP_POINTS ({most})", field="limit")
    size = limit or most
    points: list[MapPoint] = []
    folders: list[FolderModel] = []
    total = 0
    if built is not None:
        names = names_for(state.settings, collection)
        total = len(built.ids)
        folder_of = source_folders(built.sources)
        legend = folder_legend(built, folder_of)[:_LEGEND_FOLDERS]
        folders = [FolderModel(**asdict(f)) for f in legend]
        for i in range(offset, min(total, offset + size)):
            d = int(built.doc[i])
            points.append(
                MapPoint(
                    id=str(built.ids[i]),
                    x=float(built.xy[i, 0]),
                    y=float(built.xy[i, 1]),
                    cluster=int(built.cluster[i]),
                    folder=folder_of[d],
                    source=built.sources[d],
                    display_source=names(built.sources[d]),
                    title=built.titles[d],
                )
            )
    sampling = (
        "every point"
        if offset == 0 and len(points) == total
        else f"points {offset} to {offset + len(points)} of {total} in random order: a "
        "uniform random sample"
    )
    return MapResponse(
        **map_status.model_dump(),
        collection=collection,
        total=total,
        offset=offset,
        limit=size,
        sampling=sampling,
        fit_sample=0 if meta is None else meta.fit_sample,
        layout=state.settings.map_layout if meta is None else meta.layout,
        points=points,
        clusters=_clusters(meta),
        folders=folders,
    )


@router.post(
    "/collections/{name}/map",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MapJobResponse,
)
def rebuild_map(name: str, state: StateDep) -> MapJobResponse:
    """Build the collection's map again (a background job); a running build is returned."""
    collection = _name(state, name)
    state.store(collection)  # 404 now rather than a failed job later
    job = _job(start_map_job(state, collection))
    assert job is not None
    return job


@router.get(
    "/collections/{name}/map/locate",
    response_model=LocateResponse,
    responses={409: {"model": ErrorResponse, "description": "No map has been built yet."}},
)
def locate_query(
    name: str,
    state: StateDep,
    q: Annotated[Text, Query(description="The query (RAG_MAX_QUESTION_CHARS at most).")],
    k: Annotated[
        int, Query(ge=1, le=50, description="Nearest chunks the query is placed among.")
    ] = 10,
) -> LocateResponse:
    """Where a query falls on the map: among its `k` nearest chunks (the store's dense query
    on the collection's vectors), at the mean of their places weighted by their similarity.
    409 while the collection has no map (its build is started); `stale` when the collection
    changed since the map was built."""
    collection = _name(state, name)
    text = check_question(q, max_chars=state.settings.max_question_chars, field="q")
    store = state.store(collection)
    built = load_map(state.settings, collection)
    if built is None:
        _status(state, collection, None)  # starts the build
        raise NotReadyError(
            f"collection {collection!r} has no map yet: its build has started "
            f"(GET /v1/collections/{collection}/map/job)"
        )
    where = locate(store, built, state.embedder.embed_query(text), k=k)
    names = names_for(state.settings, collection)
    return LocateResponse(
        collection=collection,
        query=text,
        stale=is_stale(state.settings, store, built.meta),
        version=built.meta.version,
        built=built.meta.built,
        x=where.x,
        y=where.y,
        hits=[LocatedHitModel(**asdict(h), display_source=names(h.source)) for h in where.hits],
    )


@router.get("/collections/{name}/map/job", response_model=MapJobResponse | None)
def map_job(name: str, state: StateDep, response: Response) -> MapJobResponse | None:
    """The progress of the collection's latest map build; 204 when none ran."""
    job = _job(state.maps.get(_name(state, name)))
    if job is None:
        response.status_code = status.HTTP_204_NO_CONTENT
    return job


@router.get("/collections/{name}/clusters", response_model=ClustersResponse)
def clusters(name: str, state: StateDep) -> ClustersResponse:
    """The map's clusters: sizes, distinctive terms, example documents."""
    collection = _name(state, name)
    meta = load_meta(state.settings, collection)
    return ClustersResponse(
        **_status(state, collection, meta).model_dump(),
        collection=collection,
        clusters=_clusters(meta),
    )


@router.get("/collections/{name}/outliers", response_model=OutliersResponse)
def outliers(
    name: str,
    state: StateDep,
    k: Annotated[int, Query(ge=1, le=50, description="How many documents.")] = 10,
) -> OutliersResponse:
    """The documents farthest from the rest of the collection, farthest first."""
    collection = _name(state, name)
    meta = load_meta(state.settings, collection)
    names = names_for(state.settings, collection)
    found = [] if meta is None else meta.outliers[:k]
    return OutliersResponse(
        **_status(state, collection, meta).model_dump(),
        collection=collection,
        outliers=[OutlierModel(**asdict(o), display_source=names(o.source)) for o in found],
    )


@router.get("/collections/{name}/shift", response_model=ShiftResponse)
def shift(name: str, state: StateDep) -> ShiftResponse:
    """How the collection moved between its two latest maps: documents added and removed,
    chunks per cluster (of the earlier map) before and after, and how far the mean vector
    of all chunks moved."""
    collection = _name(state, name)
    meta = load_meta(state.settings, collection)
    found = load_shift(state.settings, collection)
    data = None if found is None else asdict(found)
    if data is not None:
        data.pop("collection")
    return ShiftResponse(
        **_status(state, collection, meta).model_dump(),
        collection=collection,
        shift=None if data is None else ShiftModel(**data),
    )


@router.get("/documents/similar", response_model=SimilarResponse)
def similar(
    state: StateDep,
    source: Annotated[PathText, Query(min_length=1, description="The document's source path.")],
    k: Annotated[int, Query(ge=1, le=50, description="How many documents.")] = 5,
    collection: Annotated[Name | None, Query(description="Default: the configured one.")] = None,
) -> SimilarResponse:
    """The documents nearest to one, by Qdrant's recommend query on the stored vectors of its
    chunks."""
    name = collection or state.settings.collection
    try:
        validate_collection_name(name)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="collection") from None
    found = similar_documents(state.store(name), source, k=k)
    names = names_for(state.settings, name)
    return SimilarResponse(
        collection=name,
        source=source,
        documents=[
            SimilarDocumentModel(**asdict(d), display_source=names(d.source)) for d in found
        ],
    )


@router.get("/stats", response_model=StatsResponse)
def stats(
    state: StateDep,
    hours: Annotated[float, Query(gt=0, le=24 * 366, description="How far back.")] = 24 * 7,
    bucket_seconds: Annotated[
        int, Query(ge=60, le=86_400 * 31, description="Width of each bucket of the series.")
    ] = 3600,
    collection: Annotated[Name | None, Query(description="Default: every collection.")] = None,
) -> StatsResponse:
    """What became of the questions asked over time: abstention, quote and fallback rates,
    and the distribution of the best retrieved similarity."""
    since = time.time() - hours * 3600
    log = state.questions
    series = (
        []
        if log is None
        else log.series(since=since, bucket_seconds=bucket_seconds, collection=collection)
    )
    whole = (
        []
        if log is None
        else log.series(since=since, bucket_seconds=hours * 3600 + 1, collection=collection)
    )
    return StatsResponse(
        recording=log is not None,
        since=since,
        bucket_seconds=bucket_seconds,
        collection=collection,
        total=StatsBucketModel(**asdict(whole[0])) if whole else None,
        series=[StatsBucketModel(**asdict(b)) for b in series],
    )


@router.get("/settings")
def settings(state: StateDep) -> dict[str, Any]:
    """The service's settings, read only (set with RAG_* environment variables); keys and
    other secrets are masked."""
    values: dict[str, Any] = state.settings.model_dump(mode="json")  # SecretStr: "**********"
    return {"settings": values}
