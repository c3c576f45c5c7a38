"""The PLC handshake and result buffer, as machine-vision systems do it, without any I/O.

One ``Handshake`` holds the signals the agent shows the PLC (``PlcOutputs``) and reacts to the
signals the PLC writes (``PlcInputs``). Protocol adapters (OPC UA, Modbus TCP, in-memory) only copy
values between the wire and these two records.

The cycle, one part:

1. ``trigger_ready`` is 1 while the agent can take a trigger (not acquiring, previous trigger
   released).
2. The PLC writes the part's trigger id, then sets ``trigger``.
3. The agent answers ``trigger_ack`` = 1 and ``acquiring`` = 1 and latches the id
   (``accepted_trigger_id``). The PLC then resets ``trigger``; the agent resets ``trigger_ack``.
4. When the frame is taken, ``acquiring`` = 0 (the PLC may move the part on); ``busy`` stays 1
   while an inspection is in flight.
5. The inspection ends: ``inspection_completed`` = 1 and the result enters the result buffer. The
   oldest result not yet acknowledged is presented: ``result_id`` (the trigger id echoed),
   ``job_pass``/``job_fail``, ``error_code``, ``warning_code``, ``processing_time_ms``, and
   ``result_valid`` = 1 with ``result_updated`` toggled (so two equal results in a row are still
   told apart).
6. The PLC reads the result and sets ``result_ack``; the agent removes the result from the buffer
   and resets ``result_valid``. The PLC resets ``result_ack``; the agent presents the next
   buffered result, if any.

Overrun: the buffer holds at most ``depth`` results awaiting the PLC's acknowledgement (the one
presented included). A result completed while the buffer is full is **not** put into the buffer
(the results already waiting keep their order and are never overwritten); ``complete`` returns
``Delivery.OVERRUN`` so the caller records that result elsewhere (outbox, MQTT event), and the
outputs say so: ``overrun`` = 1, ``overrun_count`` + 1, ``last_overrun_result_id`` = its id. The
``overrun`` flag stays set until the PLC acknowledges its next result (so the PLC reads it with that
result); the counter never resets. A trigger is still accepted while the buffer is full (the line
does not stop for the camera; the part is inspected and its verdict recorded); ``buffer_full``
tells the PLC that the next result will overrun unless it acknowledges one first.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, replace

from thermoscope.edge import EdgeError

#: Largest trigger id (the PLC's part counter is an unsigned 32-bit word).
MAX_TRIGGER_ID = 0xFFFF_FFFF
#: Largest error or warning code and recipe checksum (unsigned 16-bit words).
MAX_WORD = 0xFFFF
#: Result buffer depth when none is configured.
DEFAULT_DEPTH = 8


class PlcError(EdgeError, ValueError):
    """A PLC link or handshake misuse; the message names the tag, field or id and the reason."""


class Delivery(enum.Enum):
    """What became of a completed result on its way to the PLC."""

    PRESENTED = "presented"  # shown to the PLC at once (result_valid = 1)
    QUEUED = "queued"  # in the buffer behind results the PLC has not acknowledged yet
    OVERRUN = "overrun"  # buffer full: not delivered to the PLC; the caller must record it


@dataclass(frozen=True)
class InspectionResult:
    """One part's verdict for the PLC.

    ``result_id`` is the trigger id the PLC sent (0 .. 2**32-1); ``error_code`` and
    ``warning_code`` are 0 .. 65535 (0: none); ``processing_time_ms`` is trigger-to-verdict time in
    milliseconds (>= 0); ``part_id`` is the part's name where the protocol carries one (OPC UA).
    """

    result_id: int
    passed: bool
    error_code: int = 0
    warning_code: int = 0
    processing_time_ms: float = 0.0
    part_id: str = ""

    def __post_init__(self) -> None:
        _check_range("result_id", self.result_id, MAX_TRIGGER_ID)
        _check_range("error_code", self.error_code, MAX_WORD)
        _check_range("warning_code", self.warning_code, MAX_WORD)
        if not self.processing_time_ms >= 0.0:  # also refuses NaN
            raise PlcError(f"processing_time_ms: {self.processing_time_ms} is not >= 0")


@dataclass(frozen=True)
class PlcInputs:
    """What the PLC writes: the trigger level, the part's trigger id, the result-ack level."""

    trigger: bool = False
    trigger_id: int = 0
    result_ack: bool = False

    def __post_init__(self) -> None:
        _check_range("trigger_id", self.trigger_id, MAX_TRIGGER_ID)


