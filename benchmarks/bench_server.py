"""Load benchmark of the annotation server: one SQLite process against PostgreSQL with 1 and 2
worker processes.

For each set-up it starts ``thermoscope serve [--workers N]`` on a temporary data folder (the
embedded defaults: SQLite in WAL mode with ``synchronous=FULL``, fsynced local blobs; or a fresh
database on a throwaway PostgreSQL cluster, ``THERMOSCOPE_BENCH_PG`` to name a server instead,
with the same fsynced blob folder) and runs concurrent clients against it for a fixed time:

- annotators (browser sessions with CSRF tokens) open a random frame of a shared pool, think,
  and save an edit over the revision they loaded; on 409 they merge onto the current item and
  save again (conflicts are part of the load);
- ingesters (edge agents with API tokens) upload new boards (FLIR SEQ) with think time.

Then it checks that no acknowledged write was lost (every 200 answer to a save is in the
revision history with the client's edit, the final item of each frame is its last acknowledged
save, every acknowledged frame exists), times how long a 640x512 frame's °C takes to reach a
client (GET ``/celsius``, gzip as a browser asks, decoded to a float32 array), idle and under
load, and times ``--agents`` edge agents draining a backlog of ``--backlog`` flagged frames
(distinct 160x120 °C frames as .npy, each agent uploading its share back to back, as an edge
outbox does after an outage).
The set-ups are printed side by side at the end, each with the CPU its server processes and
this load generator used during the load (the clients share the cores with the server, so they
speak plain HTTP/1.1 on kept-alive connections from one asyncio process: ``Client``).

Run: ``python benchmarks/bench_server.py [--seconds 60] [--backlog 10000]
[--think-min 0 --think-max 0.05] [--setups sqlite,pg1,pg2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import thermoscope.io as tio
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.pipeline.demo import example_recipe

API = "/api/v1"
PASSWORD = "bench-password-1"
SCHEMA = {
    "labels": [
        {
            "name": "hot_spot",
            "attributes": [{"name": "severity", "type": "enum", "values": ["minor", "major"]}],
        }
    ]
}


@dataclass
class Results:
    """What the clients saw."""

    save_ms: list[float] = field(default_factory=list)
    load_ms: list[float] = field(default_factory=list)
    ingest_ms: list[float] = field(default_factory=list)
    celsius_load_ms: list[float] = field(default_factory=list)
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    #: (frame id, revision, marker) of every acknowledged save, in answer order.
    saves: list[tuple[str, int, str]] = field(default_factory=list)
    ingested: set[str] = field(default_factory=set)
    #: Seconds the agents took to drain the backlog.
    drain_s: float = float("nan")
    #: CPU seconds used during the measured window by this load generator and by the server's
    #: processes (not counting the database), and the 1-minute load average at its end.
    client_cpu_s: float = float("nan")
    server_cpu_s: float = float("nan")
    window_load: float = float("nan")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its descendants, with the children
    it has reaped (read from Linux ``/proc``; 0 for a process that has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = sum(int(value) for value in fields[11:15])
        children: list[str] = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listed:
                children += listed.read().split()
    except FileNotFoundError:  # ended meanwhile
        return 0.0
    own = ticks / os.sysconf("SC_CLK_TCK")
    return own + sum(tree_cpu_s(int(child)) for child in children)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    data_dir: Path, workers: int = 1, database_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``thermoscope serve --workers N`` on a free port (``database_url``: else SQLite)."""
    port = free_port()
    env = {
        **os.environ,
        "THERMOSCOPE_DATA_DIR": str(data_dir),
        "THERMOSCOPE_ADMIN_PASSWORD": PASSWORD,
        # cheap password hashes only so that 50 log-ins do not dominate the set-up time;
        # nothing measured logs in
        "THERMOSCOPE_ARGON2_MEMORY_KIB": "1024",
        "THERMOSCOPE_ARGON2_TIME_COST": "1",
    }
    if database_url is not None:
        env["THERMOSCOPE_DATABASE_URL"] = database_url
    code = "from thermoscope.cli.main import app; app()"
    command = [sys.executable, "-c", code, "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}{API}/health", timeout=5) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new database on ``THERMOSCOPE_BENCH_PG`` or a throwaway cluster (dropped after)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from services import postgres_server  # the tests' throwaway cluster

    configured = os.environ.get("THERMOSCOPE_BENCH_PG")
    with postgres_server() if configured is None else _given(configured) as admin_url:
        name = f"thermoscope_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def boards(count: int, seed: int) -> list[bytes]:
    """FLIR SEQ files of synthetic boards (160x120)."""
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    parts = simulate_run("pcb", parts=count, defect_rate=0.1, rng=np.random.default_rng(seed))
    return [writer.emit([part.frame]) for part in parts]


