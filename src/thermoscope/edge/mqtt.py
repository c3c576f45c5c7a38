"""MQTT over aiomqtt: the ``MessageBus`` of a real broker, the outbox's MQTT sink, and the
agent's retained status with a last will.

- ``MqttBus`` keeps one connection, reconnecting with back-off while the broker is away; while
  it is down ``publish`` raises ``BrokerUnavailableError`` at once (nothing waits in memory: results
  wait in the outbox and the ``Drainer`` of ``MqttSink`` publishes them when the broker is back,
  in order, with their original ``seq``). Every publish and subscription is QoS 1; ``publish``
  returns once the broker acknowledged (PUBACK). Subscriptions are renewed on every connection.
- ``StationLink`` ties a bus to a station: on every connection it sets the last will (the
  retained status ``offline``, numbered once per connection that came up) and publishes the
  retained status ``online`` (or ``paused``);
  it subscribes the command topic to a ``CommandRouter``; ``close`` publishes ``offline``
  itself (a clean disconnect does not fire the will).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from thermoscope.edge.delivery import Backoff, DeliveryError
from thermoscope.edge.messaging import (
    MQTT_SINK,
    BrokerUnavailableError,
    CommandRouter,
    Dispatch,
    Handler,
    MessageBus,
    MessagingError,
    Topics,
    encode,
    status_payload,
)
from thermoscope.edge.outbox import Kind, Outbox, Pending

log = logging.getLogger(__name__)

#: Makes the will for a new connection: ``(topic, payload)``, or ``None`` for no will.
WillFactory = Callable[[], tuple[str, bytes] | None]
#: Called on every new connection (after subscriptions are renewed).
OnConnect = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and who we are.

    Attributes:
        host, port: the broker.
        client_id: the MQTT client identifier (unique per agent).
        username, password: credentials, when the broker needs them.
        keepalive_s: MQTT keep-alive (s): the broker fires the will after 1.5 times this
            without a word from the agent.
        timeout_s: connect and publish time-out (s).
        persistent_session: keep the session (subscriptions and QoS 1 messages queued while
            away) across connections (MQTT clean session off; needs a ``client_id``). For
            consumers that must not miss a message; the agent itself starts clean (commands
            sent while it was away are stale).
    """

    host: str
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 15
    timeout_s: float = 10.0
    persistent_session: bool = False

    def __post_init__(self) -> None:
        if self.persistent_session and not self.client_id:
            raise MessagingError(f"MQTT broker {self.host}: a persistent session needs a client_id")


