"""Outbox benchmark: how fast the edge agent records parts durably, and how fast it drains flagged
frames to a real annotation server.

1. **Writes**: parts recorded per second by ``Outbox.record`` (one transaction per part,
   fsynced: WAL + ``synchronous=FULL``; a thread checkpoints the log every 50 ms beside it, as
   the drainers do), for a result record alone and for a result plus a
   flagged frame of 64 KiB and of 1.25 MiB (a 640x512 float32 ``.npy``). The peer, run in the
   same process on the same disk, is the common spool-folder outbox: one file per entry, written,
   fsynced, renamed into place and the folder fsynced (what a hand-rolled durable queue does).
2. **MQTT**: results per second to a Mosquitto started here (QoS 1, each acknowledged by the
   broker): recorded durably in the outbox and drained (8 in flight), and the drain alone,
   against the peer that publishes straight to the broker one at a time with no outbox (what
   durability costs).
3. **Server drain**: flagged frames (160x120 float32 ``.npy``, 77 KiB each) delivered per second to
   the annotation server (``create_app`` served by uvicorn in a thread of this process, SQLite
   and a local blob folder), by the ``Drainer`` (4 in flight) and, as the peer, by a plain loop
   that POSTs one frame at a time and marks it delivered.

Run: ``python benchmarks/bench_outbox.py [--parts 300] [--results 2000] [--frames 200]
[--dir /path]`` (the
folder decides which disk is measured; default a temporary folder).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from thermoscope.edge.delivery import Backoff, Drainer, ServerSink, flagged_frame
from thermoscope.edge.messaging import PartOutcome, PartReporter, Topics, encode
from thermoscope.edge.mqtt import BrokerAddress, MqttBus, MqttSink
from thermoscope.edge.outbox import Kind, Outbox, Record, Retention, content_key
from thermoscope.server import Settings, create_app
from thermoscope.storage.identity import array_id

PASSWORD = "bench-password-1"


def part_records(part: int, frame: bytes | None) -> list[Record]:
    """A part's records: its result, and its flagged frame when given."""
    payload = {"part": part, "verdict": "NG", "findings": [{"rule": "max", "value": 71.5}]}
    records = [Record(Kind.RESULT, content_key(payload), payload, ("mqtt",), sequence="r")]
    if frame is not None:
        key = f"{part:08d}-{len(frame)}"
        records.append(
            Record(Kind.FRAME, key, {"part": part}, ("server",), Retention.KEEP, frame, "f.npy")
        )
    return records


def bench_outbox(folder: Path, parts: int, frame: bytes | None) -> tuple[float, float, float]:
    """Parts recorded per second by the outbox, and the p50 and p99 of one ``record`` (ms)."""
    times = []
    with Outbox(folder / "outbox.db", min_free_bytes=0) as box:
        done = threading.Event()

        def checkpoints() -> None:  # what the drainers do between passes
            while not done.wait(0.05):
                box.checkpoint()

        beside = threading.Thread(target=checkpoints)
        beside.start()
        start = time.perf_counter()
        for part in range(parts):
            began = time.perf_counter()
            box.record(part_records(part, frame))
            times.append((time.perf_counter() - began) * 1000)
        rate = parts / (time.perf_counter() - start)
        done.set()
        beside.join()
    p50, p99 = np.percentile(times, [50, 99])
    return rate, float(p50), float(p99)


def _durable_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(path)


def bench_spool(folder: Path, parts: int, frame: bytes | None) -> float:
    """Parts recorded per second by a spool folder (file per entry, fsync, rename, dir fsync)."""
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY)
    try:
        start = time.perf_counter()
        for part in range(parts):
            for rec in part_records(part, frame):
                body = json.dumps(dict(rec.payload)).encode()
                _durable_write(folder / f"{rec.key}.json", body)
                if rec.data is not None:
                    _durable_write(folder / f"{rec.key}.bin", rec.data)
            os.fsync(fd)
        return parts / (time.perf_counter() - start)
    finally:
        os.close(fd)


def npy(seed: int, shape: tuple[int, int]) -> tuple[bytes, str]:
    """A float32 °C frame as ``.npy`` bytes and its content id."""
    celsius = (25.0 + np.random.default_rng(seed).normal(0, 2, size=shape)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, celsius)
    return buffer.getvalue(), array_id(celsius)