def big_frame() -> bytes:
    """A 640x512 float32 frame as .npy."""
    rng = np.random.default_rng(5)
    celsius = (30 + 10 * rng.random((512, 640))).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, celsius)
    return buffer.getvalue()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Answer:
    """One HTTP answer: status, headers (lower-case names) and body."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:200]}")


class Client:
    """A lean HTTP/1.1 client on one kept-alive loopback connection (the load generator shares
    the cores with the server: httpx costs about 2.5 ms of CPU per request, this about 0.2).
    Keeps the session cookie a log-in sets; ``headers`` go with every request."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.address = (host, int(port))
        self.headers = dict(headers or {})
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return await self.request("GET", path, b"", headers or {})

    async def put(self, path: str, json: Any) -> Answer:
        return await self._json("PUT", path, json)

    async def post(
        self, path: str, json: Any = None, files: dict[str, tuple[str, bytes]] | None = None
    ) -> Answer:
        if files is None:
            return await self._json("POST", path, json)
        boundary = uuid.uuid4().hex
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data
            + b"\r\n"
            for field, (name, data) in files.items()
        )
        body += f"--{boundary}--\r\n".encode()
        kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return await self.request("POST", path, body, kind)

    async def _json(self, method: str, path: str, value: Any) -> Answer:
        body = json.dumps(value).encode()
        return await self.request(method, path, body, {"Content-Type": "application/json"})

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        """Send one request; a kept-alive connection the server closed meanwhile is opened
        again and the request sent once more (every request here may be repeated)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.address[0]}:{self.address[1]}"]
        lines += [f"{k}: {v}" for k, v in {**self.headers, **headers}.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        for attempt in (1, 2):
            reused = self.streams is not None
            if self.streams is None:
                self.streams = await asyncio.open_connection(*self.address)
            reader, writer = self.streams
            try:
                writer.write(head + body)
                answer = await self._answer(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                self.streams = None
                if not reused or attempt == 2:
                    raise
                continue
            if answer.headers.get("connection", "").lower() == "close":
                writer.close()
                self.streams = None
            cookie = answer.headers.get("set-cookie")
            if cookie is not None:
                self.headers["Cookie"] = cookie.split(";", 1)[0]
            return answer
        raise AssertionError("unreachable")

    @staticmethod
    async def _answer(reader: asyncio.StreamReader) -> Answer:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")
            return Answer(status, headers, b"".join(parts))
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, headers, body)


async def login(client: Client, username: str) -> None:
    response = await client.post(f"{API}/auth/login", {"username": username, "password": PASSWORD})
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


async def setup(url: str, annotators: int, ingesters: int, pool: int) -> dict[str, Any]:
    async with Client(url) as admin:
        await login(admin, "admin")
        recipe = example_recipe("pcb").read_text(encoding="utf-8")
        project = await admin.post(
            f"{API}/projects", json={"name": "bench", "label_schema": SCHEMA, "recipe": recipe}
        )
        pid = project.json()["id"]
        names = [f"ann{i}" for i in range(annotators)] + [f"edge{i}" for i in range(ingesters)]
        for name in names:
            made = await admin.post(f"{API}/users", json={"username": name, "password": PASSWORD})
            made.raise_for_status()
            member = await admin.put(
                f"{API}/projects/{pid}/members/{name}", json={"role": "annotator"}
            )
            member.raise_for_status()
        frames = []
        for i, data in enumerate(boards(pool, seed=1)):
            answer = await admin.post(
                f"{API}/projects/{pid}/frames", files={"file": (f"seed-{i}.seq", data)}
            )
            frames.append(answer.json()["frame_id"])
        big = await admin.post(
            f"{API}/projects/{pid}/frames", files={"file": ("big.npy", big_frame())}
        )
        tokens = []
        for i in range(ingesters):
            async with Client(url) as edge:
                await login(edge, f"edge{i}")
                token = await edge.post(
                    f"{API}/tokens", json={"name": "edge", "scopes": ["ingest"]}
                )
                tokens.append(token.json()["token"])
    return {"pid": pid, "frames": frames, "big": big.json()["frame_id"], "tokens": tokens}


def edit(item: dict[str, Any], who: str, marker: str, rng: random.Random) -> dict[str, Any]:
    """The item with this client's box replaced by a new one named ``marker``."""
    keep = [a for a in item["annotations"] if not a["id"].startswith(f"{who}-")]
    x, y = rng.randint(0, 140), rng.randint(0, 100)
    box = {
        "id": marker,
        "label": "hot_spot",
        "shape": {"type": "box", "x": x, "y": y, "width": 12, "height": 10},
        "attributes": {"severity": rng.choice(["minor", "major"])},
        "provenance": {"author": who, "created": "2025-01-01T00:00:00+00:00"},
    }
    return {**item, "annotations": [*keep, box]}


