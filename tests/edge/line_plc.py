"""Helpers of the agent's line tests: a scripted PLC over a real pymodbus client, an MQTT
subscriber that keeps what the agent publishes, the verdicts the pipeline gives synthetic parts
when called directly, and the agent's configuration for a line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from edge_server import LiveServer
from pymodbus.client import AsyncModbusTcpClient

from thermoscope.edge.config import SyntheticSourceConfig
from thermoscope.edge.delivery import sampled
from thermoscope.edge.plc.modbus import REGISTER_MAP
from thermoscope.edge.sources import Capture, SyntheticSource
from thermoscope.pipeline import Pipeline, decode_bytes
from thermoscope.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "pcb.yaml"
BIT = {r.name: r.address for r in REGISTER_MAP if r.table == "discrete input"}
REG = {r.name: r.address for r in REGISTER_MAP if r.table == "input register"}
IDENTITY = {"site": "plant", "line": "l1", "station": "thermal"}
TOPICS = "qc/v1/plant/l1/thermal"


@dataclass(frozen=True)
class PlcResult:
    """One result as the PLC read it."""

    result_id: int
    passed: bool
    failed: bool
    error_code: int
    warning_code: int
    processing_ms: int


class ModbusPlc:
    """A PLC program over a pymodbus client: trigger, wait for the result, acknowledge."""

    def __init__(self, client: AsyncModbusTcpClient, *, timeout_s: float = 10.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.toggle = False

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, port: int, *, timeout_s: float = 10.0, listen_s: float = 90.0
    ) -> AsyncIterator[ModbusPlc]:
        """A PLC connected to the agent's Modbus server on ``port``, retried until it listens
        (for up to ``listen_s``: an agent started as a process of its own imports for seconds
        on a loaded machine)."""
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2)
        deadline = time.monotonic() + listen_s
        try:
            while not await client.connect():
                if time.monotonic() > deadline:
                    raise AssertionError(f"no Modbus server on port {port} in {listen_s} s")
                await asyncio.sleep(0.05)
            yield cls(client, timeout_s=timeout_s)
        finally:
            client.close()

    async def bits(self) -> dict[str, bool]:
        response = await self.client.read_discrete_inputs(0, count=len(BIT))
        return {name: bool(response.bits[address]) for name, address in BIT.items()}

    async def registers(self) -> dict[str, int]:
        regs = (await self.client.read_input_registers(0, count=12)).registers
        return {
            name: (regs[a] << 16 | regs[a + 1]) if name.endswith("_id") else regs[a]
            for name, a in REG.items()
        }

    async def until(self, check: Callable[[dict[str, bool]], bool]) -> dict[str, bool]:
        async def poll() -> dict[str, bool]:
            while not check(bits := await self.bits()):
                await asyncio.sleep(0.0005)
            return bits

        return await asyncio.wait_for(poll(), self.timeout_s)

    async def trigger(self, part: int) -> None:
        """Write the part's id, raise the trigger, wait for the ack, release the trigger."""
        await self.until(lambda b: b["trigger_ready"])
        await self.client.write_registers(0, [part >> 16, part & 0xFFFF])
        await self.client.write_coil(0, True)
        await self.until(lambda b: b["trigger_ack"])
        await self.client.write_coil(0, False)

    async def take_result(self) -> PlcResult:
        """Wait for a new result (toggled bit), read it, acknowledge it."""
        bits = await self.until(lambda b: b["result_valid"] and b["result_updated"] != self.toggle)
        self.toggle = bits["result_updated"]
        regs = await self.registers()
        await self.client.write_coil(1, True)
        await self.until(lambda b: not b["result_valid"])
        await self.client.write_coil(1, False)
        return PlcResult(
            regs["result_id"],
            bits["job_pass"],
            bits["job_fail"],
            regs["error_code"],
            regs["warning_code"],
            regs["processing_time_ms"],
        )

    async def cycle(self, part: int) -> PlcResult:
        """One part: trigger, result, ack (the result must echo the part's id)."""
        await self.trigger(part)
        result = await self.take_result()
        assert result.result_id == part, (result, part)
        return result


@dataclass
class MqttLog:
    """What the agent published on its station's topics (QoS 1), by channel."""

    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def channel(self, name: str) -> list[dict[str, Any]]:
        return self.messages.get(name, [])

    def results(self) -> dict[str, dict[str, Any]]:
        """The last result per part."""
        return {m["part"]: m for m in self.channel("result")}


