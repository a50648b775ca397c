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


# Recent sentence-transformers (6.x) write a Pooling module's mode as one name; older ones as
# one true flag of several ("pooling_mode_mean_tokens": true). Both name the same poolings.
_POOLING_NAMES = {
    "mean": "mean_tokens",
    "cls": "cls_token",
    "max": "max_tokens",
    "mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
}


@functools.cache
def folder_metadata(folder: Path) -> tuple[int, int] | None:
    """(dimension, max_seq_length) from a sentence-transformers folder's configuration files,
    as any version of sentence-transformers writes them, or None when its modules are not
    the plain Transformer -> Pooling [-> Normalize] kind."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        dimension = pooling.get("word_embedding_dimension", pooling.get("embedding_dimension"))
        return int(dimension), _max_seq_length(folder)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _max_seq_length(folder: Path) -> int:
    """The token limit: sentence_bert_config.json's, or (as recent sentence-transformers
    (6.x) save it) the tokenizer's ``model_max_length``, at most the model's positions (a
    tokenizer without a limit says 10^30)."""
    config = json.loads((folder / "sentence_bert_config.json").read_text())
    if "max_seq_length" in config:
        return int(config["max_seq_length"])
    limit = int(json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"])
    positions = json.loads((folder / "config.json").read_text()).get("max_position_embeddings")
    return min(limit, int(positions)) if positions else limit


def _pooling_mode(pooling: dict[str, object]) -> str | None:
    """The one pooling a Pooling module's configuration names, in ``POOLING_MODES``' terms;
    None for several, or one that no graph backend computes."""
    if "pooling_mode" in pooling:
        named = pooling["pooling_mode"]
        modes = [named] if isinstance(named, str) else named if isinstance(named, list) else []
        found = [_POOLING_NAMES.get(str(m)) for m in modes]
    else:
        found = [
            key.removeprefix("pooling_mode_")
            for key, on in pooling.items()
            if key.startswith("pooling_mode_") and on
        ]
    return found[0] if len(found) == 1 and found[0] in POOLING_MODES else None


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
    mode = _pooling_mode(pooling)
    if mode is None:
        raise ModelError(f"{folder}: unsupported pooling configuration {pooling}")
    if not (folder / "tokenizer.json").is_file():
        raise ModelError(f"{folder} has no tokenizer.json (a fast tokenizer is needed)")
    dimension, max_seq_length = known
    return FolderConfig(dimension, max_seq_length, mode, bool(st_config.get("do_lower_case")))
