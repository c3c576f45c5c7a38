"""Measurement views: a frame's °C recomputed with another emissivity / reflected temperature,
for the whole frame or a region, equal to ``ThermalFrame.with_parameters`` on the same file;
nothing stored; bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import API, Server, ingest, npy_file

import thermoscope.io as tio
from sample_data import SKIP_REASON, samples_dir
from thermoscope.annotations import shape_from_dict
from thermoscope.core import ThermalFrame
from thermoscope.datasets.synthetic import simulate_run

SAMPLE = "flir/FLIR_E40.jpg"


def _sample() -> Path:
    root = samples_dir()
    if root is None:
        pytest.skip(SKIP_REASON)
    return root / SAMPLE


def synthetic_seq() -> tuple[bytes, ThermalFrame]:
    """A FLIR SEQ file written by our writer (Planck calibration and parameters inside) and
    its frame as the library reads it."""
    writer = next(w for w in tio.writers() if w.name == "flir-seq")
    part = next(iter(simulate_run("pcb", parts=1, defect_rate=1, rng=np.random.default_rng(4))))
    data = writer.emit([part.frame])
    sequence = tio.detect(data[: tio.registry.SNIFF_BYTES], ".seq").parse(data, tio.DecodeLimits())
    try:
        return data, sequence[0]
    finally:
        sequence.close()


def _celsius(response: object) -> np.ndarray:
    shape = int(response.headers["X-Height"]), int(response.headers["X-Width"])  # type: ignore[attr-defined]
    return np.frombuffer(response.content, dtype="<f4").reshape(shape)  # type: ignore[attr-defined]


def test_recompute_equals_the_library(server: Server) -> None:
    path = _sample()
    pid = server.project()["id"]
    fid = ingest(server.admin, pid, path.read_bytes(), name=path.name).json()["frame_id"]
    stored = server.admin.get(f"{API}/frames/{fid}/celsius").content
    frame = tio.load(path)
    # the whole frame
    answer = server.admin.post(
        f"{API}/frames/{fid}/celsius/recompute", json={"emissivity": 0.8, "reflected_temp_c": 5}
    )
    assert answer.status_code == 200, answer.text
    expected = frame.with_parameters(emissivity=0.8, reflected_temp_c=5.0).celsius
    np.testing.assert_array_equal(_celsius(answer), expected)
    applied = json.loads(answer.headers["X-Parameters"])
    assert applied["emissivity"] == 0.8
    assert applied["reflected_temp_c"] == 5.0
    assert frame.metadata.parameters is not None
    assert applied["object_distance_m"] == frame.metadata.parameters.object_distance_m
    # a region: only its pixels change
    region = {"type": "polygon", "points": [[10, 10], [60, 12], [40, 50]]}
    answer = server.admin.post(
        f"{API}/frames/{fid}/celsius/recompute", json={"emissivity": 0.5, "region": region}
    )
    assert answer.status_code == 200, answer.text
    mask = shape_from_dict(region).to_mask(frame.shape)  # type: ignore[union-attr]
    expected = frame.with_parameters(mask=mask, emissivity=0.5).celsius
    got = _celsius(answer)
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got[mask], frame.celsius[mask])
    np.testing.assert_array_equal(got[~mask], frame.celsius[~mask])
    # nothing stored
    assert server.admin.get(f"{API}/frames/{fid}/celsius").content == stored
    detail = server.admin.get(f"{API}/frames/{fid}").json()
    assert detail["parameters"]["emissivity"] == frame.metadata.parameters.emissivity
    assert detail["camera"]["model"] == frame.metadata.camera.model != ""


def test_recompute_refuses_bad_input(server: Server) -> None:
    pid = server.project()["id"]
    fid = ingest(server.admin, pid, npy_file(3)).json()["frame_id"]
    url = f"{API}/frames/{fid}/celsius/recompute"
    plain = server.admin.post(url, json={"emissivity": 0.9})
    assert plain.status_code == 422
    assert "no measurement parameters" in plain.json()["detail"]
    assert "frame.npy" in plain.json()["detail"]
    for body, words in [
        ({"emissivity": 0}, "emissivity"),
        ({"emissivity": 1.5}, "emissivity"),
        ({"reflected_temp_c": -300}, "reflected_temp_c"),
        ({"frame": 4}, "out of range"),
        ({"emissivity": 0.9, "colour": "red"}, "colour"),
    ]:
        answer = server.admin.post(url, json=body)
        assert answer.status_code == 422, body
        assert words in answer.json()["detail"], answer.json()


def test_recompute_region_errors_and_access(server: Server) -> None:
    path = _sample()
    pid = server.project()["id"]
    fid = ingest(server.admin, pid, path.read_bytes(), name=path.name).json()["frame_id"]
    url = f"{API}/frames/{fid}/celsius/recompute"
    for region, words in [
        ({"type": "point", "x": 3, "y": 4}, "covers no area"),
        ({"type": "polygon", "points": [[1, 1]]}, "region"),
        ({"type": "box", "x": 400, "y": 400, "width": 5, "height": 5}, "no pixel"),
    ]:
        answer = server.admin.post(url, json={"emissivity": 0.9, "region": region})
        assert answer.status_code == 422, region
        assert words in answer.json()["detail"], answer.json()
    # a viewer may look (a view, not an edit); someone outside the project may not
    viewer = server.user("vera", pid, "viewer")
    assert viewer.post(url, json={"emissivity": 0.9}).status_code == 200
    outsider = server.user("otto")
    assert outsider.post(url, json={"emissivity": 0.9}).status_code == 404
    # a browser session must send its CSRF token, as for every POST
    del viewer.headers["X-CSRF-Token"]
    assert viewer.post(url, json={"emissivity": 0.9}).status_code == 403
    # a read-scoped API token works too
    token = server.token(server.login("vera"), ["read"])
    assert token.post(url, json={"emissivity": 0.9}).status_code == 200


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    emissivity=st.floats(0.05, 1.0),
    reflected=st.floats(-40.0, 200.0),
    box=st.none()
    | st.tuples(st.integers(0, 150), st.integers(0, 110), st.integers(1, 60), st.integers(1, 60)),
)
def test_recompute_equals_the_library_on_any_change(
    server: Server, emissivity: float, reflected: float, box: tuple[int, int, int, int] | None
) -> None:
    """Runs without the shared samples: a SEQ written by our writer carries a calibration."""
    data, frame = synthetic_seq()
    projects = server.admin.get(f"{API}/projects").json()["items"]
    pid = projects[0]["id"] if projects else server.project()["id"]
    fid = ingest(server.admin, pid, data, name="board.seq").json()["frame_id"]
    body: dict[str, object] = {"emissivity": emissivity, "reflected_temp_c": reflected}
    mask = None
    if box is not None:
        height, width = frame.shape
        x, y, w, h = box
        region = {
            "type": "box",
            "x": x,
            "y": y,
            "width": min(w, width - x),
            "height": min(h, height - y),
        }
        body["region"] = region
        mask = shape_from_dict(region).to_mask(frame.shape)  # type: ignore[union-attr]
    answer = server.admin.post(f"{API}/frames/{fid}/celsius/recompute", json=body)
    assert answer.status_code == 200, answer.text
    expected = frame.with_parameters(mask=mask, emissivity=emissivity, reflected_temp_c=reflected)
    np.testing.assert_array_equal(_celsius(answer), expected.celsius)
