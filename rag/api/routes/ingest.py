"""Ingestion through the API: jobs for server folders and uploads, documents, collections."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from ingest.jobs import ingest_options
from ingest.runs import delete_document, list_documents
from ingest.source_names import names_for
from rag.api.deps import StateDep
from rag.api.ingest_roots import resolve_under_roots
from rag.api.schemas import ErrorResponse, Name, PathText
from rag.api.uploads import Upload, save_uploads
from rag.catalog import drop_collection, list_collections
from rag.config import validate_collection_name
from rag.errors import DocumentNotFoundError, InvalidInputError, JobNotFoundError
from rag.explore.maps import drop_map
from rag.jobs import Job, JobKind

router = APIRouter(
    prefix="/v1",
    tags=["ingestion"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
    },
)


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: PathText = Field(description="A folder or file on the server, under RAG_INGEST_ROOTS.")
    collection: Name | None = None
    allow_empty: bool = Field(
        False,
        description="Delete the stored documents of a folder that is now missing or has no "
        "supported files. Without it such a job fails and deletes nothing.",
    )


class JobResponse(BaseModel):
    id: str
    collection: str
    paths: list[str]
    status: str = Field(description="queued, running, done or failed")
    created: float
    started: float | None
    finished: float | None
    progress: dict[str, int] = Field(description="files_total, files_done, chunks_written")
    report: dict[str, Any] | None = Field(
        description="When done: added, replaced, deleted, moved, unchanged, failed (with reasons)"
    )
    error: str | None


class DocumentResponse(BaseModel):
    source: str
    chunks: int
    size: int
    sha256: str


class CollectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


def _collection(state: StateDep, name: str | None, field: str = "collection") -> str:
    try:
        return validate_collection_name(name or state.settings.collection)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field=field) from None


def _job(job: Job) -> JobResponse:
    data = asdict(job)
    return JobResponse(**data)


def _enqueue(
    state: StateDep,
    collection: str,
    paths: list[str],
    kind: JobKind = "ingest",
    options: dict[str, Any] | None = None,
) -> JobResponse:
    job = state.jobs.enqueue(collection, paths, kind, options=options)
    if state.runner is not None:
        state.runner.notify()
    return _job(job)


@router.post("/ingest", status_code=status.HTTP_202_ACCEPTED, response_model=JobResponse)
def ingest_folder(body: IngestRequest, state: StateDep) -> JobResponse:
    """Sync a server folder (or file) into a collection, as a job. Poll GET /v1/jobs/{id}."""
    roots = state.settings.ingest_roots
    path = resolve_under_roots(body.path, roots, must_exist=not body.allow_empty)
    options = ingest_options(confine=roots, allow_empty=body.allow_empty)
    return _enqueue(state, _collection(state, body.collection), [str(path)], options=options)


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED, response_model=JobResponse)
def upload_documents(
    state: StateDep,
    files: Annotated[list[UploadFile], File(description="Documents to ingest.")],
    collection: Annotated[Name | None, Form()] = None,
) -> JobResponse:
    """Upload documents (multipart); they are stored under DATA_DIR/uploads and ingested.

    Each is stored under its own name made safe (rag.api.uploads): uploading a name again
    replaces that document; two different names never replace each other."""
    name = _collection(state, collection)
    folder = state.settings.data_dir / "uploads" / name
    uploads = [Upload(u.filename or "", u.file) for u in files]
    saved = save_uploads(uploads, folder, limit=state.settings.max_upload_bytes)
    return _enqueue(state, name, [str(p) for p in saved])


@router.get("/jobs/{job_id}", response_model=JobResponse)
def get_job(job_id: str, state: StateDep) -> JobResponse:
    """A job's status, progress and, when done, its report."""
    job = state.jobs.get(job_id)
    if job is None:
        raise JobNotFoundError(f"no job {job_id!r}")
    return _job(job)


@router.get("/jobs", response_model=list[JobResponse])
def list_jobs(state: StateDep) -> list[JobResponse]:
    """The 50 most recent jobs, newest first."""
    return [_job(j) for j in state.jobs.list()]


@router.get("/documents", response_model=list[DocumentResponse])
def documents(state: StateDep, collection: Name | None = None) -> list[DocumentResponse]:
    """The documents of a collection with their chunk counts."""
    name = _collection(state, collection)
    return [DocumentResponse(**asdict(d)) for d in list_documents(state.settings, name)]


@router.get("/documents/chunks")
def document_chunks(
    state: StateDep,
    source: Annotated[PathText, Query(description="The document's source path, as listed.")],
    collection: Name | None = None,
) -> dict[str, Any]:
    """A document's stored chunks in reading order: what search and answers quote from it.
    An e-mail's attachments are documents of their own (``MESSAGE/NAME``)."""
    name = _collection(state, collection)
    chunks = state.store(name).source_chunks(source)
    if not chunks:
        raise DocumentNotFoundError(f"no document {source!r} in collection {name!r}")
    return {
        "source": source,
        "display_source": names_for(state.settings, name)(source),
        "title": chunks[0].title,
        "metadata": dict(chunks[0].metadata),
        "chunks": [
            {
                "chunk_id": c.id,
                "heading_path": list(c.heading_path),
                "page": c.page,
                "start": c.start,
                "end": c.end,
                "text": c.text,
            }
            for c in chunks
        ],
    }


@router.delete("/documents")
def delete(
    state: StateDep,
    source: Annotated[PathText, Query(description="The document's source path, as listed.")],
    collection: Name | None = None,
) -> dict[str, Any]:
    """Remove a document's chunks. An uploaded document's file is removed too."""
    name = _collection(state, collection)
    removed = delete_document(state.settings, state.store(name), source)
    uploads = (state.settings.data_dir / "uploads" / name).resolve()
    if Path(source).parent == uploads:
        Path(source).unlink(missing_ok=True)
    return {"source": source, "chunks_deleted": removed}


@router.get("/collections")
def collections(state: StateDep) -> dict[str, Any]:
    """The collections, with their chunk counts."""
    names = list_collections(state.settings)
    return {"collections": [{"name": n, "chunks": state.store(n).count()} for n in names]}


@router.post("/collections", status_code=status.HTTP_201_CREATED)
def create_collection(body: CollectionRequest, state: StateDep) -> dict[str, Any]:
    """Create an empty collection for the configured embedding model."""
    name = _collection(state, body.name, field="name")
    store = state.store(name, create=True)
    return {"name": name, "chunks": store.count()}


@router.post(
    "/collections/{name}/reindex", status_code=status.HTTP_202_ACCEPTED, response_model=JobResponse
)
def reindex_collection(name: str, state: StateDep) -> JobResponse:
    """Rebuild a collection with the current embedding and chunking settings, as a job.
    Queries are served from the old one until the new one replaces it."""
    name = _collection(state, name)
    state.store(name)  # 404 now rather than a failed job later
    return _enqueue(state, name, [], kind="reindex")


@router.delete("/collections/{name}")
def drop(name: str, state: StateDep) -> dict[str, Any]:
    """Drop a collection, its chunks and its ingestion state."""
    name = _collection(state, name)
    # Not while a job writes to it: its open copy is closed only once the writer lock is held.
    drop_collection(state.settings, name, closed=lambda: state.switching(name))
    shutil.rmtree(state.settings.data_dir / "uploads" / name, ignore_errors=True)
    drop_map(state.settings, name)
    return {"name": name, "dropped": True}
