"""The one interface the agent loop talks to a PLC through, whatever the protocol.

``PlcLink``: ``wait_trigger()`` returns the next part to inspect, ``acquisition_done()`` says the
frame is taken, ``publish_result(result)`` hands the verdict over and says where it went
(``Delivery``), ``close()`` lets go of the connection. ``HandshakeLink`` runs the handshake of
``handshake.py`` for the links that speak it through tags or registers (OPC UA, Modbus TCP,
in-memory); a subclass only moves ``PlcInputs`` in and ``PlcOutputs`` out.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from thermoscope.edge.plc.handshake import (
    DEFAULT_DEPTH,
    Delivery,
    Handshake,
    InspectionResult,
    PlcError,
    PlcInputs,
    PlcOutputs,
)


@dataclass(frozen=True)
class Trigger:
    """A part to inspect: the PLC's trigger id (echoed as the result id), the part's name where the
    protocol carries one, and when the agent accepted it (``time.monotonic_ns()``, nanoseconds)."""

    trigger_id: int
    part_id: str = ""
    accepted_ns: int = 0


class PlcLink(abc.ABC):
    """A PLC (or a line controller acting as one) that triggers parts and takes verdicts."""

    @abc.abstractmethod
    async def wait_trigger(self) -> Trigger:
        """Wait for the next trigger; raises ``PlcError`` once the link is closed or failed."""

    @abc.abstractmethod
    async def acquisition_done(self) -> None:
        """The frame for the last trigger is taken (the PLC may move the part on)."""

    @abc.abstractmethod
    async def publish_result(self, result: InspectionResult) -> Delivery:
        """Hand a verdict to the PLC; on ``Delivery.OVERRUN`` the PLC never gets it and the
        caller must record it elsewhere."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop and let go of the connection; pending ``wait_trigger`` calls raise ``PlcError``."""


class HandshakeLink(PlcLink):
    """A ``PlcLink`` that runs ``Handshake``; subclasses feed ``_apply`` with the PLC's inputs and
    write ``self.handshake.outputs`` to the wire in ``_flush``."""

    def __init__(self, *, depth: int = DEFAULT_DEPTH, recipe_checksum: int = 0) -> None:
        self.handshake = Handshake(depth=depth, recipe_checksum=recipe_checksum)
        self._triggers: asyncio.Queue[Trigger | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._failure: str | None = None

    @abc.abstractmethod
    async def _flush(self) -> None:
        """Write the handshake's outputs that changed to the PLC."""

    def _apply(self, inputs: PlcInputs) -> None:
        """Feed the PLC's latest inputs (call with the lock held or from synchronous code)."""
        self.handshake.apply(inputs)
        self._queue_accepted()

    def _queue_accepted(self) -> None:
        now = time.monotonic_ns()
        for trigger_id in self.handshake.take_accepted():
            self._triggers.put_nowait(Trigger(trigger_id, accepted_ns=now))

    def _fail(self, reason: str) -> None:
        """Stop the link: every waiting and later ``wait_trigger`` raises ``PlcError(reason)``."""
        if self._failure is None:
            self._failure = reason
            self._triggers.put_nowait(None)

    async def wait_trigger(self) -> Trigger:
        trigger = await self._triggers.get()
        if trigger is None:
            self._triggers.put_nowait(None)  # wake the next waiter too
            raise PlcError(self._failure or "PLC link closed")
        return trigger

    async def acquisition_done(self) -> None:
        async with self._lock:
            if not self.handshake.outputs.acquiring:
                return
            self.handshake.acquisition_done()
            self._queue_accepted()
            await self._flush()

    async def publish_result(self, result: InspectionResult) -> Delivery:
        if self._failure is not None:
            raise PlcError(self._failure)
        async with self._lock:
            delivery = self.handshake.complete(result)
            self._queue_accepted()
            await self._flush()
        return delivery


class MemoryPlcLink(HandshakeLink):
    """An in-process PLC for unit tests and demos: the test plays the PLC with ``plc_write`` and
    reads what the agent shows with ``outputs`` or waits for it with ``plc_wait``."""

    def __init__(self, *, depth: int = DEFAULT_DEPTH, recipe_checksum: int = 0) -> None:
        super().__init__(depth=depth, recipe_checksum=recipe_checksum)
        self._changed = asyncio.Event()
        self._inputs = PlcInputs()

    @property
    def outputs(self) -> PlcOutputs:
        """What the PLC sees now."""
        return self.handshake.outputs

    def plc_write(
        self,
        *,
        trigger: bool | None = None,
        trigger_id: int | None = None,
        result_ack: bool | None = None,
    ) -> None:
        """Set some of the PLC's signals (the others keep their values), as one PLC scan."""
        self._inputs = PlcInputs(
            trigger=self._inputs.trigger if trigger is None else trigger,
            trigger_id=self._inputs.trigger_id if trigger_id is None else trigger_id,
            result_ack=self._inputs.result_ack if result_ack is None else result_ack,
        )
        self._apply(self._inputs)
        self._changed.set()

    async def plc_wait(
        self, condition: Callable[[PlcOutputs], bool], *, timeout_s: float = 5.0
    ) -> PlcOutputs:
        """Wait until the outputs satisfy ``condition``; ``PlcError`` after ``timeout_s``."""

        async def changes() -> None:
            while not condition(self.outputs):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(changes(), timeout_s)
        except TimeoutError:
            raise PlcError(f"PLC waited {timeout_s} s; outputs are {self.outputs}") from None
        return self.outputs

    async def _flush(self) -> None:
        self._changed.set()

    async def close(self) -> None:
        self._fail("PLC link closed")
