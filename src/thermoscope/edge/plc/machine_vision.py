"""The agent as an OPC UA server exposing a subset of OPC 40100-1 (OPC UA for Machine Vision).

What is there (browse names in the Machine Vision namespace ``MV_NAMESPACE`` unless marked):

- ``Objects/VisionSystem`` with ``VisionStateMachine`` (``CurrentState``: Preoperational, Halted,
  Error or Operational) and its ``AutomaticModeStateMachine`` (``CurrentState``: Initialized,
  Ready, SingleExecution or ContinuousExecution; empty outside Operational).
- On ``AutomaticModeStateMachine`` the methods ``StartSingleJob``, ``StartContinuous`` (in:
  MeasId, PartId, RecipeId, ProductId, Parameters; out: JobId, Error), ``Stop`` (out: Error) and
  ``Abort`` (in: Cause, CauseDescription; out: Error). A call in the wrong state answers
  Bad_InvalidState.
- ``ResultReadyEventType`` (node id ``i=1024`` as in the specification's nodeset) emitted by
  ``VisionSystem`` for every result, with ResultId, PartId, MeasId, JobId, ExternalRecipeId,
  InternalRecipeId, InternalConfigurationId, IsPartial, CreationTime, ResultState (1 Completed,
  3 Aborted, 4 Failed when the result carries an error code), ProcessingTimes
  (``ProcessingTimesDataType``, ``i=3005``: StartTime, EndTime, ProcessingDuration in ms) and
  ResultContent (Boolean passed, UInt16 error code, UInt16 warning code).
- The latest result as variables under ``VisionSystem/LastResult`` (agent namespace
  ``AGENT_NAMESPACE``), with the recipe checksum word.

Simplified, and said so in docs/edge.md: identifiers the specification types as structures
(MeasIdDataType, PartIdDataType, RecipeIdExternalDataType, ProductIdDataType, JobIdDataType,
ResultIdDataType) are plain Strings here; states are shown by ``CurrentState`` only (no state and
transition objects, no transition events); configuration, recipe and result management, Halt,
Reset, SelectModeAutomatic and ConfirmAll are not offered.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.common.structures104 import new_struct, new_struct_field
from asyncua.server.event_generator import EventGenerator
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from pydantic import BaseModel, ConfigDict, Field

from thermoscope.edge.plc.handshake import MAX_TRIGGER_ID, Delivery, InspectionResult, PlcError
from thermoscope.edge.plc.link import PlcLink, Trigger

#: The namespace of OPC 40100-1's nodeset.
MV_NAMESPACE = "http://opcfoundation.org/UA/MachineVision"
#: The namespace of the agent's own nodes (the latest result's variables).
AGENT_NAMESPACE = "urn:thermoscope:edge"
_RESULT_READY_EVENT_TYPE = 1024  # numeric ids of the specification's nodeset
_PROCESSING_TIMES_DATA_TYPE = 3005


class VisionState(enum.StrEnum):
    """States of the top-level VisionStateMachine."""

    PREOPERATIONAL = "Preoperational"
    HALTED = "Halted"
    ERROR = "Error"
    OPERATIONAL = "Operational"


class AutomaticState(enum.StrEnum):
    """States of the AutomaticModeStateMachine (inside Operational)."""

    INITIALIZED = "Initialized"
    READY = "Ready"
    SINGLE_EXECUTION = "SingleExecution"
    CONTINUOUS_EXECUTION = "ContinuousExecution"


class ResultState(enum.IntEnum):
    """OPC 40100's ResultStateDataType values the agent uses."""

    COMPLETED = 1
    ABORTED = 3
    FAILED = 4


