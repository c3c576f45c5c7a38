"""The agent under faults, against real parts (Mosquitto, the annotation server, a pymodbus PLC),
with outages compressed to seconds:

- the broker and then the server go away and come back while parts keep coming: the PLC gets
  every result at once all along, and afterwards every result is on MQTT in sequence and every
  NG frame on the server, once;
- the agent (``thermoscope edge run`` in a process of its own) is killed with SIGKILL in the
  middle of a part and started again: 0 verdicts lost, 0 NG frames lost, no frame twice;
- the outbox's disk budget is nearly spent while the server is away: OK samples are evicted,
  no NG frame is, and every NG frame reaches the server once it is back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
from thermoscope.edge.outbox import Outbox


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, int, str]]:
    live = LiveServer(tmp_path / "server", free_port())
    live.start()
    project = live.project()
    token = live.edge_token(project)
    yield live, project, token
    live.stop()


@pytest.mark.slow
def test_broker_and_server_outages_lose_nothing(
    tmp_path: Path, server: tuple[LiveServer, int, str]
) -> None:
    live, project, token = server
    port = free_port()
    store = tmp_path / "mosquitto"
    broker_cm = mosquitto_broker(port=port, data_dir=store)
    broker = broker_cm.__enter__()
    config = line_config(
        tmp_path,
        modbus_port=free_port(),
        broker=(broker.host, broker.port),
        server=(live.url, project, token),
        source=synthetic(200),
    )
    numbers = list(range(1, 201))

    async def go() -> tuple[dict[int, PlcResult], Any]:
        nonlocal broker_cm
        agent = Agent(parse_config(config))
        results: dict[int, PlcResult] = {}
        async with mqtt_log(broker.host, broker.port) as log:
            await agent.start()
            runner = asyncio.create_task(agent.loop())
            async with ModbusPlc.connect(config["plc"]["modbus"]["port"]) as plc:
                for number in numbers:
                    if number == 41:
                        await asyncio.to_thread(broker_cm.__exit__, None, None, None)
                    elif number == 81:
                        await asyncio.to_thread(live.stop)
                    elif number == 121:
                        await asyncio.sleep(2.0)  # both away a while longer
                        broker_cm = mosquitto_broker(port=port, data_dir=store)
                        await asyncio.to_thread(broker_cm.__enter__)
                    elif number == 161:
                        await asyncio.to_thread(live.start)
                    results[number] = await plc.cycle(number)
            agent.stop()
            await runner
            await agent.close()
            deadline = time.monotonic() + 20
            while len(log.results()) < len(numbers) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        return results, log

    try:
        results, log = asyncio.run(go())
    finally:
        broker_cm.__exit__(None, None, None)
    truth = expected(source_of(config), numbers)
    check_plc(results, truth)
    # the PLC never waited for the broker or the server
    assert max(r.processing_ms for r in results.values()) < 1000
    check_mqtt(log, truth)
    check_server(live, project, truth, 0.05)


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
