"""The handshake as a Modbus TCP server with a flat register map; the PLC is the Modbus client.

The PLC writes coils (``trigger``, ``result_ack``) and holding registers (``trigger_id``); it reads
discrete inputs (the handshake bits) and input registers (ids, codes, time, checksum, buffer).
Addresses are the 0-based protocol addresses of the Modbus application protocol; 32-bit values
take two registers, high word first. Reads always see the handshake's current state (nothing is
copied on a timer), and a write is applied to the handshake before its response is sent.
docs/edge.md tables the map; ``REGISTER_MAP`` is the same table in code.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from thermoscope.edge.plc.handshake import DEFAULT_DEPTH, PlcError, PlcInputs, PlcOutputs
from thermoscope.edge.plc.link import HandshakeLink


class ModbusPlcSettings(BaseModel):
    """Where the agent's Modbus TCP server listens and how deep its result buffer is."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to listen on (0.0.0.0: every interface).",
    )
    port: int = Field(
        default=502, ge=1, le=65535, description="TCP port to listen on (502 is Modbus's)."
    )
    depth: int = Field(
        default=DEFAULT_DEPTH,
        ge=1,
        le=1024,
        description="Results held for the PLC's acknowledgement.",
    )


@dataclass(frozen=True)
class Register:
    """One entry of the map: its table, first address, width in 16-bit words (bits: 1) and
    meaning."""

    table: str  # "coil", "discrete input", "holding register", "input register"
    address: int
    name: str
    words: int
    meaning: str


REGISTER_MAP: tuple[Register, ...] = (
    Register("coil", 0, "trigger", 1, "PLC sets to trigger a part (after writing trigger_id)"),
    Register("coil", 1, "result_ack", 1, "PLC sets once it has read the presented result"),
    Register("discrete input", 0, "trigger_ready", 1, "agent can take a trigger now"),
    Register("discrete input", 1, "trigger_ack", 1, "trigger taken; PLC may reset trigger"),
    Register("discrete input", 2, "acquiring", 1, "frame being taken; keep the part still"),
    Register("discrete input", 3, "busy", 1, "acquiring or an inspection in flight"),
    Register("discrete input", 4, "inspection_completed", 1, "last inspection ended"),
    Register("discrete input", 5, "result_valid", 1, "result registers hold a new result"),
    Register("discrete input", 6, "result_updated", 1, "toggles with every presented result"),
    Register("discrete input", 7, "job_pass", 1, "presented result: part OK"),
    Register("discrete input", 8, "job_fail", 1, "presented result: part NG"),
    Register("discrete input", 9, "error", 1, "presented result has an error code"),
    Register("discrete input", 10, "buffer_full", 1, "next result overruns unless one is acked"),
    Register("discrete input", 11, "overrun", 1, "a result met a full buffer (not delivered)"),
    Register("holding register", 0, "trigger_id", 2, "PLC's id of the part to trigger"),
    Register("input register", 0, "result_id", 2, "trigger id of the presented result"),
    Register("input register", 2, "error_code", 1, "presented result's error code (0: none)"),
    Register("input register", 3, "warning_code", 1, "presented result's warning code"),
    Register("input register", 4, "processing_time_ms", 1, "ms, rounded, 65535 at most"),
    Register("input register", 5, "recipe_checksum", 1, "CRC-16/CCITT-FALSE of the recipe"),
    Register("input register", 6, "buffer_fill", 1, "results awaiting the PLC's ack"),
    Register("input register", 7, "overrun_count", 1, "results not delivered, modulo 65536"),
    Register(
        "input register", 8, "last_overrun_result_id", 2, "id of the last result not delivered"
    ),
    Register("input register", 10, "accepted_trigger_id", 2, "trigger id last accepted"),
)

_TABLE_OF_FUNCTION = {1: "c", 5: "c", 15: "c", 2: "d", 3: "h", 6: "h", 16: "h", 22: "h", 23: "h"}
_TABLE_OF_FUNCTION[4] = "i"
_WRITABLE = {"c", "h"}