@dataclass(frozen=True)
class PlcOutputs:
    """What the agent shows the PLC (see the module docstring for the cycle).

    Result fields hold the last presented result; they are current only while ``result_valid``.
    ``processing_time_ms`` in milliseconds; ``recipe_checksum`` is the CRC-16 of the active
    recipe's text (``recipe_checksum()``); ``buffer_fill`` counts results awaiting acknowledgement.
    """

    trigger_ready: bool = True
    trigger_ack: bool = False
    acquiring: bool = False
    busy: bool = False
    inspection_completed: bool = False
    result_valid: bool = False
    result_updated: bool = False
    result_id: int = 0
    job_pass: bool = False
    job_fail: bool = False
    error_code: int = 0
    warning_code: int = 0
    processing_time_ms: float = 0.0
    recipe_checksum: int = 0
    accepted_trigger_id: int = 0
    buffer_fill: int = 0
    buffer_full: bool = False
    overrun: bool = False
    overrun_count: int = 0
    last_overrun_result_id: int = 0


@dataclass(frozen=True)
class Step:
    """What one ``Handshake.apply`` did: the trigger id it accepted and the result the PLC
    acknowledged, each ``None`` when nothing of the kind happened."""

    accepted_trigger: int | None = None
    acknowledged: InspectionResult | None = None


