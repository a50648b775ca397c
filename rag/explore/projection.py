"""Projection and clustering, fitted on a sample of vectors, then applied to any vector."""

from __future__ import annotations

from dataclasses import dataclass

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
