"""Model updates against the real annotation server (uvicorn in a thread, its model routes):
golden-statistics releases of rising versions are pulled, verified, run in shadow on the line's
recent parts and switched to; older, tampered, unsigned, foreign-key and expired releases are
refused with their reason while the running model stays; a model that fails its health check
after the switch is rolled back, and a restarted agent comes back on the release it switched to.

The "compromised server" is an httpx transport in front of the real server that hands out other
zip bytes (and their SHA-256) than the server holds: what an attacker on the path, or in the
server's storage, could do. The agent's own checks are what stand in its way.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import socket
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from edge_server import API, LiveServer

from thermoscope.edge import EdgeError
from thermoscope.edge.agent import Agent
from thermoscope.edge.config import (
    ConfigError,
    SyntheticSourceConfig,
    UpdatesConfig,
    parse_config,
)
from thermoscope.edge.shadow import (
    Health,
    ShadowReport,
    health_failure,
    ng_baseline,
    shadow_failure,
)
from thermoscope.edge.sources import SyntheticSource
from thermoscope.edge.updates import ModelUpdater, unpack
from thermoscope.models.contract import InputContract
from thermoscope.models.golden import fit_golden
from thermoscope.models.release import generate_keys, write_release
from thermoscope.models.release_zip import pack_release

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "pcb.yaml"
SEED = 7
CONTRACT = InputContract(window_c=(15.0, 95.0), height=60, width=80)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    generate_keys(folder / "trusted.pem", folder / "trusted.pub")
    generate_keys(folder / "other.pem", folder / "other.pub")
    return {n: folder / n for n in ("trusted.pem", "trusted.pub", "other.pem", "other.pub")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Iterator[LiveServer]:
    """The server trusts both keys; the agents trust only ``trusted``."""
    live = LiveServer(
        tmp_path_factory.mktemp("server"),
        free_port(),
        settings={"model_public_keys": [keys["trusted.pub"], keys["other.pub"]]},
    )
    live.start()
    yield live
    live.stop()


def token(server: LiveServer, project_id: int, user: str) -> str:
    """An annotator of the project and its API token with the ingest and read scopes."""
    with server.admin() as admin:
        admin.post("/users", json={"username": user, "password": "edge-password-1"})
        admin.put(f"/projects/{project_id}/members/{user}", json={"role": "annotator"})
    with httpx.Client(base_url=server.url + API, timeout=30) as edge:
        answer = edge.post("/auth/login", json={"username": user, "password": "edge-password-1"})
        edge.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        made = edge.post("/tokens", json={"name": user, "scopes": ["ingest", "read"]})
        made.raise_for_status()
        return str(made.json()["token"])


def ok_frames(offset: int) -> list[Any]:
    """OK frames of the synthetic line (seed ``SEED``): every 8th part of the first 1,000 from
    ``offset`` on (the line drifts slowly over a run: the statistics must span it, and with
    fewer than ~80 frames they call a share of OK parts NG)."""
    source = SyntheticSource(
        SyntheticSourceConfig(kind="synthetic", count=100_000, defect_rate=0.1, seed=SEED)
    )
    parts = [source.part(i) for i in range(offset, 1000, 8)]
    return [p.frame for p in parts if not p.defects]


def release(
    tmp: Path,
    version: int,
    key: Path | None,
    *,
    offset: int = 0,
    threshold: float = 0.5,
    expires: datetime | None = None,
) -> bytes:
    """A zipped golden release fitted on OK frames from ``ok_frames(offset)``."""
    stats = fit_golden(ok_frames(offset), CONTRACT)
    folder = tmp / f"v{version}-{time.monotonic_ns()}"
    write_release(
        folder,
        name="line-golden",
        version=version,
        kind="golden",
        contract=CONTRACT,
        onnx=stats.to_onnx(),
        classes=("ok", "anomaly"),
        thresholds={"anomaly": threshold},
        expires=expires,
        private_key=key,
    )
    return pack_release(folder)


def rezip(data: bytes, **change: str) -> bytes:
    """A release zip without the file ``drop`` and with the last bytes of ``alter`` zeroed."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {m.filename: archive.read(m) for m in archive.infolist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, content in files.items():
            if name == change.get("drop"):
                continue
            if name == change.get("alter"):
                content = content[:-8] + bytes(8)
            out.writestr(name, content)
    return buffer.getvalue()