def _discrete_inputs(out: PlcOutputs) -> list[bool]:
    return [
        out.trigger_ready,
        out.trigger_ack,
        out.acquiring,
        out.busy,
        out.inspection_completed,
        out.result_valid,
        out.result_updated,
        out.job_pass,
        out.job_fail,
        out.error_code != 0,
        out.buffer_full,
        out.overrun,
    ]


def _words(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def _input_registers(out: PlcOutputs) -> list[int]:
    return [
        *_words(out.result_id),
        out.error_code,
        out.warning_code,
        min(round(out.processing_time_ms), 0xFFFF),
        out.recipe_checksum,
        min(out.buffer_fill, 0xFFFF),
        out.overrun_count & 0xFFFF,
        *_words(out.last_overrun_result_id),
        *_words(out.accepted_trigger_id),
    ]


class _HandshakeStore(SimCore):
    """pymodbus's datastore hook (the server calls ``async_getValues``/``async_setValues`` for
    every request): coils and holding registers are memory, discrete inputs and input registers
    are computed from the handshake when read."""

    def __init__(self, link: ModbusPlcLink) -> None:  # no SimDevice behind it
        self._link = link
        self._coils = [False, False]
        self._holding = [0, 0]

    def device_ids(self) -> list[int]:
        return [0]

    def plc_inputs(self) -> PlcInputs:
        return PlcInputs(
            trigger=self._coils[0],
            trigger_id=(self._holding[0] << 16) | self._holding[1],
            result_ack=self._coils[1],
        )

    def _table(self, table: str) -> list[bool] | list[int]:
        out = self._link.handshake.outputs
        if table == "c":
            return self._coils
        if table == "h":
            return self._holding
        return _discrete_inputs(out) if table == "d" else _input_registers(out)

    async def async_getValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        table = _TABLE_OF_FUNCTION.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        values = self._table(table)
        if address < 0 or count < 1 or address + count > len(values):
            return ExcCodes.ILLEGAL_ADDRESS
        return values[address : address + count]

    async def async_setValues(  # noqa: N802 (pymodbus's name)
        self,
        device_id: int,
        func_code: int,
        address: int,
        values: list[int] | list[bool],
    ) -> ExcCodes | None:
        table = _TABLE_OF_FUNCTION.get(func_code)
        if table not in _WRITABLE:
            return ExcCodes.ILLEGAL_FUNCTION
        size = len(self._coils) if table == "c" else len(self._holding)
        if address < 0 or address + len(values) > size:
            return ExcCodes.ILLEGAL_ADDRESS
        for offset, value in enumerate(values):
            if table == "c":
                self._coils[address + offset] = bool(value)
            else:
                self._holding[address + offset] = int(value)
        self._link.plc_wrote()
        return None


class ModbusPlcLink(HandshakeLink):
    """The agent as a Modbus TCP server; ``open()`` starts listening, ``close()`` stops."""

    def __init__(self, settings: ModbusPlcSettings, *, recipe_checksum: int = 0) -> None:
        super().__init__(depth=settings.depth, recipe_checksum=recipe_checksum)
        self.settings = settings
        self._store = _HandshakeStore(self)
        self._server: ModbusTcpServer | None = None

    async def open(self) -> None:
        """Start listening on ``settings.host:settings.port``; ``PlcError`` if it cannot."""
        placeholder = SimDevice(0, simdata=SimData(0))  # replaced by the handshake store
        server = ModbusTcpServer(placeholder, address=(self.settings.host, self.settings.port))
        server.context = self._store
        try:
            await server.serve_forever(background=True)
        except (OSError, RuntimeError) as exc:
            raise PlcError(
                f"modbus {self.settings.host}:{self.settings.port}: cannot listen ({exc})"
            ) from exc
        self._server = server

    def plc_wrote(self) -> None:
        """A PLC write request was stored: run the handshake on the new coils and registers."""
        self._apply(self._store.plc_inputs())

    async def _flush(self) -> None:
        """Nothing to write: reads compute the registers from the handshake."""

    async def close(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
        self._fail("PLC link closed")
