"""Ingest: idempotency by content, resumable uploads, bad input, pre-annotation, temperatures."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from server_support import API, Server, ingest, make_settings, npy_file

import thermoscope.io as tio
from sample_data import reference_cases, reference_for
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.pipeline.demo import example_recipe


def test_same_data_twice_is_one_frame(server: Server) -> None:
    pid = server.project()["id"]
    data = npy_file(1)
    first = ingest(server.admin, pid, data)
    assert first.status_code == 201
    body = first.json()
    assert body["created"] is True
    assert (body["width"], body["height"], body["frame_count"]) == (32, 24, 1)
    again = ingest(server.admin, pid, data, name="other-name.npy")
    assert again.status_code == 200
    assert again.json() == {**body, "created": False}
    # the same temperatures in another file format are the same radiometric data
    celsius = np.load(io.BytesIO(data))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, celsius)
    as_tiff = ingest(server.admin, pid, buffer.getvalue(), name="frame.tiff")
    assert as_tiff.json()["frame_id"] == body["frame_id"]
    assert as_tiff.json()["created"] is False
    frames = server.admin.get(f"{API}/projects/{pid}/frames").json()
    assert frames["total"] == 1
    # another project gets its own frame of the same data
    other = server.project("other")["id"]
    elsewhere = ingest(server.admin, other, data).json()
    assert elsewhere["created"]
    assert elsewhere["frame_id"] != body["frame_id"]


def test_bad_uploads_get_clear_answers(server: Server) -> None:
    pid = server.project()["id"]
    garbage = ingest(server.admin, pid, b"\x00\x01not a thermal image" * 10, name="x.jpg")
    assert garbage.status_code == 422
    assert "x.jpg" in garbage.json()["detail"]
    assert ingest(server.admin, pid, b"", name="empty.npy").status_code == 422
    truncated = ingest(server.admin, pid, npy_file(1)[:100])
    assert truncated.status_code == 422
    missing = server.admin.post(f"{API}/projects/{pid}/frames", data={"meta": "{}"})
    assert missing.status_code == 422
    assert "file" in missing.json()["detail"]
    bad_meta = ingest(server.admin, pid, npy_file(1), meta="[1, 2]")
    assert bad_meta.status_code == 422
    assert "meta" in bad_meta.json()["detail"]
    bad_findings = ingest(server.admin, pid, npy_file(1), findings='{"verdict": "MAYBE"}')
    assert bad_findings.status_code == 422
    assert "findings" in bad_findings.json()["detail"]
    not_json = ingest(server.admin, pid, npy_file(1), findings="{")
    assert not_json.status_code == 422
    assert server.admin.get(f"{API}/projects/{pid}/frames").json()["total"] == 0


def test_oversized_files_are_refused(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from thermoscope.server import create_app

    app = create_app(make_settings(tmp_path, max_upload_bytes=4096))
    with TestClient(app) as client:
        token = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": "admin-password-1"}
        ).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        pid = client.post(f"{API}/projects", json={"name": "p"}).json()["id"]
        big = ingest(client, pid, npy_file(1, shape=(64, 64)))
        assert big.status_code == 413
        opened = client.post(
            f"{API}/uploads",
            json={"project_id": pid, "filename": "big.seq", "size": 10**9, "sha256": "0" * 64},
        )
        assert opened.status_code == 413


def _open(client, pid: int, data: bytes, name: str = "big.npy"):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/uploads",
        json={
            "project_id": pid,
            "filename": name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )


def _put(client, upload_id: str, data: bytes, first: int, last: int, total: int | None = None):  # type: ignore[no-untyped-def]
    return client.put(
        f"{API}/uploads/{upload_id}",
        content=data[first : last + 1],
        headers={
            "Content-Range": f"bytes {first}-{last}/{total or len(data)}",
            "Content-Type": "application/octet-stream",
        },
    )


def test_resumable_upload(server: Server) -> None:
    pid = server.project()["id"]
    data = npy_file(7, shape=(120, 160))
    opened = _open(server.admin, pid, data)
    assert opened.status_code == 201
    upload = opened.json()
    assert upload["offset"] == 0
    assert upload["state"] == "open"
    uid = upload["upload_id"]
    assert _put(server.admin, uid, data, 0, 9999).json()["offset"] == 10000
    # a client that lost the id finds its upload again, with its offset
    again = _open(server.admin, pid, data)
    assert again.status_code == 200
    assert again.json()["upload_id"] == uid
    assert again.json()["offset"] == 10000
    # a chunk at the wrong place is refused with the offset to resume from
    wrong = _put(server.admin, uid, data, 20000, 29999)
    assert wrong.status_code == 409
    assert wrong.json()["offset"] == 10000
    assert _put(server.admin, uid, data, 10000, 20000, total=5).status_code == 400
    bad_range = server.admin.put(
        f"{API}/uploads/{uid}", content=b"abc", headers={"Content-Range": "bytes=0-2"}
    )
    assert bad_range.status_code == 400
    short_body = server.admin.put(
        f"{API}/uploads/{uid}",
        content=b"abc",
        headers={"Content-Range": f"bytes 10000-10009/{len(data)}"},
    )
    assert short_body.status_code == 400
    early = server.admin.post(f"{API}/uploads/{uid}/complete")
    assert early.status_code == 409
    assert "missing" in early.json()["detail"]
    assert _put(server.admin, uid, data, 10000, len(data) - 1).json()["offset"] == len(data)
    done = server.admin.post(f"{API}/uploads/{uid}/complete")
    assert done.status_code == 201, done.text
    direct = ingest(server.admin, pid, data).json()
    assert direct["frame_id"] == done.json()["frame_id"]
    assert direct["created"] is False
    assert server.admin.get(f"{API}/uploads/{uid}").json()["state"] == "complete"
    twice = server.admin.post(f"{API}/uploads/{uid}/complete")
    assert twice.status_code == 200
    assert twice.json()["frame_id"] == direct["frame_id"]
    # another user cannot see the upload
    stranger = server.user("sam", pid, "annotator")
    assert stranger.get(f"{API}/uploads/{uid}").status_code == 404


def test_upload_with_wrong_hash_starts_over(server: Server) -> None:
    pid = server.project()["id"]
    data = npy_file(8)
    response = server.admin.post(
        f"{API}/uploads",
        json={"project_id": pid, "filename": "f.npy", "size": len(data), "sha256": "ab" * 32},
    )
    uid = response.json()["upload_id"]
    _put(server.admin, uid, data, 0, len(data) - 1)
    mismatch = server.admin.post(f"{API}/uploads/{uid}/complete")
    assert mismatch.status_code == 422
    assert "sha256" in mismatch.json()["detail"]
    assert server.admin.get(f"{API}/uploads/{uid}").json()["offset"] == 0
    assert server.admin.get(f"{API}/projects/{pid}/frames").json()["total"] == 0


def test_recipe_pre_annotates_on_ingest(server: Server) -> None:
    recipe = example_recipe("pcb").read_text(encoding="utf-8")
    project = server.project(recipe=recipe)
    labels = {label["name"] for label in project["label_schema"]["labels"]}
    assert {"delta_t", "hot_spot_area", "asymmetry"} <= labels
    assert project["recipe"]["name"] == "synthetic-pcb"
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    parts = simulate_run("pcb", parts=12, defect_rate=0.5, rng=np.random.default_rng(3))
    verdicts = {}
    for part in parts:
        body = ingest(server.admin, project["id"], writer.emit([part.frame]), f"{part.serial}.seq")
        fid = body.json()["frame_id"]
        frame = server.admin.get(f"{API}/frames/{fid}").json()
        item = server.admin.get(f"{API}/frames/{fid}/annotations").json()["item"]
        verdicts[part.is_defective] = verdicts.get(part.is_defective, set()) | {
            frame["machine_verdict"]
        }
        assert frame["machine_findings"]["findings"]
        assert item["verdicts"][0]["provenance"]["model"] == "recipe:synthetic-pcb"
        assert item["verdicts"][0]["review"]["state"] == "draft"
        if frame["machine_verdict"] == "NG":
            assert item["annotations"], "an NG board carries draft annotations"
            assert all(a["provenance"]["model"] for a in item["annotations"])
    assert "NG" in verdicts[True]
    assert verdicts[False] == {"OK"}


def test_edge_findings_become_drafts(server: Server) -> None:
    pid = server.project()["id"]
    findings = {
        "source": "cam-3/part-17",
        "frame": 0,
        "verdict": "NG",
        "model": "edge-net",
        "model_version": "7",
        "findings": [
            {
                "rule": "hot",
                "region": "",
                "value": 81.5,
                "limit": 70,
                "verdict": "NG",
                "x": 5,
                "y": 6,
                "explanation": "81.5 °C above 70 °C",
                "margin": -11.5,
                "score": 0.35,
            }
        ],
    }
    body = ingest(server.admin, pid, npy_file(9), findings=json.dumps(findings), meta='{"line": 3}')
    fid = body.json()["frame_id"]
    frame = server.admin.get(f"{API}/frames/{fid}").json()
    assert frame["findings"]["model"] == "edge-net"
    assert frame["meta"] == {"line": 3}
    assert frame["machine_verdict"] == "NG"
    assert frame["confidence"] == pytest.approx(0.35)
    (kept,) = frame["machine_findings"]["findings"]
    assert (kept["margin"], kept["score"], kept["unit"]) == (-11.5, 0.35, "°C")
    item = server.admin.get(f"{API}/frames/{fid}/annotations").json()["item"]
    (draft,) = item["annotations"]
    assert draft["label"] == "hot"
    assert draft["shape"] == {"type": "point", "x": 5.5, "y": 6.5}
    assert draft["provenance"]["score"] == pytest.approx(0.35)
    # the drafts' label joined the schema, so the item can be saved back
    saved = server.admin.put(f"{API}/frames/{fid}/annotations", json={"item": item, "revision": 1})
    assert saved.status_code == 200, saved.text
    outside = {**findings, "findings": [{**findings["findings"][0], "x": 500}]}
    refused = ingest(server.admin, pid, npy_file(10), findings=json.dumps(outside))
    assert refused.status_code == 422
    assert "outside" in refused.json()["detail"]


def test_frame_detail_render_and_original(server: Server) -> None:
    pid = server.project()["id"]
    data = npy_file(11)
    fid = ingest(server.admin, pid, data, name="board.npy").json()["frame_id"]
    detail = server.admin.get(f"{API}/frames/{fid}").json()
    celsius = np.load(io.BytesIO(data))
    assert detail["min_c"] == pytest.approx(float(celsius.min()))
    assert detail["max_c"] == pytest.approx(float(celsius.max()))
    assert detail["status"] == "new"
    assert detail["revision"] == 1
    png = server.admin.get(f"{API}/frames/{fid}/render.png?palette=rainbow&low=20&high=30")
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    assert server.admin.get(f"{API}/frames/{fid}/render.png?palette=nope").status_code == 422
    assert server.admin.get(f"{API}/frames/{fid}/render.png?low=30&high=20").status_code == 422
    assert server.admin.get(f"{API}/frames/{fid}/celsius?frame=1").status_code == 422
    plain = server.admin.get(f"{API}/frames/{fid}/celsius", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    np.testing.assert_array_equal(np.frombuffer(plain.content, "<f4").reshape(24, 32), celsius)
    cached = server.admin.get(
        f"{API}/frames/{fid}/celsius", headers={"If-None-Match": plain.headers["etag"]}
    )
    assert cached.status_code == 304
    original = server.admin.get(f"{API}/frames/{fid}/original")
    assert original.content == data
    palettes = server.client().get(f"{API}/palettes").json()["items"]
    assert {p["name"] for p in palettes} >= {"iron", "rainbow"}
    assert all(len(p["colors"]) == 256 for p in palettes)


def test_lists_are_paginated_and_filtered(server: Server) -> None:
    pid = server.project()["id"]
    for seed in range(5):
        ingest(server.admin, pid, npy_file(100 + seed))
    page = server.admin.get(f"{API}/projects/{pid}/frames?offset=1&limit=2").json()
    assert page["total"] == 5
    assert page["offset"] == 1
    assert page["limit"] == 2
    assert len(page["items"]) == 2
    assert server.admin.get(f"{API}/projects/{pid}/frames?status=new").json()["total"] == 5
    assert server.admin.get(f"{API}/projects/{pid}/frames?verdict=NG").json()["total"] == 0
    assert server.admin.get(f"{API}/projects/{pid}/frames?verdict=none").json()["total"] == 5
    assert server.admin.get(f"{API}/projects/{pid}/frames?limit=0").status_code == 422
    assert server.admin.get(f"{API}/projects/{pid}/frames?status=odd").status_code == 422


@pytest.mark.samples
@pytest.mark.parametrize("path", reference_cases("flir"))
def test_temperatures_served_equal_the_reference(server: Server, path: Path) -> None:
    """The °C the API serves for a real FLIR file equal the reference temperatures."""
    reference = np.load(reference_for(path))
    expected = reference["celsius"]
    expected = expected if expected.ndim == 3 else expected[None]
    pid = server.project()["id"]
    body = ingest(server.admin, pid, path.read_bytes(), name=path.name)
    assert body.status_code == 201, body.text
    out = body.json()
    assert out["frame_count"] == expected.shape[0]
    assert (out["height"], out["width"]) == expected.shape[1:]
    for index in sorted({0, expected.shape[0] // 2, expected.shape[0] - 1}):
        response = server.admin.get(
            f"{API}/frames/{out['frame_id']}/celsius?frame={index}",
            headers={"Accept-Encoding": "gzip"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["x-width"] == str(out["width"])
        assert response.headers["x-height"] == str(out["height"])
        assert response.headers["x-frame-count"] == str(out["frame_count"])
        served = np.frombuffer(response.content, dtype="<f4").reshape(expected.shape[1:])
        np.testing.assert_allclose(served, expected[index], atol=0.01, rtol=0)


def test_a_cut_jpeg_upload_is_called_truncated_and_named(server: Server) -> None:
    pid = server.project()["id"]
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    app1 = b"\xff\xe1" + (7010).to_bytes(2, "big") + b"FLIR\x00\x01\x01\x02" + bytes(7000)
    cut = (b"\xff\xd8" + app0 + app1)[:5000]
    answer = ingest(server.admin, pid, cut, name="IR_0001.jpg")
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("IR_0001.jpg: truncated JPEG")
    assert "<bytes>" not in detail
    assert "unknown signature" not in detail


def test_a_retake_from_the_edge_is_kept_without_drafts(server: Server) -> None:
    pid = server.project()["id"]
    focus = {"rule": "protocol", "region": "top focus", "value": 0.1, "limit": 2.0}
    findings = {
        "source": "cam-3/part-18",
        "frame": 0,
        "verdict": "RETAKE",
        "findings": [{**focus, "verdict": "RETAKE", "explanation": "retake: out of focus"}],
    }
    body = ingest(server.admin, pid, npy_file(11), findings=json.dumps(findings))
    assert body.status_code == 201, body.text
    fid = body.json()["frame_id"]
    frame = server.admin.get(f"{API}/frames/{fid}").json()
    assert frame["machine_findings"]["verdict"] == "RETAKE"
    assert frame["machine_verdict"] is None  # not a judgement of the part
    item = server.admin.get(f"{API}/frames/{fid}/annotations").json()["item"]
    assert (item["annotations"], item["verdicts"]) == ([], [])
