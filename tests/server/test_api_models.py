"""Projects hold model releases: upload (verified with the trusted keys), refusals with their
reason, activation, download; ingest pre-annotates with the active model (learned findings as
drafts, heat map stored and served, the model's score on the frame); the review queue orders by
model uncertainty; a training job turns a dataset version into a release of the project.

The model is golden statistics (no training framework, milliseconds) fitted on synthetic OK
frames; an NG frame carries a hot spot.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from server_support import ADMIN_PASSWORD, API, Server, ingest, make_settings

from thermoscope.models.contract import InputContract
from thermoscope.models.golden import fit_golden
from thermoscope.models.release import generate_keys, write_release
from thermoscope.models.release_zip import pack_release
from thermoscope.server import create_app

H, W = 24, 32
SPOT = (12, 20)  # row, column of the NG frames' hot spot


def frame(seed: int, spot: float = 0.0) -> NDArray[np.float32]:
    """A 24x32 °C frame near 25 °C; ``spot`` °C added in a Gaussian blob at ``SPOT``."""
    rng = np.random.default_rng(seed)
    celsius = 25.0 + rng.normal(0, 0.3, size=(H, W))
    yy, xx = np.mgrid[0:H, 0:W]
    celsius += spot * np.exp(-((yy - SPOT[0]) ** 2 + (xx - SPOT[1]) ** 2) / 6.0)
    return celsius.astype(np.float32)


def npy(array: NDArray[np.float32]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    generate_keys(folder / "trusted.pem", folder / "trusted.pub")
    generate_keys(folder / "other.pem", folder / "other.pub")
    return {
        "private": folder / "trusted.pem",
        "public": folder / "trusted.pub",
        "other": folder / "other.pem",
    }


def release_zip(
    tmp: Path,
    version: int,
    key: Path | None,
    *,
    created: datetime | None = None,
    expires: datetime | None = None,
) -> bytes:
    """A golden-statistics release of ``version`` fitted on 8 OK frames, zipped."""
    stats = fit_golden(
        [frame(100 + i) for i in range(8)],
        InputContract(window_c=(15.0, 45.0), height=H, width=W),
    )
    folder = tmp / f"release-{version}-{time.monotonic_ns()}"
    write_release(
        folder,
        name="golden-test",
        version=version,
        kind="golden",
        contract=stats.contract,
        onnx=stats.to_onnx(),
        classes=("ok", "anomaly"),
        thresholds={"anomaly": 0.5},
        created=created,
        expires=expires,
        private_key=key,
    )
    return pack_release(folder)


def _serve(tmp_path: Path, keys: dict[str, Path], database_url: str) -> Iterator[Server]:
    settings = make_settings(
        tmp_path,
        database_url,
        model_public_keys=[keys["public"]],
        model_signing_key=keys["private"],
    )
    app = create_app(settings)
    with TestClient(app) as client:
        answer = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield Server(app, client)


@pytest.fixture
def server(tmp_path: Path, keys: dict[str, Path]) -> Iterator[Server]:
    """The app on SQLite, trusting the test key and signing with it."""
    yield from _serve(tmp_path, keys, f"sqlite:///{tmp_path / 'm.db'}")


@pytest.fixture
def any_server(tmp_path: Path, keys: dict[str, Path], database_url: str) -> Iterator[Server]:
    """The same on SQLite and on PostgreSQL."""
    yield from _serve(tmp_path, keys, database_url)


def upload(client: TestClient, pid: int, data: bytes) -> Any:
    return client.post(
        f"{API}/projects/{pid}/models", content=data, headers={"Content-Type": "application/zip"}
    )


def test_upload_activate_download_and_preannotate(
    any_server: Server, keys: dict[str, Path], tmp_path: Path
) -> None:
    server = any_server
    pid = server.project()["id"]
    data = release_zip(tmp_path, 1, keys["private"])
    made = upload(server.admin, pid, data)
    assert made.status_code == 201, made.text
    out = made.json()
    assert (out["version"], out["name"], out["kind"]) == (1, "golden-test", "golden")
    assert out["active"] is False
    assert out["signed"] is True
    assert out["thresholds"] == {"anomaly": 0.5}
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    assert server.admin.get(f"{API}/projects/{pid}/models/active").status_code == 404

    # an annotator may read, not activate
    annotator = server.user("ann", pid, "annotator")
    assert annotator.post(f"{API}/projects/{pid}/models/1/activate").status_code == 403
    activated = server.admin.post(f"{API}/projects/{pid}/models/1/activate")
    assert activated.status_code == 200
    assert activated.json()["active"] is True
    assert server.admin.get(f"{API}/projects/{pid}/models/active").json()["version"] == 1
    listed = server.admin.get(f"{API}/projects/{pid}/models").json()
    assert [m["version"] for m in listed["items"]] == [1]
    assert listed["total"] == 1
    got = annotator.get(f"{API}/projects/{pid}/models/1/release.zip")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "application/zip"

    # ingest: the model drafts a learned finding at the hot spot, with its heat map and score
    ng = ingest(server.admin, pid, npy(frame(1, spot=8.0)), "ng.npy").json()["frame_id"]
    ok = ingest(server.admin, pid, npy(frame(2)), "ok.npy").json()["frame_id"]
    detail = server.admin.get(f"{API}/frames/{ng}").json()
    assert detail["machine_verdict"] == "NG"
    assert detail["model_version"] == "golden-test:1"
    assert detail["model_score"] > 0.5
    assert detail["heatmap"] is True
    assert detail["model_margin"] == pytest.approx(detail["model_score"] - 0.5, abs=1e-6)
    item = server.admin.get(f"{API}/frames/{ng}/annotations").json()["item"]
    learned = [a for a in item["annotations"] if a["provenance"].get("model") == "golden-test"]
    assert len(learned) == 1
    draft = learned[0]
    assert draft["label"] == "anomaly"
    assert draft["provenance"]["score"] == pytest.approx(detail["model_score"])
    assert draft["provenance"]["model_version"] == "1"
    shape = draft["shape"]
    assert shape["type"] == "box"
    assert shape["x"] <= SPOT[1] <= shape["x"] + shape["width"]
    assert shape["y"] <= SPOT[0] <= shape["y"] + shape["height"]
    heat = server.admin.get(f"{API}/frames/{ng}/heatmap")
    assert heat.status_code == 200
    assert (heat.headers["x-width"], heat.headers["x-height"]) == (str(W), str(H))
    plane = np.frombuffer(heat.content, dtype="<f4").reshape(H, W)
    row, col = np.unravel_index(int(np.argmax(plane)), plane.shape)
    assert abs(row - SPOT[0]) <= 2
    assert abs(col - SPOT[1]) <= 2
    ok_detail = server.admin.get(f"{API}/frames/{ok}").json()
    assert ok_detail["machine_verdict"] == "OK"
    assert ok_detail["model_score"] < 0.5
    # an outsider sees neither the heat map nor the releases
    outsider = server.user("out")
    assert outsider.get(f"{API}/frames/{ng}/heatmap").status_code == 404
    assert outsider.get(f"{API}/projects/{pid}/models").status_code == 404


def test_refusals_name_the_reason(server: Server, keys: dict[str, Path], tmp_path: Path) -> None:
    pid = server.project()["id"]

    def refused(data: bytes) -> str:
        answer = upload(server.admin, pid, data)
        assert answer.status_code == 422, answer.text
        detail: str = answer.json()["detail"]
        assert "/tmp" not in detail  # no server paths
        return detail

    assert "unsigned" in refused(release_zip(tmp_path, 1, None))
    assert "none of the server's" in refused(release_zip(tmp_path, 1, keys["other"]))
    # altered: one byte of the graph changed after signing
    good = release_zip(tmp_path, 1, keys["private"])
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files["model.onnx"] = files["model.onnx"][:-1] + bytes([files["model.onnx"][-1] ^ 1])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    assert "model.onnx" in refused(buffer.getvalue())
    assert "altered" in refused(buffer.getvalue())
    past = datetime.now(UTC) - timedelta(days=10)
    expired = release_zip(
        tmp_path, 1, keys["private"], created=past, expires=past + timedelta(days=1)
    )
    assert "expired" in refused(expired)
    assert "not a zip" in refused(b"PK not really")
    unsafe = io.BytesIO()
    with zipfile.ZipFile(unsafe, "w") as archive:
        archive.writestr("../manifest.json", b"{}")
    assert "unsafe file name" in refused(unsafe.getvalue())
    # older than what the project holds
    assert upload(server.admin, pid, release_zip(tmp_path, 3, keys["private"])).status_code == 201
    assert "older" in refused(release_zip(tmp_path, 2, keys["private"]))
    assert "older" in refused(release_zip(tmp_path, 3, keys["private"]))
    assert server.admin.get(f"{API}/projects/{pid}/models").json()["total"] == 1


def test_review_queue_orders_by_model_uncertainty(
    any_server: Server, keys: dict[str, Path], tmp_path: Path
) -> None:
    server = any_server
    pid = server.project()["id"]
    spots = (0.0, 1.0, 2.0, 3.0, 6.0, 12.0)
    for i, spot in enumerate(spots[:3]):  # before the model: no score
        assert ingest(server.admin, pid, npy(frame(10 + i, spot)), f"f{i}.npy").status_code == 201
    score_url = f"{API}/projects/{pid}/models/active/score"
    assert server.admin.post(score_url, json={}).status_code == 404  # no active model yet
    assert upload(server.admin, pid, release_zip(tmp_path, 1, keys["private"])).status_code == 201
    server.admin.post(f"{API}/projects/{pid}/models/1/activate")
    for i, spot in enumerate(spots[3:], start=3):
        assert ingest(server.admin, pid, npy(frame(10 + i, spot)), f"f{i}.npy").status_code == 201
    queue = server.admin.get(
        f"{API}/projects/{pid}/review-queue", params={"order": "uncertainty"}
    ).json()
    margins = [entry["frame"]["model_margin"] for entry in queue["items"]]
    assert margins[3:] == [None, None, None]  # unscored frames come last
    assert margins[:3] == sorted(margins[:3])
    # the scoring job scores the frames ingested before the model
    job = _wait(server, server.admin.post(score_url, json={}).json()["job_id"])
    assert job["state"] == "done", job
    assert job["result"] == {"project_id": pid, "model_version": "golden-test:1", "scored": 3}
    queue = server.admin.get(
        f"{API}/projects/{pid}/review-queue", params={"order": "uncertainty"}
    ).json()
    margins = [entry["frame"]["model_margin"] for entry in queue["items"]]
    assert len(margins) == 6
    assert all(m is not None for m in margins)
    assert margins == sorted(margins)
    assert all(e["frame"]["heatmap"] for e in queue["items"])
    scores = {e["frame"]["filename"]: e["frame"]["model_score"] for e in queue["items"]}
    assert scores["f5.npy"] > scores["f4.npy"] > 0.5  # larger spots score higher
    default = server.admin.get(f"{API}/projects/{pid}/review-queue").json()
    assert default["items"][0]["frame"]["machine_verdict"] == "NG"  # NG first by default


def _wait(server: Server, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = server.admin.get(f"{API}/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def _set_verdict(server: Server, fid: str, value: str) -> None:
    current = server.admin.get(f"{API}/frames/{fid}/annotations").json()
    item = {
        **current["item"],
        "annotations": [],
        "verdicts": [
            {
                "id": "v1",
                "frame": None,
                "verdict": value,
                "reason": "hot spot" if value == "NG" else "",
                "provenance": {"author": "admin", "created": "2025-01-01T00:00:00+00:00"},
            }
        ],
    }
    saved = server.admin.put(
        f"{API}/frames/{fid}/annotations", json={"item": item, "revision": current["revision"]}
    )
    assert saved.status_code == 200, saved.text


def test_training_job_lands_a_release(server: Server) -> None:
    pid = server.project()["id"]
    for i in range(10):
        fid = ingest(server.admin, pid, npy(frame(200 + i)), f"ok{i}.npy").json()["frame_id"]
        _set_verdict(server, fid, "OK")
    for i in range(4):
        fid = ingest(server.admin, pid, npy(frame(300 + i, 8.0)), f"ng{i}.npy").json()["frame_id"]
        _set_verdict(server, fid, "NG")
    made = server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={"message": "v"})
    vid = _wait(server, made.json()["job_id"])["result"]["version_id"]

    reviewer = server.user("rev", pid, "reviewer")
    body = {"version_id": vid, "name": "line-golden", "activate": True}
    assert reviewer.post(f"{API}/projects/{pid}/models/train", json=body).status_code == 403
    queued = server.admin.post(f"{API}/projects/{pid}/models/train", json=body)
    assert queued.status_code == 202, queued.text
    job = _wait(server, queued.json()["job_id"])
    assert job["state"] == "done", job
    assert job["progress"] == 1.0
    assert job["result"]["model_version"] == 1
    assert job["result"]["signed"] is True
    active = server.admin.get(f"{API}/projects/{pid}/models/active").json()
    assert (active["name"], active["version"], active["active"]) == ("line-golden", 1, True)
    assert active["metrics"]["holdout_count"] >= 1
    # the trained model pre-annotates the next frame
    fid = ingest(server.admin, pid, npy(frame(400, 8.0)), "next.npy").json()["frame_id"]
    detail = server.admin.get(f"{API}/frames/{fid}").json()
    assert detail["model_version"] == "line-golden:1"
    assert detail["machine_verdict"] == "NG"

    # a version without verdicts fails with the reason
    other = server.project("empty")["id"]
    ingest(server.admin, other, npy(frame(500)), "x.npy")
    made = server.admin.post(f"{API}/projects/{other}/dataset-versions", json={})
    vid2 = _wait(server, made.json()["job_id"])["result"]["version_id"]
    queued = server.admin.post(f"{API}/projects/{other}/models/train", json={"version_id": vid2})
    failed = _wait(server, queued.json()["job_id"])
    assert failed["state"] == "failed"
    assert "verdict" in failed["error"]


def test_unsigned_training_release_stays_inactive(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Without a signing key a trained release is stored unsigned and inactive."""
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'u.db'}"))
    with TestClient(app) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        srv = Server(app, client)
        pid = srv.project()["id"]
        for i in range(6):
            fid = ingest(client, pid, npy(frame(600 + i)), f"ok{i}.npy").json()["frame_id"]
            _set_verdict(srv, fid, "OK")
        fid = ingest(client, pid, npy(frame(700, 8.0)), "ng.npy").json()["frame_id"]
        _set_verdict(srv, fid, "NG")
        made = client.post(f"{API}/projects/{pid}/dataset-versions", json={})
        vid = _wait(srv, made.json()["job_id"])["result"]["version_id"]
        queued = client.post(
            f"{API}/projects/{pid}/models/train", json={"version_id": vid, "activate": True}
        )
        job = _wait(srv, queued.json()["job_id"])
        assert job["state"] == "done", job
        assert job["result"]["signed"] is False
        assert job["result"]["active"] is False
        assert client.get(f"{API}/projects/{pid}/models/active").status_code == 404
        # uploads are refused: the trained release is unsigned, and no key is trusted
        answer = upload(
            client, pid, client.get(f"{API}/projects/{pid}/models/1/release.zip").content
        )
        assert answer.status_code == 422
        assert "unsigned" in answer.json()["detail"]
        answer = upload(client, pid, release_zip(tmp_path, 2, keys["private"]))
        assert answer.status_code == 422
        assert "trusts no key" in answer.json()["detail"]
        # a project admin activates the unsigned release; ingest then uses it
        assert client.post(f"{API}/projects/{pid}/models/1/activate").status_code == 200
        fid = ingest(client, pid, npy(frame(800, 8.0)), "n.npy").json()["frame_id"]
        assert client.get(f"{API}/frames/{fid}").json()["model_version"] == "golden:1"


