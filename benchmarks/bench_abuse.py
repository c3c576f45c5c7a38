"""Abuse benchmark: the annotation server under 50 annotators while one client attacks it.

Starts the server as ``bench_server.py`` does (uvicorn, embedded defaults, on loopback) with an
8 MiB upload limit (``THERMOSCOPE_MAX_UPLOAD_BYTES``; bodies up to the limit are legitimate
work), seeds a project, then runs the same 50 annotators (open a frame, think, save an edit;
409s merged) twice for the same time: once alone, once while one authenticated client of the
project (an annotator's API token, in a process of its own) loops over

- uploading a decompression bomb: a CSQ of 8 constant 8192x8192 JPEG-LS frames written by
  thermoscope's own writer (a few KB that decode to 3 GiB; refused from its headers, 413);
- streaming a 256 MiB body without a declared length (chunked) to ``/auth/login`` and as a
  multipart upload to ``/projects/{pid}/frames`` (cut off at the route's limit, 413).

It prints the annotators' save and load p50/p95 in both phases (and their ratio), what the
attacker got, and the server's resident memory (sampled every 100 ms, and its peak), and checks
the stated bounds: save and load p95 under attack at most ``--p95-factor`` times the quiet p95
(plus 20 ms for timer noise) and the server's peak memory at most ``--memory-bound-mib`` above
its size before the attack. Exit status 1 when a bound is broken.

Run: ``python benchmarks/bench_abuse.py [--clients 50] [--duration 10]`` (about 30 s in all).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np

from bench_server import Results, annotator, pct, setup, start_server
from thermoscope.core import ThermalFrame
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.io.flir_writer import emit_csq

API = "/api/v1"
MIB = 1 << 20
#: Settings of the benchmarked server beyond the embedded defaults.
SERVER_SETTINGS = {"THERMOSCOPE_MAX_UPLOAD_BYTES": str(8 * MIB)}
BODY_BYTES = 256 * MIB
PIECE = 64 * 1024


def csq_bomb(side: int = 8192, frames: int = 8) -> bytes:
    """A CSQ of ``frames`` constant ``side`` x ``side`` frames, written by our CSQ writer."""
    run = simulate_run("pcb", parts=1, defect_rate=0.0, rng=np.random.default_rng(0))
    meta = next(iter(run)).frame.metadata
    assert meta.calibration is not None
    assert meta.parameters is not None
    raw = np.full((side, side), 7000, np.uint16)
    value = float(meta.calibration.to_celsius(raw[:1, :1], meta.parameters)[0, 0])
    frame = ThermalFrame(np.full((side, side), value, np.float32), raw=raw, metadata=meta)
    return emit_csq([frame] * frames)


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Attack:
    """What the attacker sent and got."""

    answers: dict[str, list[int]] = field(default_factory=dict)
    sent_bytes: dict[str, list[int]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def note(self, kind: str, status: int, sent: int, started: float) -> None:
        self.answers.setdefault(kind, []).append(status)
        self.sent_bytes.setdefault(kind, []).append(sent)
        self.seconds.setdefault(kind, []).append(time.perf_counter() - started)


async def stream_chunked(port: int, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """Stream ``BODY_BYTES`` chunked (no Content-Length) until the server answers: the status
    and the body bytes written (those in socket buffers included)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b"--b\r\nContent-Disposition: form-data; name=file; filename=big.csq\r\n\r\n"
    piece = head + b"\0" * (PIECE - len(head))
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    status_line = asyncio.ensure_future(reader.readline())
    sent = 0
    try:
        while sent < BODY_BYTES and not status_line.done():
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 10)
            sent += len(piece)
        line = await asyncio.wait_for(status_line, 30)
    except (ConnectionError, TimeoutError):
        line = status_line.result() if status_line.done() else b""
    finally:
        status_line.cancel()
        writer.close()
    parts = line.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), sent


async def attacker(url: str, token: str, pid: int, bomb: bytes, seconds: float) -> Attack:
    """Attack for ``seconds``: a bomb upload and two oversized chunked bodies, again and again."""
    out = Attack()
    until = time.monotonic() + seconds
    port = int(url.rsplit(":", 1)[1])
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=auth) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            answer = await client.post(
                f"{API}/projects/{pid}/frames", files={"file": ("bomb.csq", bomb)}
            )
            out.note("CSQ bomb upload", answer.status_code, len(bomb), started)
            started = time.perf_counter()
            status, sent = await stream_chunked(
                port, f"{API}/auth/login", {"Content-Type": "application/json"}
            )
            out.note("256 MiB chunked to /auth/login", status, sent, started)
            started = time.perf_counter()
            status, sent = await stream_chunked(
                port,
                f"{API}/projects/{pid}/frames",
                {**auth, "Content-Type": "multipart/form-data; boundary=b"},
            )
            out.note("256 MiB chunked upload", status, sent, started)
            await asyncio.sleep(0.2)
    return out


def attacker_process(
    url: str, token: str, pid: int, bomb: bytes, seconds: float, results: Any
) -> None:
    """The attacker in a process of its own (the annotators' client loop stays unloaded)."""
    results.put(asyncio.run(attacker(url, token, pid, bomb, seconds)))


async def sample_memory(pid: int, until: float, samples: list[int]) -> None:
    while time.monotonic() < until:
        samples.append(rss_bytes(pid))
        await asyncio.sleep(0.1)


