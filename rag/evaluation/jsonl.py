"""JSON Lines input, one object per non-blank line, with the file and line in every error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import InvalidInputError


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of ``path`` in order; blank lines are skipped, anything else that is not
    a JSON object is an ``InvalidInputError``."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise InvalidInputError(f"{path}:{number}: expected a JSON object")
            yield row
