"""A five-document BEIR dataset written to disk, for the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CORPUS = [
    ("d1", "Lighthouses", "The lighthouse beam is visible from twenty nautical miles at sea."),
    ("d2", "Coffee machines", "Descale the espresso machine every month with citric acid."),
    ("d3", "Volcanoes", "Basaltic lava flows from shield volcanoes such as Mauna Loa."),
    ("d4", "Bees", "Honey bees communicate the direction of flowers with a waggle dance."),
    ("d5", "", "Penguins huddle together to survive the antarctic winter storms."),
]
TINY_QUERIES = {
    "1": "how far is the lighthouse beam visible",
    "2": "how often to descale an espresso machine",
    "3": "waggle dance of honey bees",
    "4": "penguins antarctic winter",
    "9": "a query with no qrels",
}


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for doc_id, title, text in TINY_CORPUS:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in TINY_QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t2\n2\td1\t0\n3\td4\t1\n4\td5\t1\n"
    )
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    return folder
