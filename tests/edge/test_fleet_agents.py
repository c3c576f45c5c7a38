"""A staged model roll-out end to end: the real annotation server (uvicorn in a thread) and three
real edge agents (``Agent`` with its ``ModelUpdater``, the synthetic line as source, real HTTP),
one per station, each with its own API token.

The agents follow the release the server names for their station in the answer to their status
report: release 1 staged to station 1 is switched to there alone, then by all three once
station 1 reports it healthy; release 2 (a model that calls every part NG) fails station 1's
health check after the switch, is rolled back there, stops the roll-out and never reaches
stations 2 and 3; release 3, altered on the way to station 1 (its listing's SHA-256 made to
match), is refused by station 1's signature and hash check and stops its roll-out the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_server import LiveServer
from test_updates import (
    CompromisedServer,
    agent_config,
    free_port,
    publish,
    refused,
    release,
    rezip,
    until,
    version_of,
)

from thermoscope.edge.agent import Agent
from thermoscope.edge.config import parse_config
from thermoscope.edge.updates import ModelUpdater
from thermoscope.models.release import generate_keys

STATIONS = ("st-1", "st-2", "st-3")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    generate_keys(folder / "trusted.pem", folder / "trusted.pub")
    return {"trusted.pem": folder / "trusted.pem", "trusted.pub": folder / "trusted.pub"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("server"),
        free_port(),
        settings={"model_public_keys": [keys["trusted.pub"]]},
    )
    live.start()
    yield live
    live.stop()


def roll_out(server: LiveServer, pid: int, version: int, first: str) -> None:
    with server.admin() as admin:
        made = admin.post(f"/projects/{pid}/rollouts", json={"version": version, "first": first})
        assert made.status_code == 201, made.text


def rollout(server: LiveServer, pid: int) -> dict[str, Any]:
    with server.admin() as admin:
        answer = admin.get(f"/projects/{pid}/rollouts/current")
        answer.raise_for_status()
        return dict(answer.json())


def stations(server: LiveServer, pid: int) -> dict[str, dict[str, Any]]:
    with server.admin() as admin:
        answer = admin.get(f"/projects/{pid}/stations")
        answer.raise_for_status()
        return {row["station"]: row for row in answer.json()}


def offered(updater: ModelUpdater) -> set[int]:
    """Versions the updater was offered (its ``offered`` events)."""
    return {int(e["version"]) for e in updater.events if e["step"] == "offered"}


@pytest.mark.slow
def test_staged_rollout_across_three_real_agents(
    tmp_path: Path, server: LiveServer, keys: dict[str, Path]
) -> None:
    pid = server.project("fleet")
    trusted = keys["trusted.pem"]
    for version, data in (
        (1, release(tmp_path, 1, trusted, offset=1)),
        # calls every part NG: it agrees with nothing, so the shadow bound is left open below
        # and it is the health check after the switch that catches it
        (2, release(tmp_path, 2, trusted, threshold=0.0)),
        (3, release(tmp_path, 3, trusted, offset=3)),
    ):
        assert publish(server, pid, data, activate=False) == version
    configs = []
    for name in STATIONS:
        folder = tmp_path / name
        folder.mkdir()
        data = agent_config(folder, server, pid, name, keys, min_agreement=0.0, max_score_delta=1.0)
        data["source"]["rate_hz"] = 20
        data["updates"]["poll_interval_s"] = 0.2
        configs.append(parse_config(data))
    on_the_way = CompromisedServer()  # between the server and station 1 only

    async def scenario() -> None:
        agents = [Agent(c) for c in configs]
        agents[0].updater = ModelUpdater(agents[0], transport=on_the_way)
        for agent in agents[1:]:
            agent.updater = ModelUpdater(agent)
        updaters = [a.updater for a in agents if a.updater is not None]
        first, rest = updaters[0], updaters[1:]
        running = [asyncio.create_task(a.run()) for a in agents]
        try:
            await until(lambda: len(stations(server, pid)) == 3, "three station reports", 60)
            assert all(a.model is None for a in agents)  # nothing active, no roll-out yet

            # release 1: station 1 first, the others once it reports healthy
            await asyncio.to_thread(roll_out, server, pid, 1, "st-1")
            await until(lambda: first.state == "active" and version_of(agents[0]) == "1",
                        "station 1 healthy on v1", 60)  # fmt: skip
            await until(lambda: rollout(server, pid)["stage"] == "complete", "v1 complete")
            await until(lambda: all(version_of(a) == "1" for a in agents), "all on v1", 60)
            assert all(offered(u) == {1} for u in updaters)

            # release 2 fails station 1's health check: rolled back there, never elsewhere
            await asyncio.to_thread(roll_out, server, pid, 2, "st-1")
            await until(lambda: first.state == "rolled_back", "v2 rolled back on station 1", 60)
            await until(lambda: rollout(server, pid)["stage"] == "rolled_back", "v2 stopped")
            assert version_of(agents[0]) == "1"
            assert refused(first, 2).startswith("health check failed: NG share rose")
            stopped = rollout(server, pid)
            assert stopped["previous"] == 1
            assert "v2: health check failed" in stopped["reason"]
            assert stations(server, pid)["st-1"]["healthy"] is False  # until its next step

            # release 3 altered on the way to station 1: refused, never elsewhere
            good = release(tmp_path, 3, trusted, offset=3)
            on_the_way.swap[3] = rezip(good, alter="model.onnx")
            await asyncio.to_thread(roll_out, server, pid, 3, "st-1")
            await until(lambda: bool(refused(first, 3)), "v3 refused by station 1", 60)
            assert "model.onnx: SHA-256 does not match" in refused(first, 3)
            await until(lambda: rollout(server, pid)["stage"] == "rolled_back", "v3 stopped")

            await asyncio.sleep(1.0)  # several polls: the others are still offered release 1
            assert [version_of(a) for a in agents] == ["1", "1", "1"]
            assert all(offered(u) == {1} for u in rest)
            assert offered(first) == {1, 2, 3}
            listed = stations(server, pid)
            assert {n: r["target_model"] for n, r in listed.items()} == dict.fromkeys(STATIONS, 1)
            assert {n: r["model_version"] for n, r in listed.items()} == dict.fromkeys(STATIONS, 1)
            assert listed["st-1"]["refused"] == [2, 3]
            assert "v3: model.onnx: SHA-256 does not match" in listed["st-1"]["detail"]
            assert all(listed[n]["healthy"] for n in STATIONS)
            assert all(not listed[n]["refused"] for n in STATIONS[1:])
        finally:
            for agent in agents:
                agent.stop()
            await asyncio.gather(*running)

    asyncio.run(scenario())


def test_a_station_without_a_rollout_follows_the_active_release(
    tmp_path: Path, server: LiveServer, keys: dict[str, Path]
) -> None:
    """Before any roll-out the status answer names the project's active release (the SHA-256
    and name the agent checks its download against)."""
    pid = server.project("no-rollout")
    settings = parse_config(agent_config(tmp_path, server, pid, "solo", keys))
    version = publish(server, pid, release(tmp_path, 1, keys["trusted.pem"]))
    updater = ModelUpdater(Agent(settings))

    async def check() -> str:
        try:
            return await updater.check_once()
        finally:
            await updater.aclose()

    assert asyncio.run(check()) == "waiting"  # downloaded and verified; no recent parts yet
    with server.admin() as admin:
        listed = admin.get(f"/projects/{pid}/models").json()["items"]
    assert updater.candidate is not None
    assert (updater.candidate.version, updater.candidate.sha256) == (version, listed[0]["sha256"])
    assert updater.candidate.name == "line-golden"
    row = stations(server, pid)["solo"]
    assert (row["model_version"], row["recipe_version"], row["healthy"]) == (None, "1.0", True)
    assert (row["target_model"], row["target_name"]) == (version, "line-golden")