def test_recipe_and_model_draft_side_by_side(
    server: Server, keys: dict[str, Path], tmp_path: Path
) -> None:
    recipe = {
        "name": "bench",
        "version": "3",
        "frame": {"width": W, "height": H},
        "regions": [
            {"name": "U7", "box": {"x": SPOT[1] - 3, "y": SPOT[0] - 3, "width": 7, "height": 7}}
        ],
        "rules": [{"type": "max", "region": "U7", "limits": {"max": 30}}],
    }
    pid = server.project(recipe=json.dumps(recipe))["id"]
    assert upload(server.admin, pid, release_zip(tmp_path, 1, keys["private"])).status_code == 201
    server.admin.post(f"{API}/projects/{pid}/models/1/activate")
    fid = ingest(server.admin, pid, npy(frame(5, spot=8.0)), "both.npy").json()["frame_id"]
    item = server.admin.get(f"{API}/frames/{fid}/annotations").json()["item"]
    makers = sorted(a["provenance"]["model"] for a in item["annotations"])
    assert makers == ["golden-test", "recipe:bench"]
    assert item["verdicts"][0]["verdict"] == "NG"
    findings = server.admin.get(f"{API}/frames/{fid}").json()["machine_findings"]["findings"]
    assert [(f["rule"], f["verdict"]) for f in findings] == [
        ("U7 max", "NG"),
        ("model:golden-test", "NG"),
    ]


