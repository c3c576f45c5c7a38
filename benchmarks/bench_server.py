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
The set-ups are printed side by side at the end.

Run: ``python benchmarks/bench_server.py [--seconds 60] [--backlog 10000]
[--think-min 0 --think-max 0.05] [--setups sqlite,pg1,pg2]``.
"""

from __future__ import annotations

import argparse
import asyncio
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
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
            if httpx.get(f"{url}{API}/health", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
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


async def login(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        f"{API}/auth/login", json={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


async def setup(url: str, annotators: int, ingesters: int, pool: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as admin:
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
            async with httpx.AsyncClient(base_url=url, timeout=60) as edge:
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

    def __init__(self, clients: int, seconds: float) -> None:
        self.waiting = clients
        self.seconds = seconds
        self.until = float("inf")
        self.opened = asyncio.Event()

    async def ready(self) -> None:
        """Wait, logged in, until every client is; the last one opens the window."""
        self.waiting -= 1
        if self.waiting == 0:
            self.until = time.monotonic() + self.seconds
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
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
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
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
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


async def celsius_ms(client: httpx.AsyncClient, fid: str) -> float:
    started = time.perf_counter()
    response = await client.get(f"{API}/frames/{fid}/celsius", headers={"Accept-Encoding": "gzip"})
    values = np.frombuffer(response.content, dtype="<f4").reshape(
        int(response.headers["x-height"]), int(response.headers["x-width"])
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert values.shape == (512, 640)
    return elapsed


async def watcher(url: str, fid: str, window: Window, out: Results) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await login(client, "admin")
        await window.ready()
        while time.monotonic() < window.until:
            out.celsius_load_ms.append(await celsius_ms(client, fid))
            await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, url: str) -> tuple[Results, dict[str, Any], list[float]]:
    annotators = args.clients - args.ingesters
    info = await setup(url, annotators, args.ingesters, args.pool)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await login(client, "admin")
        await celsius_ms(client, info["big"])
        idle = [await celsius_ms(client, info["big"]) for _ in range(30)]
    files = boards(args.ingesters * int(args.seconds) + 10, seed=2)
    out = Results()
    window = Window(annotators + 1, args.seconds)
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
        async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers) as client:
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
            out, _info, idle = asyncio.run(run(args, url))
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
        f"  {label} (load average {got['load'][0]:.1f} before, {got['load'][1]:.1f} after; "
        f"{got['elapsed']:.0f} s with set-up)"
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
