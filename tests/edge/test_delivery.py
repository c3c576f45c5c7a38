"""Delivery from the outbox: back-off, whose-fault handling, and, against a real annotation server
(uvicorn in a thread, an ``ingest``-scoped API token): flagged frames arrive with their findings,
a retry after a lost answer does not duplicate, a refused entry is kept as rejected, and a server
outage (stopped, then restarted on the same port and data) loses nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from edge_server import LiveServer, npy_frame

from services import free_port
from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.edge import EdgeError
from thermoscope.edge.delivery import (
    Backoff,
    DeliveryError,
    Drainer,
    ServerSink,
    flagged_frame,
    sampled,
)
from thermoscope.edge.outbox import DeliveryState, Kind, Outbox, Pending, Record, content_key

FAST = Backoff(initial_s=0.02, factor=2.0, max_s=0.2, jitter=0.5)
SRC = Path(__file__).resolve().parents[2] / "src"


def test_backoff_grows_exponentially_to_its_cap_with_jitter() -> None:
    backoff = Backoff(initial_s=1.0, factor=2.0, max_s=10.0, jitter=0.5)
    rng = random.Random(7)
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (500, 10.0)]:
        delays = [backoff.delay(failures, rng) for _ in range(200)]
        assert base / 2 <= min(delays)
        assert max(delays) <= base
        assert max(delays) - min(delays) > base / 4  # jittered, not in step
    assert Backoff(jitter=0.0).delay(1, rng) == 0.5
    with pytest.raises(EdgeError, match="back-off"):
        Backoff(initial_s=0.0)


def test_ok_samples_are_chosen_by_content_key_in_the_stated_share() -> None:
    keys = [npy_frame(seed)[1] for seed in range(2000)]
    chosen = [k for k in keys if sampled(k, 0.1)]
    assert 150 <= len(chosen) <= 250  # 10 % of 2000, binomial spread well within
    assert chosen == [k for k in keys if sampled(k, 0.1)]  # the same every time
    assert all(sampled(k, 1.0) for k in keys)
    assert not any(sampled(k, 0.0) for k in keys)
    with pytest.raises(EdgeError, match="between 0 and 1"):
        sampled(keys[0], 1.5)
    with pytest.raises(EdgeError, match="not hexadecimal"):
        sampled("part-1", 0.5)


def test_an_idle_drainer_purges_finished_entries(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        parts(box, 3)
        drainer = Drainer(box, FlakySink({}), backoff=FAST, idle_s=0.01, purge_after_s=0.0)

        async def run() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(drainer.run(stop))
            while box.keys():
                await asyncio.sleep(0.01)
            stop.set()
            await task

        asyncio.run(asyncio.wait_for(run(), 10))
        assert box.depth().entries == 0


class FlakySink:
    """A sink for unit tests: answers each entry's delivery from a script of outcomes."""

    name = "fake"

    def __init__(self, script: dict[int, list[DeliveryError | None]]) -> None:
        self.script = script
        self.received: list[int] = []

    async def deliver(self, entry: Pending) -> None:
        outcomes = self.script.get(entry.payload["part"], [])
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome
        self.received.append(entry.payload["part"])


def parts(box: Outbox, count: int, sink: str = "fake") -> None:
    for part in range(count):
        payload = {"part": part}
        box.record([Record(Kind.RESULT, content_key(payload), payload, (sink,))])


