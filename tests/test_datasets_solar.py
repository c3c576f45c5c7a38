"""InfraredSolarModules reader, its grouped split, and synthetic diffused spots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from solar_fixture import make_solar_folder
from thermoscope.core import ThermalFrame
from thermoscope.datasets.solar import SOLAR_CLASSES, grouped_split, is_solar_folder, read_solar
from thermoscope.datasets.synthetic_defects import (
    EDGE_SHARE,
    SpotSettings,
    render_spots,
    spot_field,
    with_spots,
)
from thermoscope.datasets.versions import DatasetError


def test_read_solar_folder(tmp_path: Path) -> None:
    folder = make_solar_folder(tmp_path / "solar", per_class=3)
    assert is_solar_folder(folder)
    data = read_solar(folder)
    assert data.images.shape == (36, 40, 24)
    assert data.images.dtype == np.uint8
    assert data.classes == SOLAR_CLASSES
    assert data.ids[:3] == ("0", "1", "2")
    assert np.bincount(data.labels).tolist() == [2, 3, 3, 4] + [3] * 8
    assert data.sha256[0] == data.sha256[1] != data.sha256[2]
    assert len(read_solar(folder, limit=5)) == 5


def test_grouped_split_keeps_duplicates_together_and_is_seeded(tmp_path: Path) -> None:
    data = read_solar(make_solar_folder(tmp_path / "solar", per_class=10))
    parts = grouped_split(data, seed=3, fractions={"train": 0.8, "test": 0.2})
    again = grouped_split(data, seed=3, fractions={"train": 0.8, "test": 0.2})
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    train, test = set(parts["train"].tolist()), set(parts["test"].tolist())
    assert not train & test
    assert len(train | test) == len(data)
    assert {0, 1} <= train or {0, 1} <= test
    for k in range(len(SOLAR_CLASSES)):
        held = int(np.sum(data.labels[parts["test"]] == k))
        assert 1 <= held <= 3, (SOLAR_CLASSES[k], held)
    other = grouped_split(data, seed=4, fractions={"train": 0.8, "test": 0.2})
    assert not np.array_equal(parts["test"], other["test"])


@pytest.mark.samples
def test_read_real_solar_subset(samples: Path) -> None:
    folder = samples / "InfraredSolarModules"
    if not folder.is_dir():
        pytest.skip("InfraredSolarModules not in the sample folder")
    data = read_solar(folder, limit=40)
    assert data.images.shape == (40, 40, 24)
    assert set(data.labels.tolist()) <= set(range(len(SOLAR_CLASSES)))


def test_bad_layouts_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="module_metadata"):
        read_solar(tmp_path)
    folder = make_solar_folder(tmp_path / "a", per_class=1)
    (folder / "images" / "2.jpg").unlink()
    with pytest.raises(DatasetError, match=r"2\.jpg"):
        read_solar(folder)
    (folder / "images" / "2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"2\.jpg: not a decodable image"):
        read_solar(folder)
    meta = folder / "module_metadata.json"
    entries = json.loads(meta.read_text())
    entries["0"] = {"image_filepath": "images/0.jpg"}
    meta.write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match="entry '0': anomaly_class missing"):
        read_solar(folder)
    meta.write_text("{")
    with pytest.raises(DatasetError, match=r"module_metadata\.json: unreadable"):
        read_solar(folder)
    entries["0"] = {"image_filepath": "../x.jpg", "anomaly_class": "Cell"}
    meta.write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match="leaves the folder"):
        read_solar(folder)


def test_spot_is_a_diffused_gaussian_added_to_the_frame() -> None:
    rise = spot_field((21, 31), x=15.5, y=10.5, amplitude=4.0, sigma_x=2.0, sigma_y=2.0)
    assert rise[10, 15] == pytest.approx(4.0)
    assert rise[10, 17] == pytest.approx(4.0 * np.exp(-4 / 8))
    assert rise[10, 13] == pytest.approx(rise[12, 15])
    rng = np.random.default_rng(0)
    base = rng.normal(30.0, 0.2, (40, 24)).astype(np.float32)
    base[0, 0] = np.nan
    out = render_spots(base, np.random.default_rng(1), SpotSettings(count=(1, 1)))
    (spot,) = out.spots
    added = out.frame.astype(np.float64) - base
    expected = spot_field(
        base.shape,
        x=spot.x,
        y=spot.y,
        amplitude=spot.amplitude,
        sigma_x=spot.sigma_x,
        sigma_y=spot.sigma_y,
        angle_deg=spot.angle_deg,
    )
    assert np.isnan(out.frame[0, 0])
    assert np.isnan(base[0, 0])
    np.testing.assert_allclose(added[1:], expected[1:], atol=1e-4)
    assert spot.amplitude > 0
    assert len(np.unique(np.round(expected[out.mask], 3))) > 4
    assert np.all(np.abs(expected[~out.mask]) < EDGE_SHARE * spot.amplitude)
    x0, y0, x1, y1 = spot.box
    assert x0 <= spot.x <= x1
    assert y0 <= spot.y <= y1


def test_cold_spots_and_bad_settings() -> None:
    cold = render_spots(np.zeros((30, 30)), np.random.default_rng(2), SpotSettings(cold_share=1.0))
    assert all(s.amplitude < 0 for s in cold.spots)
    assert cold.frame.min() < 0
    with pytest.raises(DatasetError, match="sigma_px"):
        SpotSettings(sigma_px=(0.0, 0.0))
    with pytest.raises(DatasetError, match="2-D"):
        render_spots(np.zeros(5), np.random.default_rng(0))


def test_with_spots_keeps_the_frame_but_drops_raw_counts() -> None:
    frame = ThermalFrame(
        celsius=np.full((12, 16), 25.0, dtype=np.float32),
        raw=np.full((12, 16), 7000, dtype=np.uint16),
    )
    spotted, rendered = with_spots(frame, np.random.default_rng(0))
    assert spotted.raw is None
    assert spotted.metadata == frame.metadata
    np.testing.assert_array_equal(spotted.celsius, rendered.frame)
    assert float(spotted.celsius.max()) > 26.0