def _check_range(name: str, value: int, top: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise PlcError(f"{name}: {value!r} is not an integer in 0..{top}")


def recipe_checksum(text: str) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR) of the
    recipe text encoded as UTF-8: the word a PLC compares to know which recipe judged its parts.
    ``recipe_checksum("123456789") == 0x29B1``."""
    crc = 0xFFFF
    for byte in text.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class Handshake:
    """The agent's side of the PLC handshake with a result buffer ``depth`` results deep.

    Pure state: ``apply`` takes the PLC's latest inputs, ``acquisition_done`` and ``complete``
    come from the agent; ``outputs`` is what the protocol adapter writes back.
    """

    def __init__(self, *, depth: int = DEFAULT_DEPTH, recipe_checksum: int = 0) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 1024:
            raise PlcError(f"depth: {depth!r} is not an integer in 1..1024")
        _check_range("recipe_checksum", recipe_checksum, MAX_WORD)
        self.depth = depth
        self._inputs = PlcInputs()
        self._buffer: deque[InspectionResult] = deque()
        self._in_flight: deque[int] = deque()
        self._accepted: list[int] = []
        self._out = PlcOutputs(recipe_checksum=recipe_checksum)

    @property
    def outputs(self) -> PlcOutputs:
        """The signals to show the PLC now."""
        return self._out

    @property
    def pending(self) -> tuple[InspectionResult, ...]:
        """Results awaiting the PLC's acknowledgement, oldest (the presented one) first."""
        return tuple(self._buffer)

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Trigger ids accepted whose results have not completed yet, oldest first."""
        return tuple(self._in_flight)

    def take_accepted(self) -> list[int]:
        """Trigger ids accepted since the last call (by ``apply``, ``acquisition_done`` or
        ``complete``), oldest first; a link turns each into a ``Trigger`` for the agent."""
        accepted, self._accepted = self._accepted, []
        return accepted

    def set_recipe_checksum(self, checksum: int) -> None:
        """Show a new recipe checksum word (0 .. 65535) from now on."""
        _check_range("recipe_checksum", checksum, MAX_WORD)
        self._out = replace(self._out, recipe_checksum=checksum)

    def apply(self, inputs: PlcInputs) -> Step:
        """React to the PLC's inputs: accept a raised trigger, release the trigger ack, take a
        result acknowledgement, present the next result once the ack is released."""
        previous, self._inputs = self._inputs, inputs
        acknowledged: InspectionResult | None = None
        out = self._out
        if not inputs.trigger and out.trigger_ack:
            out = replace(out, trigger_ack=False)
        if inputs.result_ack and not previous.result_ack and out.result_valid:
            acknowledged = self._buffer.popleft()
            out = replace(out, result_valid=False, overrun=False)
        self._out = out
        accepted = self._accept_trigger()
        if not inputs.result_ack:
            self._present_next()
        self._refresh()
        return Step(accepted_trigger=accepted, acknowledged=acknowledged)

    def acquisition_done(self) -> int | None:
        """The frame for the trigger being acquired is taken; returns a trigger id accepted at
        once if the PLC has already raised the next trigger, else ``None``."""
        if not self._out.acquiring:
            raise PlcError("acquisition_done: no trigger is being acquired")
        self._out = replace(self._out, acquiring=False)
        accepted = self._accept_trigger()
        self._refresh()
        return accepted

    def complete(self, result: InspectionResult) -> Delivery:
        """The inspection of the oldest trigger in flight ended with ``result`` (its
        ``result_id`` must be that trigger's id). Returns where the result went; on
        ``Delivery.OVERRUN`` the PLC never sees it and the caller must record it."""
        if not self._in_flight:
            raise PlcError(f"result_id {result.result_id}: no trigger is in flight")
        if result.result_id != self._in_flight[0]:
            raise PlcError(
                f"result_id {result.result_id}: the oldest trigger in flight is "
                f"{self._in_flight[0]} (results complete in trigger order)"
            )
        self._in_flight.popleft()
        out = replace(self._out, inspection_completed=True)
        if out.acquiring and not self._in_flight:
            out = replace(out, acquiring=False)  # the result implies the frame was taken
        if len(self._buffer) >= self.depth:
            self._out = replace(
                out,
                overrun=True,
                overrun_count=out.overrun_count + 1,
                last_overrun_result_id=result.result_id,
            )
            delivery = Delivery.OVERRUN
        else:
            self._buffer.append(result)
            self._out = out
            delivery = Delivery.PRESENTED if self._present_next() else Delivery.QUEUED
        self._accept_trigger()
        self._refresh()
        return delivery

    def _accept_trigger(self) -> int | None:
        out = self._out
        if not (self._inputs.trigger and not out.trigger_ack and not out.acquiring):
            return None
        trigger_id = self._inputs.trigger_id
        self._in_flight.append(trigger_id)
        self._accepted.append(trigger_id)
        self._out = replace(
            out,
            trigger_ack=True,
            acquiring=True,
            inspection_completed=False,
            accepted_trigger_id=trigger_id,
        )
        return trigger_id

    def _present_next(self) -> bool:
        out = self._out
        if out.result_valid or self._inputs.result_ack or not self._buffer:
            return False
        head = self._buffer[0]
        self._out = replace(
            out,
            result_valid=True,
            result_updated=not out.result_updated,
            result_id=head.result_id,
            job_pass=head.passed,
            job_fail=not head.passed,
            error_code=head.error_code,
            warning_code=head.warning_code,
            processing_time_ms=head.processing_time_ms,
        )
        return True

    def _refresh(self) -> None:
        out = self._out
        self._out = replace(
            out,
            trigger_ready=not out.acquiring and not out.trigger_ack,
            busy=out.acquiring or bool(self._in_flight),
            buffer_fill=len(self._buffer),
            buffer_full=len(self._buffer) >= self.depth,
        )
