"""docs/ stays true to the code: the configuration page is generated, links stay inside the
repository, and no page speaks of how the project was made rather than what it is."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rag.config import Settings
from tests.conftest import PROJECT

DOCS = PROJECT / "docs"
PAGES = (
    "configuration.md",
    "api.md",
    "openai-api.md",
    "evaluation.md",
    "benchmarks.md",
    "architecture.md",
    "decisions.md",
    "docker.md",
    "security.md",
)
HISTORY = re.compile(
    r"session [0-9]|sessions? [0-9]+ ?(to|-) ?[0-9]|issue [0-9]|session", re.IGNORECASE
)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _config_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_docs", PROJECT / "scripts/config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _markdown_files() -> list[Path]:
    return [PROJECT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_configuration_page_is_up_to_date() -> None:
    # What CI relies on: the generator's own --check, as a developer runs it.
    result = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "config_docs.py"), "--check"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    config_docs = _config_docs()
    page = tmp_path / "configuration.md"
    page.write_text(config_docs.render().replace("RAG_TOP_K", "RAG_TOP_N"))
    assert config_docs.main(["--check", "--output", str(page)]) == 1
    assert config_docs.main(["--output", str(page)]) == 0
    assert config_docs.main(["--check", "--output", str(page)]) == 0


def test_every_setting_is_documented_and_nothing_else() -> None:
    page = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `RAG_([A-Z_]+)` \|", page, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_every_setting_has_a_description_without_measured_figures() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert not re.search(r"\d\s?(ms|s|%)\b|measured|nDCG|hit@", field.description), name


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_exist(page: str) -> None:
    assert (DOCS / page).read_text().startswith("# ")


def test_no_page_speaks_of_sessions_or_issues() -> None:
    for path in _markdown_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not HISTORY.search(line), f"{path.name}:{number}: {line}"


def test_links_resolve_inside_the_repository() -> None:
    for path in _markdown_files():
        for target in _LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            assert resolved.is_relative_to(PROJECT), f"{path.name}: {target} leaves the repository"
            assert resolved.exists(), f"{path.name}: {target} does not exist"
