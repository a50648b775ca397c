"""The `rag` command. Help texts are plain text (no Rich markup: ``[n]`` prints as written);
a command's docstring opens with one short sentence, its summary in the command list."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from rag import __version__
from rag.cli_common import (
    EXIT_ERROR,
    EXIT_FILES_FAILED,
    EXIT_USAGE,
    CollectionOpt,
    JsonOpt,
    err,
    errors,
    fail,
    guard,
    load_settings,
)
from rag.cli_explore import explore_app
from rag.cli_manage import collections_app, eval_app
from rag.cli_progress import RichProgress
from rag.config import Settings
from rag.display import hit_json

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport

log = logging.getLogger("rag.cli")

__all__ = ["EXIT_ERROR", "EXIT_FILES_FAILED", "EXIT_USAGE", "app", "main"]

app = typer.Typer(
    help="Local-first RAG: ingest folders of documents, then ask questions with citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rag {__version__}")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
]


@app.callback()
def _main(version: VersionOpt = False) -> None:
    pass


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    collection: CollectionOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; change nothing.")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep syncing as the files change (Ctrl-C stops).")
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help="Skip files and folders that match this shell-style pattern inside the "
            "folders (repeatable; added to RAG_INGEST_EXCLUDE): a name at any depth "
            "('_sources', '*.log'), or with a slash a relative path ('drafts/*.md'). Stored "
            "files it matches are deleted.",
        ),
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Delete the stored documents of a given folder that is now missing or has "
            "no supported files. Without it that is an error and nothing is deleted.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sync files and folders into a collection.

    New and changed files are embedded, files deleted from an ingested folder are removed,
    and moved files are re-pointed without being embedded again. Symlinked files are
    followed wherever they point; symlinked folders are not.

    Exit code 0 when every file went in, 1 when any file failed (the others are still
    ingested), 2 for bad arguments, 3 for other errors.
    """
    from ingest.runs import check_paths, plan_ingest, watch_ingest
    from rag.library import Documents

    settings = load_settings(collection)
    if exclude:
        patterns = [*settings.ingest_exclude, *exclude]
        settings = settings.model_copy(update={"ingest_exclude": patterns})
    guard(lambda: check_paths(settings, paths, allow_empty=allow_empty))
    if dry_run:
        plan = guard(lambda: plan_ingest(settings, paths, allow_empty=allow_empty))
        for line in plan.lines():
            typer.echo(line)
        typer.echo(
            f"plan: {len(plan.add)} to add, {len(plan.replace)} to replace, {len(plan.delete)} "
            f"to delete, {len(plan.move)} to move, {len(plan.unchanged)} unchanged, "
            f"{len(plan.failed)} failing (dry run: nothing changed)"
        )
        raise typer.Exit(EXIT_FILES_FAILED if plan.failed else 0)
    if watch:
        with errors(), contextlib.suppress(KeyboardInterrupt):
            watch_ingest(
                settings,
                paths,
                on_report=lambda r: _print_report(settings, r, False),
                allow_empty=allow_empty,
            )
        return
    with errors(), Documents(settings) as docs:
        report = docs.ingest(paths, progress=RichProgress(err), allow_empty=allow_empty)
    _print_report(settings, report, as_json)
    if not report.ok:
        raise typer.Exit(EXIT_FILES_FAILED)


