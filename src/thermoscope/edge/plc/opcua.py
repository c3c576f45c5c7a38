"""The handshake over OPC UA with the PLC as the server: the agent is a client that reads the
PLC's trigger tags on a fixed cycle and writes the handshake tags back.

Every tag is a node id in ``OpcUaPlcSettings.tags``. The agent reads each written tag's data type
when it connects and writes values of that type (a Boolean tag gets a Boolean, an integer tag a
rounded integer clamped to its range, a Float or Double tag milliseconds as a real number), so the
PLC program declares its tags as it likes. Output tags set to ``null`` are not written.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from thermoscope.edge.plc.handshake import (
    DEFAULT_DEPTH,
    MAX_TRIGGER_ID,
    PlcError,
    PlcInputs,
    PlcOutputs,
)
from thermoscope.edge.plc.link import HandshakeLink

#: Output tags written in a second request, after the result data they announce.
_ANNOUNCING = ("result_valid", "result_updated")

_INTEGER_RANGES = {
    ua.VariantType.SByte: (-(1 << 7), (1 << 7) - 1),
    ua.VariantType.Byte: (0, (1 << 8) - 1),
    ua.VariantType.Int16: (-(1 << 15), (1 << 15) - 1),
    ua.VariantType.UInt16: (0, (1 << 16) - 1),
    ua.VariantType.Int32: (-(1 << 31), (1 << 31) - 1),
    ua.VariantType.UInt32: (0, (1 << 32) - 1),
    ua.VariantType.Int64: (-(1 << 63), (1 << 63) - 1),
    ua.VariantType.UInt64: (0, (1 << 64) - 1),
}


def _node_id(value: str | None) -> str | None:
    if value is not None:
        try:
            ua.NodeId.from_string(value)
        except (ValueError, UaError) as exc:
            raise ValueError(f"{value!r} is not an OPC UA node id ({exc})") from exc
    return value


class OpcUaInputTags(BaseModel):
    """The PLC's tags the agent reads (node ids such as ``ns=3;s="DB_Vision"."Trigger"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: str = Field(
        default="ns=2;s=Vision.Trigger", description="Boolean: PLC triggers a part."
    )
    trigger_id: str = Field(
        default="ns=2;s=Vision.TriggerId",
        description="Unsigned integer: the part's id, 0..2**32-1.",
    )
    result_ack: str = Field(
        default="ns=2;s=Vision.ResultAck", description="Boolean: PLC has read the presented result."
    )

    @field_validator("*")
    @classmethod
    def _node_ids(cls, value: str | None) -> str | None:
        return _node_id(value)


class OpcUaOutputTags(BaseModel):
    """The PLC's tags the agent writes (``null``: the PLC has no such tag)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger_ready: str | None = Field(default="ns=2;s=Vision.TriggerReady", description="Boolean.")
    trigger_ack: str | None = Field(default="ns=2;s=Vision.TriggerAck", description="Boolean.")
    acquiring: str | None = Field(default="ns=2;s=Vision.Acquiring", description="Boolean.")
    busy: str | None = Field(default="ns=2;s=Vision.Busy", description="Boolean.")
    inspection_completed: str | None = Field(
        default="ns=2;s=Vision.InspectionCompleted", description="Boolean."
    )
    result_valid: str | None = Field(default="ns=2;s=Vision.ResultValid", description="Boolean.")
    result_updated: str | None = Field(
        default="ns=2;s=Vision.ResultUpdated", description="Boolean, toggles with every result."
    )
    result_id: str | None = Field(default="ns=2;s=Vision.ResultId", description="Unsigned integer.")
    job_pass: str | None = Field(default="ns=2;s=Vision.JobPass", description="Boolean.")
    job_fail: str | None = Field(default="ns=2;s=Vision.JobFail", description="Boolean.")
    error_code: str | None = Field(
        default="ns=2;s=Vision.ErrorCode", description="Integer, 0: none."
    )
    warning_code: str | None = Field(
        default="ns=2;s=Vision.WarningCode", description="Integer, 0: none."
    )
    processing_time_ms: str | None = Field(
        default="ns=2;s=Vision.ProcessingTime",
        description="Milliseconds (real or rounded integer).",
    )
    recipe_checksum: str | None = Field(
        default="ns=2;s=Vision.RecipeChecksum", description="Integer: CRC-16 of the recipe text."
    )
    accepted_trigger_id: str | None = Field(
        default="ns=2;s=Vision.AcceptedTriggerId",
        description="Unsigned integer: the trigger id last accepted.",
    )
    buffer_fill: str | None = Field(default="ns=2;s=Vision.BufferFill", description="Integer.")
    buffer_full: str | None = Field(default="ns=2;s=Vision.BufferFull", description="Boolean.")
    overrun: str | None = Field(default="ns=2;s=Vision.Overrun", description="Boolean.")
    overrun_count: str | None = Field(default="ns=2;s=Vision.OverrunCount", description="Integer.")
    last_overrun_result_id: str | None = Field(
        default="ns=2;s=Vision.LastOverrunResultId",
        description="Unsigned integer: id of the last result not delivered.",
    )

    @field_validator("*")
    @classmethod
    def _node_ids(cls, value: str | None) -> str | None:
        return _node_id(value)


class OpcUaPlcSettings(BaseModel):
    """How the agent reaches the PLC's OPC UA server and which tags it uses."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(
        ..., pattern=r"^opc\.tcp://", description="The PLC's server, e.g. opc.tcp://plc:4840."
    )
    inputs: OpcUaInputTags = Field(default=OpcUaInputTags(), description="Tags read.")
    outputs: OpcUaOutputTags = Field(default=OpcUaOutputTags(), description="Tags written.")
    poll_interval_ms: float = Field(
        default=2.0,
        ge=0.2,
        le=1000.0,
        description="How often the trigger tags are read, milliseconds.",
    )
    timeout_s: float = Field(
        default=4.0, gt=0.0, le=120.0, description="Connect and request timeout, seconds."
    )
    depth: int = Field(
        default=DEFAULT_DEPTH,
        ge=1,
        le=1024,
        description="Results held for the PLC's acknowledgement.",
    )


