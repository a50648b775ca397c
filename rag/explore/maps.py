"""The embedding map of a collection: every chunk placed in 2-D with a cluster, the clusters'
labels and examples, and the documents farthest from the rest. Built by ``build_map`` (a
background job in the service), cached under DATA_DIR per collection and collection version."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath

import numpy as np
from scipy import sparse

from rag.catalog import state_path
from rag.config import Settings
from rag.display import common_folder
from rag.explore.labels import cluster_terms
from rag.explore.projection import fit_layout, fit_projection
from rag.store.base import VectorStore

log = logging.getLogger(__name__)

# Texts read to label clusters: a sample's words are as distinctive as all of them.
_LABEL_TEXTS = 5000
_EXAMPLES = 3
_OUTLIERS = 50
# Each document is compared with at most this many others (a random subset) for outliers,
# which bounds that step on a collection of very many documents.
_OUTLIER_PEERS = 10_000
_NEIGHBOURS = 5

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)`` as a map is built."""


@dataclass(frozen=True)
class ClusterInfo:
    id: int
    size: int
    terms: list[str]
    examples: list[dict[str, str]]
    """Documents whose chunks lie nearest the cluster's centre: source and title."""


@dataclass(frozen=True)
class Outlier:
    source: str
    title: str
    chunks: int
    distance: float
    """1 minus the mean cosine similarity to the document's nearest other documents."""


@dataclass(frozen=True)
class FolderInfo:
    name: str
    """The folder relative to the one all the map's documents share ("." for that one)."""
    chunks: int
    documents: int


@dataclass
class MapMeta:
    collection: str
    version: str
    built: float
    total: int
    fit_sample: int
    clusters: list[ClusterInfo] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    seconds: float = 0.0
    layout: str = "pca"
    """How the points were laid out: ``tsne`` or ``pca`` (maps cached before t-SNE are pca)."""
    layout_sample: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MapMeta:
        data = json.loads(text)
        data["clusters"] = [ClusterInfo(**c) for c in data["clusters"]]
        data["outliers"] = [Outlier(**o) for o in data["outliers"]]
        return cls(**data)


@dataclass
class CollectionMap:
    """Every chunk of the collection, in a random order (so any slice is a uniform sample)."""

    meta: MapMeta
    ids: np.ndarray
    xy: np.ndarray
    cluster: np.ndarray
    doc: np.ndarray
    """Index into ``sources`` and ``titles`` per point."""
    sources: list[str]
    titles: list[str]
    centroid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    """The mean of every chunk's vector (empty on maps cached before it was kept)."""
    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    """The clusters' centres in the vectors' space, so a later map can sort its chunks into
    this map's clusters."""
    in_reference: np.ndarray | None = None
    """Chunks per cluster of the ``reference`` centres given to ``build_map``."""


@dataclass(frozen=True)
class ClusterShift:
    id: int
    terms: list[str]
    before: int
    after: int
    """Chunks of the new collection nearest this cluster's centre."""
    share_moved: float
    """Its share of all chunks after minus before (0.05: five points more of the collection)."""


@dataclass(frozen=True)
class MapShift:
    """How the collection changed between two maps, in the earlier map's clusters."""

    collection: str
    before_version: str
    after_version: str
    before_built: float
    after_built: float
    chunks_before: int
    chunks_after: int
    documents_added: int
    documents_removed: int
    added: list[str]
    removed: list[str]
    """The first of the documents added and removed (sources, sorted)."""
    centroid_distance: float | None
    """Cosine distance between the mean vectors of all chunks before and after (None when the
    earlier map did not keep its mean)."""
    clusters: list[ClusterShift]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> MapShift:
        data = json.loads(text)
        data["clusters"] = [ClusterShift(**c) for c in data["clusters"]]
        return cls(**data)


# Documents named in a shift (the counts cover all of them).
_SHIFT_DOCUMENTS = 50


def source_folders(sources: Sequence[str]) -> list[str]:
    """Each source's folder relative to the deepest folder holding all of them: "." for a
    file in that folder itself; a folder outside it (or with no shared folder) as it is."""
    root = common_folder(sources)
    named = []
    for source in sources:
        parent = PurePath(source).parent
        if root is not None and parent.is_relative_to(root):
            parent = parent.relative_to(root)
        named.append(str(parent))
    return named


def folder_legend(built: CollectionMap, folders: Sequence[str]) -> list[FolderInfo]:
    """The map's folders (``folders``: one per document of ``built.sources``), the most chunks
    first, with their chunks and documents."""
    chunks = np.bincount(built.doc.astype(np.int64), minlength=len(folders)).tolist()
    per_folder: Counter[str] = Counter()
    documents: Counter[str] = Counter()
    for folder, count in zip(folders, chunks, strict=False):
        per_folder[folder] += count
        documents[folder] += 1
    return [
        FolderInfo(name, count, documents[name])
        for name, count in sorted(per_folder.items(), key=lambda f: (-f[1], f[0]))
    ]