def test_drainer_handles_each_kind_of_failure(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        parts(box, 4)
        sink = FlakySink(
            {
                1: [DeliveryError("500", retry_after_s=60.0)],
                2: [DeliveryError("422", permanent=True)],
                3: [DeliveryError("refused", unreachable=True)],
            }
        )
        drainer = Drainer(box, sink, backoff=FAST)
        stats = asyncio.run(drainer.drain_once())
        assert (stats.delivered, stats.held_back, stats.rejected) == (1, 1, 1)
        assert stats.unreachable == "refused"
        assert sink.received == [0]
        # the unreachable entry is due again at once, the held-back one only after a minute
        assert [p.payload["part"] for p in box.pending("fake")] == [3]
        assert asyncio.run(drainer.drain_once()).delivered == 1
        assert box.depth().pending == {"fake": 1}
        assert box.depth().rejected == {"fake": 1}


def test_drainer_backs_off_while_unreachable_then_delivers(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        parts(box, 3)
        away = [DeliveryError("down", unreachable=True) for _ in range(4)]
        sink = FlakySink({0: away})
        drainer = Drainer(box, sink, backoff=FAST, idle_s=0.01)

        async def run() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(drainer.run(stop))
            while box.depth().pending:
                await asyncio.sleep(0.01)
            stop.set()
            await task

        asyncio.run(asyncio.wait_for(run(), 10))
        assert sorted(sink.received) == [0, 1, 2]
        assert drainer.failures == 0


def inspection(part: int, verdict: Verdict) -> dict[str, Any]:
    finding = Finding(
        rule="max_temp",
        region="body",
        value=80.0 if verdict is Verdict.NG else 40.0,
        limit=60.0,
        verdict=verdict,
        explanation="hottest pixel against the limit",
        x=3,
        y=4,
        margin=-20.0 if verdict is Verdict.NG else 20.0,
    )
    body = Inspection.of(f"part-{part}.npy", 0, [finding]).to_json()
    return {**body, "model": "lite0", "model_version": "1.0.0"}


def flagged(box: Outbox, first: int, count: int) -> dict[str, int]:
    """Record ``count`` flagged frames (every third an OK sample, the rest NG); their content
    ids and part numbers."""
    keys: dict[str, int] = {}
    for part in range(first, first + count):
        data, cid = npy_frame(part)
        verdict = Verdict.OK if part % 3 == 0 else Verdict.NG
        rec = flagged_frame(
            content_id=cid,
            data=data,
            filename=f"part-{part}.npy",
            inspection=inspection(part, verdict),
            meta={"part": part, "station": "s1", "flag": verdict.value},
            sample=verdict is Verdict.OK,
        )
        box.record([rec])
        keys[cid] = part
    return keys


@pytest.fixture
def server(tmp_path: Path) -> Any:
    live = LiveServer(tmp_path / "server", free_port())
    live.start()
    yield live
    live.stop()


async def drain_all(box: Outbox, drainer: Drainer, timeout_s: float = 30.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(drainer.run(stop))
    deadline = time.monotonic() + timeout_s
    while box.depth().pending and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    stop.set()
    await task


def test_frames_reach_the_server_with_findings_and_meta(tmp_path: Path, server: Any) -> None:
    project = server.project()
    token = server.edge_token(project)
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        keys = flagged(box, 0, 6)

        async def go() -> None:
            sink = ServerSink(server.url, token, project)
            try:
                await drain_all(box, Drainer(box, sink, backoff=FAST))
            finally:
                await sink.close()

        asyncio.run(go())
        assert box.depth().pending == {}
        assert box.depth().file_bytes == 0  # delivered files are dropped
    frames = server.frames(project)
    assert {f["content_hash"] for f in frames} == set(keys)
    for f in frames:
        part = keys[f["content_hash"]]
        assert f["meta"]["part"] == part
        assert f["meta"]["edge_key"] == f["content_hash"]
        expected = "OK" if part % 3 == 0 else "NG"
        assert f["machine_verdict"] == expected


class LoseAnswers(httpx.AsyncBaseTransport):
    """In front of the real server: forwards each request, then loses the first ``lose``
    answers (the server has done the work; the client sees a dropped connection)."""

    def __init__(self, lose: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lose = lose
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.statuses.append(response.status_code)
        if self.lose > 0:
            self.lose -= 1
            await response.aclose()
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_retry_after_a_lost_answer_does_not_duplicate(tmp_path: Path, server: Any) -> None:
    project = server.project()
    token = server.edge_token(project)
    lossy = LoseAnswers(lose=3)
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        keys = flagged(box, 0, 3)

        async def go() -> None:
            sink = ServerSink(server.url, token, project, transport=lossy)
            try:
                await drain_all(box, Drainer(box, sink, backoff=FAST, parallel=1))
            finally:
                await sink.close()

        asyncio.run(go())
        assert box.depth().pending == {}
    # three answers lost (201: the server had them), then the retries were found (200)
    assert lossy.statuses == [201, 201, 201, 200, 200, 200]
    frames = server.frames(project)
    assert sorted(f["content_hash"] for f in frames) == sorted(keys)


def test_a_refused_frame_is_kept_as_rejected(tmp_path: Path, server: Any) -> None:
    project = server.project()
    token = server.edge_token(project)
    data, cid = npy_frame(1)
    bad = {"source": "x", "frame": 0, "verdict": "MAYBE", "findings": []}
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        box.record(
            [
                flagged_frame(
                    content_id=cid,
                    data=data,
                    filename="p.npy",
                    inspection=bad,
                    meta={},
                    sample=False,
                )
            ]
        )

        async def go() -> None:
            sink = ServerSink(server.url, token, project)
            try:
                await drain_all(box, Drainer(box, sink, backoff=FAST))
            finally:
                await sink.close()

        asyncio.run(go())
        assert box.delivery_state(cid, "server") is DeliveryState.REJECTED
        assert box.depth().rejected == {"server": 1}
        entry = box.entry(cid)
        assert entry is not None
        assert entry.data == data  # kept for someone to look at
    assert server.frames(project) == []


def test_a_token_without_the_ingest_scope_is_retried_not_dropped(
    tmp_path: Path, server: Any
) -> None:
    project = server.project()
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        flagged(box, 0, 1)

        async def go() -> None:
            sink = ServerSink(server.url, "tsk_not-a-token", project)
            try:
                stats = await Drainer(box, sink, backoff=FAST).drain_once()
            finally:
                await sink.close()
            assert "HTTP 401" in stats.unreachable

        asyncio.run(go())
        assert box.depth().pending == {"server": 1}


@pytest.mark.slow
def test_server_outage_loses_nothing_and_duplicates_nothing(tmp_path: Path, server: Any) -> None:
    """The agent keeps recording flagged frames while the server is stopped; the drainer backs
    off (0.02 s doubling to a 0.2 s cap, compressing a 5-minute outage into 2 s of wall time:
    about 10 retries at the cap), then the server restarts on the same port and data and every
    frame arrives exactly once."""
    project = server.project()
    token = server.edge_token(project)
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        keys = flagged(box, 0, 5)

        async def go() -> int:
            sink = ServerSink(server.url, token, project, timeout_s=5.0)
            drainer = Drainer(box, sink, backoff=FAST, idle_s=0.02)
            stop = asyncio.Event()
            task = asyncio.create_task(drainer.run(stop))
            try:
                while box.depth().pending:
                    await asyncio.sleep(0.02)
                await asyncio.to_thread(server.stop)
                most = 0
                for batch in range(4):  # 2 s down, recording all along
                    keys.update(flagged(box, 100 + 10 * batch, 5))
                    await asyncio.sleep(0.5)
                    most = max(most, drainer.failures)
                assert box.depth().pending == {"server": 20}
                await asyncio.to_thread(server.start)
                deadline = time.monotonic() + 30
                while box.depth().pending and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            finally:
                stop.set()
                await task
                await sink.close()
            return most

        failures = asyncio.run(go())
        assert failures >= 5  # it kept trying, backing off
        assert box.depth().pending == {}
    frames = server.frames(project)
    hashes = [f["content_hash"] for f in frames]
    assert len(hashes) == len(set(hashes)) == len(keys) == 25
    assert set(hashes) == set(keys)


AGENT = textwrap.dedent(
    """
    import asyncio, io, sys
    import numpy as np
    from thermoscope.edge.delivery import Backoff, Drainer, ServerSink, flagged_frame
    from thermoscope.edge.outbox import Outbox
    from thermoscope.storage.identity import array_id

    url, token, project, path, first, count = sys.argv[1:7]
    box = Outbox(path, min_free_bytes=0)

    def npy_frame(seed):  # as edge_server.npy_frame, without importing the server
        celsius = (25.0 + np.random.default_rng(seed).normal(0, 2, size=(24, 32)))
        celsius = celsius.astype(np.float32)
        buffer = io.BytesIO()
        np.save(buffer, celsius)
        return buffer.getvalue(), array_id(celsius)

    async def main():
        sink = ServerSink(url, token, int(project))
        drainer = Drainer(box, sink, backoff=Backoff(initial_s=0.02, max_s=0.2), idle_s=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(drainer.run(stop))
        part = int(first)
        while part < int(first) + int(count):
            data, cid = npy_frame(part)
            inspection = {"source": "", "frame": 0, "verdict": "NG", "findings": []}
            box.record([flagged_frame(content_id=cid, data=data, filename=f"{part}.npy",
                                      inspection=inspection, meta={"part": part}, sample=False)])
            print(cid, flush=True)
            drainer.wake()
            part += 1
            await asyncio.sleep(0.01)
        while box.depth().pending:
            await asyncio.sleep(0.01)
        print("drained", flush=True)
        stop.set()
        await task

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_agent_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path, server: Any) -> None:
    """An agent process records NG frames and drains them to the server at the same time; it
    is killed with SIGKILL mid-run, then a new agent on the same outbox records 10 more and
    drains everything: every frame acknowledged by either is on the server exactly once."""
    project = server.project()
    token = server.edge_token(project)
    path = tmp_path / "o.db"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    acked: list[str] = []
    for first, count, kill_after in ((0, 200, 1.0), (1000, 10, None)):
        arguments = [server.url, token, str(project), str(path), str(first), str(count)]
        agent = subprocess.Popen(
            [sys.executable, "-c", AGENT, *arguments],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert agent.stdout is not None
        if kill_after is not None:
            acked.append(agent.stdout.readline().decode().strip())
            time.sleep(kill_after)
            agent.send_signal(signal.SIGKILL)
        lines = agent.stdout.read().decode().split()
        agent.stdout.close()
        agent.wait(timeout=60)
        acked += [line for line in lines if line != "drained"]
        if kill_after is None:
            assert lines[-1] == "drained"
        else:
            assert agent.returncode == -signal.SIGKILL
            assert len(acked) < 200  # it really was killed mid-run
    hashes = [f["content_hash"] for f in server.frames(project)]
    assert len(hashes) == len(set(hashes))
    assert set(acked) <= set(hashes)
    assert len(set(hashes)) >= len(acked) >= 11