def _print_report(settings: Settings, report: IngestReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(asdict(report) | {"ok": report.ok}, indent=2))
        return
    err.print(escape(f"{settings.collection}: {report.summary()}"), highlight=False)
    if not report.changed and report.ok:
        err.print("Nothing changed: the collection already mirrors these files.")
    for failure in report.failed:
        err.print(
            f"  [red]failed[/] {escape(f'{failure.path}: {failure.reason}')}", highlight=False
        )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: CollectionOpt = None,
    source: Annotated[
        str | None, typer.Option(help="Only use documents under this path prefix.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question with [n] citations, or abstain.

    The answer comes from the collection's documents: a quote of them (RAG_ANSWER_MODE), or
    the model's answer printed after the grounding check, a quote when it is not supported;
    then the sources its [n] markers cite.
    """
    from rag.library import Documents
    from rag.retrieval import check_question

    settings = load_settings(collection)
    guard(lambda: check_question(question, max_chars=settings.max_question_chars))
    with errors(), Documents(settings) as docs:
        # Not streamed: the answer is shown only after it passed the grounding check.
        answer = docs.ask(question, source_prefix=source)
        names = docs.display_source
        if as_json:
            data = asdict(answer)
            for shown, c in zip(data["citations"], answer.citations, strict=True):
                shown["display_source"] = names(c.source)
            typer.echo(json.dumps(data, indent=2))
            return
        typer.echo(answer.answer)
        if answer.extractive:  # quoted from the start, or replacing an unsupported answer
            err.print(
                "(quoted from your documents)"
                if settings.quotes_answers
                else "(quoted from your documents: the model's own answer was not supported)"
            )
        if answer.citations:
            typer.echo("\nSources:")
        for c in answer.citations:
            where = f" p.{c.page}" if c.page else ""
            typer.echo(f"  [{c.n}] {names(c.source)}{where} ({c.title})")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100, help="How many chunks.")] = 5,
    collection: CollectionOpt = None,
    source: Annotated[
        str | None, typer.Option(help="Only search documents under this path prefix.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the chunks that best match a query.

    Hybrid search (dense vectors and BM25 keywords); nothing is generated.
    """
    from rag.library import Documents
    from rag.retrieval import check_question

    settings = load_settings(collection)
    guard(lambda: check_question(query, max_chars=settings.max_question_chars))
    with errors(), Documents(settings) as docs:
        hits = docs.search(query, k=k, source_prefix=source)
        names = docs.display_source
    if as_json:
        typer.echo(json.dumps([hit_json(h, names) for h in hits], indent=2))
        return
    for i, hit in enumerate(hits, 1):
        typer.echo(f"{i}. {hit.score:.4f} sim={hit.similarity:.3f} {names(hit.chunk.source)}")
        typer.echo(f"   {' > '.join(hit.chunk.heading_path) or hit.chunk.title}")
        typer.echo(f"   {hit.chunk.text[:200].replace(chr(10), ' ')}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: RAG_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: RAG_PORT).")] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve on an address other than loopback without API keys (as "
            "RAG_ALLOW_NO_AUTH=true): anyone who can reach it can read and change everything.",
        ),
    ] = False,
) -> None:
    """Run the HTTP API.

    Serves the REST API, the OpenAI-compatible API and the OpenAPI docs at /docs. Without
    RAG_API_KEYS it binds only to loopback addresses unless --insecure-no-auth is given.
    """
    settings = load_settings()
    bind = host or settings.host
    if not settings.api_keys and not _is_loopback(bind):
        if not (insecure_no_auth or settings.allow_no_auth):
            fail(
                f"refusing to serve on {bind} without API keys: set RAG_API_KEYS, bind to "
                "127.0.0.1, or pass --insecure-no-auth (RAG_ALLOW_NO_AUTH=true) if the network "
                "is private",
                EXIT_USAGE,
            )
        log.warning("serving on %s with no API keys: anyone who can reach it can use it", bind)
    import uvicorn

    from rag.api.app import create_app

    settings = settings.model_copy(update={"host": bind})  # the bound name is an allowed Host
    uvicorn.run(
        create_app(settings),
        host=bind,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


def _is_loopback(host: str) -> bool:
    """Whether an address to bind to is reachable from this machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


@app.command()
def worker(
    watch: Annotated[
        list[Path] | None, typer.Option("--watch", help="A folder to keep in sync (repeatable).")
    ] = None,
) -> None:
    """Run the API's ingestion and reindex jobs in a separate process.

    Meant for a Qdrant server (RAG_STORE=qdrant): the embedded store admits one process, so
    it cannot run beside `rag serve`. SIGTERM or Ctrl-C stops it: a job still running after
    a grace period is left for another runner to take back once its lease expires.
    """
    import signal
    import threading

    from ingest.jobs import run_worker

    settings = load_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with errors():
        run_worker(settings, watch=watch or [], stop=stop)


@app.command("reindex")
def reindex_command(collection: CollectionOpt = None) -> None:
    """Rebuild a collection with the current settings, then switch.

    The new collection is built with the embedding model and chunking settings in effect;
    the switch is an alias on a Qdrant server and a folder swap on the embedded store.
    Refused while another process writes to the collection, or, on the embedded store, has
    it open (a running `rag serve`: enqueue the rebuild through its API instead).
    """
    from ingest.runs import reindex

    settings = load_settings(collection)
    with errors():  # refused, before any model loads, while another process holds it
        report = reindex(settings, progress=RichProgress(err))
    _print_report(settings, report, False)
    if not report.ok:
        raise typer.Exit(EXIT_FILES_FAILED)


app.add_typer(collections_app, name="collections")
app.add_typer(eval_app, name="eval")
app.add_typer(explore_app, name="explore")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
