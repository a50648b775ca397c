"""/docs and /redoc load every asset from the service itself, so they work offline."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.config import Settings
from tests.fakes import HashEmbedder, ScriptedGenerator


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
        r"""url:\s*['"]([^'"]+)['"]""", html
    )


def test_docs_pages_reference_only_local_assets_that_serve(settings: Settings) -> None:
    app = create_app(settings, embedder=HashEmbedder(), generator=ScriptedGenerator())
    client = TestClient(app)  # no lifespan: the pages need no models
    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200, page
        urls = _asset_urls(response.text)
        assert urls, page
        for url in urls:
            assert url.startswith("/"), (page, url)  # no CDN, no Google fonts
            assert client.get(url).status_code == 200, (page, url)
        assert "cdn" not in response.text.lower() and "googleapis" not in response.text
    assert client.get("/docs/oauth2-redirect").status_code == 200
