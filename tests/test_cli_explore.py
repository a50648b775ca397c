"""`rag explore`: map (text, JSON, PNG), clusters, outliers, similar documents and where a
query falls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.documents import write_fixture_folder
from tests.test_cli import EXIT_USAGE, cli_env, run

__all__ = ["cli_env"]  # the fixture, shared with tests/test_cli.py


@pytest.mark.real_models
def test_explore_commands_through_the_cli(cli_env: Path) -> None:
    docs = write_fixture_folder(cli_env / "docs")
    code, _, err = run("ingest", str(docs))
    assert code == 0, err

    code, out, err = run("explore", "map", "--json", "--limit", "5")
    assert code == 0, err
    found = json.loads(out)
    assert len(found["points"]) == 5 and found["total"] >= 6 and found["clusters"]
    assert "map: reading" in err  # built on first use

    png = cli_env / "map.png"
    code, out, err = run("explore", "map", "--png", str(png))
    assert code == 0, err
    assert "map: reading" not in err  # cached
    assert Image.open(png).size == (1200, 1200)
    assert "clusters (fitted on" in out

    code, out, _ = run("explore", "clusters", "--json")
    assert code == 0 and all(c["terms"] for c in json.loads(out))
    code, out, _ = run("explore", "outliers", "-k", "2", "--json")
    outliers = json.loads(out)
    assert code == 0 and len(outliers) == 2 and outliers[0]["distance"] > 0

    source = found["points"][0]["source"]
    code, out, err = run("explore", "similar", source, "--json")
    assert code == 0, err
    similar = json.loads(out)
    assert similar and source not in {d["source"] for d in similar}
    code, _, err = run("explore", "similar", str(docs / "missing.md"))
    assert code != 0 and "no document" in err
    code, _, err = run("explore", "map", "--limit", "0")
    assert code == EXIT_USAGE

    # The query lands among its nearest chunks, the closest first.
    code, out, err = run("explore", "locate", "how far is the lighthouse beam seen", "--json")
    assert code == 0, err
    where = json.loads(out)
    assert where["hits"][0]["source"].endswith("lighthouse.pdf") and not where["stale"]
    xs, ys = [h["x"] for h in where["hits"]], [h["y"] for h in where["hits"]]
    assert min(xs) <= where["x"] <= max(xs) and min(ys) <= where["y"] <= max(ys)
    code, out, err = run("explore", "locate", "lighthouse beam", "-k", "2")
    assert code == 0 and out.startswith("at ") and "lighthouse.pdf" in out, err
    code, _, err = run("explore", "locate", "   ")
    assert code == EXIT_USAGE and "empty" in err


@pytest.mark.real_models
def test_explore_shift_after_another_ingestion(cli_env: Path) -> None:
    docs = write_fixture_folder(cli_env / "docs")
    code, _, err = run("ingest", str(docs))
    assert code == 0, err
    code, out, err = run("explore", "shift", "--json")
    assert code == 0 and json.loads(out) is None, err  # the first map: nothing to compare
    code, out, _ = run("explore", "shift")
    assert code == 0 and "no shift yet" in out

    (docs / "volcanoes.md").write_text(
        "# Volcanoes\n\nMagma rises through the crust and erupts as lava, ash and gas. "
        "Stratovolcanoes build steep cones from layers of lava and tephra.\n"
    )
    code, _, err = run("ingest", str(docs))
    assert code == 0, err
    code, out, err = run("explore", "shift", "--refresh", "--json")
    assert code == 0, err
    shift = json.loads(out)
    assert [Path(s).name for s in shift["added"]] == ["volcanoes.md"] and not shift["removed"]
    assert shift["chunks_after"] > shift["chunks_before"] and shift["centroid_distance"] > 0
    assert sum(c["after"] for c in shift["clusters"]) == shift["chunks_after"]
    code, out, _ = run("explore", "shift")
    assert code == 0 and "1 documents added, 0 removed" in out and "volcanoes.md" in out
