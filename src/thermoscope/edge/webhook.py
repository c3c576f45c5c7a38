"""The webhook sink: results and events POSTed as JSON to a URL, signed with HMAC-SHA256.

Each entry is one ``POST`` of its payload (the MQTT payload: with ``seq``, plus ``id`` and
``kind``), with the headers

- ``X-Thermoscope-Id``: the entry's content key (receivers drop duplicates by it);
- ``X-Thermoscope-Timestamp``: Unix time of sending, in whole seconds;
- ``X-Thermoscope-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed by the shared secret,
  of ``<timestamp>.`` followed by the body's bytes.

A receiver recomputes the signature (``verify``) and refuses old timestamps, so a captured
request cannot be replayed later. Retries are the ``Drainer``'s: exponential back-off with
jitter while the receiver is unreachable or answers 429 / 5xx; 4xx refuses the entry for good.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import httpx

from thermoscope.edge import EdgeError
from thermoscope.edge.delivery import DeliveryError, raise_for_answer
from thermoscope.edge.messaging import encode
from thermoscope.edge.outbox import Kind, Pending

#: The outbox sink name of the webhook.
WEBHOOK_SINK = "webhook"
SIGNATURE_HEADER = "X-Thermoscope-Signature"
TIMESTAMP_HEADER = "X-Thermoscope-Timestamp"
ID_HEADER = "X-Thermoscope-Id"
#: Shortest shared secret accepted (bytes).
MIN_SECRET_BYTES = 16


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=<hex HMAC-SHA256(secret, "<ts>." + body)>``."""
    mac = hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether a request's signature is right and its timestamp within ``tolerance_s`` of
    ``now`` (s); for receivers. ``headers`` is looked up case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit():
        return False
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(stamp), body), given)


class WebhookSink:
    """POSTs results and events to ``url``, signed (see the module docstring).

    Args:
        url: the receiver.
        secret: the shared secret (at least 16 bytes).
        timeout_s: per-request time-out (s).
        clock: Unix time (s) for the timestamp.
        transport: an httpx transport (tests).

    Raises:
        EdgeError: the URL is not http(s) or the secret is too short.
    """

    name = WEBHOOK_SINK

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise EdgeError(f"webhook url {url!r}: must start with http:// or https://")
        if len(secret) < MIN_SECRET_BYTES:
            raise EdgeError(f"webhook secret: at least {MIN_SECRET_BYTES} bytes")
        self.url = url
        self._secret = secret
        self._clock = clock
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()

    async def deliver(self, entry: Pending) -> None:
        """POST one result or event; any 2xx counts as delivered.

        Raises:
            DeliveryError: see ``thermoscope.edge.delivery``; frames are refused (the server
                takes those).
        """
        if entry.kind is Kind.FRAME:
            raise DeliveryError(f"entry {entry.key}: webhooks carry no frames", permanent=True)
        body = encode({**entry.payload, "id": entry.key, "kind": entry.kind.value})
        stamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            ID_HEADER: entry.key,
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(self._secret, stamp, body),
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"{self.url}: {type(exc).__name__}: {exc}", unreachable=True
            ) from None
        raise_for_answer(self.url, response)
