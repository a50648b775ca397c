"""What every `rag` command shares: settings from the environment, one error line and an exit
code for our errors, and the common options."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from rag.config import Settings, validate_collection_name
from rag.errors import InvalidInputError, RagError

err = Console(stderr=True, soft_wrap=True)  # paths in messages stay whole

T = TypeVar("T")

CollectionOpt = Annotated[
    str | None,
    typer.Option("--collection", "-c", help="Collection name (default: RAG_COLLECTION)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

EXIT_FILES_FAILED = 1
EXIT_USAGE = 2
EXIT_ERROR = 3


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def load_settings(collection: str | None = None) -> Settings:
    try:
        settings = Settings()
        if collection is not None:
            settings = settings.model_copy(
                update={"collection": validate_collection_name(collection)}
            )
    except (ValidationError, ValueError) as exc:
        fail(f"invalid settings: {exc}", EXIT_USAGE)
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level != "DEBUG":
        for noisy in ("sentence_transformers", "httpx", "transformers"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return settings


@contextmanager
def errors() -> Iterator[None]:
    """Our errors become one line on stderr and an exit code, never a stack trace."""
    try:
        yield
    except InvalidInputError as exc:
        fail(str(exc), EXIT_USAGE)
    except RagError as exc:
        fail(str(exc), EXIT_ERROR)


def guard(fn: Callable[[], T]) -> T:
    with errors():
        return fn()
