"""Load benchmark of the annotation server on the embedded defaults.

Starts ``uvicorn`` with ``thermoscope.server.app:app_from_env`` on a temporary data folder
(SQLite in WAL mode with ``synchronous=FULL``, fsynced local blobs, one in-process job worker:
the settings a user gets) and runs concurrent clients against it for a fixed time:

- annotators (browser sessions with CSRF tokens) open a random frame of a shared pool, think,
  and save an edit over the revision they loaded; on 409 they merge onto the current item and
  save again (conflicts are part of the load);
- ingesters (edge agents with API tokens) upload new boards (FLIR SEQ) with think time.

Then it checks that no acknowledged write was lost (every 200 answer to a save is in the
revision history with the client's edit, the final item of each frame is its last acknowledged
save, every acknowledged frame exists) and times how long a 640x512 frame's °C takes to reach a
client (GET ``/celsius``, gzip as a browser asks, decoded to a float32 array), idle and under
load.

Run: ``python benchmarks/bench_server.py [--clients 50] [--ingesters 10] [--duration 60]``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    data_dir: Path, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn on a free port with the embedded defaults (``settings``: extra environment)."""
    port = free_port()
    env = {
        **os.environ,
        **(settings or {}),
        "THERMOSCOPE_DATA_DIR": str(data_dir),
        "THERMOSCOPE_ADMIN_PASSWORD": PASSWORD,
        # cheap password hashes only so that 50 log-ins do not dominate the set-up time;
        # nothing measured logs in
        "THERMOSCOPE_ARGON2_MEMORY_KIB": "1024",
        "THERMOSCOPE_ARGON2_TIME_COST": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "thermoscope.server.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}{API}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


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


async def annotator(
    url: str, index: int, frames: list[str], until: float, think: tuple[float, float], out: Results
) -> None:
    who = f"ann{index}"
    rng = random.Random(index)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await login(client, who)
        count = 0
        while time.monotonic() < until:
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
    until: float,
    think: tuple[float, float],
    out: Results,
) -> None:
    rng = random.Random(token)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        while time.monotonic() < until and files:
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


async def watcher(url: str, fid: str, until: float, out: Results) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await login(client, "admin")
        while time.monotonic() < until:
            out.celsius_load_ms.append(await celsius_ms(client, fid))
            await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, url: str) -> tuple[Results, dict[str, Any], list[float]]:
    annotators = args.clients - args.ingesters
    info = await setup(url, annotators, args.ingesters, args.pool)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await login(client, "admin")
        await celsius_ms(client, info["big"])
        idle = [await celsius_ms(client, info["big"]) for _ in range(30)]
    files = boards(args.ingesters * int(args.duration) + 10, seed=2)
    out = Results()
    until = time.monotonic() + args.duration
    tasks = [
        annotator(url, i, info["frames"], until, (args.think_min, args.think_max), out)
        for i in range(annotators)
    ]
    tasks += [
        ingester(url, token, info["pid"], files, until, (args.think_min, args.think_max), out)
        for token in info["tokens"]
    ]
    tasks.append(watcher(url, info["big"], until, out))
    await asyncio.gather(*tasks)
    return out, info, idle


def check_lost_writes(data_dir: Path, out: Results, info: dict[str, Any]) -> int:
    """Acknowledged saves or frames missing from the database."""
    import sqlite3

    db = sqlite3.connect(data_dir / "thermoscope.db")
    lost = 0
    history = {
        (fid, rev): item
        for fid, rev, item in db.execute(
            "SELECT frame_id, revision, item FROM annotation_revisions"
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
            "SELECT revision, item FROM annotations WHERE frame_id = ?", (fid,)
        ).fetchone()
        if row is None or row[0] != revision or marker not in row[1]:
            lost += 1
    frames = {row[0] for row in db.execute("SELECT id FROM frames")}
    lost += len(out.ingested - frames)
    db.close()
    return lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in all")
    parser.add_argument("--ingesters", type=int, default=10, help="of which edge ingesters")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--pool", type=int, default=100, help="frames the annotators share")
    parser.add_argument("--think-min", type=float, default=1.0, help="least think time, s")
    parser.add_argument("--think-max", type=float, default=3.0, help="most think time, s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-server-") as folder:
        data_dir = Path(folder) / "data"
        process, url = start_server(data_dir)
        try:
            load_before = os.getloadavg()
            started = time.monotonic()
            out, info, idle = asyncio.run(run(args, url))
            elapsed = time.monotonic() - started
            load_after = os.getloadavg()
        finally:
            process.terminate()
            process.wait(30)
        lost = check_lost_writes(data_dir, out, info)
    saves = len(out.saves)
    print("thermoscope server load benchmark")
    print(
        f"  set-up: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; server and clients on this machine; load "
        f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        "  server: uvicorn, 1 process, embedded defaults (SQLite WAL synchronous=FULL, "
        "fsynced local blobs, gzip level 1)"
    )
    print(
        f"  load: {args.clients} concurrent clients for {args.duration:.0f} s: "
        f"{args.clients - args.ingesters} annotators (session + CSRF) on {args.pool} shared "
        f"frames, {args.ingesters} ingesters (API tokens, 160x120 FLIR SEQ boards, recipe "
        f"pre-annotation); think time {args.think_min}-{args.think_max} s "
        f"(total run {elapsed:.0f} s with set-up)"
    )
    print(
        f"  annotation saves: {saves} acknowledged ({saves / args.duration:.1f}/s), "
        f"{out.conflicts} answered 409 and merged, p50 {pct(out.save_ms, 50):.1f} ms, "
        f"p95 {pct(out.save_ms, 95):.1f} ms, max {max(out.save_ms, default=0):.1f} ms"
    )
    print(
        f"  annotation loads: {len(out.load_ms)}, p50 {pct(out.load_ms, 50):.1f} ms, "
        f"p95 {pct(out.load_ms, 95):.1f} ms"
    )
    print(
        f"  ingests: {len(out.ingested)} frames ({len(out.ingested) / args.duration:.1f}/s), "
        f"p50 {pct(out.ingest_ms, 50):.1f} ms, p95 {pct(out.ingest_ms, 95):.1f} ms"
    )
    print(
        f"  640x512 frame °C to the client (gzip, decoded to float32): idle p50 "
        f"{pct(idle, 50):.1f} ms / p95 {pct(idle, 95):.1f} ms; under load p50 "
        f"{pct(out.celsius_load_ms, 50):.1f} ms / p95 {pct(out.celsius_load_ms, 95):.1f} ms"
    )
    print(f"  errors: {len(out.errors)}; lost writes: {lost}")
    for error in out.errors[:5]:
        print(f"    {error}")
    if lost or out.errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
