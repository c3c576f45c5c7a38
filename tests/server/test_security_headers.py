"""Security headers and file permissions (issue 10): a Content-Security-Policy without inline
script and no framing on every answer; the data folder 0700 and the database 0600 like the
blobs."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from server_support import API, ingest, make_settings, npy_file

from thermoscope.server import create_app

ADMIN = {"username": "admin", "password": "admin-password-1"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _check_headers(h: httpx.Headers) -> None:
    csp = h["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"


def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_request_bytes=1024)
    with TestClient(create_app(settings)) as client:
        answers = [
            client.get("/"),  # the UI
            client.get("/js/main.js"),
            client.get(f"{API}/health"),
            client.get(f"{API}/auth/me"),  # 401
            client.post(f"{API}/auth/login", content=b"x" * 4096),  # 413 before any route
            client.get(f"{API}/nothing-here"),  # 404
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 401, 413, 404]
        for answer in answers:
            _check_headers(answer.headers)
            assert "strict-transport-security" not in answer.headers
    secure = make_settings(tmp_path / "tls", cookie_secure=True)
    with TestClient(create_app(secure)) as client:
        assert "max-age=" in client.get(f"{API}/health").headers["strict-transport-security"]


def test_the_ui_has_no_inline_script_or_style() -> None:
    index = (
        Path(__file__).resolve().parents[2]
        / "src"
        / "thermoscope"
        / "web"
        / "static"
        / "index.html"
    ).read_text(encoding="utf-8")
    assert "<style" not in index
    assert " style=" not in index
    for line in index.splitlines():
        if "<script" in line:
            assert 'src="' in line, line


def test_data_folder_and_database_are_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # data_dir = tmp_path / "data", SQLite inside
    with TestClient(create_app(settings)) as client:
        login = client.post(f"{API}/auth/login", json=ADMIN)
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        pid = client.post(f"{API}/projects", json={"name": "p"}).json()["id"]
        assert ingest(client, pid, npy_file(5)).status_code == 201
    data = settings.data_dir
    assert _mode(data) == 0o700
    database = data / "thermoscope.db"
    assert _mode(database) == 0o600
    for extra in (data / "thermoscope.db-wal", data / "thermoscope.db-shm"):
        if extra.exists():
            assert _mode(extra) == 0o600, extra
    blobs = [p for p in (data / "blobs").rglob("*")]
    assert any(p.is_file() for p in blobs)
    for path in blobs:
        assert _mode(path) == (0o600 if path.is_file() else 0o700), path


def test_an_open_data_folder_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "thermoscope.db").touch(mode=0o644)
    (data / "thermoscope.db").chmod(0o644)
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.get(f"{API}/health").status_code == 200
    assert _mode(data) == 0o700
    assert _mode(data / "thermoscope.db") == 0o600
