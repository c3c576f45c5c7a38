"""DJI R-JPEGs against the SDK tables: the reader feeds DJI's conversion exactly what it uses.

``dji/sdk-tables/<stem>.sdk-table.npz`` holds DJI's Thermal SDK output for every raw value at a
grid of parameter sets, row 0 at the file's embedded parameters (see the sample README). These
tests check, per table, that ``parse_raw`` returns the parameters the SDK used for row 0 and raw
counts on the scale the table is indexed by, so a conversion fed from ``parse_raw`` sees what the
SDK sees. (A native conversion is not there yet: see docs/dji.md for what the tables show.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from sample_data import samples_dir
from thermoscope.io import dji


def _tables() -> list[Any]:
    root = samples_dir()
    found = [] if root is None else sorted((root / "dji" / "sdk-tables").glob("*.sdk-table.npz"))
    return [pytest.param(p.name, id=p.name.split(".")[0]) for p in found] or [
        pytest.param("", id="no-tables")
    ]


def _load(samples: Path, name: str) -> tuple[dji.DjiImage, dict[str, NDArray[Any]], Path]:
    """The parsed R-JPEG a table belongs to, the table arrays and the file (skips without data)."""
    if not name:
        pytest.skip("no DJI SDK tables in the sample folder")
    stem = name.split(".")[0]
    matches = sorted((samples / "dji").glob(stem + ".[jJ][pP][gG]"))
    assert matches, f"no R-JPEG for {name}"
    with np.load(samples / "dji" / "sdk-tables" / name) as npz:
        table = {key: npz[key] for key in npz.files}
    return dji.parse_raw(matches[0].read_bytes()), table, matches[0]


@pytest.mark.parametrize("name", _tables())
def test_embedded_parameters_are_the_sdks_row_0(samples: Path, name: str) -> None:
    image, table, _ = _load(samples, name)
    names = [str(n) for n in table["param_names"]]
    row = dict(zip(names, (float(v) for v in table["params"][0]), strict=True))
    p = image.parameters
    assert p is not None
    assert p.distance_m == pytest.approx(row["distance"], abs=1e-4)
    assert p.humidity_pct == pytest.approx(row["humidity"], abs=1e-4)
    # the table states the values set through the SDK's API; hirp files store Q13 (1/8192)
    assert p.emissivity == pytest.approx(row["emissivity"], abs=1 / 8192)
    assert p.reflected_temp_c == pytest.approx(row["reflection"], abs=1e-4)
    # the table holds 0 where the model stores no ambient temperature
    assert (p.ambient_temp_c or 0.0) == pytest.approx(row["ambient_temp"], abs=1e-4)


@pytest.mark.parametrize("name", _tables())
def test_raw_counts_index_the_sdk_conversion(samples: Path, name: str) -> None:
    """Row 0 looked up at the image's raw counts is the reference image.

    Pixel for pixel, except M3TD "hirp" files, where the reference tool and DJI's SDK differ by
    one 0.1 °C output step on some pixels (the sample README's tolerance).
    """
    image, table, path = _load(samples, name)
    with np.load(path.with_name(path.name.split(".")[0] + ".reference.npz")) as npz:
        reference = npz["celsius"]
    raws = table["raw"]
    where = np.searchsorted(raws, image.raw)
    assert np.all(where < raws.size), "raw counts outside the table's range"
    assert np.array_equal(raws[where], image.raw), "raw counts the table does not hold"
    err = np.abs(table["celsius"][0][where] - reference)
    assert err.max() <= (0.21 if image.layout == "hirp" else 0.0)
    assert err.mean() <= 0.01


def test_sdk_unused_values_are_kept_as_metadata(samples: Path) -> None:
    """The XT S stores a humidity DJI's SDK ignores (it uses 70 %): kept in ``stored``."""
    files = sorted((samples / "dji").glob("XTS_*.[jJ][pP][gG]"))
    if not files:
        pytest.skip("no XT S sample files")
    stored = []
    for path in files:
        image = dji.parse_raw(path.read_bytes())
        assert image.parameters is not None
        assert image.parameters.humidity_pct == dji.PLUG_SDK_HUMIDITY_PCT
        stored.append(image.stored["humidity_pct"])
    assert all(0.0 <= h <= 100.0 for h in stored)
    assert any(h != dji.PLUG_SDK_HUMIDITY_PCT for h in stored)
