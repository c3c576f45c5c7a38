"""A staged model roll-out over 3 simulated stations against the in-process server.

Each station has its own ``ingest``-scoped API token and id, reports its status, and follows the
target the answer names like the edge updater does: download the release zip, unpack it,
verify it with the trusted key (``verify_release``: signed, intact, current, newer), switch,
then run its health check; a failed check rolls back to the previous release and reports the
release as refused. Releases are golden-statistics releases (no torch).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, Server, make_settings
from test_api_models import release_zip, upload

from thermoscope.models.release import generate_keys, verify_release
from thermoscope.models.release_zip import unpack_release
from thermoscope.server import create_app


@dataclass
class Station:
    """A simulated edge station: it runs ``running`` and follows the server's target."""

    name: str
    client: TestClient
    pid: int
    public_key: Path
    healthy_on: set[int] = field(default_factory=set)  # releases its health check passes on
    running: int | None = None
    refused: list[int] = field(default_factory=list)
    detail: str = ""

    def report(self) -> dict[str, object]:
        answer = self.client.post(
            f"{API}/projects/{self.pid}/stations/{self.name}/status",
            json={"model_version": self.running, "recipe_version": "3", "healthy": True,
                  "refused": self.refused, "detail": self.detail},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    def follow(self) -> None:
        """Report, then install the target release when it is new (verify, switch, check)."""
        target = self.report()["target_model"]
        if not isinstance(target, int) or target == self.running or target in self.refused:
            return
        data = self.client.get(f"{API}/projects/{self.pid}/models/{target}/release.zip")
        assert data.status_code == 200, data.text
        with tempfile.TemporaryDirectory() as tmp:
            unpack_release(data.content, Path(tmp) / "release", limit=1 << 24)
            manifest = verify_release(Path(tmp) / "release", self.public_key)
        assert manifest.version == target
        previous, self.running = self.running, target
        if target not in self.healthy_on:  # the health check after the switch fails
            self.running = previous
            self.refused.append(target)
            self.detail = f"release {target}: health check failed, rolled back"
        self.report()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Server, int, list[Station], Path]]:
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_keys(keys / "k.pem", keys / "k.pub")
    settings = make_settings(tmp_path, model_public_keys=[keys / "k.pub"])
    app = create_app(settings)
    with TestClient(app) as admin:
        answer = admin.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        admin.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        server = Server(app, admin)
        pid = server.project()["id"]
        for version in (1, 2):
            made = upload(admin, pid, release_zip(tmp_path, version, keys / "k.pem"))
            assert made.status_code == 201, made.text
        stations = [
            Station(f"st-{i}", server.token(admin, ["ingest", "read"]), pid, keys / "k.pub")
            for i in (1, 2, 3)
        ]
        yield server, pid, stations, tmp_path


def _rollout(server: Server, pid: int, version: int, first: str) -> dict[str, object]:
    answer = server.admin.post(
        f"{API}/projects/{pid}/rollouts", json={"version": version, "first": first}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _current(server: Server, pid: int) -> dict[str, object]:
    answer = server.admin.get(f"{API}/projects/{pid}/rollouts/current")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_staged_rollout_first_station_then_the_rest(
    fleet: tuple[Server, int, list[Station], Path],
) -> None:
    server, pid, stations, _ = fleet
    first, *rest = stations
    for station in stations:
        station.healthy_on = {1, 2}
        station.follow()
    assert all(s.running is None for s in stations)
    _rollout(server, pid, 1, first.name)
    for station in rest:  # only the first station is offered the release
        station.follow()
    assert [s.running for s in rest] == [None, None]
    first.follow()
    assert first.running == 1
    assert _current(server, pid)["stage"] == "complete"
    for station in rest:
        station.follow()
    assert [s.running for s in stations] == [1, 1, 1]
    listed = server.admin.get(f"{API}/projects/{pid}/stations").json()
    assert [(s["station"], s["model_version"], s["target_model"]) for s in listed] == [
        ("st-1", 1, 1),
        ("st-2", 1, 1),
        ("st-3", 1, 1),
    ]


def test_rollout_stops_when_the_first_station_rolls_back(
    fleet: tuple[Server, int, list[Station], Path],
) -> None:
    server, pid, stations, _ = fleet
    first, *rest = stations
    for station in stations:
        station.healthy_on = {1, 2}
    first.healthy_on = {1}  # release 2 fails the first station's health check
    _rollout(server, pid, 1, first.name)
    for station in stations:
        station.follow()
    for station in rest:
        station.follow()
    assert [s.running for s in stations] == [1, 1, 1]

    _rollout(server, pid, 2, first.name)
    for station in rest:
        station.follow()
    first.follow()
    assert (first.running, first.refused) == (1, [2])
    current = _current(server, pid)
    assert (current["stage"], current["previous"]) == ("rolled_back", 1)
    assert "health check failed" in str(current["reason"])
    for station in [*rest, first]:
        station.follow()
    assert [s.running for s in stations] == [1, 1, 1]  # the others never got release 2
    listed = server.admin.get(f"{API}/projects/{pid}/stations").json()
    assert {s["target_model"] for s in listed} == {1}
    assert listed[0]["refused"] == [2]


def test_station_routes_check_their_input(
    fleet: tuple[Server, int, list[Station], Path],
) -> None:
    server, pid, stations, _ = fleet
    bad = stations[0].client.post(f"{API}/projects/{pid}/stations/.hidden/status", json={})
    assert bad.status_code == 422
    missing = server.admin.post(
        f"{API}/projects/{pid}/rollouts", json={"version": 9, "first": "st-1"}
    )
    assert missing.status_code == 404
    _rollout(server, pid, 1, "st-1")
    busy = server.admin.post(f"{API}/projects/{pid}/rollouts", json={"version": 2, "first": "st-2"})
    assert busy.status_code == 409
    viewer = stations[1].client.post(
        f"{API}/projects/{pid}/rollouts", json={"version": 2, "first": "st-2"}
    )
    assert viewer.status_code == 403


def test_before_any_rollout_stations_follow_the_active_release(
    fleet: tuple[Server, int, list[Station], Path],
) -> None:
    server, pid, stations, _ = fleet
    first, *rest = stations
    for station in stations:
        station.healthy_on = {1, 2}
    assert server.admin.post(f"{API}/projects/{pid}/models/1/activate").status_code == 200
    for station in stations:
        station.follow()
    assert [s.running for s in stations] == [1, 1, 1]
    models = server.admin.get(f"{API}/projects/{pid}/models").json()["items"]
    listed = server.admin.get(f"{API}/projects/{pid}/stations").json()
    v1 = next(m for m in models if m["version"] == 1)
    assert {(s["target_model"], s["target_sha256"], s["target_name"]) for s in listed} == {
        (1, v1["sha256"], v1["name"])
    }
    assert _rollout(server, pid, 2, first.name)["previous"] == 1  # the others keep the active one
    for station in rest:
        station.follow()
    assert [s.running for s in stations] == [1, 1, 1]
    first.follow()
    assert first.running == 2