def publish(server: LiveServer, pid: int, data: bytes, *, activate: bool = True) -> int:
    """Upload a release zip to the project (and make it active); its version."""
    with server.admin() as admin:
        made = admin.post(
            f"/projects/{pid}/models", content=data, headers={"Content-Type": "application/zip"}
        )
        assert made.status_code == 201, made.text
        version = int(made.json()["version"])
        if activate:
            admin.post(f"/projects/{pid}/models/{version}/activate").raise_for_status()
    return version


def activate(server: LiveServer, pid: int, version: int) -> None:
    with server.admin() as admin:
        admin.post(f"/projects/{pid}/models/{version}/activate").raise_for_status()


class CompromisedServer(httpx.AsyncBaseTransport):
    """The real server, except that ``swap[version]`` is handed out as that version's zip (its
    SHA-256 named to match in the station status answer)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.swap: dict[int, bytes] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.inner.handle_async_request(request)
        path = request.url.path
        if path.endswith("/status") and answer.status_code == 200:
            body = json.loads(await answer.aread())
            if body["target_model"] in self.swap:
                body["target_sha256"] = hashlib.sha256(self.swap[body["target_model"]]).hexdigest()
            return httpx.Response(200, json=body)
        if path.endswith("/release.zip"):
            version = int(path.rsplit("/", 2)[-2])
            if version in self.swap:
                await answer.aread()
                return httpx.Response(200, content=self.swap[version])
        return answer

    async def aclose(self) -> None:
        await self.inner.aclose()


def agent_config(
    tmp: Path, server: LiveServer, pid: int, user: str, keys: dict[str, Path], **updates: Any
) -> dict[str, Any]:
    return {
        "identity": {"site": "s1", "line": "l1", "station": user},
        "source": {
            "kind": "synthetic",
            "count": 100_000,
            "rate_hz": 40,
            "defect_rate": 0.1,
            "seed": SEED,
        },
        "recipe": str(RECIPE),
        "model": {"public_key": str(keys["trusted.pub"])},
        "outbox": {"path": str(tmp / "outbox.db"), "min_free_bytes": 0, "ok_sample_share": 0},
        "server": {"url": server.url, "project_id": pid, "token": token(server, pid, user)},
        "status": {"enabled": False},
        "drift": {"enabled": False},
        "recent_frames": 32,
        "updates": {
            "enabled": True,
            "poll_interval_s": 0.1,
            "folder": str(tmp / "models"),
            "shadow_frames": 32,
            # two golden fits call a different ~1 % of OK parts NG: allow 3 in 32 to differ
            "min_agreement": 0.9,
            # ~10 % of the line's parts are NG: 30 parts' NG share varies by ±0.055
            "health_parts": 30,
            "max_ng_rate_jump": 0.3,
            "max_latency_ms": 10_000,  # a shared test machine; the bound is tested on its own
            **updates,
        },
    }


async def until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def version_of(agent: Agent) -> str:
    return agent.model.version if agent.model is not None else ""


def refused(updater: ModelUpdater, version: int) -> str:
    return next((r for (v, _), r in updater.refused.items() if v == version), "")


@pytest.mark.slow
def test_pull_verify_shadow_switch_and_every_refusal(
    tmp_path: Path,
    server: LiveServer,
    keys: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="thermoscope.edge.updates")
    pid = server.project("updates")
    settings = parse_config(agent_config(tmp_path, server, pid, "edge-a", keys))
    trusted, other = keys["trusted.pem"], keys["other.pem"]
    v1 = release(tmp_path, 1, trusted, offset=1)
    v2 = release(tmp_path, 2, trusted, offset=2)
    skew = [timedelta(0)]
    path = CompromisedServer()

    async def scenario() -> None:
        agent = Agent(settings)
        updater = ModelUpdater(agent, transport=path, clock=lambda: datetime.now(UTC) + skew[0])
        agent.updater = updater
        running = asyncio.create_task(agent.run())
        try:
            await until(lambda: len(agent.recent_parts()) >= 32, "32 recent parts")
            assert agent.model is None  # the recipe alone
            await asyncio.to_thread(publish, server, pid, v1)
            await until(lambda: version_of(agent) == "1", "the switch to v1")
            await until(lambda: updater.state == "active", "v1's probation")
            assert updater.last_shadow is not None
            assert updater.last_shadow.parts == 32
            assert updater.last_shadow.score_delta is None  # no model ran before
            await asyncio.to_thread(publish, server, pid, v2)
            await until(lambda: version_of(agent) == "2", "the switch to v2")
            shadow = updater.last_shadow
            assert shadow.agreement >= 0.9
            assert shadow.score_delta is not None
            assert shadow.score_delta <= 0.1
            assert updater.previous is not None
            assert updater.previous.version == 1
            assert Path(updater.previous.folder).is_dir()  # kept for rollback
            await until(lambda: updater.state == "active", "v2's probation")

            # older: the server's admin makes v1 active again
            await asyncio.to_thread(activate, server, pid, 1)
            await until(lambda: bool(refused(updater, 1)), "v1 refused")
            assert "older than v3" in refused(updater, 1)

            # tampered: the model file altered on the way, the listing's SHA-256 made to match
            v3 = release(tmp_path, 3, trusted, offset=3)
            path.swap[3] = rezip(v3, alter="model.onnx")
            await asyncio.to_thread(publish, server, pid, v3)
            await until(lambda: bool(refused(updater, 3)), "v3 refused")
            assert "model.onnx: SHA-256 does not match" in refused(updater, 3)

            # unsigned: the signature left out
            v4 = release(tmp_path, 4, trusted, offset=3)
            path.swap[4] = rezip(v4, drop="manifest.sig")
            await asyncio.to_thread(publish, server, pid, v4)
            await until(lambda: bool(refused(updater, 4)), "v4 refused")
            assert "manifest.sig: missing: the release is unsigned" in refused(updater, 4)

            # signed with a key the server trusts but the agent does not
            await asyncio.to_thread(publish, server, pid, release(tmp_path, 5, other))
            await until(lambda: bool(refused(updater, 5)), "v5 refused")
            assert "signature does not match" in refused(updater, 5)

            # expired by the agent's clock
            soon = datetime.now(UTC) + timedelta(days=1)
            skew[0] = timedelta(days=2)  # before the upload: the agent may poll at once
            await asyncio.to_thread(
                publish, server, pid, release(tmp_path, 6, trusted, expires=soon)
            )
            await until(lambda: bool(refused(updater, 6)), "v6 refused")
            assert "expired" in refused(updater, 6)
            skew[0] = timedelta(0)

            assert version_of(agent) == "2"  # the running model stayed through all of it
            assert agent.metrics.snapshot()["versions"]["model_version"] == "2"
            status = agent.metrics.snapshot()["updates"]
            assert status["current"]["version"] == 2
            assert {r["version"] for r in status["refused"]} == {1, 3, 4, 5, 6}
            assert status["highest_version"] == 2
            releases = sorted(p.name for p in (tmp_path / "models" / "releases").iterdir())
            assert [n[:9] for n in releases] == ["v00000001", "v00000002"]  # no staging left

            # a good release after all that is taken
            await asyncio.to_thread(publish, server, pid, release(tmp_path, 7, trusted))
            await until(lambda: version_of(agent) == "7", "the switch to v7")
        finally:
            agent.stop()
            await running

    asyncio.run(scenario())
    records = [r.__dict__["model_update"] for r in caplog.records if hasattr(r, "model_update")]
    steps = {r["step"] for r in records}
    assert {"offered", "downloaded", "verified", "loaded", "shadow", "switched", "healthy"} <= steps
    refusals = [r for r in records if r["step"] == "refused"]
    assert sorted(r["version"] for r in refusals) == [1, 3, 4, 5, 6]  # each logged once
    assert all(r["running"] == "2" and r["reason"] for r in refusals)


@pytest.mark.slow
def test_a_model_failing_its_health_check_is_rolled_back_and_restarts_survive(
    tmp_path: Path, server: LiveServer, keys: dict[str, Path]
) -> None:
    pid = server.project("rollback")
    # a permissive shadow bound lets a model through that calls every part NG
    data = agent_config(
        tmp_path, server, pid, "edge-b", keys, min_agreement=0.0, max_score_delta=1.0
    )
    settings = parse_config(data)
    trusted = keys["trusted.pem"]

    async def scenario() -> None:
        agent = Agent(settings)
        running = asyncio.create_task(agent.run())
        try:
            await until(lambda: len(agent.recent_parts()) >= 32, "32 recent parts")
            await asyncio.to_thread(publish, server, pid, release(tmp_path, 1, trusted))
            updater = agent.updater
            assert updater is not None
            await until(lambda: updater.state == "active", "v1 healthy")
            bad = release(tmp_path, 2, trusted, threshold=0.0)
            await asyncio.to_thread(publish, server, pid, bad)
            await until(lambda: updater.state == "rolled_back", "the rollback")
            assert version_of(agent) == "1"
            reason = refused(updater, 2)
            assert reason.startswith("health check failed: NG share rose")
            event = updater.events[0]
            assert (event["step"], event["version"], event["to"]) == ("rolled_back", 2, 1)
            await asyncio.sleep(0.5)  # the server still offers v2: it is not taken again
            assert version_of(agent) == "1"
        finally:
            agent.stop()
            await running

    asyncio.run(scenario())
    state = json.loads((tmp_path / "models" / "state.json").read_text(encoding="utf-8"))
    assert (state["current"]["version"], state["highest"]) == (1, 2)

    async def restart() -> str:
        agent = Agent(settings)
        running = asyncio.create_task(agent.run())
        try:
            await until(lambda: agent.model is not None, "the restored model", 10.0)
            return version_of(agent)
        finally:
            agent.stop()
            await running

    assert asyncio.run(restart()) == "1"


BOUNDS = UpdatesConfig(
    min_agreement=0.95,
    max_score_delta=0.1,
    max_latency_ms=50.0,
    health_parts=10,
    max_ng_rate_jump=0.1,
)


def report(**change: Any) -> ShadowReport:
    base: dict[str, Any] = {
        "parts": 20,
        "agreement": 1.0,
        "score_delta": 0.02,
        "latency_p95_ms": 3.0,
        "errors": 0,
        "first_error": "",
        "ng_share_running": 0.1,
        "ng_share_candidate": 0.1,
    }
    return ShadowReport(**(base | change))


def test_the_shadow_bound_names_what_failed() -> None:
    assert shadow_failure(report(), BOUNDS) == ""
    assert shadow_failure(report(score_delta=None), BOUNDS) == ""
    assert "agree on 90.0% of 20" in shadow_failure(report(agreement=0.9), BOUNDS)
    assert "score difference 0.150" in shadow_failure(report(score_delta=0.15), BOUNDS)
    assert "p95 80.0 ms" in shadow_failure(report(latency_p95_ms=80.0), BOUNDS)
    failed = report(errors=1, first_error="part 7: frame refused")
    assert (
        shadow_failure(failed, BOUNDS)
        == "1 inference error(s) in shadow, the first part 7: frame refused"
    )


def test_the_health_check_names_what_failed() -> None:
    healthy = Health(calls=10, errors=0, latency_p95_ms=3.0, ng_share=0.15)
    assert health_failure(healthy, 0.1, BOUNDS) == ""
    assert (
        health_failure(Health(3, 1, 3.0, 0.0), 0.1, BOUNDS)
        == "1 inference error(s) since the switch"
    )
    assert health_failure(Health(3, 0, 500.0, 1.0), 0.1, BOUNDS) == ""  # too early to judge
    assert "p95 80.0 ms" in health_failure(Health(10, 0, 80.0, 0.1), 0.1, BOUNDS)
    assert "NG share rose from 10.0% to 30.0%" in health_failure(
        Health(10, 0, 3.0, 0.3), 0.1, BOUNDS
    )


def test_probation_is_judged_against_the_recent_ng_share_when_the_line_drifted() -> None:
    # a steady line: the run's share (more parts than the shadow's) is the baseline
    assert ng_baseline(1000, 30, report(ng_share_running=0.0)) == pytest.approx(0.03)
    # the line drifted toward NG before the switch: the running model's recent share counts
    drifted = ng_baseline(1000, 23, report(ng_share_running=0.2))
    assert drifted == pytest.approx(0.2)
    assert health_failure(Health(41, 0, 3.0, 0.244), drifted, BOUNDS) == ""
    assert "NG share rose" in health_failure(Health(41, 0, 3.0, 0.244), 0.023, BOUNDS)
    assert ng_baseline(0, 0, report(ng_share_running=0.05)) == pytest.approx(0.05)


def test_unpack_refuses_unsafe_and_oversized_zips(tmp_path: Path) -> None:
    def zip_of(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as out:
            for name, data in files.items():
                out.writestr(name, data)
        return buffer.getvalue()

    with pytest.raises(EdgeError, match=r"unsafe file name '\.\./manifest\.json'"):
        unpack(zip_of({"../manifest.json": b"{}"}), tmp_path, limit=1000)
    with pytest.raises(EdgeError, match="more than 10 bytes"):
        unpack(zip_of({"manifest.json": b"x" * 11}), tmp_path, limit=10)
    with pytest.raises(EdgeError, match="not a zip of a release folder"):
        unpack(b"not a zip", tmp_path, limit=10)
    folder = unpack(zip_of({"r/manifest.json": b"{}", "r/model.onnx": b"x"}), tmp_path, limit=10)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # failures left nothing


def test_updates_need_a_server_and_a_trusted_key() -> None:
    base: dict[str, Any] = {
        "identity": {"site": "s", "line": "l", "station": "t"},
        "source": {"kind": "synthetic"},
        "recipe": str(RECIPE),
        "updates": {"enabled": True},
    }
    with pytest.raises(ConfigError, match="updates need server settings"):
        parse_config(base)
    base["server"] = {"url": "http://127.0.0.1:1", "project_id": 1, "token": "t" * 16}
    with pytest.raises(ConfigError, match=r"updates need model\.public_key"):
        parse_config(base)
    base["model"] = {"public_key": "trusted.pub"}
    base["updates"]["shadow_frames"] = 64
    with pytest.raises(ConfigError, match="recent_frames must be at least"):
        parse_config(base)


def write_npy(folder: Path, name: str, celsius: Any) -> None:
    """A frame as a camera writes it: a temporary name, renamed when complete."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(celsius, dtype=np.float32))
    (folder / f"{name}.part").write_bytes(buffer.getvalue())
    (folder / f"{name}.part").rename(folder / f"{name}.npy")