def collection_version(settings: Settings, store: VectorStore) -> str:
    """Changes whenever the collection does: its chunk count and the last write to its
    ingestion state (SQLite and its write-ahead log), which every ingestion commits to. An
    empty log holds no write: a reader that opens the state creates one."""
    state = state_path(settings, store.collection)
    stamps = []
    for path in (state, Path(f"{state}-wal")):
        try:
            found = path.stat()
        except OSError:
            continue
        if found.st_size:
            stamps.append(found.st_mtime_ns)
    return f"{store.count()}-{max(stamps, default=0)}"


def map_dir(settings: Settings, collection: str) -> Path:
    return settings.data_dir / "explore" / collection


def save_map(settings: Settings, built: CollectionMap) -> None:
    """Written to temporary files then renamed, the metadata last: a reader never sees a
    half-written map."""
    folder = map_dir(settings, built.meta.collection)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = folder / "points.tmp.npz"
    with arrays.open("wb") as out:
        np.savez(
            out,
            ids=built.ids,
            xy=built.xy,
            cluster=built.cluster,
            doc=built.doc,
            sources=np.array(built.sources, dtype=object),
            titles=np.array(built.titles, dtype=object),
            centroid=built.centroid,
            centres=built.centres,
        )
    arrays.replace(folder / "points.npz")
    meta = folder / "map.tmp.json"
    meta.write_text(built.meta.to_json())
    meta.replace(folder / "map.json")


def load_meta(settings: Settings, collection: str) -> MapMeta | None:
    path = map_dir(settings, collection) / "map.json"
    try:
        return MapMeta.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_map(settings: Settings, collection: str) -> CollectionMap | None:
    meta = load_meta(settings, collection)
    if meta is None:
        return None
    try:
        with np.load(map_dir(settings, collection) / "points.npz", allow_pickle=True) as data:
            return CollectionMap(
                meta=meta,
                ids=data["ids"],
                xy=data["xy"],
                cluster=data["cluster"],
                doc=data["doc"],
                sources=[str(s) for s in data["sources"]],
                titles=[str(t) for t in data["titles"]],
                # Absent from maps cached before shifts were measured.
                **{k: data[k] for k in ("centroid", "centres") if k in data.files},
            )
    except (OSError, ValueError, KeyError):
        return None


def drop_map(settings: Settings, collection: str) -> None:
    folder = map_dir(settings, collection)
    for name in ("map.json", "points.npz", "shift.json"):
        (folder / name).unlink(missing_ok=True)