class MachineVisionSettings(BaseModel):
    """Where the agent's Machine Vision server listens."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(
        default="opc.tcp://127.0.0.1:4840/thermoscope",
        pattern=r"^opc\.tcp://",
        description="The server's endpoint URL (host 0.0.0.0: every interface).",
    )
    name: str = Field(
        default="thermoscope edge agent", min_length=1, description="The server's name."
    )
    configuration_id: str = Field(
        default="thermoscope",
        min_length=1,
        description="InternalConfigurationId reported with every result.",
    )


@dataclass(frozen=True)
class _Job:
    job_id: str
    meas_id: str
    part_id: str
    recipe_id: str


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class MachineVisionServer(PlcLink):
    """The OPC 40100 subset above as a ``PlcLink``: a client's StartSingleJob (or StartContinuous)
    becomes a ``Trigger``; ``publish_result`` updates ``LastResult`` and fires ResultReady."""

    def __init__(self, settings: MachineVisionSettings) -> None:
        self.settings = settings
        self._server = Server()
        self._session = uuid.uuid4().hex[:8]
        self._numbers = itertools.count(1)
        self._job_numbers = itertools.count(1)
        self._started = False
        self._pending: deque[Trigger] = deque()
        self._wake = asyncio.Event()
        self._jobs: dict[int, _Job] = {}
        self._aborted: set[int] = set()
        self._continuous: _Job | None = None
        self._closed = False
        self.vision_state = VisionState.PREOPERATIONAL
        self.automatic_state: AutomaticState | None = None
        self._recipe_id = ""
        self._nodes: dict[str, Node] = {}
        self._events: EventGenerator | None = None
        self._times_class: type = object  # ProcessingTimesDataType, generated by open()

    async def open(self) -> None:
        """Build the address space and start listening; the system enters Operational /
        Initialized (Ready once ``prepare_recipe`` is called). ``PlcError`` if it cannot listen."""
        server = self._server
        await server.init()
        server.set_endpoint(self.settings.endpoint)
        server.set_server_name(self.settings.name)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        mv = await server.register_namespace(MV_NAMESPACE)
        own = await server.register_namespace(AGENT_NAMESPACE)
        times_type, _ = await new_struct(
            server,
            ua.NodeId.from_string(f"ns={mv};i={_PROCESSING_TIMES_DATA_TYPE}"),
            ua.QualifiedName("ProcessingTimesDataType", mv),
            [
                new_struct_field("StartTime", ua.VariantType.DateTime),
                new_struct_field("EndTime", ua.VariantType.DateTime),
                new_struct_field("AcquisitionDuration", ua.VariantType.Double, optional=True),
                new_struct_field("ProcessingDuration", ua.VariantType.Double, optional=True),
            ],
        )
        await server.load_data_type_definitions()  # generates the class into asyncua.ua once
        self._times_class = vars(ua)["ProcessingTimesDataType"]
        event_type = await self._event_type(mv, times_type)
        system = await server.nodes.objects.add_object(mv, "VisionSystem")
        await system.write_attribute(
            AttributeIds.EventNotifier,
            ua.DataValue(ua.Variant(1, ua.VariantType.Byte)),  # SubscribeToEvents
        )
        await server.nodes.server.add_reference(system, ObjectIds.HasNotifier)
        machine = await system.add_object(mv, "VisionStateMachine")
        automatic = await machine.add_object(mv, "AutomaticModeStateMachine")
        for key, parent in (("state", machine), ("automatic_state", automatic)):
            self._nodes[key] = await parent.add_variable(mv, "CurrentState", ua.LocalizedText(""))
        await self._add_methods(mv, automatic)
        last = await system.add_object(own, "LastResult")
        for name, value, vtype in (
            ("ResultId", "", ua.VariantType.String),
            ("PartId", "", ua.VariantType.String),
            ("JobId", "", ua.VariantType.String),
            ("ResultState", 0, ua.VariantType.Int32),
            ("Passed", False, ua.VariantType.Boolean),
            ("ErrorCode", 0, ua.VariantType.UInt16),
            ("WarningCode", 0, ua.VariantType.UInt16),
            ("ProcessingTimeMs", 0.0, ua.VariantType.Double),
            ("RecipeChecksum", 0, ua.VariantType.UInt16),
        ):
            self._nodes[name] = await last.add_variable(own, name, ua.Variant(value, vtype))
        self._events = await server.get_event_generator(event_type, system.nodeid)
        try:
            await server.start()
        except OSError as exc:
            raise PlcError(f"{self.settings.endpoint}: cannot listen ({exc})") from exc
        self._started = True
        await self._enter(VisionState.OPERATIONAL, AutomaticState.INITIALIZED)

    async def _event_type(self, mv: int, times_type: Node) -> Node:
        base = self._server.get_node(ObjectIds.BaseEventType)
        event_type = await base.add_object_type(
            ua.NodeId.from_string(f"ns={mv};i={_RESULT_READY_EVENT_TYPE}"),
            ua.QualifiedName("ResultReadyEventType", mv),
        )
        string = ua.VariantType.String
        for name, vtype in (
            ("ResultId", string),
            ("PartId", string),
            ("MeasId", string),
            ("JobId", string),
            ("ExternalRecipeId", string),
            ("InternalRecipeId", string),
            ("InternalConfigurationId", string),
            ("IsPartial", ua.VariantType.Boolean),
            ("CreationTime", ua.VariantType.DateTime),
            ("ResultState", ua.VariantType.Int32),
        ):
            await event_type.add_property(mv, name, ua.get_default_value(vtype), varianttype=vtype)
        await event_type.add_property(
            mv, "ProcessingTimes", self._times_class(), datatype=times_type.nodeid
        )
        content = await event_type.add_property(
            mv,
            "ResultContent",
            ua.Variant([], ua.VariantType.Variant),
            datatype=ua.NodeId.from_string("i=24"),  # BaseDataType[]
        )
        await content.write_value_rank(1)
        return event_type

    async def _add_methods(self, mv: int, automatic: Node) -> None:
        def arg(name: str, vtype: ua.VariantType, array: bool = False) -> ua.Argument:
            return ua.Argument(
                Name=name,
                DataType=ua.NodeId.from_string(f"i={vtype.value}"),
                ValueRank=1 if array else -1,
                ArrayDimensions=[0] if array else [],
            )

        string, error = ua.VariantType.String, arg("Error", ua.VariantType.Int32)
        start_in = [arg(n, string) for n in ("MeasId", "PartId", "RecipeId", "ProductId")]
        start_in.append(arg("Parameters", ua.VariantType.Variant, array=True))
        start_out = [arg("JobId", string), error]
        await automatic.add_method(mv, "StartSingleJob", self._start_single, start_in, start_out)
        await automatic.add_method(
            mv, "StartContinuous", self._start_continuous, start_in, start_out
        )
        await automatic.add_method(mv, "Stop", self._stop, [], [error])
        abort_in = [arg("Cause", ua.VariantType.Int32), arg("CauseDescription", string)]
        await automatic.add_method(mv, "Abort", self._abort, abort_in, [error])

    async def _enter(self, vision: VisionState, automatic: AutomaticState | None) -> None:
        self.vision_state, self.automatic_state = vision, automatic
        await self._nodes["state"].write_value(ua.LocalizedText(vision.value))
        await self._nodes["automatic_state"].write_value(
            ua.LocalizedText(automatic.value if automatic else "")
        )

    def _refused(self, *states: AutomaticState) -> ua.StatusCode | None:
        """Bad_InvalidState unless Operational in one of ``states``."""
        if self.vision_state == VisionState.OPERATIONAL and self.automatic_state in states:
            return None
        return ua.StatusCode(ua.UInt32(StatusCodes.BadInvalidState))

    def _new_job(self, meas_id: Any, part_id: Any, recipe_id: Any) -> _Job:
        return _Job(
            f"{self._session}-{next(self._job_numbers)}",
            _text(meas_id),
            _text(part_id),
            _text(recipe_id) or self._recipe_id,
        )

    def _trigger(self, job: _Job) -> None:
        """Queue a trigger (a new trigger id) for ``job``."""
        number = next(self._numbers) & MAX_TRIGGER_ID
        self._jobs[number] = job
        self._pending.append(Trigger(number, job.part_id, time.monotonic_ns()))
        self._wake.set()

    async def _start_single(
        self, _parent: ua.NodeId, *args: ua.Variant
    ) -> list[ua.Variant] | ua.StatusCode:
        if refused := self._refused(AutomaticState.READY):
            return refused
        job = self._new_job(*(a.Value for a in args[:3]))
        await self._enter(VisionState.OPERATIONAL, AutomaticState.SINGLE_EXECUTION)
        self._trigger(job)
        return [ua.Variant(job.job_id, ua.VariantType.String), ua.Variant(0, ua.VariantType.Int32)]

    async def _start_continuous(
        self, _parent: ua.NodeId, *args: ua.Variant
    ) -> list[ua.Variant] | ua.StatusCode:
        if refused := self._refused(AutomaticState.READY):
            return refused
        job = self._new_job(*(a.Value for a in args[:3]))
        self._continuous = job
        await self._enter(VisionState.OPERATIONAL, AutomaticState.CONTINUOUS_EXECUTION)
        self._trigger(job)
        return [ua.Variant(job.job_id, ua.VariantType.String), ua.Variant(0, ua.VariantType.Int32)]

    async def _stop(self, _parent: ua.NodeId) -> list[ua.Variant] | ua.StatusCode:
        """Stop continuous execution after the part in hand: no new triggers."""
        if refused := self._refused(AutomaticState.CONTINUOUS_EXECUTION):
            return refused
        self._continuous = None
        self._pending.clear()
        await self._enter(VisionState.OPERATIONAL, AutomaticState.READY)
        return [ua.Variant(0, ua.VariantType.Int32)]

    async def _abort(
        self, _parent: ua.NodeId, *_cause: ua.Variant
    ) -> list[ua.Variant] | ua.StatusCode:
        """Abort the running job(s): triggers not taken yet are dropped, results still to come
        for taken ones are reported with ResultState Aborted."""
        if refused := self._refused(
            AutomaticState.SINGLE_EXECUTION, AutomaticState.CONTINUOUS_EXECUTION
        ):
            return refused
        self._continuous = None
        self._pending.clear()
        self._aborted.update(self._jobs)
        await self._enter(VisionState.OPERATIONAL, AutomaticState.READY)
        return [ua.Variant(0, ua.VariantType.Int32)]

    async def prepare_recipe(self, recipe_id: str, checksum: int) -> None:
        """The agent has loaded recipe ``recipe_id`` (CRC-16 ``checksum``): Initialized → Ready."""
        self._recipe_id = recipe_id
        await self._nodes["RecipeChecksum"].write_value(ua.Variant(checksum, ua.VariantType.UInt16))
        if self.automatic_state == AutomaticState.INITIALIZED:
            await self._enter(VisionState.OPERATIONAL, AutomaticState.READY)

    async def set_error(self, active: bool) -> None:
        """Enter the Error state (jobs refused) or leave it back to Operational / Ready."""
        if active:
            self._continuous = None
            self._pending.clear()
            await self._enter(VisionState.ERROR, None)
        elif self.vision_state == VisionState.ERROR:
            ready = AutomaticState.READY if self._recipe_id else AutomaticState.INITIALIZED
            await self._enter(VisionState.OPERATIONAL, ready)

    async def wait_trigger(self) -> Trigger:
        while not self._pending:
            if self._closed:
                raise PlcError(f"{self.settings.endpoint}: Machine Vision server closed")
            self._wake.clear()
            await self._wake.wait()
        return self._pending.popleft()

    async def acquisition_done(self) -> None:
        """SingleExecution → Ready: the next StartSingleJob is accepted while this one is
        processed (as the specification allows)."""
        if self.automatic_state == AutomaticState.SINGLE_EXECUTION and not self._pending:
            await self._enter(VisionState.OPERATIONAL, AutomaticState.READY)

    async def publish_result(self, result: InspectionResult) -> Delivery:
        job = self._jobs.pop(result.result_id, None)
        if job is None:
            raise PlcError(f"result_id {result.result_id}: no job with this trigger id")
        await self.acquisition_done()
        if result.result_id in self._aborted:
            self._aborted.discard(result.result_id)
            state = ResultState.ABORTED
        else:
            state = ResultState.FAILED if result.error_code else ResultState.COMPLETED
        now = datetime.now(UTC)
        values = {
            "ResultId": ua.Variant(str(result.result_id), ua.VariantType.String),
            "PartId": ua.Variant(result.part_id or job.part_id, ua.VariantType.String),
            "JobId": ua.Variant(job.job_id, ua.VariantType.String),
            "ResultState": ua.Variant(int(state), ua.VariantType.Int32),
            "Passed": ua.Variant(result.passed, ua.VariantType.Boolean),
            "ErrorCode": ua.Variant(result.error_code, ua.VariantType.UInt16),
            "WarningCode": ua.Variant(result.warning_code, ua.VariantType.UInt16),
            "ProcessingTimeMs": ua.Variant(result.processing_time_ms, ua.VariantType.Double),
        }
        for name, value in values.items():
            await self._nodes[name].write_value(value)
        if self._events is None:
            raise PlcError(f"{self.settings.endpoint}: publish_result before open()")
        event: Any = self._events.event
        for name in ("ResultId", "PartId", "JobId", "ResultState"):
            setattr(event, name, values[name])
        event.MeasId = ua.Variant(job.meas_id, ua.VariantType.String)
        event.ExternalRecipeId = ua.Variant(job.recipe_id, ua.VariantType.String)
        event.InternalRecipeId = ua.Variant(self._recipe_id, ua.VariantType.String)
        event.InternalConfigurationId = ua.Variant(
            self.settings.configuration_id, ua.VariantType.String
        )
        event.IsPartial = ua.Variant(False, ua.VariantType.Boolean)
        event.CreationTime = ua.Variant(now, ua.VariantType.DateTime)
        event.ProcessingTimes = self._times_class(
            StartTime=now - timedelta(milliseconds=result.processing_time_ms),
            EndTime=now,
            ProcessingDuration=result.processing_time_ms,
        )
        event.ResultContent = ua.Variant(
            [
                ua.Variant(result.passed, ua.VariantType.Boolean),
                ua.Variant(result.error_code, ua.VariantType.UInt16),
                ua.Variant(result.warning_code, ua.VariantType.UInt16),
            ],
            ua.VariantType.Variant,
        )
        await self._events.trigger(message=f"result {result.result_id}")
        if self._continuous is not None and not self._pending:
            self._trigger(self._continuous)  # continuous execution: the next part, same job
        return Delivery.PRESENTED

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._started:
            self._started = False
            await self._server.stop()
