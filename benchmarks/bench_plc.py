"""PLC handshake round trip on loopback: OPC UA (the agent as a client of an asyncua PLC server)
and Modbus TCP (the agent's server, a pymodbus client as the PLC), side by side with the same
handshake in memory (``MemoryPlcLink``, no protocol), in one process pinned to one CPU core.

Run: ``python benchmarks/bench_plc.py [--parts N]``. For every part the scripted PLC waits for
trigger_ready, writes the trigger id and raises trigger, waits for trigger_ack and releases
trigger, waits for result_valid with a toggled result_updated (**trigger-result**), then raises
result_ack and waits for result_valid to drop before releasing it (**full cycle**). The agent side
answers at once (wait_trigger, acquisition_done, publish_result; no inspection), so the figures
are the handshake's own cost. The in-memory and OPC UA PLCs wake on every change of the agent's
outputs; the Modbus PLC re-reads the discrete inputs back to back. The OPC UA link reads the PLC's
trigger tags every ``poll_interval_ms`` (rows for 2 ms, the default, and 0.5 ms),
so its trigger-side latency includes up to one poll period. PLC and agent share the one core and
event loop, which a real line does not: read the numbers as an upper bound of the agent's part.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from asyncua import Server, ua
from pymodbus.client import AsyncModbusTcpClient

from thermoscope.edge.plc import InspectionResult, MemoryPlcLink, PlcLink, PlcOutputs
from thermoscope.edge.plc.modbus import REGISTER_MAP, ModbusPlcLink, ModbusPlcSettings
from thermoscope.edge.plc.opcua import OpcUaOutputTags, OpcUaPlcLink, OpcUaPlcSettings

BIT = {r.name: r.address for r in REGISTER_MAP if r.table == "discrete input"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def agent(link: PlcLink) -> None:
    """Answer every trigger at once with a verdict."""
    while True:
        trigger = await link.wait_trigger()
        await link.acquisition_done()
        await link.publish_result(InspectionResult(trigger.trigger_id, trigger.trigger_id % 2 == 0))


class PlcSide(abc.ABC):
    """One protocol's PLC: read the handshake bits, write trigger / id / ack."""

    @abc.abstractmethod
    async def bits(self) -> dict[str, Any]:
        """trigger_ready, trigger_ack, result_valid, result_updated and result_id now."""

    @abc.abstractmethod
    async def write(self, **values: Any) -> None:
        """Set some of trigger_id, trigger, result_ack."""

    async def until(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Re-read the bits until ``check`` holds (each read is a request on the wire)."""
        while not check(bits := await self.bits()):
            await asyncio.sleep(0)
        return bits


class MemoryPlc(PlcSide):
    def __init__(self, link: MemoryPlcLink) -> None:
        self.link = link

    async def bits(self) -> dict[str, Any]:
        return self._now()

    async def write(self, **values: Any) -> None:
        self.link.plc_write(**values)

    async def until(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Wake on every change of the outputs (no polling)."""
        await self.link.plc_wait(lambda _out: check(self._now()), timeout_s=10)
        return self._now()

    def _now(self) -> dict[str, Any]:
        out = self.link.outputs
        return {
            "trigger_ready": out.trigger_ready,
            "trigger_ack": out.trigger_ack,
            "result_valid": out.result_valid,
            "result_updated": out.result_updated,
            "result_id": out.result_id,
        }


class ModbusPlc(PlcSide):
    def __init__(self, client: AsyncModbusTcpClient) -> None:
        self.client = client

    async def bits(self) -> dict[str, Any]:
        response = await self.client.read_discrete_inputs(0, count=len(BIT))
        bits = {name: bool(response.bits[address]) for name, address in BIT.items()}
        if bits["result_valid"]:
            regs = (await self.client.read_input_registers(0, count=2)).registers
            bits["result_id"] = regs[0] << 16 | regs[1]
        return bits

    async def write(self, **values: Any) -> None:
        if "trigger_id" in values:
            part = values["trigger_id"]
            await self.client.write_registers(0, [part >> 16, part & 0xFFFF])
        for name, address in (("trigger", 0), ("result_ack", 1)):
            if name in values:
                await self.client.write_coil(address, values[name])


def opc_tags() -> dict[str, ua.VariantType]:
    """Every tag of the default OPC UA settings, typed as a PLC program might type it."""
    flags = {k for k, v in asdict(PlcOutputs()).items() if isinstance(v, bool)}
    tags = {"Trigger": ua.VariantType.Boolean, "TriggerId": ua.VariantType.UInt32}
    tags["ResultAck"] = ua.VariantType.Boolean
    for field, node_id in OpcUaOutputTags().model_dump().items():
        name = str(node_id).rsplit(".", 1)[1]
        tags[name] = (
            ua.VariantType.Boolean
            if field in flags
            else ua.VariantType.Float
            if field == "processing_time_ms"
            else ua.VariantType.UInt32
        )
    return tags


OPC_TAGS = opc_tags()


class OpcUaPlc(PlcSide):
    """The PLC program inside its OPC UA server: woken by every write the agent makes (the
    address space's data-change callback), as a PLC sees new values at its next scan."""

    def __init__(self, server: Server, nodes: dict[str, Any]) -> None:
        self.nodes = nodes
        self.changed = asyncio.Event()
        for name in ("TriggerReady", "TriggerAck", "ResultValid", "ResultUpdated"):
            server.iserver.aspace.add_datachange_callback(
                nodes[name].nodeid, ua.AttributeIds.Value, self._wake
            )

    async def _wake(self, _handle: int, _value: Any) -> None:
        self.changed.set()

    async def until(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            self.changed.clear()
            if check(bits := await self.bits()):
                return bits
            await asyncio.wait_for(self.changed.wait(), 10)

    async def bits(self) -> dict[str, Any]:
        names = ("TriggerReady", "TriggerAck", "ResultValid", "ResultUpdated", "ResultId")
        keys = ("trigger_ready", "trigger_ack", "result_valid", "result_updated", "result_id")
        return {k: await self.nodes[n].read_value() for k, n in zip(keys, names, strict=True)}

    async def write(self, **values: Any) -> None:
        names = {"trigger_id": "TriggerId", "trigger": "Trigger", "result_ack": "ResultAck"}
        for key in ("trigger_id", "trigger", "result_ack"):
            if key in values:
                name = names[key]
                await self.nodes[name].write_value(ua.Variant(values[key], OPC_TAGS[name]))


async def cycle(plc: PlcSide, parts: int) -> tuple[list[float], list[float]]:
    """Run ``parts`` handshakes; trigger → result and full-cycle times in milliseconds."""
    to_result, full = [], []
    toggle = False
    for part in range(1, parts + 1):
        await plc.until(lambda b: b["trigger_ready"])
        start = time.perf_counter()
        await plc.write(trigger_id=part, trigger=True)
        await plc.until(lambda b: b["trigger_ack"])
        await plc.write(trigger=False)
        bits = await plc.until(lambda b, t=toggle: b["result_valid"] and b["result_updated"] != t)
        got = time.perf_counter()
        if bits["result_id"] != part:
            raise SystemExit(f"part {part}: the PLC read result id {bits['result_id']}")
        toggle = bits["result_updated"]
        await plc.write(result_ack=True)
        await plc.until(lambda b: not b["result_valid"])
        await plc.write(result_ack=False)
        done = time.perf_counter()
        to_result.append((got - start) * 1e3)
        full.append((done - start) * 1e3)
    return to_result, full


@asynccontextmanager
async def running(link: PlcLink) -> AsyncIterator[None]:
    task = asyncio.create_task(agent(link))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await link.close()


async def memory(parts: int) -> tuple[list[float], list[float]]:
    link = MemoryPlcLink()
    async with running(link):
        return await cycle(MemoryPlc(link), parts)


async def modbus(parts: int) -> tuple[list[float], list[float]]:
    settings = ModbusPlcSettings(port=free_port())
    link = ModbusPlcLink(settings)
    await link.open()
    client = AsyncModbusTcpClient("127.0.0.1", port=settings.port, timeout=2)
    await client.connect()
    try:
        async with running(link):
            return await cycle(ModbusPlc(client), parts)
    finally:
        client.close()


async def opcua(parts: int, poll_ms: float) -> tuple[list[float], list[float]]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/plc"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:thermoscope:bench-plc")
    folder = await server.nodes.objects.add_object(idx, "Vision")
    nodes = {}
    for name, vtype in OPC_TAGS.items():
        initial = False if vtype == ua.VariantType.Boolean else 0
        nodes[name] = await folder.add_variable(
            ua.NodeId.from_string(f"ns={idx};s=Vision.{name}"), name, ua.Variant(initial, vtype)
        )
        await nodes[name].set_writable()
    await server.start()
    assert idx == 2, "the default tags assume namespace 2"
    settings = OpcUaPlcSettings(endpoint=endpoint, poll_interval_ms=poll_ms)
    link = OpcUaPlcLink(settings)
    await link.open()
    try:
        async with running(link):
            return await cycle(OpcUaPlc(server, nodes), parts)
    finally:
        await server.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", type=int, default=300, help="handshakes per link")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    runs: list[tuple[str, Callable[[], Awaitable[tuple[list[float], list[float]]]]]] = [
        ("in memory (no protocol)", lambda: memory(args.parts)),
        ("Modbus TCP", lambda: modbus(args.parts)),
        ("OPC UA, poll 2 ms", lambda: opcua(args.parts, 2.0)),
        ("OPC UA, poll 0.5 ms", lambda: opcua(args.parts, 0.5)),
    ]
    print(
        f"PLC handshake on loopback, {args.parts} parts per link, one core, one event loop; "
        f"milliseconds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    columns = ("link", "trigger-result p50", "p99", "full cycle p50", "p99", "p50 vs memory")
    print(f"{columns[0]:<24}" + "".join(f"{c:>19}" for c in columns[1:]))
    baseline = 0.0
    for name, run in runs:
        to_result, full = asyncio.run(run())
        p50 = statistics.median(to_result)
        baseline = baseline or p50
        cells = (
            p50,
            percentile(to_result, 99),
            statistics.median(full),
            percentile(full, 99),
        )
        print(f"{name:<24}" + "".join(f"{c:>19.3f}" for c in cells) + f"{p50 / baseline:>18.1f}x")


if __name__ == "__main__":
    main()
