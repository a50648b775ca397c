"""The export cache: one export per folder and recipe, written whole, once across processes.

A fake exporter stands in for the real one, so no model is loaded.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from rag.embedding.export import ExportRecipe, ensure_exported


def fake_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    return folder


def slow_exporter(folder: Path, destination: Path, recipe: ExportRecipe) -> dict[str, Any]:
    """Counts its calls in a file beside the model folder, and takes its time."""
    with (folder.parent / "calls.txt").open("a") as calls:
        calls.write("export\n")
    time.sleep(0.5)
    destination.write_bytes(b"onnx")
    return {}


def crashing_exporter(folder: Path, destination: Path, recipe: ExportRecipe) -> dict[str, Any]:
    destination.write_bytes(b"half a mod")
    raise RuntimeError("killed halfway")


def _export_in_child(folder: Path, cache: Path) -> None:
    ensure_exported(folder, cache, ExportRecipe(quantize=True), exporter=slow_exporter)


def test_a_crashed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    folder, cache = fake_folder(tmp_path), tmp_path / "cache"
    recipe = ExportRecipe(quantize=True)
    with pytest.raises(RuntimeError, match="killed halfway"):
        ensure_exported(folder, cache, recipe, exporter=crashing_exporter)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    # A kill -9 leaves its temporary folder: the next export removes it.
    model = ensure_exported(folder, cache, recipe, exporter=slow_exporter)
    stale = cache / f".{model.parent.name}.tmp-dead"
    stale.mkdir()
    model.unlink()
    ensure_exported(folder, cache, recipe, exporter=slow_exporter)
    assert not stale.exists()
    assert model.read_bytes() == b"onnx"
    assert (model.parent / "export.json").is_file()


def test_concurrent_first_starts_export_once(tmp_path: Path) -> None:
    folder, cache = fake_folder(tmp_path), tmp_path / "cache"
    context = multiprocessing.get_context("spawn")  # no fork of a process holding ORT threads
    children = [context.Process(target=_export_in_child, args=(folder, cache)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert (tmp_path / "calls.txt").read_text() == "export\n"
    model = ensure_exported(folder, cache, ExportRecipe(quantize=True), exporter=slow_exporter)
    assert model.read_bytes() == b"onnx"
    assert (tmp_path / "calls.txt").read_text() == "export\n"


def test_recipes_and_weights_get_their_own_cache_entries(tmp_path: Path) -> None:
    folder, cache = fake_folder(tmp_path), tmp_path / "cache"
    recipes = [ExportRecipe(True), ExportRecipe(True, reduce_range=True), ExportRecipe(False)]
    recipes += [ExportRecipe(False, pooling=mode) for mode in ("mean_tokens", "cls_token")]
    paths = {ensure_exported(folder, cache, r, exporter=slow_exporter) for r in recipes}
    assert len(paths) == 5
    (folder / "model.safetensors").write_bytes(b"fine-tuned weights")
    assert ensure_exported(folder, cache, ExportRecipe(True), exporter=slow_exporter) not in paths
