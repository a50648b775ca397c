"""SciFact (BEIR) retrieval baseline: hybrid (the default), dense-only and BM25-only.

    RAG_DATA_DIR=/tmp/scifact-data RAG_MODEL_CACHE_DIR=data/models \
        python bench/bench_scifact.py [--dataset DIR] [--split test] [--collection scifact] \
        [--fresh] [--json]

The corpus is ingested once into the collection through the real pipeline (several minutes
on 2 cores); later runs reuse it and embed only chunks that are missing (`--fresh` rebuilds
it and times the whole ingestion). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rag.config import Settings
from rag.evaluation import evaluate_retrieval

DEFAULT_DATASET = Path("/work/shared/data/scifact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--split", default="test")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--fresh", action="store_true", help="Drop and re-ingest the corpus.")
    parser.add_argument("--chunk-k", type=int, default=200, help="Chunks retrieved per query.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    report = evaluate_retrieval(
        Settings(),
        args.dataset,
        args.split,
        collection=args.collection,
        reuse=not args.fresh,
        chunk_k=args.chunk_k,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())


if __name__ == "__main__":
    main()
