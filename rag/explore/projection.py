"""Projection and clustering, fitted on a sample of vectors, then applied to any vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

# Clusters are found in this many principal components: enough to keep the neighbourhoods of
# sentence embeddings apart, few enough that k-means stays fast.
_CLUSTER_DIMS = 32


@dataclass(frozen=True)
class Projection:
    """A fitted space: ``reduce`` maps vectors into it (its first two axes are the map's
    coordinates), ``cluster`` assigns each reduced vector a cluster."""

    pca: PCA
    kmeans: KMeans

    @property
    def clusters(self) -> int:
        return int(self.kmeans.n_clusters)

    def reduce(self, vectors: np.ndarray) -> np.ndarray:
        reduced: np.ndarray = self.pca.transform(vectors).astype(np.float32)
        return reduced

    @property
    def dimensions(self) -> int:
        """Of the reduced space, whose first two are the map's x and y."""
        return int(self.pca.n_components_)

    def cluster(self, reduced: np.ndarray) -> np.ndarray:
        """The cluster of each reduced vector."""
        labels: np.ndarray = self.kmeans.predict(reduced).astype(np.int32)
        return labels

    @property
    def centroids(self) -> np.ndarray:
        """Cluster centres in the reduced space."""
        centres: np.ndarray = self.kmeans.cluster_centers_
        return centres

    @property
    def input_centroids(self) -> np.ndarray:
        """Cluster centres in the vectors' own space. They lie in the principal subspace, so
        the nearest of them to any vector is the cluster ``cluster`` gives it: a later map
        can sort its chunks into this map's clusters without this projection."""
        centres: np.ndarray = self.pca.inverse_transform(self.kmeans.cluster_centers_)
        return centres.astype(np.float32)


def fit_projection(sample: np.ndarray, *, clusters: int, seed: int = 0) -> Projection:
    """Fit on ``sample`` (rows are vectors); fewer clusters than asked when the sample is
    small (one cluster per five vectors at most)."""
    if len(sample) < 2:
        raise ValueError("a map needs at least two vectors")
    dims = max(2, min(_CLUSTER_DIMS, sample.shape[1], len(sample) - 1))
    pca = PCA(n_components=dims, random_state=seed).fit(sample)
    reduced = pca.transform(sample)
    k = max(1, min(clusters, len(sample) // 5))
    kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(reduced)
    return Projection(pca, kmeans)


# Fewer sampled vectors than this are laid out on their first two principal components: t-SNE
# needs several neighbours per point to mean anything.
_TSNE_MIN = 20
# Neighbours of the sample that place a new point (openTSNE's median initialisation) and the
# few optimisation steps after it: enough to settle a point among its neighbours, few enough
# that 100,000 points are placed in about a minute on two cores.
_PLACE_NEIGHBOURS = 15
_PLACE_ITERATIONS = 50


@dataclass(frozen=True)
class Layout:
    """The map's 2-D coordinates of reduced vectors: a t-SNE embedding of a sample, into which
    any other vector is placed, or (``embedding`` None) the first two principal components."""

    embedding: Any | None
    """An ``openTSNE.TSNEEmbedding`` of the sample (openTSNE is untyped)."""

    def place(self, reduced: np.ndarray) -> np.ndarray:
        if self.embedding is None or len(reduced) == 0:
            return np.ascontiguousarray(reduced[:, :2], dtype=np.float32)
        # Each new point is placed against the sample alone, so any batch gives the same result.
        placed = self.embedding.transform(
            np.ascontiguousarray(reduced, dtype=np.float64),
            k=_PLACE_NEIGHBOURS,
            n_iter=_PLACE_ITERATIONS,
        )
        return np.asarray(placed, dtype=np.float32)

    def sample_positions(self, reduced_sample: np.ndarray) -> np.ndarray:
        """Of the vectors the layout was fitted on, in the order given to ``fit_layout``."""
        if self.embedding is None:
            return np.ascontiguousarray(reduced_sample[:, :2], dtype=np.float32)
        return np.asarray(self.embedding, dtype=np.float32)


def fit_layout(reduced_sample: np.ndarray, *, method: str, seed: int = 0) -> Layout:
    """Fit the 2-D layout on reduced vectors: ``tsne`` or ``pca`` (the first two axes)."""
    if method == "pca" or len(reduced_sample) < _TSNE_MIN:
        return Layout(None)
    from openTSNE import TSNE  # imported here: only a map build needs it

    perplexity = min(30.0, (len(reduced_sample) - 1) / 3)
    embedding = TSNE(
        perplexity=perplexity, n_jobs=2, random_state=seed, n_iter=500, verbose=False
    ).fit(np.ascontiguousarray(reduced_sample, dtype=np.float64))
    return Layout(embedding)
