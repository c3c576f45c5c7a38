"""Messaging behind a small interface: ``publish``, ``subscribe``, ``close``, with a dispatch
table from topic filter to handler; the QC topics and their payloads; the NG change feed; the
command table; and the outbox records a part produces.

- ``MessageBus`` is the interface (``thermoscope.edge.mqtt.MqttBus`` is the MQTT one over
  aiomqtt; ``MemoryBus`` an in-memory one for unit tests). Every message is QoS 1 (at least once).
- ``Topics``: ``qc/v1/{site}/{line}/{station}/{result|event|status|command}``.
- Payloads are JSON objects; every published one carries ``seq`` (a per-topic counter kept in
  the outbox, so it survives restarts and a gap means a lost message) and ``id`` (the entry's
  content key: a duplicate delivery repeats both). docs/edge.md lists every field.
- ``DefectFeed`` turns consecutive parts' NG findings into a change feed: a defect condition
  (rule and region) that turns NG gives ``new``, each further NG part ``update``, the first part
  without it ``end``.
- ``CommandRouter`` is the command topic's dispatch table (``trigger``, ``pause``,
  ``resume`` ... as the agent registers them).
- ``PartReporter`` builds a part's outbox records (the result, its change-feed events, drift
  alarms) so that the agent writes them in the same transaction as the flagged frame.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from thermoscope.edge import EdgeError
from thermoscope.edge.outbox import Kind, Record, content_key

log = logging.getLogger(__name__)

#: A message handler: ``await handler(topic, payload)``.
Handler = Callable[[str, bytes], Awaitable[None]]
#: The topic root and version of the QC topics.
TOPIC_ROOT = "qc/v1"
#: The channels under a station's topic, in the order docs/edge.md lists them.
CHANNELS = ("result", "event", "status", "command")
#: The outbox sink name of MQTT.
MQTT_SINK = "mqtt"
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class MessagingError(EdgeError):
    """A topic, payload or command is malformed (names which and why)."""


class BrokerUnavailableError(MessagingError):
    """The broker cannot be reached right now; the message was not published."""


class MessageBus(Protocol):
    """Publish and subscribe, QoS 1."""

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish; return once the broker has it.

        Raises:
            BrokerUnavailableError: not connected, or the broker did not acknowledge.
        """
        ...

    async def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Call ``handler`` for every message on topics matching ``topic_filter`` (``+`` and
        ``#`` wildcards); kept across reconnections."""
        ...

    async def close(self) -> None:
        """Disconnect for good."""
        ...


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches an MQTT ``topic_filter`` (``+``: one level, ``#``: the rest)."""
    parts, levels = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(parts):
        if part == "#":
            return True
        if i >= len(levels) or (part != "+" and part != levels[i]):
            return False
    return len(parts) == len(levels)


@dataclass
class Dispatch:
    """A table from topic filter to handlers; ``dispatch`` calls every matching handler, logging
    (not raising) a handler's failure so that one bad message does not stop the others."""

    handlers: dict[str, list[Handler]] = field(default_factory=dict)

    def add(self, topic_filter: str, handler: Handler) -> None:
        """Register ``handler`` for ``topic_filter``."""
        self.handlers.setdefault(topic_filter, []).append(handler)

    async def dispatch(self, topic: str, payload: bytes) -> int:
        """Call the handlers of ``topic``; how many were called."""
        called = 0
        for topic_filter, handlers in self.handlers.items():
            if not topic_matches(topic_filter, topic):
                continue
            for handler in handlers:
                called += 1
                try:
                    await handler(topic, payload)
                except Exception:
                    log.exception("handler of %s failed on a message to %s", topic_filter, topic)
        return called


@dataclass
class MemoryBus:
    """An in-memory ``MessageBus`` for unit tests: ``messages`` keeps what was published,
    ``retained`` the last retained message per topic; ``online = False`` makes ``publish``
    raise ``BrokerUnavailableError`` like a broker that is down."""

    online: bool = True
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    retained: dict[str, bytes] = field(default_factory=dict)
    table: Dispatch = field(default_factory=Dispatch)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Keep the message and hand it to the matching subscribers."""
        if not self.online:
            raise BrokerUnavailableError(f"{topic}: the in-memory broker is offline")
        self.messages.append((topic, payload, retain))
        if retain:
            self.retained[topic] = payload
        await self.table.dispatch(topic, payload)

    async def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Register a handler."""
        self.table.add(topic_filter, handler)

    async def close(self) -> None:
        """Go offline."""
        self.online = False

    def payloads(self, topic: str) -> list[dict[str, Any]]:
        """The JSON payloads published to ``topic``, in order."""
        return [json.loads(p) for t, p, _ in self.messages if t == topic]


@dataclass(frozen=True)
class Topics:
    """A station's QC topics: ``qc/v1/{site}/{line}/{station}/{channel}``.

    Raises:
        MessagingError: a name is empty, too long, or holds characters other than letters,
            digits, ``_``, ``.`` and ``-`` (``/``, ``+`` and ``#`` would change the topic).
    """

    site: str
    line: str
    station: str

    def __post_init__(self) -> None:
        for name in ("site", "line", "station"):
            value = getattr(self, name)
            if not _SEGMENT.match(value):
                raise MessagingError(
                    f"{name} {value!r}: use 1 to 64 letters, digits, '_', '.' or '-'"
                )

    def channel(self, channel: str) -> str:
        """The topic of one channel (``result``, ``event``, ``status``, ``command``)."""
        if channel not in CHANNELS:
            raise MessagingError(f"channel {channel!r}: one of {', '.join(CHANNELS)}")
        return f"{TOPIC_ROOT}/{self.site}/{self.line}/{self.station}/{channel}"

    @property
    def result(self) -> str:
        """Part results."""
        return self.channel("result")

    @property
    def event(self) -> str:
        """The NG change feed and drift alarms."""
        return self.channel("event")

    @property
    def status(self) -> str:
        """The agent's retained status (``offline`` by last will)."""
        return self.channel("status")

    @property
    def command(self) -> str:
        """Commands to the agent."""
        return self.channel("command")


def utc_now() -> str:
    """The time now as ISO 8601 UTC with milliseconds (``2026-01-02T03:04:05.678Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(payload: Mapping[str, Any]) -> bytes:
    """A payload's JSON bytes (UTF-8, no NaN).

    Raises:
        MessagingError: it holds something JSON cannot.
    """
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise MessagingError(f"payload is not finite JSON: {exc}") from None


@dataclass(frozen=True)
class PartOutcome:
    """What the agent decided about one part, as the result payload carries it.

    Attributes:
        part: the part's id (the trigger id echoed, or the agent's own counter).
        inspection: ``Inspection.to_json()`` (verdict and every finding).
        processing_ms: frame in to verdict out (ms).
        recipe, recipe_checksum: the recipe's name and the checksum word the PLC sees.
        model, model_version: the active model ("" when the recipe alone decides).
        frame_id: the frame's content id ("" when not computed).
        ts: when the part was decided (ISO 8601 UTC).
    """

    part: str
    inspection: Mapping[str, Any]
    processing_ms: float
    recipe: str = ""
    recipe_checksum: int = 0
    model: str = ""
    model_version: str = ""
    frame_id: str = ""
    ts: str = field(default_factory=utc_now)

    @property
    def verdict(self) -> str:
        """OK, WARN, NG or RETAKE."""
        return str(self.inspection["verdict"])

    def payload(self) -> dict[str, Any]:
        """The result payload (``seq`` and ``id`` are added when it is recorded and sent)."""
        return {
            "part": self.part,
            "verdict": self.verdict,
            "ts": self.ts,
            "processing_ms": round(float(self.processing_ms), 3),
            "recipe": self.recipe,
            "recipe_checksum": int(self.recipe_checksum),
            "model": self.model,
            "model_version": self.model_version,
            "frame_id": self.frame_id,
            "findings": list(self.inspection.get("findings", [])),
        }


@dataclass
class _Open:
    first_part: str
    parts: int


@dataclass
class DefectFeed:
    """The NG change feed over consecutive parts (see the module docstring)."""

    open: dict[tuple[str, str], _Open] = field(default_factory=dict)

    def observe(self, outcome: PartOutcome) -> list[dict[str, Any]]:
        """The events this part causes: ``end`` for conditions it no longer has, then ``new`` or
        ``update`` for each NG condition it has (by rule, then region)."""
        ng = {
            (str(f["rule"]), str(f.get("region", ""))): f
            for f in outcome.inspection.get("findings", [])
            if f.get("verdict") == "NG"
        }
        events: list[dict[str, Any]] = []
        for key in sorted(set(self.open) - set(ng)):
            state = self.open.pop(key)
            events.append(_defect("end", key, outcome, state, None))
        for key in sorted(ng):
            known = self.open.get(key)
            if known is None:
                known = self.open[key] = _Open(outcome.part, 1)
                change = "new"
            else:
                known.parts += 1
                change = "update"
            events.append(_defect(change, key, outcome, known, ng[key]))
        return events


def _defect(
    change: str,
    key: tuple[str, str],
    outcome: PartOutcome,
    state: _Open,
    finding: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "type": "defect",
        "change": change,
        "condition": f"{key[0]}@{key[1]}" if key[1] else key[0],
        "rule": key[0],
        "region": key[1],
        "part": outcome.part,
        "first_part": state.first_part,
        "parts": state.parts,
        "value": None if finding is None else finding.get("value"),
        "limit": None if finding is None else finding.get("limit"),
        "unit": "" if finding is None else finding.get("unit", ""),
        "ts": outcome.ts,
    }


def drift_alarm(part: str, detail: Mapping[str, Any], *, ts: str | None = None) -> dict[str, Any]:
    """The event payload of a drift alarm raised at ``part`` (``detail``: the drift watch's
    JSON object: which statistic, its value and limits)."""
    return {
        "type": "drift",
        "change": "alarm",
        "part": part,
        "detail": dict(detail),
        "ts": ts or utc_now(),
    }


def status_payload(state: str, info: Mapping[str, Any], seq: int) -> dict[str, Any]:
    """The status payload: ``state`` (``online``, ``paused``, ``offline``) with the agent's
    ``info`` (agent, model, model_version, recipe, recipe_checksum), ``seq`` and ``ts``."""
    return {"state": state, **dict(info), "seq": seq, "ts": utc_now()}


@dataclass
class PartReporter:
    """Builds the outbox records of one part for MQTT (and a webhook): the result on the
    result topic and the change-feed events and drift alarms on the event topic.

    Attributes:
        topics: the station's topics (each topic is also its ``seq`` counter's name).
        sinks: the sinks results and events go to (``mqtt``, ``webhook``).
        feed: the NG change feed.
    """

    topics: Topics
    sinks: tuple[str, ...] = (MQTT_SINK,)
    feed: DefectFeed = field(default_factory=DefectFeed)

    def records(
        self, outcome: PartOutcome, alarms: Sequence[Mapping[str, Any]] = ()
    ) -> list[Record]:
        """The part's records (result first); write them with the flagged frame, if any, in
        one ``Outbox.record`` call."""
        result = outcome.payload()
        records = [
            Record(
                Kind.RESULT, content_key(result), result, self.sinks, sequence=self.topics.result
            )
        ]
        for event in self.feed.observe(outcome):
            records.append(
                Record(
                    Kind.EVENT, content_key(event), event, self.sinks, sequence=self.topics.event
                )
            )
        for detail in alarms:
            alarm = drift_alarm(outcome.part, detail, ts=outcome.ts)
            records.append(
                Record(
                    Kind.ALARM, content_key(alarm), alarm, self.sinks, sequence=self.topics.event
                )
            )
        return records


#: A command handler: ``await handler(arguments)`` (the payload without ``command``).
CommandHandler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class CommandRouter:
    """The command topic's dispatch table: ``{"command": "<name>", ...arguments}`` calls the
    handler registered under ``name`` with the arguments; unknown commands and malformed
    payloads are logged and ignored (``refused`` counts them)."""

    handlers: dict[str, CommandHandler] = field(default_factory=dict)
    refused: int = 0

    def on(self, name: str, handler: CommandHandler) -> None:
        """Register the handler of command ``name``."""
        self.handlers[name] = handler

    async def __call__(self, topic: str, payload: bytes) -> None:
        """Handle one message of the command topic."""
        try:
            body = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._refuse(topic, f"not JSON: {exc}")
            return
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            self._refuse(topic, 'need a JSON object with a "command" string')
            return
        name = body.pop("command")
        handler = self.handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            self._refuse(topic, f"unknown command {name!r} (known: {known})")
            return
        await handler(body)

    def _refuse(self, topic: str, why: str) -> None:
        self.refused += 1
        log.warning("command on %s refused: %s", topic, why)
