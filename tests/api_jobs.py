"""Waiting for an API job in tests that drive the app through a TestClient."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient


def wait_for_job(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    """The job as the API reports it once done or failed; fails the test after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job['id']}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job did not finish: {job}")
