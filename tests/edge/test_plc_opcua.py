"""The handshake over OPC UA with the PLC as the server: an in-process asyncua server on a free
loopback port holds the PLC's tags (with the types a PLC program would give them) and a scripted
PLC loop triggers parts and acknowledges results; the agent is ``OpcUaPlcLink``."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from pydantic import ValidationError

from thermoscope.edge.plc import Delivery, InspectionResult, PlcError, recipe_checksum
from thermoscope.edge.plc.opcua import (
    OpcUaInputTags,
    OpcUaOutputTags,
    OpcUaPlcLink,
    OpcUaPlcSettings,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "edge.md"

V = ua.VariantType
#: The PLC's tags: name in the test's namespace, type, handshake field they serve.
TAGS = {
    "Trigger": V.Boolean,
    "TriggerId": V.UInt32,
    "ResultAck": V.Boolean,
    "TriggerReady": V.Boolean,
    "TriggerAck": V.Boolean,
    "Acquiring": V.Boolean,
    "Busy": V.Boolean,
    "InspectionCompleted": V.Boolean,
    "ResultValid": V.Boolean,
    "ResultUpdated": V.Boolean,
    "ResultId": V.UInt32,
    "JobPass": V.Boolean,
    "JobFail": V.Boolean,
    "ErrorCode": V.UInt16,
    "WarningCode": V.UInt16,
    "ProcessingTime": V.Float,
    "RecipeChecksum": V.UInt16,
    "BufferFill": V.Int16,
    "BufferFull": V.Boolean,
    "Overrun": V.Boolean,
    "OverrunCount": V.UInt32,
    "LastOverrunResultId": V.UInt32,
    "AcceptedTriggerId": V.UInt32,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Plc:
    """The PLC program: its tags live in its own OPC UA server."""

    def __init__(self, server: Server, nodes: dict[str, Any]) -> None:
        self.server = server
        self.nodes = nodes

    async def get(self, name: str) -> Any:
        return await self.nodes[name].read_value()

    async def set(self, name: str, value: Any) -> None:
        await self.nodes[name].write_value(ua.Variant(value, TAGS[name]))

    async def until(self, name: str, wanted: Any) -> None:
        async def poll() -> None:
            while await self.get(name) != wanted:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(poll(), 10)

    async def trigger(self, part: int) -> None:
        await self.until("TriggerReady", True)
        await self.set("TriggerId", part)
        await self.set("Trigger", True)
        await self.until("TriggerAck", True)
        await self.set("Trigger", False)

    async def take_result(self, toggle: bool) -> dict[str, Any]:
        async def fresh() -> None:
            while not (await self.get("ResultValid") and await self.get("ResultUpdated") != toggle):
                await asyncio.sleep(0.001)

        await asyncio.wait_for(fresh(), 10)
        names = ("ResultId", "JobPass", "JobFail", "ErrorCode", "ProcessingTime", "ResultUpdated")
        seen = {name: await self.get(name) for name in (*names, "Overrun")}
        await self.set("ResultAck", True)
        await self.until("ResultValid", False)
        await self.set("ResultAck", False)
        return seen


@asynccontextmanager
async def plc_server() -> AsyncIterator[tuple[Plc, str]]:
    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/plc"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:thermoscope:test-plc")
    assert idx == 2
    folder = await server.nodes.objects.add_object(idx, "Vision")
    nodes = {}
    for name, vtype in TAGS.items():
        initial: Any = False if vtype == V.Boolean else 0
        node = await folder.add_variable(
            ua.NodeId(f"Vision.{name}", idx), name, ua.Variant(initial, vtype)
        )
        await node.set_writable()
        nodes[name] = node
    await server.start()
    try:
        yield Plc(server, nodes), endpoint
    finally:
        await server.stop()


def settings(endpoint: str, depth: int = 8) -> OpcUaPlcSettings:
    return OpcUaPlcSettings(endpoint=endpoint, poll_interval_ms=1.0, depth=depth)


async def agent(link: OpcUaPlcLink, parts: int, deliveries: list[Delivery]) -> None:
    for _ in range(parts):
        trigger = await link.wait_trigger()
        await link.acquisition_done()
        part = trigger.trigger_id
        result = InspectionResult(
            part, part % 4 != 0, error_code=part % 3, processing_time_ms=part / 8
        )
        deliveries.append(await link.publish_result(result))


async def run(depth: int, script: Callable[[Plc, OpcUaPlcLink], Awaitable[None]]) -> None:
    async with plc_server() as (plc, endpoint):
        link = OpcUaPlcLink(settings(endpoint, depth), recipe_checksum=recipe_checksum("v7"))
        await link.open()
        try:
            assert await plc.get("RecipeChecksum") == recipe_checksum("v7")
            await script(plc, link)
        finally:
            await link.close()


def test_every_part_reaches_the_plc_with_its_id_and_verdict() -> None:
    parts = list(range(100, 130))

    async def script(plc: Plc, link: OpcUaPlcLink) -> None:
        deliveries: list[Delivery] = []
        agent_task = asyncio.create_task(agent(link, len(parts), deliveries))
        seen: list[dict[str, Any]] = []

        async def results() -> None:
            toggle = False
            for _ in parts:
                seen.append(await plc.take_result(toggle))
                toggle = seen[-1]["ResultUpdated"]

        result_task = asyncio.create_task(results())
        for part in parts:
            await plc.trigger(part)
        await asyncio.wait_for(asyncio.gather(agent_task, result_task), 30)
        assert [(s["ResultId"], s["JobPass"], s["JobFail"], s["ErrorCode"]) for s in seen] == [
            (p, p % 4 != 0, p % 4 == 0, p % 3) for p in parts
        ]
        assert [s["ProcessingTime"] for s in seen] == pytest.approx([p / 8 for p in parts])
        assert [s["ResultUpdated"] for s in seen] == [i % 2 == 0 for i in range(len(parts))]
        assert Delivery.OVERRUN not in deliveries
        assert await plc.get("AcceptedTriggerId") == parts[-1]
        assert await plc.get("BufferFill") == 0

    asyncio.run(asyncio.wait_for(run(8, script), 40))


def test_overrun_is_reported_when_the_plc_stops_acking() -> None:
    async def script(plc: Plc, link: OpcUaPlcLink) -> None:
        deliveries: list[Delivery] = []
        agent_task = asyncio.create_task(agent(link, 5, deliveries))
        for part in range(1, 6):
            await plc.trigger(part)
        await asyncio.wait_for(agent_task, 10)
        assert (
            deliveries
            == [Delivery.PRESENTED, Delivery.QUEUED, Delivery.QUEUED] + [Delivery.OVERRUN] * 2
        )
        await plc.until("OverrunCount", 2)
        assert await plc.get("Overrun")
        assert await plc.get("BufferFull")
        assert await plc.get("LastOverrunResultId") == 5
        assert await plc.get("BufferFill") == 3
        toggle = False
        got = []
        for _ in range(3):  # acking again: the buffered results, oldest first
            seen = await plc.take_result(toggle)
            toggle = seen["ResultUpdated"]
            got.append((seen["ResultId"], seen["Overrun"]))
        assert got == [(1, True), (2, False), (3, False)]

    asyncio.run(asyncio.wait_for(run(3, script), 40))


def test_a_dead_plc_is_named() -> None:
    dead = OpcUaPlcSettings(endpoint=f"opc.tcp://127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(PlcError, match="cannot connect"):
        asyncio.run(asyncio.wait_for(OpcUaPlcLink(dead).open(), 5))


def test_a_missing_tag_is_named_and_a_lost_plc_fails_the_link() -> None:
    async def main() -> None:
        async with plc_server() as (_plc, endpoint):
            outputs = OpcUaOutputTags(result_id="ns=2;s=Vision.NoSuchTag")
            missing = OpcUaPlcLink(OpcUaPlcSettings(endpoint=endpoint, outputs=outputs))
            with pytest.raises(PlcError, match="result_id"):
                await missing.open()
            link = OpcUaPlcLink(settings(endpoint))
            await link.open()
        with pytest.raises(PlcError, match="PLC link failed"):
            await asyncio.wait_for(link.wait_trigger(), 25)
        await link.close()

    asyncio.run(asyncio.wait_for(main(), 40))


def test_settings_name_the_bad_field() -> None:
    with pytest.raises(ValidationError, match="trigger"):
        OpcUaPlcSettings.model_validate(
            {"endpoint": "opc.tcp://plc:4840", "inputs": {"trigger": "not a node"}}
        )
    with pytest.raises(ValidationError, match="extra"):
        OpcUaPlcSettings.model_validate({"endpoint": "opc.tcp://plc:4840", "colour": "red"})
    with pytest.raises(ValidationError, match="endpoint"):
        OpcUaPlcSettings(endpoint="http://plc")


def test_every_tag_and_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for model in (OpcUaInputTags, OpcUaOutputTags):
        for name, field in model.model_fields.items():
            row = rf"^\| `{name}` \| [^|]+ \| `{re.escape(str(field.default))}` \|"
            assert re.search(row, text, re.M), f"docs/edge.md lacks the tag {name}"
    for name in OpcUaPlcSettings.model_fields:
        assert f"`{name}`" in text, f"docs/edge.md lacks the setting {name}"
