"""Edge agent benchmark: camera frame (file bytes) to PLC result, on one core, at 60 Hz.

Setup (printed): 640x512 FLIR FFF files of the synthetic PCB line (scale 4, 640x480, with 32 rows
of conveyor added), 10 % defective, replayed from memory as a camera's files; a 10-region,
11-rule recipe (examples/pcb.yaml scaled by 4, two board regions added); the default model, a
golden-statistics release (``thermoscope.models.golden``, fitted here on the OK parts among 40
more, 128x160 input, ONNX Runtime with 1 thread). The agent (``thermoscope.edge.agent.Agent``) is
PLC-triggered through the in-memory PLC link (the handshake of every PLC link, without a
network), records every part durably in its outbox (SQLite, fsynced; NG frames kept for an
annotation server that is away) before the PLC gets the result, and journals results.

Measured, side by side in one process pinned to one core:

1. **agent**: from the PLC raising the trigger to the PLC seeing ``result_valid`` (acquire,
   decode, recipe + model, record, publish), p50 / p99 / max, and the processing time the agent
   reports to the PLC; triggers at 60 Hz. Run twice: the outbox on the temporary folder's disk
   (one fsync per part) and on ``/dev/shm`` (tmpfs: the fsync costs nothing), which tells the
   disk's share from the CPU's.
2. **pipeline alone** (the peer): the same files through ``decode_bytes`` + the same
   ``Pipeline`` in a plain loop, no agent; the ratio is the agent's overhead.
3. **outbox drain**: result entries per second drained by a ``Drainer`` to a local Mosquitto
   (QoS 1) if one answers on 127.0.0.1:1883, else to a JSON-lines journal.
   (``benchmarks/bench_outbox.py`` measures the outbox and its server drain in depth.)

Run: ``python benchmarks/bench_edge.py [--parts 600] [--core 0] [--hz 60]``. Target: p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from thermoscope.core import ThermalFrame
from thermoscope.datasets.synthetic import ProductLine
from thermoscope.edge.agent import Agent
from thermoscope.edge.config import parse_config
from thermoscope.edge.delivery import Drainer
from thermoscope.edge.messaging import PartOutcome, PartReporter, Topics
from thermoscope.edge.mqtt import BrokerAddress, MqttBus, MqttSink
from thermoscope.edge.outbox import Outbox
from thermoscope.edge.parts import JournalSink, PartDone
from thermoscope.edge.plc import MemoryPlcLink
from thermoscope.edge.sources import ReplaySource, encode_frames
from thermoscope.models.contract import InputContract
from thermoscope.models.golden import fit_golden
from thermoscope.models.runtime import load_model
from thermoscope.pipeline import Pipeline, decode_bytes
from thermoscope.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def padded(frame: ThermalFrame, rows: int) -> ThermalFrame:
    """``rows`` more rows below, repeating the last (counts and °C)."""
    celsius = np.pad(frame.celsius, ((0, rows), (0, 0)), mode="edge")
    raw = None if frame.raw is None else np.pad(frame.raw, ((0, rows), (0, 0)), mode="edge")
    return ThermalFrame(celsius, raw=raw, metadata=frame.metadata)


def recipe_640x512(folder: Path) -> Path:
    """examples/pcb.yaml scaled by 4 onto 640x512, two board regions added: 10 regions."""
    recipe = yaml.safe_load((ROOT / "examples" / "pcb.yaml").read_text(encoding="utf-8"))
    recipe["frame"] = {"width": 640, "height": 512}
    for region in recipe["regions"]:
        region["box"] = {k: 4 * v for k, v in region["box"].items()}
    for rule in recipe["rules"]:
        if rule["type"] == "hot_spot_area":
            rule["limits"] = {k: 16 * v for k, v in rule["limits"].items()}
    recipe["regions"] += [
        {"name": "board_top", "box": {"x": 60, "y": 20, "width": 480, "height": 40}},
        {"name": "board_bottom", "box": {"x": 60, "y": 400, "width": 480, "height": 40}},
    ]
    recipe["rules"].append(
        {"name": "board max", "type": "max", "region": "board_top", "limits": {"max": 90}}
    )
    recipe["rules"].append(
        {"name": "board low", "type": "max", "region": "board_bottom", "limits": {"max": 90}}
    )
    path = folder / "pcb-640x512.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def make_files(count: int) -> tuple[list[tuple[str, bytes]], list[ThermalFrame]]:
    """``count`` parts as 640x512 FFF files (10 % defective) and 40 OK frames to fit on."""
    line = ProductLine("pcb", rng=np.random.default_rng(5), scale=4)
    files, ok = [], []
    for part in line.run(count + 40, defect_rate=0.1):
        frame = padded(part.frame, 32)
        if part.index < count:
            files.append((f"{part.serial}.fff", encode_frames([frame], ".fff")))
        elif not part.defects:
            ok.append(frame)
    return files, ok


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.50), pick(0.99), ordered[-1]


async def agent_run(
    folder: Path, files: list[tuple[str, bytes]], recipe: Path, release: Path, parts: int, hz: float
) -> tuple[list[float], list[float], dict[str, int]]:
    config = parse_config(
        {
            "identity": {"site": "bench", "line": "l", "station": "s"},
            "source": {"kind": "synthetic"},  # replaced by the replay source below
            "trigger": {"kind": "plc"},
            "plc": {"kind": "modbus"},  # replaced by the in-memory link below
            "recipe": str(recipe),
            "model": {"release": str(release)},
            "server": {"url": "http://127.0.0.1:9", "project_id": 1, "token": "tsk_bench-token"},
            "outbox": {
                "path": str(folder / "outbox.db"),
                "min_free_bytes": 0,
                "ok_sample_share": 0.02,
                "drain_on_exit_s": 0,
            },
            "status": {"enabled": False},
            "drift": {"enabled": True},
        }
    )
    link = MemoryPlcLink(depth=8)
    verdicts: dict[str, int] = {}

    def count(done: PartDone) -> None:
        key = done.inspection.verdict.value
        verdicts[key] = verdicts.get(key, 0) + 1

    agent = Agent(config, source=ReplaySource(files), plc=link, on_part=count)
    await agent.start()
    runner = asyncio.create_task(agent.loop())
    period = 1.0 / hz
    latencies: list[float] = []
    reported: list[float] = []
    start = time.perf_counter()
    for number in range(1, parts + 1):
        due = start + number * period
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await link.plc_wait(lambda o: o.trigger_ready and not o.result_valid)
        t0 = time.perf_counter()
        link.plc_write(trigger_id=number, trigger=True)
        await link.plc_wait(lambda o, n=number: o.accepted_trigger_id == n)  # type: ignore[misc]
        link.plc_write(trigger=False)
        out = await link.plc_wait(lambda o, n=number: o.result_valid and o.result_id == n)  # type: ignore[misc]
        latencies.append((time.perf_counter() - t0) * 1000)
        reported.append(out.processing_time_ms)
        link.plc_write(result_ack=True)
        await link.plc_wait(lambda o: not o.result_valid)
        link.plc_write(result_ack=False)
    agent.stop()
    await runner
    await agent.close()
    return latencies, reported, verdicts


def bare_run(
    files: list[tuple[str, bytes]], recipe: Path, release: Path, parts: int
) -> list[float]:
    pipeline = Pipeline(load_recipe(recipe), load_model(release))
    times = []
    for index in range(parts):
        name, data = files[index % len(files)]
        t0 = time.perf_counter()
        with decode_bytes(data, name, keep=pipeline.frames_needed) as part:
            pipeline.inspect_part(part, source=name)
        times.append((time.perf_counter() - t0) * 1000)
    return times


async def drain_rate(folder: Path, entries: int) -> tuple[str, float]:
    """Result entries per second drained to Mosquitto on 127.0.0.1:1883, else to a journal."""
    topics = Topics("bench", "l", "s")
    reporter = PartReporter(topics)
    with Outbox(folder / "drain.db", min_free_bytes=0) as box:
        for part in range(entries):
            outcome = PartOutcome(str(part), {"verdict": "OK", "findings": []}, 5.0)
            box.record(reporter.records(outcome))
        sink: Any
        bus = None
        with socket.socket() as probe:
            probe.settimeout(0.2)
            broker = probe.connect_ex(("127.0.0.1", 1883)) == 0
        if broker:
            bus = MqttBus(BrokerAddress("127.0.0.1", 1883, client_id="bench-edge"))
            bus.start()
            await bus.wait_connected(5)
            sink, name = MqttSink(bus, topics), "Mosquitto 127.0.0.1:1883, QoS 1"
        else:
            journal = JournalSink(folder / "journal.jsonl")
            sink, name = journal, "JSON-lines journal (no broker on 1883)"
            sink.name = "mqtt"  # the entries wait for the mqtt sink
        drainer = Drainer(box, sink, batch=64, parallel=8)
        t0 = time.perf_counter()
        while box.depth().pending:
            await drainer.drain_once()
        rate = entries / (time.perf_counter() - t0)
        if bus is not None:
            await bus.close()
    return name, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=600, help="parts triggered (default 600)")
    parser.add_argument("--core", type=int, default=0, help="the one CPU core to run on")
    parser.add_argument("--hz", type=float, default=60.0, help="trigger rate (default 60)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        folder = Path(tmp)
        files, ok = make_files(60)
        recipe = recipe_640x512(folder)
        contract = InputContract(window_c=(15.0, 95.0))
        stats = fit_golden(ok, contract)
        release = stats.write_release(folder / "golden", name="pcb-golden", version=1)
        print("setup")
        print(
            f"  cpu            : {platform.processor() or platform.machine()}, pinned to core "
            f"{args.core} (sched_setaffinity); python {platform.python_version()}"
        )
        print(
            f"  frames         : {len(files)} distinct 640x512 FLIR FFF files, "
            f"{len(files[0][1]) // 1024} KiB each, replayed from memory, decode included"
        )
        print(f"  recipe         : 10 regions, {len(load_recipe(recipe).rules)} rules")
        print(
            f"  model          : golden statistics release (ONNX Runtime, 1 thread), "
            f"input {contract.height}x{contract.width}, fitted on {len(ok)} OK frames"
        )
        print(
            f"  agent          : PLC trigger (in-memory handshake, depth 8) at {args.hz:g} Hz, "
            f"{args.parts} parts; outbox fsynced per part in {tmp}; drift watch on"
        )
        print(
            f"  load average   : {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
            f"on {os.cpu_count()} cores (other work on the machine slows every row alike)"
        )
        latencies, reported, verdicts = asyncio.run(
            agent_run(folder, files, recipe, release, args.parts, args.hz)
        )
        shm: list[float] = []
        if Path("/dev/shm").is_dir():
            with tempfile.TemporaryDirectory(prefix="bench-edge-", dir="/dev/shm") as fast:
                shm, _, _ = asyncio.run(
                    agent_run(Path(fast), files, recipe, release, args.parts, args.hz)
                )
        bare = bare_run(files, recipe, release, args.parts)
        drain_name, rate = asyncio.run(drain_rate(folder, 2000))
    a50, a99, amax = percentiles(latencies)
    r50, r99, rmax = percentiles(reported)
    b50, b99, bmax = percentiles(bare)
    print(f"  verdicts       : {verdicts}")
    print()
    print(f"{'path':<44} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    print(
        f"{'agent: trigger -> PLC result_valid':<44} {a50:8.2f} {a99:8.2f} {amax:8.2f} "
        f"{statistics.fmean(latencies):8.2f}"
    )
    print(
        f"{'agent: processing time reported to the PLC':<44} {r50:8.2f} {r99:8.2f} "
        f"{rmax:8.2f} {statistics.fmean(reported):8.2f}"
    )
    if shm:
        s50, s99, smax = percentiles(shm)
        print(
            f"{'agent, outbox on tmpfs (no fsync cost)':<44} {s50:8.2f} {s99:8.2f} "
            f"{smax:8.2f} {statistics.fmean(shm):8.2f}"
        )
    print(
        f"{'pipeline alone: decode + recipe + model':<44} {b50:8.2f} {b99:8.2f} {bmax:8.2f} "
        f"{statistics.fmean(bare):8.2f}"
    )
    print(
        f"agent / pipeline alone: p50 x{a50 / b50:.2f}, p99 x{a99 / b99:.2f}; "
        f"agent overhead p50 {a50 - b50:+.2f} ms"
    )
    print(f"target p99 < 20 ms: {'met' if a99 < 20 else 'NOT met'}")
    print(f"outbox drain: {rate:,.0f} result entries/s to {drain_name}")


if __name__ == "__main__":
    main()
