"""Chunk size and overlap by quality: QA-subset hit@5 / MRR@5 and SciFact train nDCG@10.

    python bench/sweep_chunks.py 200,0 200,32 254,0 128,0 [--work /tmp/sweep]

For each SIZE,OVERLAP: ingests the QA subset of bench/bench_vs_langchain.py --qa (every gold
page of the dev set plus a seeded sample of other Python 3.11 pages, 150 in all) into a fresh
data dir and searches the top 5 chunks of each answerable question (`rag search`), then runs
`rag eval retrieval` on SciFact's train split (hybrid only) with the same chunking. Prints one
JSON line per setting; asserts nothing. Quality only: run it beside other work if need be.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

# This folder is on sys.path when the script runs: the QA subset is the one bench_vs_langchain
# compares the two pipelines on.
from bench_vs_langchain import DEVSET, copy_pages, qa_pages

from rag.config import Settings
from rag.evaluation import evaluate_retrieval, load_qa, source_matches
from rag.runtime import build_embedder
from rag.services import open_retriever, run_ingest

PROJECT = Path(__file__).resolve().parent.parent
SCIFACT = PROJECT.parent / "shared" / "data" / "scifact"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("settings", nargs="+", help="SIZE,OVERLAP in tokens")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sweep"))
    parser.add_argument("--docs", type=Path, default=Path("/tmp/docs/python-3.11"))
    args = parser.parse_args()
    items = [i for i in load_qa(DEVSET) if not i.unanswerable]
    corpus = args.work / "corpus"
    if not corpus.exists():
        gold = {g for i in items for g in i.gold_sources}
        copy_pages(qa_pages(args.docs, gold, 150, 0), args.docs, corpus)
    for pair in args.settings:
        size, overlap = (int(x) for x in pair.split(","))
        data = args.work / f"data-{size}-{overlap}"
        shutil.rmtree(data, ignore_errors=True)
        settings = Settings(
            data_dir=data,
            model_cache_dir=PROJECT / "data" / "models",
            chunk_size=size,
            chunk_overlap=overlap,
            collection="qa",
        )
        embedder = build_embedder(settings, bulk=True)
        report = run_ingest(settings, [corpus], embedder=embedder)
        ranks: list[int | None] = []
        with open_retriever(settings, embedder) as retriever:
            for item in items:
                sources = [h.chunk.source for h in retriever.search(item.question, k=5)]
                ranks.append(
                    next(
                        (
                            n
                            for n, s in enumerate(sources, 1)
                            if source_matches(s, item.gold_sources)
                        ),
                        None,
                    )
                )
        scifact = evaluate_retrieval(
            settings, SCIFACT, "train", collection="scifact", modes=("hybrid",), embedder=embedder
        ).to_dict()
        row = {
            "size": size,
            "overlap": overlap,
            "qa_chunks": report.chunks_written,
            "hit@5": sum(r is not None for r in ranks) / len(ranks),
            "mrr@5": sum(1 / r for r in ranks if r) / len(ranks),
            "scifact_train": scifact["results"]["hybrid"]["metrics"],
        }
        print(json.dumps(row), flush=True)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