class MqttBus:
    """A ``MessageBus`` on an MQTT broker (see the module docstring).

    Args:
        address: the broker.
        reconnect: back-off between connection attempts.
        will: makes the last will of each new connection.
        on_connect: runs on each new connection.
    """

    def __init__(
        self,
        address: BrokerAddress,
        *,
        reconnect: Backoff | None = None,
        will: WillFactory | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self.address = address
        self.reconnect = reconnect or Backoff(initial_s=0.5, max_s=10.0)
        self.table = Dispatch()
        self.connections = 0
        self._will = will
        self._on_connect = on_connect
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._rng = random.Random()

    @property
    def connected(self) -> bool:
        """Whether a connection is up now."""
        return self._client is not None

    def start(self) -> None:
        """Start connecting (in the background; see ``wait_connected``)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mqtt")

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until connected (subscriptions renewed, the on-connect step done).

        Raises:
            BrokerUnavailableError: not connected within ``timeout_s``.
        """
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            where = f"{self.address.host}:{self.address.port}"
            raise BrokerUnavailableError(
                f"MQTT broker {where}: no connection in {timeout_s} s"
            ) from None

    async def _run(self) -> None:
        failures = 0
        while True:
            wait = self.reconnect.delay(1, self._rng)
            made = self._will() if self._will is not None else None
            will = None if made is None else aiomqtt.Will(made[0], made[1], qos=1, retain=True)
            client = aiomqtt.Client(
                self.address.host,
                self.address.port,
                identifier=self.address.client_id or None,
                username=self.address.username,
                password=self.address.password,
                will=will,
                clean_session=not self.address.persistent_session,
                keepalive=self.address.keepalive_s,
                timeout=self.address.timeout_s,
            )
            try:
                async with client:
                    failures = 0
                    self._client = client
                    self.connections += 1
                    for topic_filter in self.table.handlers:
                        await client.subscribe(topic_filter, qos=1)
                    if self._on_connect is not None:
                        try:
                            await self._on_connect()
                        except Exception:  # the connection stays useful without it
                            log.exception("MQTT: the on-connect step failed")
                    self._connected.set()
                    async for message in client.messages:
                        await self.table.dispatch(str(message.topic), _bytes(message.payload))
            except aiomqtt.MqttError as exc:
                failures += 1
                wait = self.reconnect.delay(failures, self._rng)
                log.warning(
                    "MQTT broker %s:%d: %s; reconnecting in %.2f s",
                    self.address.host,
                    self.address.port,
                    exc,
                    wait,
                )
            finally:
                self._client = None
                self._connected.clear()
            await asyncio.sleep(wait)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1; returns once the broker acknowledged.

        Raises:
            BrokerUnavailableError: not connected, or the connection failed before the
                acknowledgement.
        """
        client = self._client
        if client is None:
            raise BrokerUnavailableError(f"{topic}: not connected to the MQTT broker")
        try:
            await client.publish(
                topic, payload, qos=1, retain=retain, timeout=self.address.timeout_s
            )
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailableError(f"{topic}: {exc}") from None

    async def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Dispatch ``topic_filter``'s messages to ``handler`` (QoS 1, renewed on reconnect)."""
        new = topic_filter not in self.table.handlers
        self.table.add(topic_filter, handler)
        client = self._client
        if new and client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # renewed on the next connection
                await client.subscribe(topic_filter, qos=1)

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


class MqttSink:
    """The outbox's MQTT sink: results to the result topic, change-feed events and drift alarms
    to the event topic, each payload with its ``seq`` and its content key as ``id``."""

    name = MQTT_SINK

    def __init__(self, bus: MessageBus, topics: Topics) -> None:
        self.bus = bus
        self.topics = topics

    async def deliver(self, entry: Pending) -> None:
        """Publish one entry (QoS 1).

        Raises:
            DeliveryError: unreachable when the broker is away; permanent for an entry kind
                MQTT does not carry.
        """
        if entry.kind is Kind.RESULT:
            topic = self.topics.result
        elif entry.kind in (Kind.EVENT, Kind.ALARM):
            topic = self.topics.event
        else:
            raise DeliveryError(f"entry {entry.key}: MQTT carries no {entry.kind}", permanent=True)
        try:
            await self.bus.publish(topic, encode({**entry.payload, "id": entry.key}))
        except BrokerUnavailableError as exc:
            raise DeliveryError(str(exc), unreachable=True) from None


class StationLink:
    """A station on the broker: retained status with a last will, and the command topic.

    Args:
        address: the broker.
        topics: the station's topics.
        outbox: where the status topic's ``seq`` counter is kept.
        info: what the status carries besides its state (agent, model, model_version, recipe,
            recipe_checksum); ``update`` changes it.
        commands: the command table (subscribed to the command topic).
        reconnect: back-off between connection attempts.
    """

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        outbox: Outbox,
        *,
        info: Mapping[str, Any] | None = None,
        commands: CommandRouter | None = None,
        reconnect: Backoff | None = None,
    ) -> None:
        self.topics = topics
        self.outbox = outbox
        self.info: dict[str, Any] = dict(info or {})
        self.state = "online"
        self.commands = commands or CommandRouter()
        self._will_payload: bytes | None = None
        self.bus = MqttBus(address, reconnect=reconnect, will=self._will, on_connect=self._up)

    async def start(self) -> None:
        """Subscribe the command topic and start connecting."""
        await self.bus.subscribe(self.topics.command, self.commands)
        self.bus.start()

    def _status(self, state: str) -> bytes:
        seq = self.outbox.take_sequence(self.topics.status)
        return encode(status_payload(state, self.info, seq))

    def _will(self) -> tuple[str, bytes]:
        # one number per connection that came up: failed attempts reuse the same will
        if self._will_payload is None:
            self._will_payload = self._status("offline")
        return self.topics.status, self._will_payload

    async def _up(self) -> None:
        self._will_payload = None
        await self.announce()

    async def announce(self) -> None:
        """Publish the retained status (``self.state``); harmless while disconnected."""
        with contextlib.suppress(BrokerUnavailableError):
            await self.bus.publish(self.topics.status, self._status(self.state), retain=True)

    async def update(self, *, state: str | None = None, **info: Any) -> None:
        """Change the state (``online``, ``paused``) or the info and publish the status."""
        if state is not None:
            if state not in ("online", "paused"):
                raise MessagingError(f"status state {state!r}: online or paused")
            self.state = state
        self.info.update(info)
        await self.announce()

    async def close(self) -> None:
        """Publish the retained ``offline`` status, then disconnect."""
        self.state = "offline"
        await self.announce()
        await self.bus.close()