def _coerce(tag: str, value: bool | int | float, vtype: ua.VariantType) -> ua.Variant:
    """``value`` as a Variant of the tag's own type."""
    if vtype == ua.VariantType.Boolean:
        return ua.Variant(bool(value), vtype)
    if vtype in (ua.VariantType.Float, ua.VariantType.Double):
        return ua.Variant(float(value), vtype)
    if vtype in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[vtype]
        return ua.Variant(min(max(round(value), low), high), vtype)
    raise PlcError(f"{tag}: a {vtype.name} tag cannot hold a handshake value")


class OpcUaPlcLink(HandshakeLink):
    """The agent as an OPC UA client of the PLC; ``open()`` connects and starts the read cycle."""

    def __init__(self, settings: OpcUaPlcSettings, *, recipe_checksum: int = 0) -> None:
        super().__init__(depth=settings.depth, recipe_checksum=recipe_checksum)
        self.settings = settings
        self._client = Client(settings.endpoint, timeout=settings.timeout_s)
        self._inputs: list[Node] = []
        self._outputs: dict[str, tuple[Node, ua.VariantType]] = {}
        self._written: dict[str, Any] = {}
        self._poller: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect, check every tag exists and learn its type, show the initial outputs, start
        reading the trigger tags every ``poll_interval_ms``. ``PlcError`` names what failed."""
        endpoint = self.settings.endpoint
        try:
            await self._client.connect()
        except (OSError, TimeoutError, UaError) as exc:
            raise PlcError(f"{endpoint}: cannot connect ({exc!r})") from exc
        try:
            tags = self.settings.inputs.model_dump()
            self._inputs = [self._client.get_node(tags[name]) for name in asdict(PlcInputs())]
            for name, node_id in self.settings.outputs.model_dump().items():
                if node_id is None:
                    continue
                node = self._client.get_node(node_id)
                try:
                    vtype = await node.read_data_type_as_variant_type()
                except UaError as exc:
                    raise PlcError(f"{endpoint}: output tag {name} ({node_id}): {exc}") from exc
                self._outputs[name] = (node, vtype)
            await self._read_inputs()
            async with self._lock:
                await self._flush()
        except BaseException:
            await self._client.disconnect()
            raise
        self._poller = asyncio.create_task(self._poll())

    async def _read_inputs(self) -> PlcInputs:
        results = await self._client.read_attributes(self._inputs, AttributeIds.Value)
        values: list[Any] = []
        for name, result in zip(asdict(PlcInputs()), results, strict=True):
            if result.StatusCode is not None and not result.StatusCode.is_good():
                raise PlcError(f"{self.settings.endpoint}: input tag {name}: {result.StatusCode}")
            values.append(result.Value.Value if result.Value is not None else None)
        trigger, trigger_id, result_ack = values
        if not isinstance(trigger_id, int) or not 0 <= trigger_id <= MAX_TRIGGER_ID:
            raise PlcError(
                f"{self.settings.endpoint}: input tag trigger_id: {trigger_id!r} is not an "
                f"integer in 0..{MAX_TRIGGER_ID}"
            )
        return PlcInputs(trigger=bool(trigger), trigger_id=trigger_id, result_ack=bool(result_ack))

    async def _poll(self) -> None:
        period = self.settings.poll_interval_ms / 1000.0
        try:
            while True:
                inputs = await self._read_inputs()
                async with self._lock:
                    self._apply(inputs)
                    await self._flush()
                await asyncio.sleep(period)
        except (PlcError, OSError, TimeoutError, UaError) as exc:
            self._fail(f"{self.settings.endpoint}: PLC link failed ({exc})")

    async def _flush(self) -> None:
        outputs: PlcOutputs = self.handshake.outputs
        changed = {
            name: value
            for name, value in asdict(outputs).items()
            if name in self._outputs and self._written.get(name) != value
        }
        if not changed:
            return
        data = {k: v for k, v in changed.items() if k not in _ANNOUNCING}
        flags = {k: v for k, v in changed.items() if k in _ANNOUNCING}
        for batch in (data, flags):  # the data first, then the bits that announce it
            if batch:
                await self._write(batch)

    async def _write(self, batch: dict[str, Any]) -> None:
        nodes = [self._outputs[name][0] for name in batch]
        values = [_coerce(name, v, self._outputs[name][1]) for name, v in batch.items()]
        try:
            await self._client.write_values(nodes, values)
        except (OSError, TimeoutError, UaError) as exc:
            raise PlcError(
                f"{self.settings.endpoint}: writing {', '.join(batch)} failed ({exc})"
            ) from exc
        self._written.update(batch)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
            with contextlib.suppress(OSError, TimeoutError, UaError):
                await self._client.disconnect()
        self._fail("PLC link closed")
