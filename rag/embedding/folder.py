"""What every backend reads from a sentence-transformers folder, without loading the model."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelError

POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")


def embedding_model_name(spec: str) -> str:
    """Recorded with each collection: a package name as given, a folder by its absolute path.

    Every backend reports the same name for the same model, so collections do not care which
    one embedded them."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_dir() else spec


@functools.cache
def folder_metadata(folder: Path) -> tuple[int, int] | None:
    """(dimension, max_seq_length) from a sentence-transformers folder's configuration files,
    or None when its modules are not the plain Transformer -> Pooling [-> Normalize] kind."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        config = json.loads((folder / "sentence_bert_config.json").read_text())
        return int(pooling["word_embedding_dimension"]), int(config["max_seq_length"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class FolderConfig:
    """What the exported-graph backends need to reproduce sentence-transformers' vectors."""

    dimension: int
    max_seq_length: int
    pooling: str  # one of POOLING_MODES
    do_lower_case: bool


@functools.cache
def read_folder_config(folder: Path) -> FolderConfig:
    """The folder's configuration, or ``ModelError`` when a graph backend cannot run it."""
    known = folder_metadata(folder)
    if not known:
        raise ModelError(
            f"{folder} is not a plain sentence-transformers folder "
            "(Transformer -> Pooling [-> Normalize]); the ONNX backend cannot run it"
        )
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        st_config = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ModelError(f"cannot read the sentence-transformers files in {folder}: {exc}") from exc
    active = [
        key.removeprefix("pooling_mode_")
        for key, on in pooling.items()
        if key.startswith("pooling_mode_") and on
    ]
    if len(active) != 1 or active[0] not in POOLING_MODES:
        raise ModelError(f"{folder}: unsupported pooling configuration {pooling}")
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"{folder} has no tokenizer.json (a fast tokenizer is needed)")
    dimension, max_seq_length = known
    return FolderConfig(dimension, max_seq_length, active[0], bool(st_config.get("do_lower_case")))