async def phase(
    url: str, server_pid: int, info: dict[str, Any], args: argparse.Namespace, attack: Attack | None
) -> tuple[Results, list[int]]:
    """The annotators for ``args.duration`` s, and the attacker (in its own process) when
    ``attack`` is given (filled with what it saw)."""
    out = Results()
    memory: list[int] = []
    until = time.monotonic() + args.duration
    tasks = [
        annotator(url, i, info["frames"], until, (args.think_min, args.think_max), out)
        for i in range(args.clients)
    ]
    tasks.append(sample_memory(server_pid, until, memory))
    results: Any = multiprocessing.Queue()
    process = None
    if attack is not None:
        process = multiprocessing.Process(
            target=attacker_process,
            args=(url, info["tokens"][0], info["pid"], args.bomb, args.duration, results),
        )
        process.start()
    await asyncio.gather(*tasks)
    if process is not None and attack is not None:
        got = await asyncio.to_thread(results.get, True, 120)
        vars(attack).update(vars(got))
        process.join()
    return out, memory


async def run(
    args: argparse.Namespace, url: str, server_pid: int
) -> tuple[Results, list[int], Results, list[int], Attack, int]:
    info = await setup(url, args.clients, 1, args.pool)
    quiet, quiet_memory = await phase(url, server_pid, info, args, None)
    before = rss_bytes(server_pid)
    attack = Attack()
    loud, loud_memory = await phase(url, server_pid, info, args, attack)
    return quiet, quiet_memory, loud, loud_memory, attack, before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent annotators")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each phase")
    parser.add_argument("--pool", type=int, default=30, help="frames the annotators share")
    parser.add_argument("--think-min", type=float, default=1.0, help="least think time, s")
    parser.add_argument("--think-max", type=float, default=3.0, help="most think time, s")
    parser.add_argument("--p95-factor", type=float, default=2.0, help="allowed p95 growth")
    parser.add_argument(
        "--memory-bound-mib", type=float, default=128.0, help="allowed server memory growth"
    )
    args = parser.parse_args()
    args.bomb = csq_bomb()
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as folder:
        process, url = start_server(Path(folder) / "data", SERVER_SETTINGS)
        try:
            quiet, quiet_mem, loud, loud_mem, attack, before = asyncio.run(
                run(args, url, process.pid)
            )
            peak = rss_bytes(process.pid, "VmHWM")
        finally:
            process.terminate()
            process.wait(30)
    print("thermoscope abuse benchmark (loopback)")
    print(
        f"  set-up: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}; uvicorn, 1 process, embedded defaults, "
        f"max_upload_bytes 8 MiB; {args.clients} annotators, think "
        f"{args.think_min}-{args.think_max} s, {args.duration:.0f} s per phase"
    )
    print(
        f"  CSQ bomb: {len(args.bomb)} bytes written by thermoscope's CSQ writer, "
        "8 frames of 8192x8192 (3 GiB decoded)"
    )
    heads = ("saves", "save p50", "save p95", "load p95", "RSS max")
    print(f"  {'phase':<16}{heads[0]:>7}" + "".join(f"{h:>10}" for h in heads[1:]))
    rows = (("alone", quiet, quiet_mem), ("under attack", loud, loud_mem))
    for name, out, memory in rows:
        print(
            f"  {name:<16}{len(out.saves):>7}{pct(out.save_ms, 50):>8.1f}ms"
            f"{pct(out.save_ms, 95):>8.1f}ms{pct(out.load_ms, 95):>8.1f}ms"
            f"{max(memory, default=0) / MIB:>7.0f}MiB"
        )
    ratio = pct(loud.save_ms, 95) / pct(quiet.save_ms, 95)
    load_ratio = pct(loud.load_ms, 95) / pct(quiet.load_ms, 95)
    print(f"  p95 under attack / alone: saves {ratio:.2f}x, loads {load_ratio:.2f}x")
    for kind, statuses in attack.answers.items():
        sent = attack.sent_bytes[kind]
        print(
            f"  attack {kind}: {len(statuses)} sent, answers {sorted(set(statuses))}, "
            f"most bytes written before the answer {max(sent) / MIB:.1f} MiB, "
            f"answered in {1000 * max(attack.seconds[kind]):.0f} ms at most"
        )
    growth = (peak - before) / MIB
    print(
        f"  server memory: {before / MIB:.0f} MiB before the attack, peak {peak / MIB:.0f} MiB "
        f"(+{growth:.0f} MiB); bound: +{args.memory_bound_mib:.0f} MiB"
    )
    errors = quiet.errors + loud.errors
    print(f"  annotator errors: {len(errors)}")
    broken = []
    for what, times in (("save", "save_ms"), ("load", "load_ms")):
        alone, attacked = pct(getattr(quiet, times), 95), pct(getattr(loud, times), 95)
        if attacked > args.p95_factor * alone + 20:
            broken.append(
                f"{what} p95 grew from {alone:.1f} to {attacked:.1f} ms "
                f"(bound {args.p95_factor}x + 20 ms)"
            )
    if growth > args.memory_bound_mib:
        broken.append(f"server memory grew {growth:.0f} MiB")
    if any(s != 413 for statuses in attack.answers.values() for s in statuses):
        broken.append("an attack was not answered 413")
    if errors:
        broken.append(f"{len(errors)} annotator errors, e.g. {errors[0]}")
    for problem in broken:
        print(f"  BOUND BROKEN: {problem}")
    if broken:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
