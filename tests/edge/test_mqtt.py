"""Messaging: topic filters, the QC topics, the NG change feed, the command table and offline
buffering on the in-memory bus (unit tests); then on a real Mosquitto: QoS 1 results with
per-topic sequence numbers, retained status with a last will that fires when the agent is
killed, commands, and a broker stopped and restarted while parts keep coming (no result lost).
Every topic and payload field the code publishes is documented in docs/edge.md."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services import Broker, free_port, mosquitto_broker
from thermoscope.edge.delivery import Backoff, Drainer
from thermoscope.edge.messaging import (
    CHANNELS,
    CommandRouter,
    DefectFeed,
    Dispatch,
    MemoryBus,
    MessagingError,
    PartOutcome,
    PartReporter,
    Topics,
    drift_alarm,
    status_payload,
    topic_matches,
)
from thermoscope.edge.mqtt import BrokerAddress, MqttBus, MqttSink, StationLink
from thermoscope.edge.outbox import Outbox

#: A site of its own per run: a shared broker (THERMOSCOPE_TEST_MQTT) keeps retained messages.
TOPICS = Topics(f"plant-{secrets.token_hex(4)}", "line-2", "station-3")
FAST = Backoff(initial_s=0.02, factor=2.0, max_s=0.2, jitter=0.5)
SRC = Path(__file__).resolve().parents[2] / "src"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "edge.md"


def finding(rule: str, region: str, verdict: str, value: float = 50.0) -> dict[str, Any]:
    return {"rule": rule, "region": region, "value": value, "limit": 60.0, "verdict": verdict,
            "x": 1, "y": 2, "explanation": "", "margin": 60.0 - value, "unit": "°C",
            "score": None, "extra": {}}  # fmt: skip


def outcome(part: int, *ng: tuple[str, str]) -> PartOutcome:
    findings = [finding(rule, region, "NG", 70.0) for rule, region in ng]
    findings.append(finding("mean", "body", "OK"))
    verdict = "NG" if ng else "OK"
    inspection = {"source": f"p{part}", "frame": 0, "verdict": verdict, "findings": findings}
    return PartOutcome(f"p{part}", inspection, 3.5, recipe="r", recipe_checksum=0xBEEF,
                       model="lite0", model_version="1.0.0")  # fmt: skip


def test_topic_filters_match_like_mqtt() -> None:
    assert topic_matches("qc/v1/+/+/+/command", TOPICS.command)
    assert topic_matches("qc/#", TOPICS.result)
    assert topic_matches(TOPICS.result, TOPICS.result)
    assert not topic_matches("qc/v1/+/+/+/command", TOPICS.result)
    assert not topic_matches("qc/v1/+", TOPICS.result)
    assert not topic_matches(TOPICS.result + "/x", TOPICS.result)


def test_topics_are_checked() -> None:
    assert Topics("p", "l", "s").status == "qc/v1/p/l/s/status"
    for bad in ("", "a/b", "a+", "#", "x" * 65):
        with pytest.raises(MessagingError, match="station"):
            Topics("s", "l", bad)
    with pytest.raises(MessagingError, match="channel"):
        TOPICS.channel("results")


def test_defect_feed_reports_new_update_end_across_consecutive_parts() -> None:
    feed = DefectFeed()
    seen = [
        [(e["change"], e["condition"], e["first_part"], e["parts"]) for e in feed.observe(o)]
        for o in (
            outcome(1, ("max", "pad")),
            outcome(2, ("max", "pad"), ("delta", "")),
            outcome(3),
            outcome(4, ("max", "pad")),
        )
    ]
    assert seen == [
        [("new", "max@pad", "p1", 1)],
        [("new", "delta", "p2", 1), ("update", "max@pad", "p1", 2)],
        [("end", "delta", "p2", 1), ("end", "max@pad", "p1", 2)],
        [("new", "max@pad", "p4", 1)],
    ]


def test_results_wait_in_the_outbox_while_offline_then_go_out_in_order(tmp_path: Path) -> None:
    bus = MemoryBus(online=False)
    reporter = PartReporter(TOPICS)
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        drainer = Drainer(box, MqttSink(bus, TOPICS), backoff=FAST)
        parts = [(outcome(0), []), (outcome(1, ("max", "pad")), []), (outcome(2), [{"s": 1}])]
        for part, alarms in parts:
            box.record(reporter.records(part, alarms))
            assert asyncio.run(drainer.drain_once()).unreachable
        assert bus.messages == []
        bus.online = True
        asyncio.run(drainer.drain_once())
        assert box.depth().pending == {}
    results = bus.payloads(TOPICS.result)
    assert [(r["part"], r["verdict"], r["seq"]) for r in results] == [
        ("p0", "OK", 1),
        ("p1", "NG", 2),
        ("p2", "OK", 3),
    ]
    events = bus.payloads(TOPICS.event)
    assert [(e["type"], e["change"], e["seq"]) for e in events] == [
        ("defect", "new", 1),
        ("defect", "end", 2),
        ("drift", "alarm", 3),
    ]
    assert len({m["id"] for m in results + events}) == 6


def test_commands_dispatch_by_name_and_refuse_the_rest() -> None:
    bus = MemoryBus()
    router = CommandRouter()
    calls: list[tuple[str, dict[str, Any]]] = []

    def handler(name: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
        async def handle(args: dict[str, Any]) -> None:
            calls.append((name, args))

        return handle

    for name in ("trigger", "pause", "resume"):
        router.on(name, handler(name))

    async def go() -> None:
        await bus.subscribe(TOPICS.command, router)
        for body in (b'{"command": "trigger", "id": "t-7"}', b'{"command": "pause"}',
                     b'{"command": "explode"}', b"not json", b'["trigger"]',
                     b'{"command": "resume"}'):  # fmt: skip
            await bus.publish(TOPICS.command, body)

    asyncio.run(go())
    assert calls == [("trigger", {"id": "t-7"}), ("pause", {}), ("resume", {})]
    assert router.refused == 3


def test_dispatch_logs_a_failing_handler_and_calls_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = Dispatch()
    got: list[str] = []

    async def broken(topic: str, payload: bytes) -> None:
        raise ValueError("bad handler")

    async def good(topic: str, payload: bytes) -> None:
        got.append(topic)

    table.add("qc/#", broken)
    table.add(TOPICS.result, good)
    assert asyncio.run(table.dispatch(TOPICS.result, b"{}")) == 2
    assert got == [TOPICS.result]
    assert "handler of qc/# failed" in caplog.text


class Consumer:
    """A consumer on the broker (our ``MqttBus``): collects JSON payloads per topic."""

    def __init__(self, broker: Broker, client_id: str = "", *, persistent: bool = False) -> None:
        address = BrokerAddress(broker.host, broker.port, client_id=client_id,
                                persistent_session=persistent)  # fmt: skip
        self.bus = MqttBus(address, reconnect=FAST)
        self.got: dict[str, list[dict[str, Any]]] = {}

    async def start(self, topic_filter: str) -> None:
        async def keep(topic: str, payload: bytes) -> None:
            self.got.setdefault(topic, []).append(json.loads(payload))

        await self.bus.subscribe(topic_filter, keep)
        self.bus.start()
        await self.bus.wait_connected(10)

    async def until(self, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline, f"timed out; got {self.got}"
            await asyncio.sleep(0.01)


AGENT = textwrap.dedent(
    """
    import asyncio, sys
    from thermoscope.edge.messaging import Topics
    from thermoscope.edge.mqtt import BrokerAddress, StationLink
    from thermoscope.edge.outbox import Outbox

    async def main():
        box = Outbox(sys.argv[3], min_free_bytes=0)
        link = StationLink(BrokerAddress(sys.argv[5], int(sys.argv[1]), client_id=sys.argv[2]),
                           Topics(sys.argv[4], "line-2", "station-3"), box,
                           info={"agent": sys.argv[2], "model": "lite0"})
        await link.start()
        await link.bus.wait_connected(10)
        print("up", flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def test_status_is_retained_and_the_last_will_says_offline(
    tmp_path: Path, mqtt_broker: Broker
) -> None:
    """An agent process announces ``online`` (retained); killed with SIGKILL, the broker
    publishes its will: the retained ``offline``, numbered after ``online``."""
    topics_filter = TOPICS.status
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    agent = subprocess.Popen(
        [
            *(sys.executable, "-c", AGENT, str(mqtt_broker.port), f"will-{TOPICS.site}"),
            *(str(tmp_path / "o.db"), TOPICS.site, mqtt_broker.host),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert agent.stdout is not None
    try:
        assert agent.stdout.readline().strip() == b"up"

        async def go() -> list[dict[str, Any]]:
            consumer = Consumer(mqtt_broker)
            await consumer.start(topics_filter)
            try:
                await consumer.until(lambda: bool(consumer.got))  # the retained one
                agent.send_signal(signal.SIGKILL)
                await consumer.until(lambda: len(consumer.got[TOPICS.status]) == 2)
            finally:
                await consumer.bus.close()
            late = Consumer(mqtt_broker)  # a consumer arriving later sees the retained offline
            await late.start(topics_filter)
            try:
                await late.until(lambda: bool(late.got))
            finally:
                await late.bus.close()
            return consumer.got[TOPICS.status] + late.got[TOPICS.status]

        online, offline, retained = asyncio.run(go())
    finally:
        agent.kill()
        agent.wait()
        agent.stdout.close()
    assert (online["state"], online["agent"]) == ("online", f"will-{TOPICS.site}")
    assert online["model"] == "lite0"
    assert offline["state"] == "offline"
    assert offline["seq"] == online["seq"] - 1  # the will was numbered first, on connecting
    assert retained == offline


def test_commands_arrive_over_the_broker(tmp_path: Path, mqtt_broker: Broker) -> None:
    router = CommandRouter()
    got: list[dict[str, Any]] = []

    async def trigger(args: dict[str, Any]) -> None:
        got.append(args)

    router.on("trigger", trigger)

    async def go() -> None:
        with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
            cid = f"cmd-{TOPICS.site}"
            address = BrokerAddress(mqtt_broker.host, mqtt_broker.port, client_id=cid)
            link = StationLink(address, TOPICS, box, commands=router, reconnect=FAST)
            await link.start()
            await link.bus.wait_connected(10)
            sender = MqttBus(BrokerAddress(mqtt_broker.host, mqtt_broker.port))
            sender.start()
            await sender.wait_connected(10)
            await sender.publish(TOPICS.command, b'{"command": "trigger", "id": "t-1"}')
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await sender.close()
            await link.close()

    asyncio.run(go())
    assert got == [{"id": "t-1"}]


@pytest.mark.slow
def test_broker_down_loses_no_result(tmp_path: Path) -> None:
    """Parts keep coming while the broker is stopped (2 s of wall time stand for the issue's
    60 s: the agent's reconnect and the drainer's back-off cap at 0.2 s, so it retries about ten
    times either way); after the restart every result and event reaches a consumer with a
    persistent session, numbered 1..n without a gap, and MQTT's at-least-once duplicates are
    recognisable by ``id``."""
    port, data = free_port(), tmp_path / "mosquitto"
    reporter = PartReporter(TOPICS)
    box = Outbox(tmp_path / "o.db", min_free_bytes=0)
    consumer: Consumer | None = None

    async def parts(first: int, count: int, drainer: Drainer) -> None:
        for part in range(first, first + count):
            ng = ("max", "pad") if part % 4 == 0 else None
            box.record(reporter.records(outcome(part, ng) if ng else outcome(part)))
            drainer.wake()
            await asyncio.sleep(0.05)

    async def go() -> tuple[int, Consumer]:
        nonlocal consumer
        address = BrokerAddress("127.0.0.1", port, client_id="agent-down")
        link = StationLink(address, TOPICS, box, reconnect=FAST)
        drainer = Drainer(box, MqttSink(link.bus, TOPICS), backoff=FAST, idle_s=0.05)
        stop = asyncio.Event()
        with mosquitto_broker(port=port, data_dir=data) as broker:
            consumer = Consumer(broker, "consumer-down", persistent=True)
            await consumer.start(f"{TOPICS.result.rsplit('/', 1)[0]}/+")
            await link.start()
            await link.bus.wait_connected(10)
            task = asyncio.create_task(drainer.run(stop))
            await parts(0, 10, drainer)
            await consumer.until(lambda: len(consumer.got.get(TOPICS.result, [])) == 10)
        await parts(10, 40, drainer)  # 2 s without a broker
        assert box.depth().pending["mqtt"] >= 40
        most = drainer.failures
        with mosquitto_broker(port=port, data_dir=data):
            await consumer.until(lambda: len({r["id"] for r in consumer.got[TOPICS.result]}) == 50,
                                 timeout_s=20)  # fmt: skip
            stop.set()
            await task
            await consumer.bus.close()
            await link.close()
        return most, consumer

    try:
        failures, seen = asyncio.run(go())
        assert box.depth().pending == {}
    finally:
        box.close()
    assert failures >= 5
    results = {r["id"]: r for r in seen.got[TOPICS.result]}
    assert sorted(r["seq"] for r in results.values()) == list(range(1, 51))
    assert sorted(int(r["part"][1:]) for r in results.values()) == list(range(50))
    events = {e["id"]: e for e in seen.got[TOPICS.event]}
    assert sorted(e["seq"] for e in events.values()) == list(range(1, len(events) + 1))
    assert [e["change"] for e in sorted(events.values(), key=lambda e: e["seq"])] == [
        "new",
        "end",
    ] * 13  # an NG part every fourth part: 13 of 50, each ending at the next part


def documented_section(title: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/edge.md has no '## {title}' section"
    return match.group(1)


def test_every_topic_and_payload_field_is_documented(tmp_path: Path) -> None:
    section = documented_section("MQTT topics")
    for channel in CHANNELS:
        assert f"qc/v1/{{site}}/{{line}}/{{station}}/{channel}" in section, channel
    payloads = {
        "result": [outcome(1).payload()],
        "event": [*DefectFeed().observe(outcome(1, ("max", "pad"))), drift_alarm("p1", {})],
        "status": [status_payload("online", {}, 1)],
    }
    published = {"seq", "id"}  # added to every result and event when recorded and sent
    for channel, examples in payloads.items():
        for payload in examples:
            for key in {*payload, *published} - ({"id"} if channel == "status" else set()):
                assert f"`{key}`" in section, f"{channel} field {key} is not documented"
    for key in ("agent", "model", "model_version", "recipe", "recipe_checksum"):
        assert f"`{key}`" in section
    for command in ("trigger", "pause", "resume"):
        assert f"`{command}`" in section
    for change in ("new", "update", "end", "alarm"):
        assert f"`{change}`" in section
