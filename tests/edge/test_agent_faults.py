"""The agent under faults, against real parts (Mosquitto, the annotation server, a pymodbus PLC):

- the broker (60 s) and the server (5 minutes) go away together while the PLC triggers parts
  at 3 Hz: the PLC gets every result while they are away, the sinks back off to their caps and
  recover, and afterwards every result is on MQTT in sequence and every NG frame on the server,
  once;
- the agent (``thermoscope edge run`` in a process of its own) is killed with SIGKILL in the
  middle of a part and started again: 0 verdicts lost, 0 NG frames lost, no frame twice;
- the outbox's disk budget is nearly spent while the server is away: OK samples are evicted,
  no NG frame is, and every NG frame reaches the server once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from edge_server import LiveServer
from line_plc import (
    ModbusPlc,
    PlcResult,
    check_mqtt,
    check_plc,
    check_server,
    expected,
    line_config,
    mqtt_log,
    source_of,
    synthetic,
)

from services import Broker, free_port, mosquitto_broker
from thermoscope.edge.agent import Agent
from thermoscope.edge.config import parse_config
from thermoscope.edge.delivery import SERVER_SINK
from thermoscope.edge.messaging import MQTT_SINK
from thermoscope.edge.outbox import Outbox


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, int, str]]:
    live = LiveServer(tmp_path / "server", free_port())
    live.start()
    project = live.project()
    token = live.edge_token(project)
    yield live, project, token
    live.stop()


#: The outages, at their real length: the broker away 60 s and the server 5 minutes, together
#: from the start (the broker comes back first).
BROKER_DOWN_S = 60.0
SERVER_DOWN_S = 300.0
#: Parts triggered per second by the PLC, all through the outages.
LINE_HZ = 3.0
#: Parts before the outage and after the server is back.
LEAD_S = 5.0
#: Room for the recovery after the outage (the back-off's cap, then the backlog's upload on a
#: loaded machine): a deadline, not a measurement.
DRAIN_DEADLINE_S = 240.0


@dataclass
class Line:
    """The PLC's side of the run: each part's result and when its cycle began and ended
    (``time.monotonic()``, s); ``hold`` is set while a service is stopped or started."""

    results: dict[int, PlcResult] = field(default_factory=dict)
    began: dict[int, float] = field(default_factory=dict)
    answered: dict[int, float] = field(default_factory=dict)
    running: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, plc: ModbusPlc, stop: asyncio.Event) -> None:
        """Trigger a part every ``1 / LINE_HZ`` s (later when a cycle takes longer), one at a
        time, until ``stop``; between parts, wait while the line is held."""
        number = 0
        due = time.monotonic()
        while not stop.is_set():
            if not self.running.is_set():
                self.idle.set()
                await self.running.wait()
                self.idle.clear()
                due = time.monotonic()
            number += 1
            self.began[number] = time.monotonic()
            self.results[number] = await plc.cycle(number)
            self.answered[number] = time.monotonic()
            due = max(due + 1.0 / LINE_HZ, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
        self.idle.set()

    async def between_parts(self, step: Callable[[], object]) -> float:
        """Run ``step`` (blocking: in a thread) while no part is in hand; returns the time
        (``time.monotonic()``) it was started at."""
        self.running.clear()
        await self.idle.wait()
        at = time.monotonic()
        await asyncio.to_thread(step)
        self.running.set()
        return at


class Peaks:
    """The longest run of failures each sink's drainer reached, sampled every 0.2 s."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.failures: dict[str, int] = {}

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for drainer in self.agent.drainers:
                name = drainer.sink.name
                self.failures[name] = max(self.failures.get(name, 0), drainer.failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    def capped(self, name: str) -> bool:
        """Whether the sink's back-off reached its cap (``initial * factor ** (n - 1) >= max``)."""
        drainer = next(d for d in self.agent.drainers if d.sink.name == name)
        backoff = drainer.backoff
        peak = self.failures.get(name, 0)
        return peak > 0 and backoff.initial_s * backoff.factor ** (peak - 1) >= backoff.max_s


@pytest.mark.slow
def test_a_60_s_broker_outage_and_a_5_minute_server_outage_lose_nothing(
    tmp_path: Path, server: tuple[LiveServer, int, str]
) -> None:
    live, project, token = server
    port = free_port()
    store = tmp_path / "mosquitto"
    broker_cm = mosquitto_broker(port=port, data_dir=store)
    broker = broker_cm.__enter__()
    parts_at_most = int((2 * LEAD_S + SERVER_DOWN_S) * LINE_HZ) + 100
    config = line_config(
        tmp_path,
        modbus_port=free_port(),
        broker=(broker.host, broker.port),
        server=(live.url, project, token),
        source=synthetic(parts_at_most),  # every part a frame of its own
    )
    del config["server"]["delivery"]  # the default back-off: the policy under test
    started = time.monotonic()
    window: dict[str, float] = {}

    async def go() -> tuple[Line, Peaks, Any, float]:
        nonlocal broker_cm
        agent = Agent(parse_config(config))
        line = Line()
        peaks = Peaks(agent)
        stop_line, stop_watch = asyncio.Event(), asyncio.Event()
        async with mqtt_log(broker.host, broker.port) as log:
            await agent.start()
            runner = asyncio.create_task(agent.loop())
            watcher = asyncio.create_task(peaks.watch(stop_watch))
            async with ModbusPlc.connect(config["plc"]["modbus"]["port"], timeout_s=60) as plc:
                line.running.set()
                parts = asyncio.create_task(line.run(plc, stop_line))
                await asyncio.sleep(LEAD_S)

                def both_away() -> None:
                    broker_cm.__exit__(None, None, None)
                    live.stop()

                window["away"] = await line.between_parts(both_away)
                await asyncio.sleep(window["away"] + BROKER_DOWN_S - time.monotonic())
                broker_cm = mosquitto_broker(port=port, data_dir=store)
                window["broker_back"] = await line.between_parts(broker_cm.__enter__)
                await asyncio.sleep(window["away"] + SERVER_DOWN_S - time.monotonic())
                window["server_back"] = await line.between_parts(live.start)
                await asyncio.sleep(LEAD_S)
                stop_line.set()
                await parts
            # the backlog drains while the agent runs on (not by its drain on exit)
            deadline = time.monotonic() + DRAIN_DEADLINE_S
            assert agent.outbox is not None
            while agent.outbox.depth().pending and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            drained = time.monotonic()
            while len(log.results()) < len(line.results) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            stop_watch.set()
            await watcher
            agent.stop()
            await runner
            await agent.close()
        return line, peaks, log, drained

    try:
        line, peaks, log, drained = asyncio.run(go())
    finally:
        broker_cm.__exit__(None, None, None)
    numbers = sorted(line.results)
    assert numbers == list(range(1, len(numbers) + 1))
    # the PLC got every part's result while the broker and the server were away: parts kept
    # coming, and each part triggered during the outage was answered before the service it
    # missed came back (a service restarts between parts: an agent waiting for a sink would
    # have held the line into the PLC's time-out)
    both_away = [n for n in numbers if window["away"] <= line.began[n] < window["broker_back"]]
    server_away = [
        n for n in numbers if window["broker_back"] <= line.began[n] < window["server_back"]
    ]
    assert len(both_away) > 1
    assert len(server_away) > 1
    assert all(line.answered[n] < window["broker_back"] for n in both_away)
    assert all(line.answered[n] < window["server_back"] for n in server_away)
    # the sinks backed off to their caps while away, and came back
    assert peaks.capped(SERVER_SINK), peaks.failures
    assert peaks.capped(MQTT_SINK), peaks.failures
    truth = expected(source_of(config), numbers)
    ng = sum(e.verdict == "NG" for e in truth.values())
    assert ng >= 10  # the outage's buffer held NG frames, not just results
    check_plc(line.results, truth)
    check_mqtt(log, truth)
    check_server(live, project, truth, 0.05)
    print(
        f"\n{len(numbers)} parts ({len(both_away)} with both away, {len(server_away)} with the "
        f"server away), {ng} NG; backlog drained {drained - window['server_back']:.0f} s after "
        f"the server was back; peak failures {peaks.failures}; "
        f"test {time.monotonic() - started:.0f} s"
    )


def start_agent(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    command = "from thermoscope.cli.main import app; app()"
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", command, "edge", "run", "--config", str(config_path)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_loses_nothing(
    tmp_path: Path, mqtt_broker: Broker, server: tuple[LiveServer, int, str]
) -> None:
    live, project, token = server
    modbus = free_port()
    config = line_config(
        tmp_path,
        modbus_port=modbus,
        broker=(mqtt_broker.host, mqtt_broker.port),
        server=(live.url, project, token),
        source=synthetic(120),
    )
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    numbers = list(range(1, 121))
    log_file = tmp_path / "agent.log"

    async def go() -> tuple[dict[int, PlcResult], Any, bool]:
        results: dict[int, PlcResult] = {}
        async with mqtt_log(mqtt_broker.host, mqtt_broker.port) as log:
            agent = start_agent(path, log_file)
            try:
                async with ModbusPlc.connect(modbus, timeout_s=30) as plc:
                    for number in numbers[:59]:
                        results[number] = await plc.cycle(number)
                    await plc.trigger(60)  # taken; the agent dies while inspecting it
                    agent.send_signal(signal.SIGKILL)
                    agent.wait(10)
                killed_mid_part = 60 not in results
                agent = start_agent(path, log_file)
                async with ModbusPlc.connect(modbus, timeout_s=30) as plc:
                    for number in numbers[59:]:  # part 60 had no result: triggered again
                        results[number] = await plc.cycle(number)
                agent.send_signal(signal.SIGTERM)
                assert agent.wait(60) == 0, log_file.read_text()
            finally:
                if agent.poll() is None:
                    agent.kill()
                    agent.wait()
            deadline = time.monotonic() + 20
            while len(log.results()) < len(numbers) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        return results, log, killed_mid_part

    results, log, killed_mid_part = asyncio.run(go())
    assert killed_mid_part
    truth = expected(source_of(config), numbers)
    check_plc(results, truth)
    check_mqtt_parts(log, truth)
    check_server(live, project, truth, 0.05)
    with Outbox(tmp_path / "outbox.db") as box:
        assert box.depth().pending == {}


def check_mqtt_parts(log: Any, truth: dict[int, Any]) -> None:
    """Every part's result arrived (a part re-triggered after the kill may be there twice; each
    copy has the same verdict), numbered without gaps."""
    results = log.channel("result")
    seqs = sorted({r["seq"] for r in results})
    assert seqs == list(range(1, len(seqs) + 1))
    for message in results:
        assert message["verdict"] == truth[int(message["part"])].verdict
    assert {int(r["part"]) for r in results} == set(truth)


@pytest.mark.slow
def test_a_nearly_full_disk_evicts_ok_samples_never_ng_frames(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "server", free_port())
    live.start()
    project = live.project()
    token = live.edge_token(project)
    live.stop()  # away while the parts are made
    config = line_config(
        tmp_path,
        modbus_port=free_port(),
        broker=None,
        server=(live.url, project, token),
        source=synthetic(60),
    )
    frame_bytes = len(source_of(config).capture(0).data)
    config["outbox"].update({"ok_sample_share": 1.0, "max_bytes": 12 * frame_bytes})
    numbers = list(range(1, 61))

    async def go() -> dict[int, PlcResult]:
        agent = Agent(parse_config(config))
        results = {}
        await agent.start()
        runner = asyncio.create_task(agent.loop())
        async with ModbusPlc.connect(config["plc"]["modbus"]["port"]) as plc:
            for number in numbers:
                results[number] = await plc.cycle(number)
        assert agent.outbox is not None
        depth = agent.outbox.depth()
        assert depth.evicted_samples > 0
        assert depth.refused_frames == 0
        assert not depth.disk_full
        assert depth.file_bytes <= 12 * frame_bytes
        await asyncio.to_thread(live.start)
        agent.stop()
        await runner
        await agent.close()
        return results

    try:
        results = asyncio.run(go())
        truth = expected(source_of(config), numbers)
        check_plc(results, truth)
        frames = live.frames(project)
        hashes = [f["content_hash"] for f in frames]
        assert len(hashes) == len(set(hashes))
        ng = {e.content_id for e in truth.values() if e.verdict == "NG"}
        assert len(ng) == 6
        assert ng <= set(hashes)  # every NG frame, whatever the OK samples did
        assert len(hashes) <= 12
    finally:
        live.stop()
