"""The web app at /: its page and assets, files of the ``rag.web`` package."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_ASSETS = "/app"


def web_dir() -> Path:
    import rag.web

    return Path(rag.web.__file__).parent / "static"


def add_web_app(app: FastAPI) -> None:
    """Serve the app's page at / and its scripts and styles under /app. The page calls the
    /v1 API, which checks the bearer key as for any client."""
    folder = web_dir()
    app.mount(WEB_ASSETS, StaticFiles(directory=folder), name="web-app")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html")
