"""DJI R-JPEGs against the SDK tables: the reader feeds DJI's conversion exactly what it uses.

``dji/sdk-tables/<stem>.sdk-table.npz`` holds DJI's Thermal SDK output for every raw value at a
grid of parameter sets, row 0 at the file's embedded parameters (see the sample README). These
tests check, per table, that ``parse_raw`` returns the parameters the SDK used for row 0 and raw
counts on the scale the table is indexed by, so a conversion fed from ``parse_raw`` sees what the
SDK sees. (A native conversion is not there yet: see docs/dji.md for what the tables show; the
last tests check the parts of DJI's conversion that are known exactly, H20T and XT S, and that
the H30T files differ only through their parameters.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from sample_data import samples_dir
from thermoscope.io import dji
from thermoscope.io.jpeg_segments import iter_segments


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


# --- DJI's conversion where its structure is known (docs/dji.md, "What the curves look like") ---
# These check the documented findings against the tables; the per-file constants (H20T beta,
# XT S N and c) are taken from the table itself because no file field is known to hold them.

_H20T_GAIN = 0.25547775  # index per raw count, both H20T files
_KELVIN_DJI = 273.0  # DJI's emissivity law works on T + 273.0, not 273.15


def _segment_payloads(path: Path, marker: int) -> list[bytes]:
    return [bytes(s.payload) for s in iter_segments(path.read_bytes()) if s.marker == marker]


def _table_by_layout(layout: str) -> list[Any]:
    wanted = {"aa55": "H20T_", "plug": "XTS_"}[layout]
    return [p for p in _tables() if str(p.values[0]).startswith(wanted)] or [
        pytest.param("", id=f"no-{layout}-tables")
    ]


def _index_bounds(table: NDArray[Any], celsius: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """First and last index of ``table`` (0.1 °C steps) holding each output value."""
    rounded = np.round(celsius.astype(np.float64), 1)
    first = np.searchsorted(table, rounded - 1e-3, "left")
    last = np.searchsorted(table, rounded + 1e-3, "right") - 1
    return first, last


def _h20t_atmosphere_gain(distance_m: float, humidity_pct: float) -> float:
    """The H20T's index gain: 1 at 5 m and 70 %."""
    d = distance_m
    return 448.0 / ((1.0525 - 0.01155 * d + 0.00021 * d * d) * (378.0 + humidity_pct))


@pytest.mark.parametrize("name", _table_by_layout("aa55"))
def test_h20t_conversion_is_index_gain_table_then_emissivity(samples: Path, name: str) -> None:
    """H20T: ``table[floor(gamma * (G * raw + beta) + 0.625 * (1 - gamma))]``, then the
    fourth-power emissivity law, reproduces every row (beta from row 0, gamma from the formula)."""
    image, table, path = _load(samples, name)
    assert image.layout == "aa55"
    lut = np.frombuffer(_segment_payloads(path, 0xE5)[0], "<i2") / 10.0
    raw = table["raw"].astype(np.float64)
    first, last = _index_bounds(lut, table["celsius"][0])
    usable = (raw < 32768) & (first > 0) & (last < lut.size - 1)
    low = np.max(first[usable] - _H20T_GAIN * raw[usable])
    high = np.min(last[usable] + 1 - _H20T_GAIN * raw[usable])
    assert low < high, "row 0 is not a straight-line index into the APP5 table"
    beta = (low + high) / 2
    k = _KELVIN_DJI
    for params, celsius in zip(table["params"], table["celsius"], strict=True):
        distance, humidity, emissivity, reflected = (float(v) for v in params[:4])
        gamma = _h20t_atmosphere_gain(distance, humidity)
        index = np.floor(gamma * (_H20T_GAIN * raw + beta) + 0.625 * (1 - gamma))
        t1 = lut[np.clip(index, 0, lut.size - 1).astype(np.int64)]
        w = ((t1 + k) ** 4 - (1 - emissivity) * (reflected + k) ** 4) / emissivity
        out = np.where(w > 0, np.abs(w) ** 0.25 - k, -273.0)
        err = np.abs(out - celsius)[raw < 32768]
        print(f"{name} {params}: max {err.max():.3f} mean {err.mean():.6f} °C")
        assert err.mean() < 1e-3
        assert np.quantile(err, 0.999) < 1e-3  # a few counts at index boundaries or near -273 °C