def build_map(
    store: VectorStore,
    *,
    version: str,
    fit_sample: int,
    clusters: int,
    layout: str = "tsne",
    layout_sample: int = 3000,
    reference: np.ndarray | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> CollectionMap:
    """Read every chunk's vector, fit the projection and clusters on a random sample of
    ``fit_sample`` of them, place them all, lay them out in 2-D (``layout``: a t-SNE fitted on
    ``layout_sample`` of them, or the first two principal components), label the clusters and
    find the outliers. With ``reference`` (an earlier map's ``centres``), also count the chunks
    nearest each of those centres."""
    started = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    total = store.count()
    report("reading", 0, total)
    ids: list[str] = []
    doc_of: list[int] = []
    sources: list[str] = []
    titles: list[str] = []
    index: dict[str, int] = {}
    blocks: list[np.ndarray] = []
    summed: np.ndarray | None = None
    for page_ids, payloads, vectors in store.scan_vectors(fields=["source", "title"], batch=2048):
        ids.extend(page_ids)
        for payload in payloads:
            source = str(payload.get("source", ""))
            if source not in index:
                index[source] = len(sources)
                sources.append(source)
                titles.append(str(payload.get("title") or ""))
            doc_of.append(index[source])
        blocks.append(vectors)
        part_sum = vectors.sum(axis=0, dtype=np.float64)
        summed = part_sum if summed is None else summed + part_sum
        report("reading", len(ids), max(total, len(ids)))
    n = len(ids)
    centroid = (np.zeros(0) if summed is None else summed / max(n, 1)).astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    meta = MapMeta(store.collection, version, time.time(), n, min(n, fit_sample))
    if n < 2:
        report("done", n, n)
        return CollectionMap(
            meta,
            np.array(ids, dtype=object),
            np.zeros((n, 2), dtype=np.float32),
            np.zeros(n, dtype=np.int32),
            np.array(doc_of, dtype=np.int32),
            sources,
            titles,
            centroid,
        )
    vectors = np.concatenate(blocks)
    del blocks
    docs = np.asarray(doc_of, dtype=np.int32)
    sample = order[: meta.fit_sample]
    report("fitting", 0, 1)
    projection = fit_projection(vectors[sample], clusters=clusters, seed=seed)
    report("placing", 0, n)
    reduced = np.empty((n, projection.dimensions), dtype=np.float32)
    labels = np.empty(n, dtype=np.int32)
    nearest_reference = np.zeros(n if reference is not None else 0, dtype=np.int32)
    step = 20_000
    for start in range(0, n, step):
        part = slice(start, start + step)
        reduced[part] = projection.reduce(vectors[part])
        labels[part] = projection.cluster(reduced[part])
        if reference is not None and reference.shape[1:] == vectors.shape[1:]:
            nearest_reference[part] = _nearest(vectors[part], reference)
        report("placing", min(n, start + step), n)
    del vectors
    xy = _lay_out(reduced, order, method=layout, sample=layout_sample, meta=meta, report=report)
    report("labelling", 0, 1)
    meta.clusters = _describe_clusters(
        store,
        projection.centroids,
        reduced[sample],
        sample,
        labels,
        ids,
        docs,
        sources,
        titles,
    )
    report("outliers", 0, 1)
    meta.outliers = _outliers(reduced, docs, sources, titles, rng)
    meta.seconds = time.perf_counter() - started
    report("done", n, n)
    log.info("mapped %d chunks of %r in %.1fs", n, store.collection, meta.seconds)
    return CollectionMap(
        meta,
        np.array(ids, dtype=object)[order],
        xy[order],
        labels[order],
        docs[order],
        sources,
        titles,
        centroid,
        projection.input_centroids,
        None
        if reference is None
        else np.bincount(nearest_reference, minlength=len(reference)).astype(np.int64),
    )


def _nearest(vectors: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The index of each vector's nearest centre (Euclidean, as k-means assigns)."""
    distance = (centres * centres).sum(axis=1)[None, :] - 2.0 * (vectors @ centres.T)
    nearest: np.ndarray = distance.argmin(axis=1).astype(np.int32)
    return nearest


def measure_shift(before: CollectionMap, after: CollectionMap) -> MapShift:
    """How the collection moved from ``before`` to ``after`` (built with ``before.centres``
    as its reference)."""
    old, new = set(before.sources), set(after.sources)
    added, removed = sorted(new - old), sorted(old - new)
    distance = None
    if before.centroid.shape == after.centroid.shape and len(after.centroid):
        norms = float(np.linalg.norm(before.centroid) * np.linalg.norm(after.centroid))
        cosine = float(before.centroid @ after.centroid) / norms if norms > 0 else 1.0
        distance = max(0.0, 1.0 - cosine)
    counts = after.in_reference
    total_before, total_after = max(before.meta.total, 1), max(after.meta.total, 1)
    clusters = []
    for c in before.meta.clusters:
        now = 0 if counts is None or c.id >= len(counts) else int(counts[c.id])
        moved = now / total_after - c.size / total_before
        clusters.append(ClusterShift(c.id, c.terms, c.size, now, round(moved, 6)))
    return MapShift(
        collection=after.meta.collection,
        before_version=before.meta.version,
        after_version=after.meta.version,
        before_built=before.meta.built,
        after_built=after.meta.built,
        chunks_before=before.meta.total,
        chunks_after=after.meta.total,
        documents_added=len(added),
        documents_removed=len(removed),
        added=added[:_SHIFT_DOCUMENTS],
        removed=removed[:_SHIFT_DOCUMENTS],
        centroid_distance=distance,
        clusters=clusters,
    )


def load_shift(settings: Settings, collection: str) -> MapShift | None:
    """The shift measured by the collection's latest map build after it changed."""
    try:
        return MapShift.from_json((map_dir(settings, collection) / "shift.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_shift(settings: Settings, shift: MapShift) -> None:
    folder = map_dir(settings, shift.collection)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / "shift.tmp.json"
    temporary.write_text(shift.to_json())
    temporary.replace(folder / "shift.json")


def _lay_out(
    reduced: np.ndarray,
    order: np.ndarray,
    *,
    method: str,
    sample: int,
    meta: MapMeta,
    report: Progress,
) -> np.ndarray:
    """Every point's map coordinates: the layout is fitted on the first ``sample`` of the
    random ``order`` (a prefix of the fit sample), then the rest are placed into it."""
    n = len(reduced)
    fitted = order[: min(n, sample, meta.fit_sample)]
    report("fitting layout", 0, 1)
    fit = fit_layout(reduced[fitted], method=method)
    meta.layout = "pca" if fit.embedding is None else "tsne"
    meta.layout_sample = len(fitted) if fit.embedding is not None else 0
    xy = np.empty((n, 2), dtype=np.float32)
    xy[fitted] = fit.sample_positions(reduced[fitted])
    rest = order[len(fitted) :]
    step = 5000
    for start in range(0, len(rest), step):
        part = rest[start : start + step]
        xy[part] = fit.place(reduced[part])
        report("laying out", min(len(rest), start + step), len(rest))
    return xy


def _describe_clusters(
    store: VectorStore,
    centroids: np.ndarray,
    reduced_sample: np.ndarray,
    sample: np.ndarray,
    labels: np.ndarray,
    ids: list[str],
    docs: np.ndarray,
    sources: list[str],
    titles: list[str],
) -> list[ClusterInfo]:
    clusters = len(centroids)
    sizes = np.bincount(labels, minlength=clusters)
    sample_labels = labels[sample]
    labelled = sample[:_LABEL_TEXTS]
    texts = {c.id: c.text for c, _ in store.fetch([ids[i] for i in labelled])}
    kept = [i for i in labelled if ids[i] in texts]
    terms = cluster_terms([texts[ids[i]] for i in kept], labels[kept], clusters=clusters)
    described = []
    for c in range(clusters):
        members = np.flatnonzero(sample_labels == c)
        distance = np.linalg.norm(reduced_sample[members] - centroids[c], axis=1)
        examples: list[dict[str, str]] = []
        for m in members[np.argsort(distance)]:
            d = int(docs[sample[m]])
            if all(e["source"] != sources[d] for e in examples):
                examples.append({"source": sources[d], "title": titles[d]})
            if len(examples) == _EXAMPLES:
                break
        described.append(ClusterInfo(c, int(sizes[c]), terms[c], examples))
    return described


def _outliers(
    vectors: np.ndarray,
    docs: np.ndarray,
    sources: list[str],
    titles: list[str],
    rng: np.random.Generator,
) -> list[Outlier]:
    """Documents whose mean vector is least like their nearest other documents', in the
    projection's reduced space (its principal components keep most of the vectors' spread at
    a fraction of the cost of comparing full vectors)."""
    count = len(sources)
    if count < 2:
        return []
    # Sums of each document's vectors, as a sparse one-hot product (np.add.at is far slower).
    onehot = sparse.csr_matrix(
        (np.ones(len(docs), dtype=np.float32), (docs, np.arange(len(docs)))),
        shape=(count, len(docs)),
    )
    sums = np.asarray(onehot @ vectors, dtype=np.float32)
    means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    chunks = np.bincount(docs, minlength=count)
    peers = np.arange(count) if count <= _OUTLIER_PEERS else rng.choice(count, _OUTLIER_PEERS)
    near = min(_NEIGHBOURS, len(peers) - 1)
    closeness = np.empty(count, dtype=np.float32)
    for start in range(0, count, 1024):
        rows = np.arange(start, min(count, start + 1024))
        sims = means[rows] @ means[peers].T
        sims[rows[:, None] == peers[None, :]] = -np.inf  # not itself
        best = -np.partition(-sims, near - 1, axis=1)[:, :near]
        closeness[rows] = best.mean(axis=1)
    worst = np.argsort(closeness)[:_OUTLIERS]
    return [
        Outlier(sources[d], titles[d], int(chunks[d]), float(1.0 - closeness[d])) for d in worst
    ]


def refresh_map(
    settings: Settings, store: VectorStore, progress: Progress | None = None
) -> CollectionMap:
    """Build the collection's map for its current version and cache it. When an earlier map
    of another version is cached, also measure and keep how the collection shifted since."""
    version = collection_version(settings, store)
    previous = load_map(settings, store.collection)
    if previous is not None and (previous.meta.version == version or not len(previous.centres)):
        previous = None  # nothing changed, or a map too old to compare with
    built = build_map(
        store,
        version=version,
        fit_sample=settings.map_fit_sample,
        clusters=settings.map_clusters,
        layout=settings.map_layout,
        layout_sample=settings.map_layout_sample,
        reference=None if previous is None else previous.centres,
        progress=progress,
    )
    if previous is not None:
        _save_shift(settings, measure_shift(previous, built))
    save_map(settings, built)
    return built


def is_stale(settings: Settings, store: VectorStore, meta: MapMeta) -> bool:
    """Whether the collection changed since the map was built."""
    return meta.version != collection_version(settings, store)