def start_server(root: Path) -> tuple[uvicorn.Server, threading.Thread, int]:
    """The annotation server on a free loopback port, in a thread."""
    port = free_port()
    settings = Settings(
        data_dir=root, admin_password=PASSWORD, argon2_memory_kib=64, argon2_time_cost=1
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, port


def project_and_token(base: str) -> tuple[int, str]:
    """A new project's id and an ``ingest``-scoped API token of the administrator."""
    with httpx.Client(base_url=base + "/api/v1", timeout=30) as admin:
        login = admin.post("/auth/login", json={"username": "admin", "password": PASSWORD})
        admin.headers["X-CSRF-Token"] = login.raise_for_status().json()["csrf_token"]
        project = admin.post("/projects", json={"name": f"bench-{time.time_ns()}"})
        token = admin.post("/tokens", json={"name": "edge", "scopes": ["ingest"]})
        return int(project.raise_for_status().json()["id"]), token.raise_for_status().json()[
            "token"
        ]


def fill(box: Outbox, first: int, count: int) -> None:
    for i in range(first, first + count):
        data, cid = npy(i, (120, 160))
        box.record(
            [
                flagged_frame(
                    content_id=cid,
                    data=data,
                    filename=f"part-{i}.npy",
                    inspection={"source": "", "frame": 0, "verdict": "NG", "findings": []},
                    meta={"part": i},
                    sample=False,
                )
            ]
        )


async def drain_drainer(box: Outbox, base: str, project: int, token: str) -> float:
    sink = ServerSink(base, token, project)
    drainer = Drainer(box, sink, backoff=Backoff(initial_s=0.05, max_s=1.0), parallel=4)
    count = box.depth().pending["server"]
    start = time.perf_counter()
    while box.depth().pending:
        await drainer.drain_once()
    elapsed = time.perf_counter() - start
    await sink.close()
    return count / elapsed


async def drain_naive(box: Outbox, base: str, project: int, token: str) -> float:
    sink = ServerSink(base, token, project)
    count = box.depth().pending["server"]
    start = time.perf_counter()
    while entries := box.pending("server", 1):
        await sink.deliver(entries[0])
        box.mark_delivered("server", [entries[0].id])
    elapsed = time.perf_counter() - start
    await sink.close()
    return count / elapsed


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def broker(program: str, folder: Path) -> Iterator[int]:
    """A Mosquitto on a free loopback port (no persistence); yields its port."""
    folder.mkdir()
    port = free_port()
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    if os.geteuid() == 0:
        lines.append("user root")
    (folder / "m.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen([program, "-c", str(folder / "m.conf")], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def drain_mqtt(folder: Path, port: int, count: int) -> tuple[float, float, float]:
    """Results per second (QoS 1, each acknowledged by the broker): recorded and drained (8 in
    flight) through the outbox, drained alone (already recorded), and published straight to the
    bus one at a time (no outbox)."""
    topics = Topics("site", "line", "station")
    reporter = PartReporter(topics)
    bus = MqttBus(BrokerAddress("127.0.0.1", port))
    bus.start()
    await bus.wait_connected(10)
    inspection = {"source": "", "frame": 0, "verdict": "OK", "findings": []}
    outcomes = [PartOutcome(str(part), inspection, 3.0) for part in range(count)]
    with Outbox(folder / "outbox.db", min_free_bytes=0) as box:
        drainer = Drainer(box, MqttSink(bus, topics), batch=64, parallel=8)
        start = time.perf_counter()
        for outcome in outcomes:
            box.record(reporter.records(outcome))
        drain_start = time.perf_counter()
        while box.depth().pending:
            await drainer.drain_once()
        end = time.perf_counter()
        ours, drained = count / (end - start), count / (end - drain_start)
    start = time.perf_counter()
    for outcome in outcomes:
        await bus.publish(topics.result, encode(outcome.payload()))
    peer = count / (time.perf_counter() - start)
    await bus.close()
    return ours, drained, peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=300, help="parts recorded per write case")
    parser.add_argument("--frames", type=int, default=200, help="frames drained per drain case")
    parser.add_argument("--results", type=int, default=2000, help="results drained to MQTT")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; folder {args.dir or 'a temporary folder'}")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"\n## Durable writes ({args.parts} parts each; parts/s, higher is better)\n")
        print("| part | outbox (SQLite WAL, FULL) | record p50 / p99 ms | spool folder (fsync + "
              "rename) | ratio |")  # fmt: skip
        print("|---|---:|---:|---:|---:|")
        cases = [
            ("result only", None),
            ("result + 64 KiB frame", bytes(64 << 10)),
            ("result + 1.25 MiB frame", npy(0, (512, 640))[0]),
        ]
        for n, (label, frame) in enumerate(cases):
            ours, p50, p99 = bench_outbox(root / f"o{n}", args.parts, frame)
            peer = bench_spool(root / f"s{n}", args.parts, frame)
            print(f"| {label} | {ours:,.0f} | {p50:.2f} / {p99:.2f} | {peer:,.0f} | "
                  f"{ours / peer:.2f}x |")  # fmt: skip

        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if Path(mosquitto).is_file():
            print(f"\n## Results to Mosquitto ({args.results} results, QoS 1; results/s)\n")
            print("| recorded + drained | drain alone (8 in flight) | published directly, no "
                  "outbox | ratios |")  # fmt: skip
            print("|---:|---:|---:|---:|")
            with broker(mosquitto, root / "mqtt") as port:
                ours, drained, peer = asyncio.run(drain_mqtt(root / "m", port, args.results))
            print(f"| {ours:,.0f} | {drained:,.0f} | {peer:,.0f} | {ours / peer:.2f}x, "
                  f"{drained / peer:.2f}x |")  # fmt: skip
        else:
            print("\n(no mosquitto program: the MQTT drain is not measured)")

        server, thread, port = start_server(root / "server")
        base = f"http://127.0.0.1:{port}"
        try:
            print(f"\n## Drain to the annotation server ({args.frames} frames of 160x120 .npy; "
                  "frames/s)\n")  # fmt: skip
            rates = []
            for n, drain in enumerate((drain_drainer, drain_naive)):
                project, token = project_and_token(base)
                with Outbox(root / f"d{n}" / "outbox.db", min_free_bytes=0) as box:
                    fill(box, n * args.frames, args.frames)
                    rates.append(asyncio.run(drain(box, base, project, token)))
            print("| Drainer (4 in flight) | one at a time | ratio |")
            print("|---:|---:|---:|")
            print(f"| {rates[0]:,.1f} | {rates[1]:,.1f} | {rates[0] / rates[1]:.2f}x |")
        finally:
            server.should_exit = True
            thread.join(timeout=20)


if __name__ == "__main__":
    main()
