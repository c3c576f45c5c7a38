"""What starts a part: ``next()`` returns the next ``PartTrigger`` (``None``: no more parts).

- ``FreeRun``: every frame the source gives is a part (the source paces the line); parts are
  numbered by the agent from 1.
- ``PlcTrigger``: the PLC's trigger (through any ``PlcLink``); the trigger id is echoed as the
  result id and picks a synthetic part.
- ``MqttTrigger``: the ``trigger`` command on the station's command topic
  (``{"command": "trigger", "id": "SN-17"}``: a string ``id`` is the part's name and the agent
  numbers the part; an integer ``id`` (0..2**32-1) is its number and picks a synthetic part).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from thermoscope.edge.messaging import CommandRouter
from thermoscope.edge.plc.handshake import MAX_TRIGGER_ID, PlcError
from thermoscope.edge.plc.link import PlcLink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartTrigger:
    """One part to inspect.

    Attributes:
        number: the part's id: the PLC's or the command's trigger id, else the agent's count.
        part_id: the part's name where the trigger carries one ("" otherwise).
        accepted_ns: when the trigger was taken (``time.monotonic_ns()``, ns): processing time
            is measured from here.
        plc: whether the PLC triggered it (its result goes back to the PLC's handshake).
    """

    number: int
    part_id: str = ""
    accepted_ns: int = 0
    plc: bool = False


class TriggerSource(Protocol):
    """Gives the agent its parts."""

    @property
    def hinted(self) -> bool:
        """Whether trigger numbers pick the source's part (not the source's own order)."""
        ...

    async def next(self) -> PartTrigger | None:
        """The next part; ``None`` once no more will come."""
        ...


class FreeRun:
    """Every frame is a part, numbered from ``start``."""

    hinted = False

    def __init__(self, start: int = 1) -> None:
        self._numbers = itertools.count(start)

    async def next(self) -> PartTrigger | None:
        return PartTrigger(next(self._numbers), accepted_ns=time.monotonic_ns())


class PlcTrigger:
    """The PLC's triggers; ``None`` once the link is closed or failed (logged)."""

    hinted = True

    def __init__(self, link: PlcLink) -> None:
        self.link = link

    async def next(self) -> PartTrigger | None:
        try:
            trigger = await self.link.wait_trigger()
        except PlcError as exc:
            log.warning("PLC trigger: %s", exc)
            return None
        accepted = trigger.accepted_ns or time.monotonic_ns()
        return PartTrigger(trigger.trigger_id, trigger.part_id, accepted, plc=True)


class MqttTrigger:
    """Parts triggered by the ``trigger`` command (registered on ``router``)."""

    hinted = True

    def __init__(self, router: CommandRouter) -> None:
        self._queue: asyncio.Queue[PartTrigger | None] = asyncio.Queue()
        self._numbers = itertools.count(1)
        router.on("trigger", self._command)

    async def _command(self, arguments: dict[str, Any]) -> None:
        given = arguments.get("id")
        part = arguments.get("part", "")
        number = next(self._numbers)
        if isinstance(given, int) and not isinstance(given, bool):
            number = given
        elif isinstance(given, str):
            part = part or given
        elif given is not None:
            log.warning("trigger command refused: id %r is neither an integer nor a string", given)
            return
        if not 0 <= number <= MAX_TRIGGER_ID or not isinstance(part, str) or len(part) > 200:
            log.warning("trigger command refused: id %r or part %r out of range", given, part)
            return
        self._queue.put_nowait(PartTrigger(number, part, time.monotonic_ns()))

    def stop(self) -> None:
        """No more parts: ``next`` returns ``None`` once the queued ones are taken."""
        self._queue.put_nowait(None)

    async def next(self) -> PartTrigger | None:
        trigger = await self._queue.get()
        if trigger is None:
            self._queue.put_nowait(None)
        return trigger
