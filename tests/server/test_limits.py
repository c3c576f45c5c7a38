"""The server's resource limits: decompression bombs refused from headers (413) in bounded memory,
sequences ingested one decoded frame at a time, bodies without a declared length counted as they
stream in (413 at the limit, before login, on a real uvicorn server), and a truncated last frame
reported in the answers the UI reads."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, Server, ingest, make_settings

from flir_records import constant_csq
from synthetic_frames import planck_frame
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.io import parse_bytes
from thermoscope.io.flir_writer import emit_csq, emit_seq
from thermoscope.recipes import compile_recipe, inspect, load_recipe
from thermoscope.server import create_app

MIB = 1 << 20


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    """An app (SQLite) with tight decode limits and a logged-in administrator."""
    settings = make_settings(
        tmp_path, max_frame_pixels=4 * MIB, max_frames=64, max_decoded_bytes=256 * MIB
    )
    app = create_app(settings)
    with TestClient(app) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield Server(app, client)


def _peak(action: object) -> tuple[int, object]:
    """Peak traced allocation (bytes) of this process while ``action()`` runs, and its result."""
    assert callable(action)
    tracemalloc.start()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def test_csq_bomb_upload_is_refused_from_its_headers(limited: Server) -> None:
    project = limited.project()
    annotator = limited.user("ann", project["id"], "annotator")
    bomb = constant_csq(8192, 8)  # 8 frames of 64 Mi pixels: 3 GiB decoded from ~28 KB
    peak, response = _peak(lambda: ingest(annotator, project["id"], bomb, "bomb.csq"))
    assert isinstance(response, httpx.Response)
    assert response.status_code == 413, response.text
    assert "bomb.csq" in response.json()["detail"]
    assert "pixels per frame" in response.json()["detail"]
    assert peak < 32 * MIB  # one decoded frame alone would be 384 MiB
    assert limited.admin.get(f"{API}/projects/{project['id']}/frames").json()["total"] == 0


def test_too_many_decoded_bytes_are_refused(limited: Server) -> None:
    project = limited.project()
    data = constant_csq(2048, 12)  # 4 Mi pixels per frame (allowed), 288 MiB decoded in all
    response = ingest(limited.admin, project["id"], data, "long.csq")
    assert response.status_code == 413, response.text
    assert "bytes per file" in response.json()["detail"]


def test_a_sequence_is_ingested_one_decoded_frame_at_a_time(limited: Server) -> None:
    project = limited.project()
    frames = 24
    data = constant_csq(1024, frames)  # 6 MiB per decoded frame, 144 MiB for all of them
    peak, response = _peak(lambda: ingest(limited.admin, project["id"], data, "run.csq"))
    assert isinstance(response, httpx.Response)
    assert response.status_code == 201, response.text
    assert response.json()["frame_count"] == frames
    assert response.json()["format"] == "flir-csq"
    assert peak < 64 * MIB  # holding every decoded frame would take 144 MiB


def test_recipe_without_sequence_rules_decodes_one_frame_of_a_sequence(limited: Server) -> None:
    """Pre-annotation of a sequence with a single-frame recipe inspects the frame the recipe
    names (the last) and finds what inspecting the whole sequence finds."""
    recipe_path = Path(__file__).resolve().parents[2] / "examples" / "pcb.yaml"
    plan = compile_recipe(load_recipe(recipe_path))
    assert not plan.sequence_rules
    project = limited.project(recipe=recipe_path.read_text(encoding="utf-8"))
    rng = np.random.default_rng(3)
    part = next(iter(simulate_run("pcb", parts=1, defect_rate=1.0, rng=rng, sequence=True)))
    frames = list(part.frames)
    data = emit_seq(frames)
    response = ingest(limited.admin, project["id"], data, "part.seq")
    assert response.status_code == 201, response.text
    stored = limited.admin.get(f"{API}/frames/{response.json()['frame_id']}").json()
    with parse_bytes(data, ".seq") as seq:
        expected = inspect(seq, plan, source="part.seq").to_json()
    assert stored["machine_findings"] == expected
    assert expected["frame"] == len(frames) - 1


def test_truncated_last_frame_is_reported_to_the_client(limited: Server) -> None:
    project = limited.project()
    whole = emit_csq([planck_frame(24, 32, seed=i, index=i) for i in range(3)])
    response = ingest(limited.admin, project["id"], whole[:-700], "cut.csq")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["frame_count"] == 2
    assert body["format"] == "flir-csq"
    assert len(body["issues"]) == 1
    assert "frame 2" in body["issues"][0]
    detail = limited.admin.get(f"{API}/frames/{body['frame_id']}").json()
    assert detail["issues"] == body["issues"]
    assert detail["format"] == "flir-csq"
    listed = limited.admin.get(f"{API}/projects/{project['id']}/frames").json()["items"]
    assert listed[0]["issues"] == body["issues"]
    again = ingest(limited.admin, project["id"], whole[:-700], "cut.csq")
    assert again.status_code == 200
    assert again.json()["issues"] == body["issues"]


# ------------------------------------------------------------------ a real server on loopback


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def real_server(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """``uvicorn`` with a 1 MiB upload limit and a 1 MiB limit on other bodies:
    ``(url, port, pid)``."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("THERMOSCOPE_")},
        "THERMOSCOPE_DATA_DIR": str(tmp_path / "data"),
        "THERMOSCOPE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "THERMOSCOPE_ARGON2_MEMORY_KIB": "64",
        "THERMOSCOPE_ARGON2_TIME_COST": "1",
        "THERMOSCOPE_MAX_UPLOAD_BYTES": str(MIB),
        "THERMOSCOPE_MAX_REQUEST_BYTES": str(MIB),
    }
    log_path = tmp_path / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "thermoscope.server.app:app_from_env"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            problem = f"the server did not start: {log_path.read_text(errors='replace')[-2000:]}"
            assert process.poll() is None, problem
            try:
                if httpx.get(f"{url}{API}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, problem
                time.sleep(0.1)
        yield url, port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def stream_chunked(
    port: int, path: str, headers: dict[str, str], total: int, *, piece: bytes
) -> tuple[int, int]:
    """Send ``total`` bytes of ``piece`` repeated as a chunked body (no Content-Length) until
    the server answers; return the status and the bytes sent (kernel buffers included)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        deadline = time.monotonic() + 30
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                break
            if writable:
                try:
                    sock.send(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(piece)
        sock.settimeout(10)
        try:
            while b"\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, sent


def test_chunked_bodies_are_cut_off_at_the_limit_before_login(
    real_server: tuple[str, int, int],
) -> None:
    url, port, pid = real_server
    before = _peak_rss(pid)
    total = 256 * MIB
    piece = b"x" * (64 * 1024)
    started = time.monotonic()
    status, sent = stream_chunked(
        port, f"{API}/auth/login", {"Content-Type": "application/json"}, total, piece=piece
    )
    assert status == 413
    assert sent < 32 * MIB  # the limit (1 MiB) plus what the kernel's socket buffers hold
    multipart = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.npy\r\n\r\n"
    status, sent = stream_chunked(
        port,
        f"{API}/projects/1/frames",
        {"Content-Type": "multipart/form-data; boundary=b"},
        total,
        piece=multipart + piece[len(multipart) :],
    )
    assert status == 413
    assert sent < 32 * MIB
    assert time.monotonic() - started < 20
    assert _peak_rss(pid) - before < 64 * MIB
    # the server is still well and answers the next client
    assert httpx.get(f"{url}{API}/health", timeout=5).status_code == 200


def test_chunked_upload_of_a_logged_in_user_is_cut_off(real_server: tuple[str, int, int]) -> None:
    url, port, _ = real_server
    with httpx.Client(base_url=url) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        csrf = login.json()["csrf_token"]
        client.headers["X-CSRF-Token"] = csrf
        made = client.post(f"{API}/projects", json={"name": "p"})
        assert made.status_code == 201, made.text
        token = client.post(f"{API}/tokens", json={"name": "t", "scopes": ["ingest", "read"]})
        bearer = token.json()["token"]
    pid_path = f"{API}/projects/{made.json()['id']}/frames"
    head = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.csq\r\n\r\n"
    piece = head + b"\0" * (64 * 1024 - len(head))
    status, sent = stream_chunked(
        port,
        pid_path,
        {"Authorization": f"Bearer {bearer}", "Content-Type": "multipart/form-data; boundary=b"},
        64 * MIB,
        piece=piece,
    )
    assert status == 413
    assert sent < 32 * MIB
    # a declared length beyond the limit is refused before a byte of the body is read
    with httpx.Client(base_url=url) as client:
        response = client.post(
            pid_path,
            content=b"\0" * (3 * MIB),
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        )
    assert response.status_code == 413
