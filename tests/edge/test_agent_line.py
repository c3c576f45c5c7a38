"""The agent on a line, against real parts started here: Mosquitto, a real pymodbus client
playing the PLC against the agent's Modbus TCP server, and the real annotation server (uvicorn in
a thread, an ingest-scoped token).

- 1,000 synthetic parts: the PLC gets each part's verdict (the one ``Pipeline`` gives the same
  file when called directly, which at normal difficulty is also the line's ground truth), the
  handshake followed part by part; every result arrives on MQTT in sequence; the server holds
  every NG frame and the sampled OK frames, each once. Then the PLC stops acknowledging: the
  buffer fills, the next results overrun and the PLC is told, and the overrun is published.
- 640x512 frames (fewer parts): the same checks.
- The PLC's own OPC UA server (asyncua) triggering 40 parts through the OPC UA client link, and
  a line controller running jobs on the agent's OPC 40100 Machine Vision server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
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

from services import Broker, free_port
from thermoscope.core import ThermalFrame
from thermoscope.edge.agent import Agent, PartDone
from thermoscope.edge.config import parse_config
from thermoscope.edge.sources import Capture, SyntheticSource, encode_frames
from thermoscope.recipes import parse_recipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, int, str]]:
    live = LiveServer(tmp_path / "server", free_port())
    live.start()
    project = live.project()
    token = live.edge_token(project)
    yield live, project, token
    live.stop()


async def until_published(log: Any, parts: int, timeout_s: float = 20.0) -> None:
    """Wait until the subscriber has a result for ``parts`` parts (QoS 1 deliveries in flight
    when the agent closed still reach it)."""
    deadline = time.monotonic() + timeout_s
    while len(log.results()) < parts and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def settled_overrun(plc: ModbusPlc, last: int) -> dict[str, Any]:
    """The PLC's bits and registers once the last triggered part has been judged: the overrun
    flag can rise on an earlier part while the last one is still being processed."""
    while True:
        bits = await plc.until(lambda b: b["overrun"] and not b["busy"])
        registers = await plc.registers()
        if registers["last_overrun_result_id"] == last:
            return {**bits, **registers}
        await asyncio.sleep(0.001)


async def run_line(
    config: dict[str, Any], broker: Broker, numbers: list[int], *, stop_acking: int = 0
) -> tuple[dict[int, PlcResult], Any, list[PartDone], Any]:
    """The agent in process, the PLC playing ``numbers`` one by one, then ``stop_acking``
    more parts triggered without acknowledging any result."""
    settings = parse_config(config)
    done: list[PartDone] = []
    agent = Agent(settings, on_part=done.append)
    results: dict[int, PlcResult] = {}
    async with mqtt_log(broker.host, broker.port) as log:
        await agent.start()
        runner = asyncio.create_task(agent.loop())
        port = config["plc"]["modbus"]["port"]
        async with ModbusPlc.connect(port) as plc:
            for number in numbers:
                results[number] = await plc.cycle(number)
            overrun: dict[str, Any] = {}
            if stop_acking:
                extra = range(numbers[-1] + 1, numbers[-1] + 1 + stop_acking)
                for number in extra:
                    await plc.trigger(number)
                overrun = await asyncio.wait_for(settled_overrun(plc, extra[-1]), 30)
                for _ in range(8):  # the buffered ones, in order
                    result = await plc.take_result()
                    results[result.result_id] = result
        agent.stop()
        await runner
        await agent.close()
        await until_published(log, len(numbers) + stop_acking)
    return results, log, done, overrun


@pytest.mark.slow
def test_a_thousand_parts_through_plc_mqtt_and_server(
    tmp_path: Path, mqtt_broker: Broker, server: tuple[LiveServer, int, str]
) -> None:
    live, project, token = server
    config = line_config(
        tmp_path,
        modbus_port=free_port(),
        broker=(mqtt_broker.host, mqtt_broker.port),
        server=(live.url, project, token),
        source=synthetic(1000),
    )
    numbers = list(range(1, 1001))
    results, log, done, overrun = asyncio.run(
        run_line(config, mqtt_broker, numbers, stop_acking=10)
    )
    truth = expected(source_of(config), numbers)
    assert sum(e.verdict == "NG" for e in truth.values()) == 100
    # normal difficulty: the recipe's verdict is the line's ground truth
    assert all((e.verdict == "NG") == e.defective for e in truth.values())
    check_plc({n: results[n] for n in numbers}, truth)
    # the processing time reaches the PLC (its size is the benchmark's business, not a test's)
    assert all(0 <= r.processing_ms <= 0xFFFF for r in results.values())
    assert any(r.processing_ms > 0 for r in results.values())
    # the PLC stopped acknowledging: 8 results buffered, the next 2 overran
    assert overrun["overrun"]
    assert overrun["overrun_count"] == 2
    assert overrun["last_overrun_result_id"] == 1010
    assert sorted(results)[-8:] == list(range(1001, 1009))
    events = log.channel("event")
    overruns = [e for e in events if e["type"] == "plc" and e["change"] == "overrun"]
    assert sorted(int(e["part"]) for e in overruns) == [1009, 1010]
    everything = {**truth, **expected(source_of(config), range(1001, 1011))}
    check_mqtt(log, everything)
    assert [d.trigger.number for d in done] == list(range(1, 1011))
    check_server(live, project, everything, 0.05)


def padded(frame: ThermalFrame, rows: int) -> ThermalFrame:
    """The frame with ``rows`` more rows below, repeating its last row (counts and °C)."""
    celsius = np.pad(frame.celsius, ((0, rows), (0, 0)), mode="edge")
    raw = None if frame.raw is None else np.pad(frame.raw, ((0, rows), (0, 0)), mode="edge")
    return ThermalFrame(celsius, raw=raw, metadata=frame.metadata)


class TallSource(SyntheticSource):
    """The synthetic line at scale 4 (640x480) with 32 rows of conveyor added: 640x512."""

    def capture(self, index: int) -> Capture:
        part = self.part(index)
        frame = padded(part.frame, 32)
        data = encode_frames([frame], self.config.format)
        truth = {"index": index, "serial": part.serial, "defects": [d.kind for d in part.defects]}
        name = f"{part.serial}{self.config.format}"
        return Capture(data, name, part.serial, 0, truth)


def tall_recipe(folder: Path) -> Path:
    """examples/pcb.yaml scaled by 4 onto a 640x512 frame (hot-spot areas by 16)."""
    recipe = yaml.safe_load((ROOT / "examples" / "pcb.yaml").read_text(encoding="utf-8"))
    recipe["frame"] = {"width": 640, "height": 512}
    for region in recipe["regions"]:
        region["box"] = {k: 4 * v for k, v in region["box"].items()}
    for rule in recipe["rules"]:
        if rule["type"] == "hot_spot_area":
            rule["limits"] = {k: 16 * v for k, v in rule["limits"].items()}
    parse_recipe(recipe)
    path = folder / "pcb-640x512.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.mark.slow
def test_640x512_frames_through_plc_mqtt_and_server(
    tmp_path: Path, mqtt_broker: Broker, server: tuple[LiveServer, int, str]
) -> None:
    live, project, token = server
    recipe = tall_recipe(tmp_path)
    config = line_config(
        tmp_path,
        modbus_port=free_port(),
        broker=(mqtt_broker.host, mqtt_broker.port),
        server=(live.url, project, token),
        source=synthetic(60, scale=4, defect_rate=0.2),
        recipe=str(recipe),
    )
    settings = parse_config(config)
    tall = TallSource(settings.source, free_run=False)  # type: ignore[arg-type]
    numbers = list(range(1, 61))

    async def go() -> tuple[dict[int, PlcResult], Any]:
        agent = Agent(settings, source=tall)
        results = {}
        async with mqtt_log(mqtt_broker.host, mqtt_broker.port) as log:
            await agent.start()
            runner = asyncio.create_task(agent.loop())
            async with ModbusPlc.connect(config["plc"]["modbus"]["port"]) as plc:
                for number in numbers:
                    results[number] = await plc.cycle(number)
            agent.stop()
            await runner
            await agent.close()
            await until_published(log, len(numbers))
        return results, log

    results, log = asyncio.run(go())
    truth = expected(tall, numbers, recipe=recipe)
    assert sum(e.verdict == "NG" for e in truth.values()) == 12
    check_plc(results, truth)
    check_mqtt(log, truth)
    frames = check_server(live, project, truth, 0.05)
    assert all((f["width"], f["height"]) == (640, 512) for f in frames)


@pytest.mark.slow
def test_the_plcs_opc_ua_server_triggers_parts_and_gets_their_verdicts(tmp_path: Path) -> None:
    """The agent as an OPC UA client of the PLC (an asyncua server holding the PLC's tags):
    40 parts, each verdict the pipeline's, the recipe checksum shown to the PLC."""
    from test_plc_opcua import plc_server

    numbers = list(range(101, 141))
    config = line_config(tmp_path, modbus_port=1, broker=None, server=None, source=synthetic(40))

    async def go() -> tuple[dict[int, dict[str, Any]], int, int]:
        async with plc_server() as (plc, endpoint):
            config["plc"] = {
                "kind": "opcua-client",
                "opcua": {"endpoint": endpoint, "poll_interval_ms": 1.0},
            }
            agent = Agent(parse_config(config))
            await agent.start()
            runner = asyncio.create_task(agent.loop())
            results: dict[int, dict[str, Any]] = {}
            toggle = False
            for number in numbers:
                await plc.trigger(number)
                seen = await plc.take_result(toggle)
                toggle = seen["ResultUpdated"]
                results[number] = seen
            checksum = await plc.get("RecipeChecksum")
            agent.stop()
            await runner
            await agent.close()
            return results, checksum, agent.recipe_checksum

    results, shown, checksum = asyncio.run(go())
    assert shown == checksum != 0
    truth = expected(source_of(config), numbers)
    for number, seen in results.items():
        assert seen["ResultId"] == number
        assert seen["JobFail"] == (truth[number].verdict == "NG")
        assert seen["JobPass"] == (truth[number].verdict != "NG")
        assert seen["ErrorCode"] == 0
        assert seen["ProcessingTime"] > 0


@pytest.mark.slow
def test_a_line_controller_runs_jobs_on_the_agents_machine_vision_server(tmp_path: Path) -> None:
    """The agent as an OPC 40100 Machine Vision server: a line controller (asyncua client) calls
    StartSingleJob part after part and gets a ResultReady event with each part's verdict."""
    from asyncua import Client, ua
    from test_plc_machine_vision import MV_NAMESPACE, Events

    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/vision"
    config = line_config(tmp_path, modbus_port=1, broker=None, server=None, source=synthetic(40))
    config["plc"] = {"kind": "opcua-machine-vision", "machine_vision": {"endpoint": endpoint}}

    async def go() -> list[Any]:
        agent = Agent(parse_config(config))
        await agent.start()
        runner = asyncio.create_task(agent.loop())
        client = Client(endpoint, timeout=4)
        events = Events()
        got = []
        try:
            await client.connect()
            await client.load_data_type_definitions()
            mv = await client.get_namespace_index(MV_NAMESPACE)
            system = await client.nodes.objects.get_child(f"{mv}:VisionSystem")
            subscription = await client.create_subscription(5, events)
            event_type = client.get_node(ua.NodeId.from_string(f"ns={mv};i=1024"))
            await subscription.subscribe_events(system, event_type)
            automatic = await system.get_child(
                [f"{mv}:VisionStateMachine", f"{mv}:AutomaticModeStateMachine"]
            )
            state = await automatic.get_child(f"{mv}:CurrentState")
            for part in range(1, 11):
                while (await state.read_value()).Text != "Ready":
                    await asyncio.sleep(0.005)
                empty = ua.Variant([], ua.VariantType.Variant)
                await automatic.call_method(
                    f"{mv}:StartSingleJob", f"m{part}", f"SN-{part}", "", "", empty
                )
                got.append(await asyncio.wait_for(events.queue.get(), 10))
        finally:
            await client.disconnect()
            agent.stop()
            await runner
            await agent.close()
        return got

    events = asyncio.run(go())
    truth = expected(source_of(config), range(1, 11))
    for number, event in enumerate(events, start=1):
        assert event.ResultId == str(number)
        assert event.PartId == f"SN-{number}"
        passed = event.ResultContent[0].Value
        assert passed == (truth[number].verdict != "NG")
        assert event.ProcessingTimes.ProcessingDuration > 0