@pytest.mark.slow
def test_inference_errors_after_the_switch_roll_back_at_once(
    tmp_path: Path, server: LiveServer, keys: dict[str, Path]
) -> None:
    """The line's frames turn too hot for the model's window after the switch: its contract
    refuses them (inference errors), and the agent goes back to the recipe alone."""
    pid = server.project("inference-errors")
    camera = tmp_path / "camera"
    camera.mkdir()
    data = agent_config(tmp_path, server, pid, "edge-c", keys)
    data["source"] = {"kind": "folder", "path": str(camera), "pattern": "*.npy", "settle_s": 0.05}
    settings = parse_config(data)
    frames = ok_frames(0)

    async def scenario() -> None:
        agent = Agent(settings)
        running = asyncio.create_task(agent.run())
        try:
            for i, frame in enumerate(frames[:40]):
                write_npy(camera, f"{i:04d}", frame.celsius)
            await until(lambda: len(agent.recent_parts()) >= 32, "32 recent parts")
            await asyncio.to_thread(publish, server, pid, release(tmp_path, 1, keys["trusted.pem"]))
            updater = agent.updater
            assert updater is not None
            await until(lambda: updater.state == "probation", "the switch to v1")
            write_npy(camera, "0100", frames[41].celsius + 120.0)  # all out of the window
            await until(lambda: updater.state == "rolled_back", "the rollback")
            assert agent.model is None  # the recipe alone again
            assert refused(updater, 1) == (
                "health check failed: 1 inference error(s) since the switch"
            )
        finally:
            agent.stop()
            await running

    asyncio.run(scenario())
