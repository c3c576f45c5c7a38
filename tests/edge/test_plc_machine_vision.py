"""The OPC 40100 subset: a real asyncua client browses the Machine Vision namespace, calls
StartSingleJob / StartContinuous / Stop / Abort and receives ResultReady events, while the agent
side takes the triggers and publishes results through ``MachineVisionServer``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.common.node import Node
from pydantic import ValidationError

from thermoscope.edge.plc import InspectionResult, PlcError, recipe_checksum
from thermoscope.edge.plc.machine_vision import (
    AGENT_NAMESPACE,
    MV_NAMESPACE,
    AutomaticState,
    MachineVisionServer,
    MachineVisionSettings,
    ResultState,
    VisionState,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Events:
    """asyncua's subscription handler: ResultReady events in arrival order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def event_notification(self, event: Any) -> None:
        self.queue.put_nowait(event)

    async def next(self) -> Any:
        return await asyncio.wait_for(self.queue.get(), 10)


class Line:
    """The client side (a line controller) of the Machine Vision server."""

    def __init__(self, client: Client, mv: int, own: int, system: Node, events: Events) -> None:
        self.client, self.mv, self.own, self.system, self.events = client, mv, own, system, events

    async def node(self, *path: str) -> Node:
        return await self.system.get_child([p if ":" in p else f"{self.mv}:{p}" for p in path])

    async def state(self) -> tuple[str, str]:
        machine = await self.node("VisionStateMachine", "CurrentState")
        automatic = await self.node(
            "VisionStateMachine", "AutomaticModeStateMachine", "CurrentState"
        )
        return (await machine.read_value()).Text or "", (await automatic.read_value()).Text or ""

    async def call(self, method: str, *args: Any) -> Any:
        automatic = await self.node("VisionStateMachine", "AutomaticModeStateMachine")
        return await automatic.call_method(f"{self.mv}:{method}", *args)

    async def start(self, method: str, meas: str, part: str) -> str:
        job_id, error = await self.call(
            method, meas, part, "", "", ua.Variant([], ua.VariantType.Variant)
        )
        assert error == 0
        return str(job_id)


@asynccontextmanager
async def vision_server() -> AsyncIterator[tuple[MachineVisionServer, Line]]:
    settings = MachineVisionSettings(endpoint=f"opc.tcp://127.0.0.1:{free_port()}/vision")
    server = MachineVisionServer(settings)
    await server.open()
    client = Client(settings.endpoint, timeout=4)
    try:
        await client.connect()
        await client.load_data_type_definitions()
        mv = await client.get_namespace_index(MV_NAMESPACE)
        own = await client.get_namespace_index(AGENT_NAMESPACE)
        system = await client.nodes.objects.get_child(f"{mv}:VisionSystem")
        events = Events()
        subscription = await client.create_subscription(5, events)
        event_type = client.get_node(ua.NodeId.from_string(f"ns={mv};i=1024"))
        assert (await event_type.read_browse_name()).Name == "ResultReadyEventType"
        await subscription.subscribe_events(system, event_type)
        yield server, Line(client, mv, own, system, events)
    finally:
        await client.disconnect()
        await server.close()


def run(script: Callable[[MachineVisionServer, Line], Awaitable[None]]) -> None:
    async def main() -> None:
        async with vision_server() as (server, line):
            await script(server, line)

    asyncio.run(asyncio.wait_for(main(), 40))


