"""Cluster labels: each cluster's most distinctive terms by class-based TF-IDF."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

# Words of three letters or more that start with a letter: numbers and markup make poor labels.
_TOKENS = r"(?u)\b[^\W\d_][\w-]{2,}\b"


def cluster_terms(
    texts: Sequence[str], labels: np.ndarray, *, clusters: int, top: int = 6
) -> list[list[str]]:
    """The ``top`` terms of each cluster ``0..clusters-1``: frequent in its texts, rare in
    the others' (c-TF-IDF: a cluster's texts are one document)."""
    if not texts:
        return [[] for _ in range(clusters)]
    vectorizer = CountVectorizer(
        stop_words="english", token_pattern=_TOKENS, lowercase=True, max_features=30_000
    )
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stopwords
        return [[] for _ in range(clusters)]
    # One row of summed term counts per cluster.
    indicator = np.zeros((clusters, len(texts)), dtype=np.float32)
    indicator[labels, np.arange(len(texts))] = 1.0
    per_class = np.asarray(counts.T.dot(indicator.T).T, dtype=np.float64)
    words_per_class = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(words_per_class, 1.0)
    average_words = max(float(words_per_class.mean()), 1.0)
    idf = np.log1p(average_words / np.maximum(per_class.sum(axis=0), 1.0))
    scores = tf * idf
    vocabulary = vectorizer.get_feature_names_out()
    terms = []
    for row in scores:
        best = np.argsort(-row)[:top]
        terms.append([str(vocabulary[i]) for i in best if row[i] > 0])
    return terms
