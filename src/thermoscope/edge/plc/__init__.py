"""The agent's PLC side: the handshake and result buffer (``handshake``), the ``PlcLink``
interface with an in-memory link (``link``), and the protocol links: ``opcua`` (the PLC's OPC UA
server as a client, and an OPC 40100 Machine Vision server) and ``modbus`` (a Modbus TCP server
the PLC polls). The protocol modules need the ``edge`` extra and are imported by name."""

from __future__ import annotations

from thermoscope.edge.plc.handshake import (
    Delivery,
    Handshake,
    InspectionResult,
    PlcError,
    PlcInputs,
    PlcOutputs,
    recipe_checksum,
)
from thermoscope.edge.plc.link import HandshakeLink, MemoryPlcLink, PlcLink, Trigger

__all__ = [
    "Delivery",
    "Handshake",
    "HandshakeLink",
    "InspectionResult",
    "MemoryPlcLink",
    "PlcError",
    "PlcInputs",
    "PlcLink",
    "PlcOutputs",
    "Trigger",
    "recipe_checksum",
]
