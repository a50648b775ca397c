"""Evaluation: retrieval quality on BEIR datasets, answer quality on a QA set, with timings.

- ``metrics``: pure functions (nDCG, recall, MRR, pooling chunks into documents,
  percentiles, timing summaries), tested on hand-made runs;
- ``beir``: reading a BEIR dataset folder (corpus, queries, qrels);
- ``retrieval``: ``evaluate_retrieval``, which ingests the corpus through ingestion's own
  embed -> upsert step and scores each retrieval mode;
- ``qa``: ``evaluate_qa``, which asks every question through ``Answerer.ask`` and scores the
  answers, citations and abstentions;
- ``followups``: ``evaluate_followups``, retrieval hit@5 of follow-up questions as asked and
  as the chat service rewrites them from the conversation.
"""

from rag.evaluation.beir import BeirDataset, CorpusDoc, corpus_documents, load_beir, load_qrels
from rag.evaluation.followups import (
    FollowUp,
    FollowUpOutcome,
    FollowUpReport,
    evaluate_followups,
    load_followups,
    run_followups,
)
from rag.evaluation.metrics import (
    Pooling,
    Qrels,
    Run,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    rank_documents,
    rank_hits,
    recall_at_k,
    retrieval_metrics,
    timing_summary,
)
from rag.evaluation.qa import (
    QAItem,
    QAOutcome,
    QAReport,
    evaluate_qa,
    load_qa,
    qa_metrics,
    score_qa,
    source_matches,
)
from rag.evaluation.retrieval import (
    MODES,
    IngestTiming,
    Mode,
    ModeResult,
    RetrievalReport,
    evaluate_retrieval,
)

__all__ = [
    "MODES",
    "BeirDataset",
    "CorpusDoc",
    "FollowUp",
    "FollowUpOutcome",
    "FollowUpReport",
    "IngestTiming",
    "Mode",
    "ModeResult",
    "Pooling",
    "QAItem",
    "QAOutcome",
    "QAReport",
    "Qrels",
    "RetrievalReport",
    "Run",
    "corpus_documents",
    "evaluate_followups",
    "evaluate_qa",
    "evaluate_retrieval",
    "load_beir",
    "load_followups",
    "load_qa",
    "load_qrels",
    "mrr_at_k",
    "ndcg_at_k",
    "percentile",
    "qa_metrics",
    "rank_documents",
    "rank_hits",
    "recall_at_k",
    "retrieval_metrics",
    "run_followups",
    "score_qa",
    "source_matches",
    "timing_summary",
]
