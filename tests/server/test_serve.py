"""``thermoscope serve``: settings from the command line, the first administrator and its
one-time password (shown once the server listens, never lost), a taken port, and the demo
project seeded from the synthetic production line.

The in-process tests run the real uvicorn server on a free port and stop it as soon as it has
started; one test runs the command as a separate process and talks to it over HTTP.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from server_support import API
from typer.testing import CliRunner

from thermoscope.cli.main import app as cli

CHEAP_HASHES = {"THERMOSCOPE_ARGON2_MEMORY_KIB": "64", "THERMOSCOPE_ARGON2_TIME_COST": "1"}


class Served(list[dict[str, Any]]):
    """Servers that started: their app, host and port; ``fail_startup`` makes the next fail."""

    fail_startup = False


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    """Record servers that start (each stops right after starting)."""
    calls = Served()
    start = uvicorn.Server.startup

    async def start_then_stop(self: uvicorn.Server, sockets: Any = None) -> None:
        if calls.fail_startup:  # what uvicorn does when the app's startup fails
            self.should_exit = True
            return
        await start(self, sockets)
        host, port = sockets[0].getsockname()[:2]
        calls.append({"app": self.config.app, "host": host, "port": port})
        self.should_exit = True

    monkeypatch.setattr(uvicorn.Server, "startup", start_then_stop)
    for name, value in CHEAP_HASHES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("THERMOSCOPE_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("THERMOSCOPE_CONFIG", raising=False)
    return calls


def _password(output: str) -> str:
    return output.split("with password")[1].split()[0]


def _login(app: Any, password: str) -> int:
    with TestClient(app) as client:
        response = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": password}
        )
        return response.status_code


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_serve_demo_seeds_once_and_prints_the_login(tmp_path: Path, served: Served) -> None:
    data = tmp_path / "server"
    result = CliRunner().invoke(cli, ["serve", "--demo", "--data-dir", str(data), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert served[0]["host"] == "127.0.0.1"
    assert f"http://127.0.0.1:{served[0]['port']}/" in result.output  # the port it got
    assert "Log in as admin with password" in result.output
    password = _password(result.output)
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
    again = CliRunner().invoke(cli, ["serve", "--demo", "--data-dir", str(data), "--port", "0"])
    assert again.exit_code == 0, again.output
    assert "Demo project already there" in again.output
    assert "password" not in again.output.replace("THERMOSCOPE_ADMIN_PASSWORD", "")  # shown once


def test_a_taken_port_exits_3_before_creating_the_administrator(
    tmp_path: Path, served: Served, taken_port: int
) -> None:
    data = tmp_path / "server"
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", str(taken_port)])
    assert result.exit_code == 3, result.output
    assert f"cannot listen on 127.0.0.1:{taken_port}" in result.output
    assert "with password" not in result.output
    assert not data.exists()  # nothing written: the next start is a first start
    assert served == []
    retry = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", "0"])
    assert retry.exit_code == 0, retry.output
    assert _login(served[0]["app"], _password(retry.output)) == 200


def test_the_password_of_a_server_that_did_not_start_is_still_shown(
    tmp_path: Path, served: Served
) -> None:
    served.fail_startup = True
    data = tmp_path / "server"
    result = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "did not start" in result.output
    password = _password(result.output)  # the administrator exists: its password is shown
    served.fail_startup = False
    again = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", "0"])
    assert again.exit_code == 0, again.output
    assert _login(served[0]["app"], password) == 200


def test_a_lost_password_is_replaced_by_the_configured_one(
    tmp_path: Path, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "server"
    first = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", "0"])
    assert first.exit_code == 0, first.output
    monkeypatch.setenv("THERMOSCOPE_ADMIN_PASSWORD", "a-new-password-42")
    reset = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", "0"])
    assert reset.exit_code == 0, reset.output
    assert _login(served[1]["app"], "a-new-password-42") == 200
    assert _login(served[1]["app"], _password(first.output)) == 401


def test_the_password_is_printed_when_the_server_already_answers(tmp_path: Path) -> None:
    env = {**os.environ, **CHEAP_HASHES}
    env.pop("THERMOSCOPE_ADMIN_PASSWORD", None)
    env.pop("THERMOSCOPE_CONFIG", None)
    command = "from thermoscope.cli.main import app; app()"
    args = ["serve", "--port", "0", "--data-dir", str(tmp_path / "server")]
    with subprocess.Popen(
        [sys.executable, "-c", command, *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**env, "COLUMNS": "200"},
    ) as process:
        try:
            assert process.stderr is not None
            lines: list[str] = []
            deadline = time.monotonic() + 60
            while "with password" not in "".join(lines) and time.monotonic() < deadline:
                line = process.stderr.readline()
                assert line, f"serve ended before printing the password: {lines}"
                lines.append(line)
            url = re.search(r"http://\S+/", "".join(lines))
            assert url is not None, lines
            # the moment the password shows, the application answers (no retry, no wait)
            assert _status(f"{url.group(0)}api/v1/auth/me") == 401
        finally:
            process.terminate()
            process.wait(timeout=20)


def _status(url: str) -> int:
    """The HTTP status of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
