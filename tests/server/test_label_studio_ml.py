"""The Label Studio ML backend protocol: a request/response round trip of each route with the
JSON shapes Label Studio documents and sends (label-studio-ml-backend's ``/health``,
``/setup``, ``/predict`` and ``/webhook``), against a project with an active golden-statistics
model; tasks name our frames by the image URL we serve or by ``frame_id``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from server_support import API, Server, ingest
from test_api_models import (  # noqa: F401 - keys and server are fixtures
    SPOT,
    H,
    W,
    _set_verdict,
    _wait,
    frame,
    keys,
    npy,
    release_zip,
    server,
    upload,
)

#: A labelling configuration as Label Studio's image templates write it.
LABEL_CONFIG = """<View>
  <Image name="thermal" value="$image"/>
  <RectangleLabels name="defects" toName="thermal">
    <Label value="anomaly"/>
  </RectangleLabels>
  <Choices name="part_verdict" toName="thermal">
    <Choice value="OK"/><Choice value="NG"/>
  </Choices>
</View>"""


def predict_request(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """``POST /predict`` as Label Studio sends it (ml/api_connector.py: tasks with id, data,
    meta, annotations, predictions; the project as ``"<id>.<created timestamp>"``; the
    labelling config; params with login/password/context)."""
    return {
        "tasks": tasks,
        "model_version": None,
        "project": "7.1717171717",
        "label_config": LABEL_CONFIG,
        "params": {"login": None, "password": None, "context": None},
    }


def task(ident: int, data: dict[str, Any]) -> dict[str, Any]:
    """A task as Label Studio serialises it for an ML backend."""
    return {
        "id": ident,
        "data": data,
        "meta": {},
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "2026-01-01T00:00:00.000000Z",
        "is_labeled": False,
        "overlap": 1,
        "annotations": [],
        "predictions": [],
        "project": 7,
    }


def check_prediction(prediction: dict[str, Any]) -> None:
    """The documented shape of one prediction (Label Studio JSON format, predictions): a
    ``result`` list, a float ``score`` and a ``model_version`` string; region results carry
    ``from_name``, ``to_name``, ``type``, ``original_width/height`` and a ``value`` in percent
    of the image (0..100)."""
    assert set(prediction) >= {"result", "score", "model_version"}
    assert isinstance(prediction["model_version"], str)
    assert 0.0 <= prediction["score"] <= 1.0
    for result in prediction["result"]:
        assert {"from_name", "to_name", "type", "value"} <= set(result)
        value = result["value"]
        if result["type"] == "rectanglelabels":
            assert (result["original_width"], result["original_height"]) == (W, H)
            for key in ("x", "y", "width", "height"):
                assert 0.0 <= value[key] <= 100.0
            assert value["x"] + value["width"] <= 100.0 + 1e-9
            assert value["y"] + value["height"] <= 100.0 + 1e-9
            assert value["rotation"] == 0
            assert all(isinstance(label, str) for label in value["rectanglelabels"])
        else:
            assert result["type"] == "choices"
            assert value["choices"][0] in ("OK", "NG")
        if "score" in result:
            assert 0.0 <= result["score"] <= 1.0


def _token(srv: Server, scopes: list[str]) -> str:
    made = srv.admin.post(f"{API}/tokens", json={"name": "ls", "scopes": scopes})
    text: str = made.json()["token"]
    return text


def _basic(token: str) -> dict[str, str]:
    raw = base64.b64encode(f"labelstudio:{token}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_round_trip(server: Server, keys: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    pid = server.project()["id"]
    assert upload(server.admin, pid, release_zip(tmp_path, 4, keys["private"])).status_code == 201
    server.admin.post(f"{API}/projects/{pid}/models/4/activate")
    ng = ingest(server.admin, pid, npy(frame(1, spot=8.0)), "ng.npy").json()["frame_id"]
    ok = ingest(server.admin, pid, npy(frame(2)), "ok.npy").json()["frame_id"]
    base = f"{API}/ml/{pid}"
    ls = TestClient(server.app, headers=_basic(_token(server, ["read"])))

    health = ls.get(f"{base}/health")
    assert health.status_code == 200
    assert health.json()["status"] == "UP"
    setup = ls.post(
        f"{base}/setup",
        json={
            "project": "7.1717171717",
            "schema": LABEL_CONFIG,
            "hostname": "http://localhost:8080",
            "access_token": "ls-token",
            "model_version": None,
            "extra_params": None,
        },
    )
    assert setup.status_code == 200
    assert setup.json() == {"model_version": "golden-test:4"}

    image = f"http://thermoscope.example{API}/frames/{ng}/render.png?palette=iron"
    body = predict_request(
        [
            task(11, {"image": image}),
            task(12, {"frame_id": ok, "image": "s3://bucket/ok.png"}),
            task(13, {"image": "http://elsewhere.example/picture.jpg"}),
        ]
    )
    answer = ls.post(f"{base}/predict", json=body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 3  # one per task, in order
    for prediction in results:
        check_prediction(prediction)

    hot, cool, unknown = results
    assert hot["model_version"] == "golden-test:4"
    assert hot["score"] > 0.5
    boxes = [r for r in hot["result"] if r["type"] == "rectanglelabels"]
    assert len(boxes) == 1
    box = boxes[0]
    assert (box["from_name"], box["to_name"]) == ("defects", "thermal")
    assert box["value"]["rectanglelabels"] == ["anomaly"]
    assert box["score"] == hot["score"]
    # the box (percent) holds the hot spot (pixels)
    col, row = SPOT[1] / W * 100.0, SPOT[0] / H * 100.0
    assert box["value"]["x"] <= col <= box["value"]["x"] + box["value"]["width"]
    assert box["value"]["y"] <= row <= box["value"]["y"] + box["value"]["height"]
    verdicts = [r for r in hot["result"] if r["type"] == "choices"]
    assert [v["value"]["choices"] for v in verdicts] == [["NG"]]
    assert verdicts[0]["from_name"] == "part_verdict"

    assert [r["value"]["choices"] for r in cool["result"]] == [["OK"]]
    assert cool["score"] < 0.5
    assert unknown == {"result": [], "score": 0.0, "model_version": "golden-test:4"}

    # the same with a Bearer token and without a label config: default control names
    bearer = TestClient(server.app, headers={"Authorization": f"Bearer {_token(server, ['read'])}"})
    plain = bearer.post(f"{base}/predict", json={"tasks": [{"id": 1, "data": {"image": image}}]})
    first = plain.json()["results"][0]["result"]
    assert {(r["from_name"], r["to_name"]) for r in first} == {
        ("label", "image"),
        ("verdict", "image"),
    }


def test_auth_and_webhook(server: Server, keys: dict[str, Path]) -> None:  # noqa: F811
    pid = server.project()["id"]
    base = f"{API}/ml/{pid}"
    assert TestClient(server.app).get(f"{base}/health").status_code == 401
    bad = TestClient(server.app, headers={"Authorization": "Basic !!!"})
    assert bad.get(f"{base}/health").status_code == 401
    assert (
        TestClient(server.app, headers=_basic("tsk_wrong")).get(f"{base}/health").status_code == 401
    )
    reader = TestClient(server.app, headers=_basic(_token(server, ["read"])))
    assert reader.get(f"{base}/health").json()["model_version"] == "none"
    event = {"action": "START_TRAINING", "project": {"id": 7, "title": "thermal"}}
    assert reader.post(f"{base}/webhook", json=event).status_code == 403  # needs admin
    admin = TestClient(server.app, headers=_basic(_token(server, ["read", "admin"])))
    ignored = admin.post(
        f"{base}/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {"id": 3}}
    )
    assert ignored.status_code == 201
    assert ignored.json() == {"status": "ignored", "action": "ANNOTATION_CREATED"}
    assert admin.post(f"{base}/webhook", json=event).status_code == 404  # no dataset version

    for i in range(5):
        fid = ingest(server.admin, pid, npy(frame(900 + i)), f"ok{i}.npy").json()["frame_id"]
        _set_verdict(server, fid, "OK")
    fid = ingest(server.admin, pid, npy(frame(950, 8.0)), "ng.npy").json()["frame_id"]
    _set_verdict(server, fid, "NG")
    made = server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={})
    _wait(server, made.json()["job_id"])
    started = admin.post(f"{base}/webhook", json=event)
    assert started.status_code == 201
    assert started.json()["status"] == "ok"
    job = _wait(server, started.json()["job_id"])
    assert job["state"] == "done", job
    assert job["result"]["model_version"] == 1
