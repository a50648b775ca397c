"""The real-model guard for child processes (Python imports ``sitecustomize`` at start-up).

tests/conftest.py puts this folder first on PYTHONPATH and names the test in
``TESTS_REFUSE_REAL_MODELS`` while a test not marked ``real_models`` runs, so a ``rag`` command
that test starts fails, as the test itself would, as soon as it resolves a real model's files.
The conftest reads ``ENV`` and ``RESOLVERS`` from here: the two guards cannot disagree.
"""

from __future__ import annotations

import os
from typing import NoReturn

ENV = "TESTS_REFUSE_REAL_MODELS"
# Every real model is found through these (rag.models): the embedding model and the LLM.
RESOLVERS = ("resolve_embedding_model", "resolve_llm_source")


class RealModelRefused(BaseException):
    """A BaseException, so that no ``except Exception`` in the product can swallow it."""


def refusal(test: str, spec: object) -> str:
    return f"{test} loads a real model ({spec!r}) but is not marked real_models"


def _install(test: str) -> None:
    try:
        import rag.models
    except ImportError:  # a child that is not ours
        return

    def refuse(spec: object, *args: object, **kwargs: object) -> NoReturn:
        raise RealModelRefused(refusal(test, spec) + " (in a child process)")

    for name in RESOLVERS:
        setattr(rag.models, name, refuse)


if _test := os.environ.get(ENV):
    _install(_test)
