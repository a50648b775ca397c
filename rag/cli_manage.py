"""`rag collections` and `rag eval`: managing collections and measuring quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli_common import CollectionOpt, JsonOpt, err, errors, guard, load_settings

collections_app = typer.Typer(help="List and drop collections.", no_args_is_help=True)


@collections_app.command("list")
def collections_list(as_json: JsonOpt = False) -> None:
    """List the collections."""
    from rag.catalog import list_collections

    names = guard(lambda: list_collections(load_settings()))
    typer.echo(json.dumps(names) if as_json else "\n".join(names))


@collections_app.command("drop")
def collections_drop(
    name: Annotated[str, typer.Argument(help="Collection to drop.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop a collection and its ingestion state.

    Refused while another process writes to the collection, or, on the embedded store, has
    it open.
    """
    from rag.catalog import drop_collection

    settings = load_settings(name)
    if not yes and not typer.confirm(f"Drop collection {name!r} and all its chunks?"):
        raise typer.Exit(1)
    guard(lambda: drop_collection(settings, name))
    err.print(f"dropped {name}")


eval_app = typer.Typer(help="Measure retrieval and answer quality.", no_args_is_help=True)


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[Path, typer.Argument(help="BEIR dataset folder (corpus, queries, qrels).")],
    split: Annotated[str, typer.Option(help="Qrels split: qrels/SPLIT.tsv.")] = "test",
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Default: eval-DATASET.")
    ] = None,
    reuse: Annotated[
        bool, typer.Option("--reuse", help="Keep the collection; embed only missing chunks.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score retrieval on a BEIR dataset.

    nDCG@10, Recall@10/100 and MRR@10 of hybrid, dense-only and BM25-only retrieval.
    """
    from rag.evaluation import evaluate_retrieval

    settings = load_settings()
    with errors():
        report = evaluate_retrieval(settings, dataset, split, collection=collection, reuse=reuse)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())


@eval_app.command("followups")
def eval_followups(
    conversations: Annotated[
        Path, typer.Argument(help="JSONL: id, kind, earlier, question, gold_sources.")
    ],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score follow-up questions' retrieval, as asked and as rewritten.

    Retrieval hit@5 of each follow-up searched alone, and as the chat service searches it
    after rewriting it from the earlier questions.
    """
    from rag.evaluation import evaluate_followups

    settings = load_settings(collection)
    with errors():
        report = evaluate_followups(settings, conversations)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())


@eval_app.command("qa")
def eval_qa(
    questions: Annotated[Path, typer.Argument(help="JSONL: id, question, gold_sources, ...")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score `rag ask` on a set of questions.

    Retrieval hit@5, answer accuracy, citation correctness and abstention.
    """
    from rag.evaluation import evaluate_qa

    settings = load_settings(collection)
    with errors():
        report = evaluate_qa(settings, questions)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
