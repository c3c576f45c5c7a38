"""Helpers of the server tests (imported by the tests and by ``conftest.py``): settings for a
test app, a logged-in test server with user and project helpers, small frames to ingest."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from thermoscope.server import Settings

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "password-123"
API = "/api/v1"


def make_settings(tmp_path: Path, database_url: str | None = None, **changes: Any) -> Settings:
    """Settings for a test: cheap password hashes, no fsync, the given database."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "admin_password": ADMIN_PASSWORD,
        "argon2_memory_kib": 64,
        "argon2_time_cost": 1,
        "fsync_blobs": False,
        "sqlite_synchronous": "NORMAL",
        "worker_threads": 1,
    }
    values.update(changes)
    return Settings(**values)


@dataclass
class Server:
    """An app under test with helpers to make users and projects."""

    app: Any
    admin: TestClient

    def client(self) -> TestClient:
        """A fresh client of the same app (no cookies)."""
        return TestClient(self.app)

    def login(self, username: str, password: str = PASSWORD) -> TestClient:
        """A client logged in as ``username`` that sends its CSRF token on every request."""
        client = self.client()
        response = client.post(
            f"{API}/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    def user(
        self, username: str, project_id: int | None = None, role: str = "annotator"
    ) -> TestClient:
        """Create a user (with ``role`` in a project) and return a logged-in client."""
        response = self.admin.post(
            f"{API}/users", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        if project_id is not None:
            self.member(project_id, username, role)
        return self.login(username)

    def member(self, project_id: int, username: str, role: str) -> None:
        """Give ``username`` a role in a project."""
        response = self.admin.put(
            f"{API}/projects/{project_id}/members/{username}", json={"role": role}
        )
        assert response.status_code == 200, response.text

    def project(self, name: str = "line-1", **body: Any) -> dict[str, Any]:
        """Create a project as the administrator."""
        response = self.admin.post(f"{API}/projects", json={"name": name, **body})
        assert response.status_code == 201, response.text
        project: dict[str, Any] = response.json()
        return project

    def token(self, client: TestClient, scopes: list[str], expires_in_s: int = 3600) -> TestClient:
        """A client using a new API token of ``client``'s user."""
        response = client.post(
            f"{API}/tokens", json={"name": "t", "scopes": scopes, "expires_in_s": expires_in_s}
        )
        assert response.status_code == 201, response.text
        return TestClient(self.app, headers={"Authorization": f"Bearer {response.json()['token']}"})


def npy_file(seed: int = 0, shape: tuple[int, int] = (24, 32), base: float = 25.0) -> bytes:
    """A small float32 °C frame as ``.npy`` bytes (different seeds: different content)."""
    rng = np.random.default_rng(seed)
    frame = (base + rng.normal(0, 2, size=shape)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, frame)
    return buffer.getvalue()


def ingest(
    client: TestClient,
    project_id: int,
    data: bytes,
    name: str = "frame.npy",
    **fields: str,
) -> Any:
    """POST a file to a project's frames."""
    return client.post(
        f"{API}/projects/{project_id}/frames",
        files={"file": (name, data, "application/octet-stream")},
        data=fields,
    )
