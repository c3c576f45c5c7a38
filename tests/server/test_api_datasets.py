"""Dataset versions and exports as background jobs with progress."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, Server, ingest, make_settings, npy_file
from test_api_annotations import SCHEMA, box, verdict

from thermoscope.server import create_app


def wait(server: Server, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll a job until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = server.admin.get(f"{API}/jobs/{job_id}").json()
        assert 0.0 <= job["progress"] <= 1.0
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def test_version_and_export(server: Server) -> None:
    pid = server.project(label_schema=SCHEMA)["id"]
    frames = {}
    for seed in range(3):
        data = npy_file(seed)
        frames[ingest(server.admin, pid, data).json()["frame_id"]] = data
    first = next(iter(frames))
    current = server.admin.get(f"{API}/frames/{first}/annotations").json()
    item = {**current["item"], "annotations": [box()], "verdicts": [verdict("NG")]}
    server.admin.put(f"{API}/frames/{first}/annotations", json={"item": item, "revision": 1})

    made = server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={"message": "v1"})
    assert made.status_code == 202
    job = wait(server, made.json()["job_id"])
    assert job["state"] == "done", job
    assert job["progress"] == 1.0
    vid = job["result"]["version_id"]
    assert job["result_url"] == f"{API}/dataset-versions/{vid}"
    version = server.admin.get(job["result_url"]).json()
    assert version["item_count"] == 3
    assert version["message"] == "v1"
    assert version["stats"]["labels"] == {"hot_spot": 1}
    assert version["stats"]["verdicts"] == {"OK": 0, "NG": 1, "none": 2}
    assert version["stats"]["annotated"] == 1
    listed = server.admin.get(f"{API}/projects/{pid}/dataset-versions").json()
    assert [v["id"] for v in listed["items"]] == [vid]
    # the same content again is the same version
    again = wait(
        server,
        server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={}).json()["job_id"],
    )
    assert again["result"]["version_id"] == vid
    assert server.admin.get(f"{API}/projects/{pid}/dataset-versions").json()["total"] == 1
    accepted_only = server.admin.post(
        f"{API}/projects/{pid}/dataset-versions", json={"only_accepted": True}
    ).json()
    empty = wait(server, accepted_only["job_id"])["result"]["version_id"]
    assert server.admin.get(f"{API}/dataset-versions/{empty}").json()["item_count"] == 0

    formats = server.admin.get(f"{API}/export-formats").json()["items"]
    assert "thermoscope" in {f["name"] for f in formats}
    unknown = server.admin.post(f"{API}/dataset-versions/{vid}/exports", json={"format": "bmp"})
    assert unknown.status_code == 422
    assert "thermoscope" in unknown.json()["detail"]
    export = server.admin.post(
        f"{API}/dataset-versions/{vid}/exports", json={"format": "thermoscope"}
    )
    assert export.status_code == 202
    done = wait(server, export.json()["job_id"])
    assert done["state"] == "done"
    eid = export.json()["export_id"]
    meta = server.admin.get(f"{API}/exports/{eid}").json()
    assert meta["state"] == "done"
    assert meta["download_url"] == done["result_url"]
    whole = server.admin.get(done["result_url"])
    assert whole.headers["accept-ranges"] == "bytes"
    assert int(whole.headers["content-length"]) == len(whole.content) == meta["size_bytes"]
    size = len(whole.content)
    part = server.admin.get(done["result_url"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    tail = server.admin.get(done["result_url"], headers={"Range": "bytes=-22"})
    assert (tail.status_code, tail.content) == (206, whole.content[-22:])
    rest = server.admin.get(done["result_url"], headers={"Range": f"bytes={size - 3}-"})
    assert (rest.status_code, rest.content) == (206, whole.content[-3:])
    past = server.admin.get(done["result_url"], headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{size}"
    several = server.admin.get(done["result_url"], headers={"Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, whole.content)
    archive = zipfile.ZipFile(io.BytesIO(whole.content))
    names = set(archive.namelist())
    assert "manifest.json" in names
    manifest = json.loads(archive.read("manifest.json"))
    assert len(manifest["items"]) == 3
    for record in manifest["items"]:
        if record["annotation"] is None:  # never annotated: its °C, no item
            assert f"items/{record['id']}.json" not in names
        else:
            item = json.loads(archive.read(f"items/{record['id']}.json"))
            assert item["item_id"] == record["id"]
        stack = np.load(io.BytesIO(archive.read(f"frames/{record['id']}.npy")))
        assert stack.shape == (1, 24, 32)
        assert stack.dtype == np.float32
    originals = {np.load(io.BytesIO(d)).tobytes() for d in frames.values()}
    exported = {
        np.load(io.BytesIO(archive.read(f"frames/{r['id']}.npy")))[0].tobytes()
        for r in manifest["items"]
    }
    assert exported == originals


def test_dataset_access(server: Server) -> None:
    pid = server.project()["id"]
    ingest(server.admin, pid, npy_file(1))
    job = wait(
        server,
        server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={}).json()["job_id"],
    )
    vid = job["result"]["version_id"]
    annotator = server.user("ann", pid, "annotator")
    assert annotator.get(f"{API}/dataset-versions/{vid}").status_code == 200
    refused = annotator.post(
        f"{API}/dataset-versions/{vid}/exports", json={"format": "thermoscope"}
    )
    assert refused.status_code == 403
    outsider = server.user("out")
    assert outsider.get(f"{API}/dataset-versions/{vid}").status_code == 404
    assert outsider.get(f"{API}/jobs/{job['id']}").status_code == 404
    assert server.admin.get(f"{API}/jobs/{'0' * 32}").status_code == 404
    assert server.admin.get(f"{API}/exports/{'0' * 32}/download").status_code == 404


def test_interchange_exports(server: Server) -> None:
    """Every format of ``thermoscope.annotations.formats`` exports a version, with side-cars."""
    pid = server.project(label_schema=SCHEMA)["id"]
    fid = ingest(server.admin, pid, npy_file(1)).json()["frame_id"]
    current = server.admin.get(f"{API}/frames/{fid}/annotations").json()
    item = {**current["item"], "annotations": [box()], "verdicts": [verdict("OK")]}
    server.admin.put(f"{API}/frames/{fid}/annotations", json={"item": item, "revision": 1})
    made = server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={})
    vid = wait(server, made.json()["job_id"])["result"]["version_id"]
    formats = {f["name"] for f in server.admin.get(f"{API}/export-formats").json()["items"]}
    assert {"coco", "yolo-detect", "cvat-images", "voc", "label-studio"} <= formats
    for name in ("coco", "cvat-video"):
        export = server.admin.post(f"{API}/dataset-versions/{vid}/exports", json={"format": name})
        done = wait(server, export.json()["job_id"])
        assert done["state"] == "done", done
        archive = zipfile.ZipFile(io.BytesIO(server.admin.get(done["result_url"]).content))
        names = archive.namelist()
        assert "warnings.txt" in names
        assert any(n.endswith((".tif", ".tiff")) for n in names), names
        assert any(n.endswith((".json", ".xml")) for n in names), names


#: The bounded-memory export: 16 sequences of 8 frames of 256 x 320 noise, 40 MiB of float32 °C
#: (noise does not deflate, so the archive is about as large).
SEQUENCES, SEQUENCE_FRAMES, FRAME_SHAPE = 16, 8, (256, 320)
#: The most the process may allocate while it exports them (tracemalloc's peak over its
#: baseline), far below the archive's size: the archive is never held in memory.
EXPORT_MEMORY_BOUND = 8 << 20


def _sequence(seed: int) -> bytes:
    """A sequence of ``SEQUENCE_FRAMES`` noise frames as ``.npy`` bytes."""
    rng = np.random.default_rng(seed)
    stack = rng.normal(30.0, 5.0, size=(SEQUENCE_FRAMES, *FRAME_SHAPE)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, stack)
    return buffer.getvalue()


def _finished(client: TestClient, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"{API}/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {timeout} s")


def export_with_peak(client: TestClient, fmt: str) -> tuple[int, zipfile.ZipFile]:
    """Ingest ``SEQUENCES`` sequences, make a version and export it in ``fmt``; returns the
    peak bytes allocated (tracemalloc, over the baseline) while the export ran, and its zip."""
    project = {"name": f"big-{fmt}", "label_schema": SCHEMA}
    pid = client.post(f"{API}/projects", json=project).json()["id"]
    for seed in range(SEQUENCES):
        made = ingest(client, pid, _sequence(seed), name=f"s{seed}.npy")
        fid = made.json()["frame_id"]
        current = client.get(f"{API}/frames/{fid}/annotations").json()
        item = {**current["item"], "verdicts": [verdict("OK")]}
        saved = client.put(f"{API}/frames/{fid}/annotations", json={"item": item, "revision": 1})
        assert saved.status_code == 200, saved.text
    made = client.post(f"{API}/projects/{pid}/dataset-versions", json={}).json()
    vid = _finished(client, made["job_id"])["result"]["version_id"]
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        queued = client.post(f"{API}/dataset-versions/{vid}/exports", json={"format": fmt})
        job = _finished(client, queued.json()["job_id"])
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert job["state"] == "done", job
    download = client.get(job["result_url"])
    assert download.status_code == 200
    return peak, zipfile.ZipFile(io.BytesIO(download.content))


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "arrays"), [("thermoscope", ".npy"), ("coco", ".tiff")])
def test_an_export_is_streamed_with_bounded_memory(tmp_path: Path, fmt: str, arrays: str) -> None:
    """40 MiB of °C exported while the process allocates at most ``EXPORT_MEMORY_BOUND``."""
    with TestClient(create_app(make_settings(tmp_path))) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        peak, archive = export_with_peak(client, fmt)
    assert archive.testzip() is None
    payload = sum(i.file_size for i in archive.infolist() if i.filename.endswith(arrays))
    assert payload >= SEQUENCES * SEQUENCE_FRAMES * FRAME_SHAPE[0] * FRAME_SHAPE[1] * 4
    assert peak < EXPORT_MEMORY_BOUND, f"{peak} bytes allocated exporting {payload} bytes"
