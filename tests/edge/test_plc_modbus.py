"""The handshake over Modbus TCP: the agent's server on a free loopback port, a real pymodbus
client playing the PLC (trigger → result → ack for 1,000 parts, then overrun when it stops
acking), and the register map as docs/edge.md tables it."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient

from thermoscope.edge.plc import Delivery, InspectionResult, PlcError, recipe_checksum
from thermoscope.edge.plc.modbus import REGISTER_MAP, ModbusPlcLink, ModbusPlcSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "edge.md"
BIT = {r.name: r.address for r in REGISTER_MAP if r.table == "discrete input"}
REG = {r.name: r.address for r in REGISTER_MAP if r.table == "input register"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verdict(part: int) -> bool:
    return part % 3 != 0


async def agent(link: ModbusPlcLink, parts: int, deliveries: list[Delivery]) -> None:
    """The agent loop: take a trigger, take the frame, publish the verdict."""
    for _ in range(parts):
        trigger = await link.wait_trigger()
        await link.acquisition_done()
        result = InspectionResult(
            trigger.trigger_id,
            verdict(trigger.trigger_id),
            warning_code=trigger.trigger_id % 5,
            processing_time_ms=trigger.trigger_id % 40 + 0.4,
        )
        deliveries.append(await link.publish_result(result))


class Plc:
    """A scripted PLC over a pymodbus client."""

    def __init__(self, client: AsyncModbusTcpClient) -> None:
        self.client = client

    async def bits(self) -> dict[str, bool]:
        response = await self.client.read_discrete_inputs(0, count=len(BIT))
        return {name: bool(response.bits[address]) for name, address in BIT.items()}

    async def registers(self) -> dict[str, int]:
        response = await self.client.read_input_registers(0, count=12)
        regs = response.registers
        return {
            name: (regs[a] << 16 | regs[a + 1]) if name.endswith("_id") else regs[a]
            for name, a in REG.items()
        }

    async def until(self, check: Callable[[dict[str, bool]], bool]) -> dict[str, bool]:
        async def poll() -> dict[str, bool]:
            while not check(bits := await self.bits()):
                await asyncio.sleep(0.001)
            return bits

        return await asyncio.wait_for(poll(), 3)

    async def trigger(self, part: int) -> None:
        await self.until(lambda b: b["trigger_ready"])
        await self.client.write_registers(0, [part >> 16, part & 0xFFFF])
        await self.client.write_coil(0, True)
        await self.until(lambda b: b["trigger_ack"])
        await self.client.write_coil(0, False)

    async def take_result(self, toggle: bool) -> tuple[dict[str, bool], dict[str, int]]:
        bits = await self.until(lambda b: b["result_valid"] and b["result_updated"] != toggle)
        registers = await self.registers()
        await self.client.write_coil(1, True)
        await self.until(lambda b: not b["result_valid"])
        await self.client.write_coil(1, False)
        return bits, registers


async def with_link(depth: int, script: Callable[[ModbusPlcLink, Plc], Awaitable[None]]) -> None:
    settings = ModbusPlcSettings(port=free_port(), depth=depth)
    link = ModbusPlcLink(settings, recipe_checksum=recipe_checksum("recipe v1"))
    await link.open()
    client = AsyncModbusTcpClient("127.0.0.1", port=settings.port, timeout=2)
    try:
        assert await client.connect()
        await script(link, Plc(client))
    finally:
        client.close()
        await link.close()


def test_a_thousand_parts_each_get_their_own_verdict_in_order() -> None:
    parts = list(range(65_036, 66_036))  # 1,000 parts, ids across the 16-bit word boundary

    async def script(link: ModbusPlcLink, plc: Plc) -> None:
        deliveries: list[Delivery] = []
        agent_task = asyncio.create_task(agent(link, len(parts), deliveries))
        received: list[tuple[int, bool, bool]] = []
        toggles = []
        toggle = False

        async def results() -> None:
            nonlocal toggle
            for _ in parts:
                bits, regs = await plc.take_result(toggle)
                toggle = bits["result_updated"]
                toggles.append(toggle)
                received.append((regs["result_id"], bits["job_pass"], bits["job_fail"]))
                part = regs["result_id"]
                assert regs["warning_code"] == part % 5
                assert regs["processing_time_ms"] == round(part % 40 + 0.4)
                assert regs["recipe_checksum"] == recipe_checksum("recipe v1")

        result_task = asyncio.create_task(results())
        for part in parts:
            await plc.trigger(part)
        await asyncio.wait_for(asyncio.gather(agent_task, result_task), 25)
        assert received == [(p, verdict(p), not verdict(p)) for p in parts]
        assert toggles == [i % 2 == 0 for i in range(len(parts))]
        assert Delivery.OVERRUN not in deliveries
        regs = await plc.registers()
        assert (regs["buffer_fill"], regs["overrun_count"]) == (0, 0)

    asyncio.run(asyncio.wait_for(with_link(8, script), 30))


def test_a_plc_that_stops_acking_sees_the_overrun() -> None:
    async def script(link: ModbusPlcLink, plc: Plc) -> None:
        deliveries: list[Delivery] = []
        agent_task = asyncio.create_task(agent(link, 6, deliveries))
        for part in range(1, 7):
            await plc.trigger(part)
        await asyncio.wait_for(agent_task, 3)
        assert deliveries == [Delivery.PRESENTED] + [Delivery.QUEUED] * 3 + [Delivery.OVERRUN] * 2
        bits, regs = await plc.bits(), await plc.registers()
        assert bits["overrun"]
        assert bits["buffer_full"]
        assert (regs["buffer_fill"], regs["overrun_count"], regs["last_overrun_result_id"]) == (
            4,
            2,
            6,
        )
        toggle = False
        got = []
        for _ in range(4):  # the PLC resumes: the four buffered results, in order
            bits, regs = await plc.take_result(toggle)
            toggle = bits["result_updated"]
            got.append((regs["result_id"], bits["overrun"]))
        assert got == [(1, True), (2, False), (3, False), (4, False)]
        assert (await plc.registers())["overrun_count"] == 2

    asyncio.run(asyncio.wait_for(with_link(4, script), 10))


def test_bad_requests_get_modbus_exceptions() -> None:
    async def script(link: ModbusPlcLink, plc: Plc) -> None:
        response = await plc.client.read_input_registers(10, count=5)
        assert response.isError()
        response = await plc.client.write_register(5, 1)
        assert response.isError()

    asyncio.run(asyncio.wait_for(with_link(2, script), 10))


def test_settings_are_checked_and_a_busy_port_is_named() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ModbusPlcSettings.model_validate({"port": 5020, "speed": 1})
    with pytest.raises(ValidationError, match="port"):
        ModbusPlcSettings(port=0)

    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            link = ModbusPlcLink(ModbusPlcSettings(port=taken.getsockname()[1]))
            with pytest.raises(PlcError, match="cannot listen"):
                await link.open()

    asyncio.run(asyncio.wait_for(main(), 5))


def test_the_register_map_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for entry in REGISTER_MAP:
        row = rf"^\|\s*{entry.table}\s*\|\s*{entry.address}\s*\|\s*`{entry.name}`\s*\|"
        assert re.search(row, text, re.M), f"docs/edge.md lacks the {entry.table} {entry.name}"
    for name in ModbusPlcSettings.model_fields:
        assert f"`{name}`" in text, f"docs/edge.md lacks the setting {name}"