class Window:
    """The measured time: it opens once every logged-in client is ready (log-ins, with their
    password hashes, are set-up, not load) and lasts ``seconds``."""

    def __init__(self, clients: int, seconds: float, server_pid: int) -> None:
        self.waiting = clients
        self.seconds = seconds
        self.until = float("inf")
        self.opened = asyncio.Event()
        self.server_pid = server_pid
        #: CPU seconds of this process and of the server when the window opened.
        self.cpu_at_open = (0.0, 0.0)

    async def ready(self) -> None:
        """Wait, logged in, until every client is; the last one opens the window."""
        self.waiting -= 1
        if self.waiting == 0:
            self.until = time.monotonic() + self.seconds
            self.cpu_at_open = (time.process_time(), tree_cpu_s(self.server_pid))
            self.opened.set()
        await self.opened.wait()


async def annotator(
    url: str,
    index: int,
    frames: list[str],
    window: Window,
    think: tuple[float, float],
    out: Results,
) -> None:
    who = f"ann{index}"
    rng = random.Random(index)
    async with Client(url) as client:
        await login(client, who)
        await window.ready()
        count = 0
        while time.monotonic() < window.until:
            fid = rng.choice(frames)
            started = time.perf_counter()
            got = await client.get(f"{API}/frames/{fid}/annotations")
            out.load_ms.append((time.perf_counter() - started) * 1000)
            current = got.json()
            await asyncio.sleep(rng.uniform(*think))
            count += 1
            marker = f"{who}-{count}"
            item, revision = edit(current["item"], who, marker, rng), current["revision"]
            for _attempt in range(10):
                started = time.perf_counter()
                saved = await client.put(
                    f"{API}/frames/{fid}/annotations", json={"item": item, "revision": revision}
                )
                out.save_ms.append((time.perf_counter() - started) * 1000)
                if saved.status_code == 200:
                    out.saves.append((fid, saved.json()["revision"], marker))
                    break
                if saved.status_code != 409:
                    out.errors.append(f"save {saved.status_code}: {saved.text[:200]}")
                    break
                out.conflicts += 1
                conflict = saved.json()
                item, revision = edit(conflict["item"], who, marker, rng), conflict["revision"]


async def ingester(
    url: str,
    token: str,
    pid: int,
    files: list[bytes],
    window: Window,
    think: tuple[float, float],
    out: Results,
) -> None:
    rng = random.Random(token)
    headers = {"Authorization": f"Bearer {token}"}
    async with Client(url, headers) as client:
        await window.opened.wait()
        while time.monotonic() < window.until and files:
            data = files.pop()
            started = time.perf_counter()
            answer = await client.post(
                f"{API}/projects/{pid}/frames", files={"file": ("board.seq", data)}
            )
            out.ingest_ms.append((time.perf_counter() - started) * 1000)
            if answer.status_code in (200, 201):
                out.ingested.add(answer.json()["frame_id"])
            else:
                out.errors.append(f"ingest {answer.status_code}: {answer.text[:200]}")
            await asyncio.sleep(rng.uniform(*think))


async def celsius_ms(client: Client, fid: str) -> float:
    started = time.perf_counter()
    response = await client.get(f"{API}/frames/{fid}/celsius", headers={"Accept-Encoding": "gzip"})
    body = response.body
    if response.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    values = np.frombuffer(body, dtype="<f4").reshape(
        int(response.headers["x-height"]), int(response.headers["x-width"])
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert values.shape == (512, 640)
    return elapsed


async def watcher(url: str, fid: str, window: Window, out: Results) -> None:
    async with Client(url) as client:
        await login(client, "admin")
        await window.ready()
        while time.monotonic() < window.until:
            out.celsius_load_ms.append(await celsius_ms(client, fid))
            await asyncio.sleep(0.5)


async def run(
    args: argparse.Namespace, url: str, server_pid: int
) -> tuple[Results, dict[str, Any], list[float]]:
    annotators = args.clients - args.ingesters
    info = await setup(url, annotators, args.ingesters, args.pool)
    async with Client(url) as client:
        await login(client, "admin")
        await celsius_ms(client, info["big"])
        idle = [await celsius_ms(client, info["big"]) for _ in range(30)]
    files = boards(args.ingesters * int(args.seconds) + 10, seed=2)
    out = Results()
    window = Window(annotators + 1, args.seconds, server_pid)
    tasks = [
        annotator(url, i, info["frames"], window, (args.think_min, args.think_max), out)
        for i in range(annotators)
    ]
    tasks += [
        ingester(url, token, info["pid"], files, window, (args.think_min, args.think_max), out)
        for token in info["tokens"]
    ]
    tasks.append(watcher(url, info["big"], window, out))
    await asyncio.gather(*tasks)
    out.client_cpu_s = time.process_time() - window.cpu_at_open[0]
    out.server_cpu_s = tree_cpu_s(server_pid) - window.cpu_at_open[1]
    out.window_load = os.getloadavg()[0]
    out.drain_s = await drain(url, info["tokens"], info["pid"], args.agents, args.backlog, out)
    return out, info, idle


def flagged_frame(agent: int, index: int) -> bytes:
    """A distinct 160x120 °C frame (.npy) of ``agent``'s backlog."""
    rng = np.random.default_rng([agent, index])
    celsius = (40 + 5 * rng.random((120, 160))).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, celsius)
    return buffer.getvalue()