def test_start_single_job_gives_a_trigger_and_a_result_ready_event() -> None:
    async def script(server: MachineVisionServer, line: Line) -> None:
        assert await line.state() == ("Operational", "Initialized")
        with pytest.raises(ua.UaStatusCodeError, match="BadInvalidState"):
            await line.start("StartSingleJob", "m0", "p0")  # no recipe prepared yet
        await server.prepare_recipe("housing-v3", recipe_checksum("housing v3"))
        assert await line.state() == ("Operational", "Ready")

        job_id = await line.start("StartSingleJob", "meas-1", "part-A")
        assert await line.state() == ("Operational", "SingleExecution")
        with pytest.raises(ua.UaStatusCodeError, match="BadInvalidState"):
            await line.start("StartSingleJob", "meas-2", "part-B")  # still acquiring
        trigger = await asyncio.wait_for(server.wait_trigger(), 10)
        assert trigger.part_id == "part-A"
        await server.acquisition_done()
        assert await line.state() == ("Operational", "Ready")
        await server.publish_result(
            InspectionResult(trigger.trigger_id, False, warning_code=9, processing_time_ms=7.5)
        )
        event = await line.events.next()
        assert event.ResultId == str(trigger.trigger_id)
        assert (event.PartId, event.MeasId, event.JobId) == ("part-A", "meas-1", job_id)
        assert event.ResultState == ResultState.COMPLETED
        assert event.InternalRecipeId == "housing-v3"
        assert event.IsPartial is False
        assert event.ProcessingTimes.ProcessingDuration == 7.5
        assert event.ProcessingTimes.EndTime > event.ProcessingTimes.StartTime
        assert [v.Value for v in event.ResultContent] == [False, 0, 9]
        last = {
            name: await (
                await line.node(f"{line.own}:LastResult", f"{line.own}:{name}")
            ).read_value()
            for name in ("ResultId", "PartId", "Passed", "ProcessingTimeMs", "RecipeChecksum")
        }
        assert last == {
            "ResultId": str(trigger.trigger_id),
            "PartId": "part-A",
            "Passed": False,
            "ProcessingTimeMs": 7.5,
            "RecipeChecksum": recipe_checksum("housing v3"),
        }

        await line.start("StartSingleJob", "meas-3", "part-C")
        trigger = await server.wait_trigger()
        cause = ua.Variant(0, ua.VariantType.Int32)
        assert await line.call("Abort", cause, "operator") == 0
        assert await line.state() == ("Operational", "Ready")
        await server.publish_result(InspectionResult(trigger.trigger_id, True, error_code=3))
        event = await line.events.next()
        assert (event.PartId, event.ResultState) == ("part-C", ResultState.ABORTED)

        await line.start("StartSingleJob", "meas-4", "part-D")
        trigger = await server.wait_trigger()
        await server.publish_result(InspectionResult(trigger.trigger_id, True, error_code=3))
        assert (await line.events.next()).ResultState == ResultState.FAILED

        await server.set_error(True)
        assert server.vision_state == VisionState.ERROR
        assert await line.state() == ("Error", "")
        with pytest.raises(ua.UaStatusCodeError, match="BadInvalidState"):
            await line.start("StartSingleJob", "meas-5", "part-E")
        await server.set_error(False)
        assert server.automatic_state == AutomaticState.READY
        with pytest.raises(PlcError, match="no job"):
            await server.publish_result(InspectionResult(999, True))

    run(script)


def test_continuous_execution_runs_until_stop() -> None:
    async def script(server: MachineVisionServer, line: Line) -> None:
        await server.prepare_recipe("housing-v3", 1)
        with pytest.raises(ua.UaStatusCodeError, match="BadInvalidState"):
            await line.call("Stop")  # nothing running
        job_id = await line.start("StartContinuous", "run-7", "")
        assert await line.state() == ("Operational", "ContinuousExecution")
        ids = []
        for _ in range(3):
            trigger = await asyncio.wait_for(server.wait_trigger(), 10)
            ids.append(trigger.trigger_id)
            await server.acquisition_done()
            assert await line.state() == ("Operational", "ContinuousExecution")
            await server.publish_result(InspectionResult(trigger.trigger_id, True))
        events = [await line.events.next() for _ in ids]
        assert [e.ResultId for e in events] == [str(i) for i in ids]
        assert {e.JobId for e in events} == {job_id}
        assert len(set(ids)) == 3
        assert (await line.call("Stop")) == 0
        assert await line.state() == ("Operational", "Ready")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(server.wait_trigger(), 0.2)  # no trigger after Stop

    run(script)


def test_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="endpoint"):
        MachineVisionSettings(endpoint="tcp://x")
    with pytest.raises(ValidationError, match="extra"):
        MachineVisionSettings.model_validate({"port": 4840})


def test_the_server_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "edge.md").read_text(encoding="utf-8")
    for name in (*MachineVisionSettings.model_fields, MV_NAMESPACE, AGENT_NAMESPACE):
        assert f"`{name}`" in text, f"docs/edge.md lacks {name}"
    for state in (*VisionState, *AutomaticState):
        assert f"`{state.value}`" in text
