"""Delivery: drains the outbox to its sinks, with exponential back-off and jitter.

A ``Drainer`` takes one sink's pending entries from the ``Outbox`` (live before backlog), sends
up to ``parallel`` at a time, and marks what arrived. What a failure does depends on whose fault
it is (``DeliveryError``):

- **unreachable** (connection refused, time-out, a lost answer, a refused token, a missing
  project): nothing is wrong with the entry; the whole sink waits ``Backoff.delay(n)`` after its
  n-th failure in a row (exponential, capped, with jitter so that many agents do not retry in
  step), then tries again. Nothing is dropped however long the sink is away.
- **transient** (HTTP 429 or 5xx): the entry is held back by its own back-off (or the server's
  ``Retry-After``) and counted; others go on.
- **permanent** (the receiver refuses this entry: HTTP 400, 413, 422): the entry is marked
  rejected for that sink with the reason, kept on file, and shown on the status page.

Delivery is at-least-once, made exactly-once by the receivers: the server finds a frame by its
content (a retry after a lost answer gets "200 already ingested" and the entry is marked
delivered), and every MQTT or webhook payload carries the entry's content key as ``id``.

``ServerSink`` sends flagged frames to the annotation server's ingest route
(``POST /api/v1/projects/{project}/frames``: the file, the edge's inspection as ``findings`` and
a ``meta`` object), authenticated by an API token with the ``ingest`` scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from thermoscope.edge import EdgeError
from thermoscope.edge.outbox import Kind, Outbox, Pending, Record, Retention

log = logging.getLogger(__name__)

#: Where the annotation server's API lives under its base URL.
API_PREFIX = "/api/v1"
#: The outbox sink name of the annotation server.
SERVER_SINK = "server"
#: How often an idle drainer purges finished entries (s).
PURGE_EVERY_S = 60.0


class DeliveryError(EdgeError):
    """A delivery failed; ``unreachable``: the sink is away (retry the sink later);
    ``permanent``: the receiver refuses this entry for good; else retry this entry later
    (after ``retry_after_s`` if the receiver said when)."""

    def __init__(
        self,
        message: str,
        *,
        unreachable: bool = False,
        permanent: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class Sink(Protocol):
    """Something entries are delivered to (the server, an MQTT broker, a webhook)."""

    @property
    def name(self) -> str:
        """The outbox sink name."""
        ...

    async def deliver(self, entry: Pending) -> None:
        """Deliver one entry; return only once the receiver has it.

        Raises:
            DeliveryError: it did not arrive (says whose fault it is).
        """
        ...


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter.

    Attributes:
        initial_s: delay after the first failure (s).
        factor: growth per further failure.
        max_s: the cap (s).
        jitter: share of the delay drawn at random (0: none; 0.5: between half and all of it).
    """

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s and self.factor >= 1 and 0 <= self.jitter <= 1):
            raise EdgeError(
                "back-off: need 0 < initial_s <= max_s, factor >= 1 and 0 <= jitter <= 1, got "
                f"{self.initial_s}, {self.max_s}, {self.factor}, {self.jitter}"
            )

    def delay(self, failures: int, rng: random.Random) -> float:
        """The wait after ``failures`` failures in a row (>= 1), in seconds."""
        exponent = min(max(failures, 1) - 1, 64)
        base = min(self.max_s, self.initial_s * self.factor**exponent)
        return base * (1.0 - self.jitter * rng.random())


@dataclass
class DrainStats:
    """What one pass of a ``Drainer`` did.

    Attributes:
        delivered, rejected, held_back: entries delivered, refused for good, and held back.
        unreachable: the sink was away (the error text), else ``""``.
    """

    delivered: int = 0
    rejected: int = 0
    held_back: int = 0
    unreachable: str = ""


