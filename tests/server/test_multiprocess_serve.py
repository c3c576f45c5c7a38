"""Several server processes on one PostgreSQL database and blob folder: sessions, the log-in
throttle and background jobs are shared (each job runs exactly once); ``serve --workers 2``
behind one port loses no acknowledged save when a worker is killed mid-load, and a job whose
holder was killed is taken over."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_support import ADMIN_PASSWORD, API
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from conftest import _empty
from services import free_port, wait_for_port
from thermoscope.server.db.models import AnnotationRevision, Job

pytestmark = pytest.mark.slow

SCHEMA = {"labels": [{"name": "hot_spot"}]}
#: Starts a CLI ``serve`` in this interpreter (the console script may not be on PATH).
CLI = [sys.executable, "-c", "from thermoscope.cli.main import app; app()", "serve"]


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "THERMOSCOPE_DATA_DIR": str(tmp_path / "data"),
        "THERMOSCOPE_DATABASE_URL": database_url,
        "THERMOSCOPE_BLOB_URL": str(tmp_path / "blobs"),
        "THERMOSCOPE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "THERMOSCOPE_ARGON2_MEMORY_KIB": "64",
        "THERMOSCOPE_ARGON2_TIME_COST": "1",
        "THERMOSCOPE_FSYNC_BLOBS": "false",
        "THERMOSCOPE_WORKER_THREADS": "2",
        "THERMOSCOPE_JOB_LEASE_S": "2",
        "THERMOSCOPE_LOGIN_FAILURES_PER_ACCOUNT": "2",
        "THERMOSCOPE_LOGIN_BACKOFF_S": "60",
        "THERMOSCOPE_SERVE_WEB": "false",
    }


class Served:
    """``thermoscope serve`` processes started by a test (stopped at its end)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *options: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [*CLI, "--port", str(port), *options],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        wait_for_port(port, timeout_s=60, alive=process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90  # the workers of --workers start after the bind
        while True:
            try:
                if httpx.get(f"{url}{API}/health", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.1)
        return url

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:  # pragma: no cover
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def pg(postgres_url: str) -> str:
    _empty(postgres_url)
    return postgres_url


@pytest.fixture
def served(tmp_path: Path, pg: str) -> Iterator[Served]:
    servers = Served(_env(tmp_path, pg))
    try:
        yield servers
    finally:
        servers.stop()


def _login(url: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    answer = client.post(f"{API}/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _frame(client: httpx.Client, pid: int, seed: int) -> str:
    celsius = (25 + np.random.default_rng(seed).normal(0, 2, (24, 32))).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, celsius)
    answer = client.post(
        f"{API}/projects/{pid}/frames", files={"file": (f"f{seed}.npy", buffer.getvalue())}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["frame_id"])


def _jobs(database_url: str) -> list[Job]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        jobs = list(session.scalars(select(Job)))
    engine.dispose()
    return jobs


def test_two_servers_share_sessions_throttle_and_jobs(served: Served, pg: str) -> None:
    first, second = served.start(), served.start()
    on_first = _login(first)
    on_second = httpx.Client(base_url=second, timeout=30, cookies=on_first.cookies)
    on_second.headers["X-CSRF-Token"] = on_first.headers["X-CSRF-Token"]
    project = on_second.post(f"{API}/projects", json={"name": "p", "label_schema": SCHEMA})
    assert project.status_code == 201, project.text  # the session made on the first server
    pid = project.json()["id"]
    # failures on the first server lock the name on the second
    for url in (first, first, first):
        bad = httpx.post(f"{url}{API}/auth/login", json={"username": "ghost", "password": "x"})
        assert bad.status_code in (401, 429)
    locked = httpx.post(f"{second}{API}/auth/login", json={"username": "ghost", "password": "x"})
    assert locked.status_code == 429
    _frame(on_first, pid, 0)
    accepted = [
        client.post(f"{API}/projects/{pid}/dataset-versions", json={"message": str(i)})
        for i in range(6)
        for client in (on_first, on_second)
    ]
    ids = {answer.json()["job_id"] for answer in accepted}
    deadline = time.monotonic() + 30
    while {job.state for job in _jobs(pg) if job.id in ids} != {"done"}:
        assert time.monotonic() < deadline, [(j.state, j.error) for j in _jobs(pg)]
        time.sleep(0.2)
    assert [job.attempts for job in _jobs(pg) if job.id in ids] == [1] * len(ids)
    on_first.close()
    on_second.close()


def _holder(database_url: str, tmp_path: Path, pid: int) -> subprocess.Popen[str]:
    """A process that queues a dataset-version job and claims it in the same transaction
    (as a worker's claim leaves it: running, attempt 1, a 2 s lease), says so, and hangs."""
    params = {"project_id": pid, "message": "held", "only_accepted": False, "username": "admin"}
    code = (
        "import time\n"
        "from datetime import timedelta\n"
        "from thermoscope.server.app import build_context\n"
        "from thermoscope.server.db.models import now\n"
        "from thermoscope.server.jobs import add_job\n"
        "from thermoscope.server.settings import Settings\n"
        f"ctx = build_context(Settings(database_url={database_url!r}, "
        f"blob_url={str(tmp_path / 'blobs')!r}))\n"
        "with ctx.db.write() as session:\n"
        f"    job = add_job(session, 'dataset_version', {pid}, {params!r}, 'admin')\n"
        "    job.state, job.attempts = 'running', 1\n"
        "    job.lease_until = now() + timedelta(seconds=2)\n"
        "print(job.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_killing_a_worker_loses_no_acknowledged_save(
    served: Served, pg: str, tmp_path: Path
) -> None:
    url = served.start("--workers", "2")
    admin = _login(url)
    pid = admin.post(f"{API}/projects", json={"name": "p", "label_schema": SCHEMA}).json()["id"]
    frames = [_frame(admin, pid, seed) for seed in range(4)]
    admin.close()
    holder = _holder(pg, tmp_path, pid)  # a job whose holder is killed below
    try:
        assert holder.stdout is not None
        held = holder.stdout.readline().strip()
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert held
    acknowledged: list[tuple[str, int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def annotate(index: int) -> None:
        try:
            client = _login(url)
            try:
                save(client, index)
            finally:
                client.close()
        except Exception as exc:  # reported by the assertion below
            failures.append(repr(exc))

    def save(client: httpx.Client, index: int) -> None:
        count = 0
        while not stop.is_set():
            fid = frames[(index + count) % len(frames)]
            count += 1
            marker = f"c{index}-{count}"
            try:
                current = client.get(f"{API}/frames/{fid}/annotations").json()
                item = dict(current["item"])
                box = {
                    "id": marker,
                    "label": "hot_spot",
                    "shape": _box(count),
                    "provenance": {"author": "admin", "created": "2025-01-01T00:00:00+00:00"},
                }
                item["annotations"] = [box]
                saved = client.put(
                    f"{API}/frames/{fid}/annotations",
                    json={"item": item, "revision": current["revision"]},
                )
            except httpx.TransportError:  # the worker died under this request: not acknowledged
                continue
            if saved.status_code == 200:
                acknowledged.append((fid, saved.json()["revision"], marker))
            elif saved.status_code != 409:
                failures.append(f"{saved.status_code} {saved.text[:200]}")

    clients = [threading.Thread(target=annotate, args=(i,)) for i in range(6)]
    for client in clients:
        client.start()
    time.sleep(1.5)
    (supervisor,) = served.processes
    workers = [p for p in _children(supervisor.pid) if b"resource_tracker" not in _cmdline(p)]
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    time.sleep(3.0)
    stop.set()
    for client in clients:
        client.join(30)
    assert not failures
    assert len(acknowledged) > 20
    engine = create_engine(pg)
    with Session(engine) as session:
        history = {
            (row.frame_id, row.revision): row.item
            for row in session.scalars(select(AnnotationRevision))
        }
    engine.dispose()
    for fid, revision, marker in acknowledged:
        assert marker in {a["id"] for a in json.loads(history[(fid, revision)])["annotations"]}
    deadline = time.monotonic() + 20
    while True:
        (job,) = [job for job in _jobs(pg) if job.id == held]
        if job.state == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (job.state, job.attempts) == ("done", 2)


def _box(count: int) -> dict[str, Any]:
    return {"type": "box", "x": count % 20, "y": 1, "width": 3, "height": 3}


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