@contextlib.asynccontextmanager
async def mqtt_log(host: str, port: int) -> AsyncIterator[MqttLog]:
    """Subscribe to the station's topics (a persistent session: nothing is missed while the
    broker restarts) and keep every message until the block ends."""
    log = MqttLog()
    ready = asyncio.Event()

    async def listen() -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    host, port, identifier="line-test", clean_session=False
                ) as client:
                    await client.subscribe(f"{TOPICS}/#", qos=1)
                    ready.set()
                    async for message in client.messages:
                        name = str(message.topic).rsplit("/", 1)[-1]
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        log.messages.setdefault(name, []).append(json.loads(payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class Expected:
    """A part's verdict when the pipeline is called directly, its frame's content id, and
    whether the synthetic line made it defective."""

    verdict: str
    content_id: str
    defective: bool


def expected(
    source: SyntheticSource,
    numbers: Iterable[int],
    *,
    recipe: Path = RECIPE,
    capture: Callable[[int], Capture] | None = None,
) -> dict[int, Expected]:
    """Each trigger number's part through ``decode_bytes`` and ``Pipeline``, no agent."""
    pipeline = Pipeline(load_recipe(recipe))
    make = capture or source.capture
    out = {}
    for number in numbers:
        shot = make(number % source.config.count)
        with decode_bytes(shot.data, shot.filename) as part:
            verdict = pipeline.inspect_part(part, source=shot.filename).verdict.value
            out[number] = Expected(verdict, part.content_id, bool(shot.truth.get("defects")))
    return out


def check_server(
    live: LiveServer, project: int, truth: dict[int, Expected], share: float
) -> list[dict[str, Any]]:
    """The server holds exactly the NG frames and the sampled OK ones, each once, with the
    edge's verdict."""
    frames = live.frames(project)
    hashes = [str(f["content_hash"]) for f in frames]
    assert len(hashes) == len(set(hashes)), "a frame is on the server twice"
    ng = {e.content_id for e in truth.values() if e.verdict == "NG"}
    ok = {
        e.content_id for e in truth.values() if e.verdict != "NG" and sampled(e.content_id, share)
    }
    assert set(hashes) == ng | ok
    for frame in frames:
        want = "NG" if frame["content_hash"] in ng else None
        if want:
            assert frame["machine_verdict"] == "NG"
            assert frame["meta"]["flag"] == "NG"
    return frames


def check_plc(results: dict[int, PlcResult], truth: dict[int, Expected]) -> None:
    for number, result in results.items():
        want = truth[number].verdict
        assert result.error_code == 0, result
        assert result.failed == (want == "NG"), (number, result, want)
        assert result.passed == (want != "NG")
        assert result.warning_code == (1 if want == "WARN" else 0)


def check_mqtt(log: Any, truth: dict[int, Expected]) -> None:
    results = log.channel("result")
    seqs = sorted({r["seq"] for r in results})
    assert seqs == list(range(1, len(seqs) + 1)), "a gap in the result sequence"
    by_part = log.results()
    assert set(by_part) == {str(n) for n in truth}
    for number, want in truth.items():
        got = by_part[str(number)]
        assert got["verdict"] == want.verdict
        assert got["frame_id"] == want.content_id


def synthetic(count: int, **more: Any) -> dict[str, Any]:
    """A synthetic source's settings (PLC-triggered: the trigger's id picks the part)."""
    return {"kind": "synthetic", "count": count, "rate_hz": 0, "defect_rate": 0.1, **more}


def line_config(
    tmp: Path,
    *,
    modbus_port: int,
    broker: tuple[str, int] | None,
    server: tuple[str, int, str] | None,
    source: dict[str, Any],
    **more: Any,
) -> dict[str, Any]:
    """The agent's configuration on a line: PLC-triggered over Modbus, results to MQTT, frames
    (every NG, a share of OK) to the server (``server``: url, project id, token)."""
    config: dict[str, Any] = {
        "identity": IDENTITY,
        "source": source,
        "trigger": {"kind": "plc"},
        "plc": {"kind": "modbus", "modbus": {"port": modbus_port, "depth": 8}},
        "recipe": str(RECIPE),
        "outbox": {
            "path": str(tmp / "outbox.db"),
            "min_free_bytes": 0,
            "ok_sample_share": 0.05,
            "drain_on_exit_s": 30,
        },
        "status": {"enabled": False},
        "drift": {"enabled": False},
    }
    if broker is not None:
        config["mqtt"] = {"host": broker[0], "port": broker[1], "keepalive_s": 5}
    if server is not None:
        fast = {"initial_backoff_s": 0.05, "max_backoff_s": 0.5, "idle_s": 0.05}
        config["server"] = {
            "url": server[0],
            "project_id": server[1],
            "token": server[2],
            "timeout_s": 10,
            "delivery": fast,
        }
    config.update(more)
    return config


def source_of(config: dict[str, Any]) -> SyntheticSource:
    """The synthetic source a configuration describes, as the test's own copy."""
    return SyntheticSource(SyntheticSourceConfig.model_validate(config["source"]), free_run=False)
