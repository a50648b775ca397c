"""The web app at /: the page and every asset it names come from the service, and the
scripts call only routes the API has."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.api.web import web_dir
from rag.config import Settings
from tests.fakes import HashEmbedder, ScriptedGenerator


def test_the_page_and_its_assets_serve_locally(settings: Settings) -> None:
    client = TestClient(
        create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    )
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert set(assets) == {"/app/style.css", "/app/app.js", "data:,"}  # data:, no favicon
    scripts = {p.name for p in web_dir().glob("*.js")}
    for name in ["style.css", *scripts]:
        response = client.get(f"/app/{name}")
        assert response.status_code == 200, name
        assert "http://" not in response.text and "https://" not in response.text, name
    assert (
        client.get("/app/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    # Each module the scripts import is served.
    for script in scripts:
        for imported in re.findall(r'from "\./([\w.]+)"', (web_dir() / script).read_text()):
            assert imported in scripts, (script, imported)


def test_the_scripts_call_routes_the_api_has(settings: Settings) -> None:
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    paths = set(app.openapi()["paths"])
    called = set()
    for script in web_dir().glob("*.js"):
        called |= set(re.findall(r'"(/v1/[\w/.-]+)"', script.read_text()))
        called |= {
            re.sub(r"\$\{[^}]+\}", "{name}", p)
            for p in re.findall(r"`(/v1/[^`?]+)`", script.read_text())
        }
    assert called
    for path in called:
        pattern = re.sub(r"\\\{\w+\\\}", r"\\{\\w+\\}", re.escape(path))
        assert any(re.fullmatch(pattern, p) for p in paths), path


def test_the_page_labels_its_controls() -> None:
    page = (web_dir() / "index.html").read_text()
    for control in re.findall(r"<(?:input|textarea|select)\b[^>]*>", page):
        if 'type="file"' in control:
            continue
        named = re.search(r'id="([\w-]+)"', control)
        assert named and (f'for="{named.group(1)}"' in page or "aria-label" in control), control
