"""The README's configuration table and commands stay true to the code."""

from __future__ import annotations

import re

from rag.config import Settings
from tests.conftest import PROJECT


def test_every_setting_is_documented_and_nothing_else() -> None:
    readme = (PROJECT / "README.md").read_text()
    documented = set(re.findall(r"^\| `RAG_([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    readme = (PROJECT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "scripts/bootstrap.sh run" in first_block
    assert "scripts/bootstrap.sh test" in first_block
    assert "scripts/bootstrap.sh test" in (PROJECT / ".ci" / "run").read_text()
