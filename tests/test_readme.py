"""The README stays short, true to the code, and starts with the commands CI runs."""

from __future__ import annotations

import re

from ingest.loaders import SUPPORTED_EXTENSIONS
from rag.config import Settings
from tests.conftest import PROJECT


def _readme() -> str:
    return (PROJECT / "README.md").read_text()


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    first_block = _readme().split("```sh", 1)[1].split("```", 1)[0]
    assert "scripts/bootstrap.sh run" in first_block
    assert "scripts/bootstrap.sh test" in first_block
    assert "scripts/bootstrap.sh test" in (PROJECT / ".ci" / "run").read_text()


def test_readme_names_only_real_settings() -> None:
    named = set(re.findall(r"\bRAG_([A-Z_]+)\b", _readme()))
    assert named, "the README names the settings people change most"
    assert named <= {name.upper() for name in Settings.model_fields}


def test_readme_lists_every_supported_format() -> None:
    formats = _readme().split("## Supported formats", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(\.[a-z]+)`", formats))
    assert listed == set(SUPPORTED_EXTENSIONS)


def test_readme_is_for_users_and_short() -> None:
    readme = _readme()
    assert len(readme.splitlines()) <= 250
    for page in ("configuration", "api", "openai-api", "benchmarks", "architecture"):
        assert f"(docs/{page}.md)" in readme
