"""The query side built from Settings (rag/query.py)."""

from __future__ import annotations

from pathlib import Path

from rag.config import Settings


def test_only_a_local_model_judges_the_fallback(tmp_path: Path) -> None:
    from rag.query import build_generator, build_judge

    local = Settings(data_dir=tmp_path)
    generator = build_generator(local)  # nothing is loaded until first use
    assert build_judge(local, generator) is generator
    off = Settings(data_dir=tmp_path, fallback_judge="off")
    assert build_judge(off, generator) is None
    remote = Settings(
        data_dir=tmp_path,
        generator="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_model="m",
    )
    assert build_judge(remote, build_generator(remote)) is None