@pytest.mark.slow
def test_training_job_anomaly_model(server: Server) -> None:
    """The patch-feature anomaly model (torch) from a dataset version, through the same job."""
    pytest.importorskip("torch", reason="the anomaly model trains with torch (train extra)")
    pid = server.project()["id"]
    for i in range(8):
        fid = ingest(server.admin, pid, npy(frame(1000 + i)), f"ok{i}.npy").json()["frame_id"]
        _set_verdict(server, fid, "OK")
    for i in range(3):
        fid = ingest(server.admin, pid, npy(frame(1100 + i, 8.0)), f"ng{i}.npy").json()["frame_id"]
        _set_verdict(server, fid, "NG")
    made = server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={})
    vid = _wait(server, made.json()["job_id"])["result"]["version_id"]
    body = {"version_id": vid, "kind": "anomaly", "name": "patches", "activate": True}
    job = _wait(
        server, server.admin.post(f"{API}/projects/{pid}/models/train", json=body).json()["job_id"]
    )
    assert job["state"] == "done", job
    active = server.admin.get(f"{API}/projects/{pid}/models/active").json()
    assert (active["kind"], active["name"]) == ("anomaly", "patches")
    fid = ingest(server.admin, pid, npy(frame(1200, 9.0)), "next.npy").json()["frame_id"]
    detail = server.admin.get(f"{API}/frames/{fid}").json()
    assert detail["model_version"] == "patches:1"
    assert detail["heatmap"] is True


def test_a_model_that_no_longer_verifies_is_skipped(
    tmp_path: Path, keys: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The key that signed the active release is withdrawn: ingest goes on without the model
    (logged), the release stays listed."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    first = _serve(tmp_path, keys, url)
    srv = next(first)
    pid = srv.project()["id"]
    assert upload(srv.admin, pid, release_zip(tmp_path, 1, keys["private"])).status_code == 201
    srv.admin.post(f"{API}/projects/{pid}/models/1/activate")
    first.close()
    app = create_app(make_settings(tmp_path, url))  # same data, no trusted key any more
    with TestClient(app) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        made = ingest(client, pid, npy(frame(3, spot=8.0)), "after.npy")
        assert made.status_code == 201, made.text
        detail = client.get(f"{API}/frames/{made.json()['frame_id']}").json()
        assert detail["model_version"] is None
        assert detail["heatmap"] is False
        assert client.get(f"{API}/projects/{pid}/models/active").json()["version"] == 1
    assert any("active model v1 not used" in r.getMessage() for r in caplog.records)