@pytest.mark.parametrize("name", _table_by_layout("plug"))
def test_xts_index_is_two_stage_at_emissivity_1(samples: Path, name: str) -> None:
    """XT S at e = 1: ``table[floor(gamma * (floor(a * raw + c) - N))]`` with a = Plug u16 at
    1186 / 100 and gamma = 1.012 - 0.0002 * humidity, exactly, for some c and integer N."""
    image, table, path = _load(samples, name)
    assert image.layout == "plug"
    lut = np.frombuffer(b"".join(_segment_payloads(path, 0xE3)), "<i2") / 10.0
    plug = next(p for p in _segment_payloads(path, 0xE2) if p.startswith(b"Plug"))
    a = int.from_bytes(plug[1186:1188], "little") / 100.0
    raw = table["raw"].astype(np.float64)
    rows = [i for i, p in enumerate(table["params"]) if float(p[2]) == 1.0]
    gamma0 = 1.012 - 0.0002 * float(table["params"][0][1])
    first, last = _index_bounds(lut, table["celsius"][0])
    for c in np.arange(0.0, 1.0, 0.01):
        inner = np.floor(a * raw + c)
        n_low = np.max(inner - (last + 1) / gamma0)
        n_high = np.min(inner - first / gamma0)
        n = math.floor(n_high)
        if n > n_low:
            break
    else:
        pytest.fail(f"{name}: no inner offset c and integer N reproduce row 0")
    for i in rows:
        gamma = 1.012 - 0.0002 * float(table["params"][i][1])
        index = np.floor(gamma * (inner - n)).astype(np.int64)
        assert np.array_equal(lut[index], np.round(table["celsius"][i].astype(np.float64), 1)), (
            f"row {i} ({table['params'][i]}) with c={c:.2f}, N={n}"
        )


def _rows_varying(table: dict[str, NDArray[Any]], column: int) -> list[int]:
    """Rows equal to row 0 in every parameter except ``column``."""
    params = table["params"].astype(np.float64)
    others = [k for k in range(params.shape[1]) if k != column]
    return [i for i, p in enumerate(params) if np.allclose(p[others], params[0][others], atol=1e-3)]


def test_h30t_files_differ_only_through_their_parameters(samples: Path) -> None:
    """H30T (one camera, three files): a file's row at 1 m is the 1 m file's conversion at that
    file's ambient temperature (interpolated over the 1 m file's ambient rows), to 0.01 °C
    between -20 and 150 °C, so no per-file constant hides in the H30T's metadata."""
    names = [str(p.values[0]) for p in _tables() if str(p.values[0]).startswith("H30T_")]
    tables = [_load(samples, name)[1] for name in names]
    at_1m = [t for t in tables if float(t["params"][0][0]) == 1.0]
    if len(tables) < 2 or not at_1m:
        pytest.skip("needs H30T tables, one with its embedded distance at 1 m")
    reference = at_1m[0]
    ambient_rows = _rows_varying(reference, 4)
    ambients = reference["params"][ambient_rows, 4].astype(np.float64)
    assert ambients.size >= 3
    # the polynomial through every ambient row, per raw value
    coefficients = np.linalg.solve(
        np.vander(ambients), reference["celsius"][ambient_rows].astype(np.float64)
    )
    for table in tables:
        if table is reference:
            continue
        assert np.array_equal(table["raw"], reference["raw"])
        row = next(i for i in _rows_varying(table, 0) if float(table["params"][i][0]) == 1.0)
        ambient = float(table["params"][row][4])
        expected = np.vander([ambient], ambients.size) @ coefficients
        celsius = table["celsius"][row].astype(np.float64)
        usable = (celsius > -20.0) & (celsius < 150.0)
        err = np.abs(expected[0] - celsius)[usable]
        print(f"H30T at 1 m, ambient {ambient:.3f} °C: max {err.max():.4f} °C")
        assert err.max() < 0.01
