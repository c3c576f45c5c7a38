"""The twin API on SQLite and PostgreSQL: the line view (stations, drift state, recent NG) and
a station's last parts for one region, from frames the edge sent with their meta and findings."""

from __future__ import annotations

import json

import pytest
from server_support import API, Server, ingest, npy_file


def _send(server: Server, pid: int, seed: int, station: str, part: int, q1: float) -> str:
    verdict = "NG" if q1 > 45.0 else "OK"
    findings = {
        "verdict": verdict,
        "findings": [
            {"rule": "Q1 rise", "region": "Q1", "value": q1, "limit": 45.0, "verdict": verdict},
            {
                "rule": "Q2 rise",
                "region": "Q2",
                "value": 30.0 + 0.01 * (seed % 7),
                "limit": 37.0,
                "verdict": "OK",
            },
        ],
    }
    meta = {"site": "plant-1", "line": "L1", "station": station, "part": part, "recipe": "pcb"}
    response = ingest(
        server.admin,
        pid,
        npy_file(seed, shape=(8, 8)),
        findings=json.dumps(findings),
        meta=json.dumps(meta),
    )
    assert response.status_code == 201, response.text
    frame_id: str = response.json()["frame_id"]
    return frame_id


@pytest.mark.slow
def test_line_view_and_a_stations_parts(server: Server) -> None:
    pid = server.project()["id"]
    # station 3: Q1 steady for 120 parts (a little wobble), then drifting up 0.1 °C per part
    # until a part goes NG; station 1: steady.
    wobble = [0.3 * ((k * 7) % 5 - 2) for k in range(200)]
    for k in range(160):
        q1 = 30.0 + wobble[k] + (0.25 * (k - 120) if k > 120 else 0.0)
        _send(server, pid, 1000 + k, "st3", k, q1)
    ng = _send(server, pid, 5000, "st3", 160, 46.0)
    for k in range(5):
        _send(server, pid, 2000 + k, "st1", k, 30.0)
    response = server.admin.get(f"{API}/projects/{pid}/twin")
    assert response.status_code == 200, response.text
    stations = {s["station"]: s for s in response.json()["stations"]}
    assert set(stations) == {"st1", "st3"}
    st3 = stations["st3"]
    assert (st3["site"], st3["line"], st3["recipe"], st3["parts"], st3["ng"]) == (
        "plant-1",
        "L1",
        "pcb",
        161,
        1,
    )
    assert st3["status"] == "ng"
    assert [n["frame_id"] for n in st3["recent_ng"]] == [ng]
    assert any(d["rule"] == "Q1 rise" and d["direction"] == "up" for d in st3["drift"])
    assert all(d["part"] > 120 for d in st3["drift"])
    assert (stations["st1"]["status"], stations["st1"]["drift"]) == ("ok", [])

    response = server.admin.get(
        f"{API}/projects/{pid}/twin/stations/st3/parts", params={"region": "Q1", "limit": 50}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    parts = body["parts"]
    assert (body["station"], body["region"], len(parts)) == ("st3", "Q1", 50)
    assert [p["part"] for p in parts] == [str(k) for k in range(111, 161)]
    last = parts[-1]["values"]
    assert [(v["rule"], v["measured"], v["verdict"]) for v in last] == [("Q1 rise", 46.0, "NG")]
    assert last[0]["expected"] == 30.0  # the median of the first 100 parts
    missing = server.admin.get(f"{API}/projects/{pid}/twin/stations/st9/parts")
    assert missing.status_code == 200
    assert missing.json()["parts"] == []
    bad = server.admin.get(f"{API}/projects/{pid}/twin/stations/st3/parts", params={"limit": 0})
    assert bad.status_code == 422
