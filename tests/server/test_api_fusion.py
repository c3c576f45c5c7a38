"""``GET /frames/{fid}/fused.png``: the visual photo a stored FLIR file carries, fused with the
thermogram (the stored original keeps the photo, so nothing else is stored at ingest)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from server_support import API, Server, ingest, npy_file

import thermoscope.io as tio
from sample_data import SKIP_REASON, samples_dir
from thermoscope.analysis.fusion_registration import fused_view, registration_for
from thermoscope.io.visual import embedded_visual


def _png(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image[..., ::-1])


def test_fused_views_of_a_stored_flir_file(server: Server) -> None:
    root = samples_dir()
    if root is None:
        pytest.skip(SKIP_REASON)
    path = root / "flir" / "flir_example.jpg"
    pid = server.project()["id"]
    answer = ingest(server.admin, pid, path.read_bytes(), name="mug.jpg")
    assert answer.status_code == 201, answer.text
    fid = answer.json()["frame_id"]
    with tio.open_path(path) as seq:
        frame = seq[0]
    visual = embedded_visual(frame)
    assert visual is not None
    registration = registration_for(visual, (frame.width, frame.height))
    about = server.admin.get(f"{API}/frames/{fid}/visual").json()
    assert about == {
        "has_photo": True,
        "photo_width": 480,
        "photo_height": 640,
        "registration": "camera",
        "modes": ["pip", "blend", "edges"],
    }
    views = {}
    for mode in ("edges", "blend", "pip"):
        got = server.admin.get(f"{API}/frames/{fid}/fused.png", params={"mode": mode})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "image/png"
        views[mode] = _png(got.content)
        assert views[mode].shape == (frame.height, frame.width, 3)
        # the same view the library composes from the file on disk
        expected = fused_view(frame.celsius, visual, registration, mode=mode)  # type: ignore[arg-type]
        assert np.array_equal(views[mode], expected), mode
    assert not np.array_equal(views["edges"], views["blend"])
    bad = server.admin.get(f"{API}/frames/{fid}/fused.png", params={"mode": "x-ray"})
    assert bad.status_code == 422
    far = server.admin.get(f"{API}/frames/{fid}/fused.png", params={"frame": 3})
    assert far.status_code == 422
    assert "out of range" in far.json()["detail"]


def test_a_frame_without_photo_is_answered_clearly(server: Server) -> None:
    pid = server.project()["id"]
    fid = ingest(server.admin, pid, npy_file(3), name="plain.npy").json()["frame_id"]
    about = server.admin.get(f"{API}/frames/{fid}/visual")
    assert about.status_code == 200
    assert about.json()["has_photo"] is False
    assert about.json()["modes"] == []
    answer = server.admin.get(f"{API}/frames/{fid}/fused.png")
    assert answer.status_code == 422
    assert "carries no visual photo" in answer.json()["detail"]
    palette = server.admin.get(f"{API}/frames/{fid}/fused.png", params={"palette": "nope"})
    assert palette.status_code == 422
