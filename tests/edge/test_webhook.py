"""The webhook sink against a real HTTP receiver (stdlib server in a thread): signed payloads
that verify, retries with back-off after 503 and while the receiver is down, 4xx refused for
good, and signatures that fail when the body, the secret or the time is wrong."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services import free_port
from thermoscope.edge import EdgeError
from thermoscope.edge.delivery import Backoff, Drainer
from thermoscope.edge.messaging import PartOutcome, PartReporter, Topics
from thermoscope.edge.outbox import DeliveryState, Outbox
from thermoscope.edge.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_SINK,
    WebhookSink,
    sign,
    verify,
)

SECRET = b"a-shared-secret-of-32-bytes-long"
FAST = Backoff(initial_s=0.02, factor=2.0, max_s=0.2, jitter=0.5)


class Receiver:
    """An HTTP receiver: answers each request from ``answers`` (then 204), keeps what it got."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answers: list[int] = []
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = receiver.answers.pop(0) if receiver.answers else 204
                if code == 204:
                    receiver.got.append((dict(self.headers.items()), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server: ThreadingHTTPServer | None = None
        self._handler = Handler

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    live = Receiver(free_port())
    live.start()
    yield live
    live.stop()


def record_parts(box: Outbox, count: int) -> None:
    reporter = PartReporter(Topics("s", "l", "st"), sinks=(WEBHOOK_SINK,))
    for part in range(count):
        inspection = {"source": "", "frame": 0, "verdict": "OK", "findings": []}
        box.record(reporter.records(PartOutcome(f"p{part}", inspection, 2.0)))


def drain(box: Outbox, sink: WebhookSink, until: float = 10.0) -> Drainer:
    drainer = Drainer(box, sink, backoff=FAST, idle_s=0.02)

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(drainer.run(stop))
        deadline = time.monotonic() + until
        while box.depth().pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await task
        await sink.close()

    asyncio.run(go())
    return drainer


def test_signed_results_arrive_after_retries(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answers = [503, 503, 429]
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        record_parts(box, 3)
        drain(box, WebhookSink(f"http://127.0.0.1:{receiver.port}/hook", SECRET))
        assert box.depth().pending == {}
    assert len(receiver.got) == 3
    parts = []
    for headers, body in receiver.got:
        assert verify(SECRET, headers, body)
        payload = json.loads(body)
        assert headers["X-Thermoscope-Id"] == payload["id"]
        parts.append((payload["part"], payload["seq"], payload["kind"]))
    assert sorted(parts) == [("p0", 1, "result"), ("p1", 2, "result"), ("p2", 3, "result")]


def test_a_receiver_that_is_down_delays_but_loses_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.stop()
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        record_parts(box, 2)
        threading.Timer(0.5, receiver.start).start()
        drainer = drain(box, WebhookSink(f"http://127.0.0.1:{receiver.port}/", SECRET))
        assert box.depth().pending == {}
        assert drainer.failures == 0
    assert len(receiver.got) == 2


def test_a_client_error_refuses_the_entry_for_good(tmp_path: Path, receiver: Receiver) -> None:
    receiver.answers = [400]
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        record_parts(box, 1)
        drain(box, WebhookSink(f"http://127.0.0.1:{receiver.port}/", SECRET))
        (key,) = box.keys()
        assert box.delivery_state(key, WEBHOOK_SINK) is DeliveryState.REJECTED
    assert receiver.got == []


def test_signatures_fail_on_any_change() -> None:
    now = 1_700_000_000
    body = b'{"part":"p1"}'
    headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(SECRET, now, body)}
    assert verify(SECRET, headers, body, now=now + 10)
    assert not verify(SECRET, headers, body + b" ", now=now)
    assert not verify(SECRET[:-1] + b"X", headers, body, now=now)
    assert not verify(SECRET, headers, body, now=now + 301)  # too old: a replay
    assert not verify(SECRET, {**headers, TIMESTAMP_HEADER: str(now + 1)}, body, now=now)
    assert not verify(SECRET, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, body, now=now)
    with pytest.raises(EdgeError, match="at least 16 bytes"):
        WebhookSink("http://127.0.0.1/", b"short")
    with pytest.raises(EdgeError, match="http"):
        WebhookSink("ftp://x/", SECRET)