@dataclass
class Drainer:
    """Drains one sink's entries from an outbox (see the module docstring).

    Attributes:
        outbox: the outbox.
        sink: the sink.
        backoff: the back-off of the sink and of held-back entries.
        batch: entries taken per pass.
        parallel: deliveries in flight at once.
        idle_s: wait when nothing is pending (s); ``wake`` cuts it short.
        purge_after_s: entries every sink is done with are deleted this long after they were
            recorded (s), checked at most once a minute while idle.
        rng: the jitter's random numbers.
    """

    outbox: Outbox
    sink: Sink
    backoff: Backoff = field(default_factory=Backoff)
    batch: int = 32
    parallel: int = 4
    idle_s: float = 0.5
    purge_after_s: float = 3600.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = field(default=0, init=False)
    _purged_at: float = field(default=float("-inf"), init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def wake(self) -> None:
        """Tell the drainer new entries are waiting (call after ``Outbox.record``)."""
        self._wake.set()

    async def drain_once(self) -> DrainStats:
        """One pass: send up to ``batch`` due entries, mark what arrived."""
        name = self.sink.name
        entries = await asyncio.to_thread(self.outbox.pending, name, self.batch)
        stats = DrainStats()
        if not entries:
            return stats
        gate = asyncio.Semaphore(self.parallel)

        async def send(entry: Pending) -> DeliveryError | None:
            async with gate:
                try:
                    await self.sink.deliver(entry)
                except DeliveryError as exc:
                    return exc
                return None

        outcomes = await asyncio.gather(*(send(e) for e in entries))
        done = [e.id for e, error in zip(entries, outcomes, strict=True) if error is None]
        await asyncio.to_thread(self.outbox.mark_delivered, name, done)
        await asyncio.to_thread(self.outbox.checkpoint)
        stats.delivered = len(done)
        for entry, error in zip(entries, outcomes, strict=True):
            if error is None:
                continue
            if error.unreachable:
                stats.unreachable = str(error)
            elif error.permanent:
                log.error("%s refused entry %s for good: %s", name, entry.key, error)
                await asyncio.to_thread(self.outbox.mark_rejected, name, entry.id, str(error))
                stats.rejected += 1
            else:
                delay = error.retry_after_s
                if delay is None:
                    delay = self.backoff.delay(entry.attempts + 1, self.rng)
                await asyncio.to_thread(self.outbox.retry_later, name, entry.id, delay, str(error))
                stats.held_back += 1
        return stats

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set: back off while the sink is away, idle when empty."""
        while not stop.is_set():
            stats = await self.drain_once()
            if stats.unreachable:
                self.failures += 1
                wait = self.backoff.delay(self.failures, self.rng)
                log.warning(
                    "%s unreachable (%d in a row), retrying in %.2f s: %s",
                    self.sink.name,
                    self.failures,
                    wait,
                    stats.unreachable,
                )
            else:
                if self.failures:
                    log.info("%s reachable again after %d failures", self.sink.name, self.failures)
                self.failures = 0
                if stats.delivered or stats.rejected:
                    continue
                wait = self.idle_s
                now = time.monotonic()
                if now - self._purged_at >= PURGE_EVERY_S:
                    self._purged_at = now
                    await asyncio.to_thread(self.outbox.purge, self.purge_after_s)
            await _wait(stop, self._wake, wait)
            self._wake.clear()


async def _wait(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` or ``wake`` is set."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter


def sampled(key: str, share: float) -> bool:
    """Whether the OK part with content key ``key`` (hex) falls in the sampled ``share``
    (0..1) of OK parts. Decided by the key, not by chance, so the same frame is always (or
    never) sampled, on every agent and after a restart."""
    if not 0.0 <= share <= 1.0:
        raise EdgeError(f"OK sample share {share}: must be between 0 and 1")
    try:
        position = int(key[:8], 16) / float(1 << 32)
    except ValueError:
        raise EdgeError(f"content key {key[:16]!r}: not hexadecimal") from None
    return position < share


def flagged_frame(
    *,
    content_id: str,
    data: bytes,
    filename: str,
    inspection: Mapping[str, Any],
    meta: Mapping[str, Any],
    sample: bool,
    sinks: tuple[str, ...] = (SERVER_SINK,),
) -> Record:
    """The outbox record of a flagged frame for the server.

    Args:
        content_id: the frame's content id (``thermoscope.storage.identity``): the key the
            server also finds the frame by.
        data: the file as the camera wrote it.
        filename: its name.
        inspection: the edge's inspection as the server's ``findings`` field takes it
            (``Inspection.to_json()`` with ``model`` and ``model_version``).
        meta: a JSON object the server keeps with the frame (part id, station, why flagged).
        sample: ``True`` for an OK sample (evicted first under disk pressure), ``False`` for an
            NG or RETAKE frame or a drift alarm (never evicted).
        sinks: the sinks that must receive it.
    """
    return Record(
        Kind.FRAME,
        content_id,
        {"inspection": dict(inspection), "meta": dict(meta)},
        sinks,
        Retention.SAMPLE if sample else Retention.KEEP,
        data,
        filename,
    )


class ServerSink:
    """Flagged frames to the annotation server's ingest route, over HTTP (httpx).

    Args:
        base_url: the server, e.g. ``http://annotation.local:8000``.
        token: an API token with the ``ingest`` scope of a user who may ingest into the
            project (annotator, reviewer or admin).
        project_id: the project the frames go to.
        timeout_s: per-request time-out (s).
        transport: an httpx transport (tests: fault injection in front of a real server).
    """

    name = SERVER_SINK

    def __init__(
        self,
        base_url: str,
        token: str,
        project_id: int,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise EdgeError(f"server url {base_url!r}: must start with http:// or https://")
        self.url = f"{base_url.rstrip('/')}{API_PREFIX}/projects/{project_id}/frames"
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def deliver(self, entry: Pending) -> None:
        """POST the entry's file with its inspection and meta; 200 (already there) and 201
        (new) both count as delivered."""
        if entry.data is None or entry.filename is None:
            raise DeliveryError(f"entry {entry.key}: no frame file to send", permanent=True)
        meta = {**entry.payload.get("meta", {}), "edge_key": entry.key}
        form = {"meta": json.dumps(meta, allow_nan=False)}
        if entry.payload.get("inspection"):
            form["findings"] = json.dumps(entry.payload["inspection"], allow_nan=False)
        try:
            response = await self._client.post(
                self.url,
                files={"file": (entry.filename, entry.data, "application/octet-stream")},
                data=form,
            )
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"{self.url}: {type(exc).__name__}: {exc}", unreachable=True
            ) from None
        raise_for_answer(self.url, response)


def raise_for_answer(url: str, response: httpx.Response) -> None:
    """Nothing for 2xx; else the ``DeliveryError`` the status means (see the module docstring)."""
    code = response.status_code
    if 200 <= code < 300:
        return
    detail = response.text[:500]
    message = f"{url}: HTTP {code}: {detail}"
    if code in (401, 403, 404):
        raise DeliveryError(message, unreachable=True)
    if code == 429 or code >= 500:
        retry = response.headers.get("retry-after", "")
        after = float(retry) if retry.isdigit() else None
        raise DeliveryError(message, retry_after_s=after)
    raise DeliveryError(message, permanent=True)
