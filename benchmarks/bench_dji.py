"""DJI R-JPEG reading speed per pixel, side by side with the FLIR path (and DJI's SDK where set).

Run: ``python benchmarks/bench_dji.py`` (uses ``THERMOSCOPE_SAMPLES``, default ../shared/data).
Pinned to one CPU core. Prints a table of megapixels per second for a 640x512 DJI-native file:

* ``dji.parse_raw``: raw counts, measurement parameters and EXIF, natively (no °C: thermoscope
  has no native DJI conversion yet, see docs/dji.md);
* DJI's Thermal SDK to °C, when ``THERMOSCOPE_DJI_SDK`` names ``libdirp.so``;
* the peer: the FLIR path, file -> float32 °C, on a 640x512 FLIR R-JPEG (warm lookup table).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import thermoscope.io as tio
from thermoscope.io import dji

SAMPLES = Path(
    os.environ.get(
        "THERMOSCOPE_SAMPLES", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
)
DJI_FILE = "M3T_DJI_0001_R.JPG"  # 640x512, iirp header
FLIR_FILE = "DJI_XT2.jpg"  # 640x512 FLIR R-JPEG (a Zenmuse XT2: FLIR inside)


def per_second(func: Callable[[], int], min_time: float = 1.0) -> float:
    """Items per second of ``func`` (which returns how many items it did), best of 3 runs."""
    func()  # warm up page cache, imports and lookup tables
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time / 3:
            done += func()
        best = max(best, done / elapsed)
    return best


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    dji_path, flir_path = SAMPLES / "dji" / DJI_FILE, SAMPLES / "flir" / FLIR_FILE
    if not (dji_path.is_file() and flir_path.is_file()):
        print(f"sample data not found at {SAMPLES} (set THERMOSCOPE_SAMPLES)")
        return 1
    dji_bytes, flir_bytes = dji_path.read_bytes(), flir_path.read_bytes()
    dji_pixels = dji.parse_raw(dji_bytes).raw.size
    flir_pixels = tio.parse_bytes(flir_bytes)[0].celsius.size

    def dji_raw() -> int:
        return dji.parse_raw(dji_bytes).raw.size

    def flir_celsius() -> int:
        return tio.parse_bytes(flir_bytes)[0].celsius.size

    peer = per_second(flir_celsius) / 1e6
    rows = [(f"{DJI_FILE} {dji_pixels} px", "dji.parse_raw (counts)", per_second(dji_raw) / 1e6)]
    library = os.environ.get(dji.SDK_ENV)
    if library:

        def dji_sdk() -> int:
            return dji.sdk_temperatures(dji_bytes, library).size

        rows.append(
            (f"{DJI_FILE} {dji_pixels} px", "DJI Thermal SDK (°C)", per_second(dji_sdk) / 1e6)
        )
    print(f"peer: FLIR path to °C, {FLIR_FILE} {flir_pixels} px: {peer:.1f} Mpx/s")
    print(f"{'file':<32} {'path':<26} {'Mpx/s':>8} {'vs FLIR':>8}")
    for name, path, speed in rows:
        print(f"{name:<32} {path:<26} {speed:>8.1f} {speed / peer:>7.2f}x")
    if not library:
        print(f"(DJI Thermal SDK not measured: {dji.SDK_ENV} is not set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
