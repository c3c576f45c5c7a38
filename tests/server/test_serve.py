"""``thermoscope serve``: settings from the command line, the first administrator, and the demo
project seeded from the synthetic production line (uvicorn itself is replaced by a stub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_support import API
from typer.testing import CliRunner

from thermoscope.cli.main import app as cli


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls of ``uvicorn.run`` (which does not start a server here)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setenv("THERMOSCOPE_ARGON2_MEMORY_KIB", "64")
    monkeypatch.setenv("THERMOSCOPE_ARGON2_TIME_COST", "1")
    monkeypatch.delenv("THERMOSCOPE_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("THERMOSCOPE_CONFIG", raising=False)
    return calls


def test_serve_demo_seeds_once_and_prints_the_login(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    data = tmp_path / "server"
    result = CliRunner().invoke(cli, ["serve", "--demo", "--data-dir", str(data), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output
    assert "Log in as admin with password" in result.output
    password = result.output.split("with password")[1].split()[0]
    assert served[0]["port"] == 8123
    assert served[0]["host"] == "127.0.0.1"
    with TestClient(served[0]["app"]) as client:
        login = client.post(f"{API}/auth/login", json={"username": "admin", "password": password})
        assert login.status_code == 200
        (project,) = client.get(f"{API}/projects").json()["items"]
        assert project["name"] == "Demo PCB line"
        assert project["frame_count"] == 54
        assert project["recipe"]["name"] == "synthetic-pcb"
        frames = client.get(f"{API}/projects/{project['id']}/frames?limit=500").json()["items"]
        assert {f["frame_count"] for f in frames} == {1, 20}
        assert "NG" in {f["machine_verdict"] for f in frames}
        ng = next(f for f in frames if f["machine_verdict"] == "NG")
        drafts = client.get(f"{API}/frames/{ng['id']}/annotations").json()["item"]
        assert drafts["annotations"]
        assert drafts["verdicts"][0]["review"]["state"] == "draft"
    again = CliRunner().invoke(cli, ["serve", "--demo", "--data-dir", str(data)])
    assert again.exit_code == 0, again.output
    assert "Demo project already there" in again.output
    assert "password" not in again.output  # shown once