async def drain(
    url: str, tokens: list[str], pid: int, agents: int, backlog: int, out: Results
) -> float:
    """Seconds ``agents`` agents take to upload ``backlog`` frames between them."""

    async def agent(index: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
        async with Client(url, headers) as client:
            for i in range(index, backlog, agents):
                answer = await client.post(
                    f"{API}/projects/{pid}/frames",
                    files={"file": (f"flagged-{index}-{i}.npy", flagged_frame(index, i))},
                )
                if answer.status_code in (200, 201):
                    out.ingested.add(answer.json()["frame_id"])
                else:
                    out.errors.append(f"drain {answer.status_code}: {answer.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(agent(i) for i in range(agents)))
    return time.perf_counter() - started


def check_lost_writes(database_url: str, out: Results) -> int:
    """Acknowledged saves or frames missing from the database."""
    engine = create_engine(database_url)
    db = engine.connect()
    lost = 0
    history = {
        (fid, rev): item
        for fid, rev, item in db.execute(
            text("SELECT frame_id, revision, item FROM annotation_revisions")
        )
    }
    last: dict[str, tuple[int, str]] = {}
    for fid, revision, marker in out.saves:
        item = history.get((fid, revision))
        if item is None or marker not in {a["id"] for a in json.loads(item)["annotations"]}:
            lost += 1
        if revision > last.get(fid, (0, ""))[0]:
            last[fid] = (revision, marker)
    for fid, (revision, marker) in last.items():
        row = db.execute(
            text("SELECT revision, item FROM annotations WHERE frame_id = :fid"), {"fid": fid}
        ).fetchone()
        if row is None or row[0] != revision or marker not in row[1]:
            lost += 1
    frames = {row[0] for row in db.execute(text("SELECT id FROM frames"))}
    lost += len(out.ingested - frames)
    db.close()
    engine.dispose()
    return lost


#: The set-ups ``--setups`` chooses from: (label, worker processes, on PostgreSQL).
SETUPS = {
    "sqlite": ("SQLite, 1 process", 1, False),
    "pg1": ("PostgreSQL, 1 worker", 1, True),
    "pg2": ("PostgreSQL, 2 workers", 2, True),
}


def measure(args: argparse.Namespace, workers: int, database_url: str | None) -> dict[str, Any]:
    """Run the load against one set-up; its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-server-") as folder:
        data_dir = Path(folder) / "data"
        process, url = start_server(data_dir, workers, database_url)
        try:
            load_before = os.getloadavg()
            started = time.monotonic()
            out, _info, idle = asyncio.run(run(args, url, process.pid))
            elapsed = time.monotonic() - started
            load_after = os.getloadavg()
        finally:
            process.terminate()
            process.wait(60)
        resolved = database_url or f"sqlite:///{data_dir / 'thermoscope.db'}"
        lost = check_lost_writes(resolved, out)
    fivexx = sum(1 for error in out.errors if error.split(" ")[1].startswith("5"))
    return {
        "out": out,
        "idle": idle,
        "lost": lost,
        "5xx": fivexx,
        "elapsed": elapsed,
        "load": (load_before[0], load_after[0]),
    }


def report(args: argparse.Namespace, label: str, got: dict[str, Any]) -> None:
    """Print one set-up's figures."""
    out: Results = got["out"]
    saves = len(out.saves)
    idle = got["idle"]
    print(
        f"  {label} (load average {got['load'][0]:.1f} before, {out.window_load:.1f} at the end "
        f"of the load, {got['load'][1]:.1f} after; {got['elapsed']:.0f} s with set-up)"
    )
    print(
        f"    CPU during the load: server processes {out.server_cpu_s:.1f} s "
        f"({out.server_cpu_s / args.seconds:.2f} cores), this load generator "
        f"{out.client_cpu_s:.1f} s ({out.client_cpu_s / args.seconds:.2f} cores)"
    )
    print(
        f"    annotation saves: {saves} acknowledged ({saves / args.seconds:.1f}/s), "
        f"{out.conflicts} answered 409 and merged, p50 {pct(out.save_ms, 50):.1f} ms, "
        f"p95 {pct(out.save_ms, 95):.1f} ms, max {max(out.save_ms, default=0):.1f} ms"
    )
    print(
        f"    annotation loads: {len(out.load_ms)}, p50 {pct(out.load_ms, 50):.1f} ms, "
        f"p95 {pct(out.load_ms, 95):.1f} ms; ingests under load: p50 "
        f"{pct(out.ingest_ms, 50):.1f} ms, p95 {pct(out.ingest_ms, 95):.1f} ms"
    )
    print(
        f"    640x512 frame °C to the client (gzip, decoded to float32): idle p50 "
        f"{pct(idle, 50):.1f} ms / p95 {pct(idle, 95):.1f} ms; under load p50 "
        f"{pct(out.celsius_load_ms, 50):.1f} ms / p95 {pct(out.celsius_load_ms, 95):.1f} ms"
    )
    print(
        f"    backlog: {args.agents} agents drained {args.backlog} flagged frames in "
        f"{out.drain_s:.1f} s ({args.backlog / out.drain_s:.1f} frames/s)"
    )
    print(f"    errors: {len(out.errors)} ({got['5xx']} 5xx); lost writes: {got['lost']}")
    for error in out.errors[:5]:
        print(f"      {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in all")
    parser.add_argument("--ingesters", type=int, default=10, help="of which edge ingesters")
    parser.add_argument(
        "--seconds", "--duration", type=float, default=20.0, help="seconds of load (60: full)"
    )
    parser.add_argument("--pool", type=int, default=100, help="frames the annotators share")
    parser.add_argument("--think-min", type=float, default=1.0, help="least think time, s")
    parser.add_argument("--think-max", type=float, default=3.0, help="most think time, s")
    parser.add_argument("--agents", type=int, default=20, help="agents draining the backlog")
    parser.add_argument(
        "--backlog", type=int, default=1000, help="flagged frames to drain (10000: full)"
    )
    parser.add_argument(
        "--setups", default="sqlite,pg1,pg2", help=f"comma-separated, of {', '.join(SETUPS)}"
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.setups.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SETUPS]
    if unknown:
        raise SystemExit(f"unknown set-ups {unknown}; choose from {list(SETUPS)}")
    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        _label, workers, on_postgres = SETUPS[name]
        if on_postgres:
            with postgres_database() as url:
                results[name] = measure(args, workers, url)
        else:
            results[name] = measure(args, workers, None)
    print("thermoscope server load benchmark")
    print(
        f"  set-up: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; server, database and clients on this machine "
        "(loopback); fsynced local blobs, gzip level 1; PostgreSQL from tests/services.py "
        "(fsync off) unless THERMOSCOPE_BENCH_PG names one"
    )
    print(
        f"  load: {args.clients} concurrent clients for {args.seconds:.0f} s: "
        f"{args.clients - args.ingesters} annotators (session + CSRF) on {args.pool} shared "
        f"frames, {args.ingesters} ingesters (API tokens, 160x120 FLIR SEQ boards, recipe "
        f"pre-annotation); think time {args.think_min}-{args.think_max} s"
    )
    for name, got in results.items():
        report(args, SETUPS[name][0], got)
    print()
    print(
        f"  {'set-up':<24}{'saves/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'lost':>6}{'5xx':>6}"
        f"{'drain s':>9}"
    )
    for name, got in results.items():
        out = got["out"]
        print(
            f"  {SETUPS[name][0]:<24}{len(out.saves) / args.seconds:>9.1f}"
            f"{pct(out.save_ms, 50):>9.1f}{pct(out.save_ms, 95):>9.1f}{got['lost']:>6}"
            f"{got['5xx']:>6}{out.drain_s:>9.1f}"
        )
    if "sqlite" in results and "pg2" in results:
        ratio = len(results["pg2"]["out"].saves) / max(1, len(results["sqlite"]["out"].saves))
        print(f"  saves/s, PostgreSQL with 2 workers / one SQLite process: {ratio:.2f}x")
    if any(got["lost"] or got["out"].errors for got in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
