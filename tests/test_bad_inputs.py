"""Every kind of bad file fails alone, with its reason, through a real `rag ingest` process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag.cli import EXIT_FILES_FAILED
from tests.conftest import MODEL_CACHE
from tests.documents import encrypt_pdf, make_pdf

pytestmark = pytest.mark.real_models


def make_folder(folder: Path) -> None:
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe lighthouse lamp is lit at sunset.\n")
    (folder / "good.pdf").write_bytes(make_pdf([["The orchard has 48 apple trees."]]))
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nbroken")
    (folder / "encrypted.pdf").write_bytes(encrypt_pdf(make_pdf([["secret text"]]), "pw"))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (folder / "huge.txt").write_text("words " * 5000)  # over RAG_MAX_FILE_BYTES below
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    unreadable = folder / "unreadable.txt"
    unreadable.write_text("you cannot read me")
    unreadable.chmod(0)


def ingest(folder: Path, data: Path) -> tuple[int, dict[str, Any]]:
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data),
        "RAG_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "RAG_MAX_FILE_BYTES": "20000",
    }
    command = [sys.executable, "-m", "rag.cli", "ingest", str(folder), "--json"]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        # root reads any file; without these capabilities a mode-000 file is unreadable to it.
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", "--", *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, json.loads(done.stdout)


def test_bad_files_fail_with_reasons_and_the_rest_goes_in(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    make_folder(folder)
    code, report = ingest(folder, tmp_path / "data")
    assert code == EXIT_FILES_FAILED
    assert sorted(Path(p).name for p in report["added"]) == ["good.md", "good.pdf"]
    reasons = {Path(f["path"]).name: f["reason"].lower() for f in report["failed"]}
    expected = {
        "corrupt.pdf": "corrupt pdf",
        "encrypted.pdf": "encrypted",
        "empty.txt": "empty",
        "binary.txt": "binary",
        "latin1.txt": "utf-8",
        "huge.txt": "over the limit",
        "loop.txt": "symbolic links",
        "unreadable.txt": "permission denied",
    }
    assert set(reasons) == set(expected), reasons
    for name, needle in expected.items():
        assert needle in reasons[name], (name, reasons[name])

    # Again: the good files are unchanged (nothing duplicated or lost), the bad ones still fail.
    code, again = ingest(folder, tmp_path / "data")
    assert code == EXIT_FILES_FAILED
    assert sorted(Path(p).name for p in again["unchanged"]) == ["good.md", "good.pdf"]
    assert again["chunks_written"] == 0 and len(again["failed"]) == len(expected)
