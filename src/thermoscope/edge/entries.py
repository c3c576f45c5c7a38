"""The outbox's entries and what it answers: kinds, retention classes, delivery states, the
record to write, what was stored, what waits for a sink, the depth for a status page, and the
content key of a JSON record. ``thermoscope.edge.outbox`` re-exports every name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from thermoscope.edge import EdgeError


class Kind(StrEnum):
    """What an entry is."""

    RESULT = "result"
    FRAME = "frame"
    EVENT = "event"
    ALARM = "alarm"


class Retention(StrEnum):
    """How an entry's frame file may be evicted under disk pressure.

    ``keep``: never (NG frames, drift alarms, every entry without a file); ``sample``: an OK
    sample, evicted oldest first when a new frame needs the room.
    """

    KEEP = "keep"
    SAMPLE = "sample"


class DeliveryState(StrEnum):
    """Where an entry stands with one sink."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"


class OutboxError(EdgeError):
    """The outbox file cannot be opened or written, or a record is malformed (names which)."""


@dataclass(frozen=True)
class Record:
    """One entry to record.

    Attributes:
        kind: what it is.
        key: its content key (idempotency): a frame's content id, or ``content_key(payload)``.
        payload: a JSON object (finite numbers only).
        sinks: the sinks that must receive it.
        retention: ``sample`` for an OK sample's frame, else ``keep``.
        data: the frame file's bytes (``None`` for records without a file).
        filename: the frame file's name.
        sequence: a counter name (an MQTT topic); the entry takes its next value as
            ``payload["seq"]``.
    """

    kind: Kind
    key: str
    payload: Mapping[str, Any]
    sinks: tuple[str, ...]
    retention: Retention = Retention.KEEP
    data: bytes | None = None
    filename: str | None = None
    sequence: str | None = None


@dataclass(frozen=True)
class Stored:
    """What ``record`` did with one record.

    Attributes:
        id: the entry's id (insertion order), ``None`` when it was not stored.
        key: its content key.
        created: ``False`` when an entry with this key was already there.
        stored_file: whether its frame file is on disk (``False`` for records without one).
        refused: the reason a frame file was not stored (``"disk full"``), else ``""``.
        seq: the sequence number it took, if any.
    """

    id: int | None
    key: str
    created: bool
    stored_file: bool
    refused: str = ""
    seq: int | None = None


@dataclass(frozen=True)
class Pending:
    """An entry waiting for a sink.

    Attributes:
        id, key, kind: the entry.
        payload: its JSON object (with ``seq`` when it took one).
        filename, data: its frame file (``None`` for records without one or evicted samples).
        attempts: failed deliveries to this sink so far.
        created_s: when it was recorded (Unix time, s).
    """

    id: int
    key: str
    kind: Kind
    payload: dict[str, Any]
    filename: str | None
    data: bytes | None
    attempts: int
    created_s: float


@dataclass(frozen=True)
class Depth:
    """The outbox's state for a status page.

    Attributes:
        pending: entries waiting, per sink.
        rejected: entries a sink refused for good, per sink.
        entries: entries on file.
        file_bytes: bytes of frame files held (counted against ``max_bytes``).
        max_bytes: the budget of frame files.
        disk_full: a frame that had to be kept was refused since the last time one fitted.
        evicted_samples, dropped_samples, refused_frames: OK samples evicted, OK samples not
            stored, and NG / alarm frames refused, since the file was created.
    """

    pending: dict[str, int]
    rejected: dict[str, int]
    entries: int
    file_bytes: int
    max_bytes: int
    disk_full: bool
    evicted_samples: int
    dropped_samples: int
    refused_frames: int


def content_key(payload: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a JSON object's canonical form (sorted keys, no spaces, UTF-8).

    Raises:
        OutboxError: the object holds something JSON cannot (NaN, infinity, a non-str key).
    """
    return hashlib.sha256(canonical(payload).encode("utf-8")).hexdigest()


def canonical(payload: Mapping[str, Any]) -> str:
    """A JSON object's canonical text (sorted keys, no spaces, finite numbers only).

    Raises:
        OutboxError: it holds something JSON cannot.
    """
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OutboxError(f"payload is not finite JSON: {exc}") from None
