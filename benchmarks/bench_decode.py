"""Decode speed, file -> float32 °C: thermoscope side by side with flyr and a naive NumPy decode.

Run: ``python benchmarks/bench_decode.py`` (uses ``THERMOSCOPE_SAMPLES``, default ../shared/data).
Pinned to one CPU core. Prints a table; "cold" clears thermoscope's lookup-table cache before
every decode, "warm" keeps it (the usual case: a camera keeps its parameters for a whole run).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import thermoscope.io as tio
from thermoscope.core import radiometry
from thermoscope.io import flir_writer

SAMPLES = Path(
    os.environ.get(
        "THERMOSCOPE_SAMPLES", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
)


def per_second(func: Callable[[], int], min_time: float = 1.0) -> float:
    """Items per second of ``func`` (which returns how many items it did), best of 3 runs."""
    func()  # warm up page cache and imports
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time / 3:
            done += func()
        best = max(best, done / elapsed)
    return best


def naive_celsius(raw: np.ndarray, frame: object) -> np.ndarray:
    """The Thermimage equation per pixel in float64 (what a straightforward script does)."""
    meta = frame.metadata  # type: ignore[attr-defined]
    return meta.calibration.to_celsius(raw.astype(np.float64), meta.parameters)


def decode_sequence(path: Path) -> int:
    with tio.open_path(path) as seq:
        for frame in seq:
            _ = frame.celsius
        return len(seq)


def naive_sequence(path: Path) -> int:
    with tio.open_path(path) as seq:
        for frame in seq:
            naive_celsius(frame.raw, frame)
        return len(seq)


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if not (SAMPLES / "flir").is_dir():
        print(f"sample data not found at {SAMPLES} (set THERMOSCOPE_SAMPLES)")
        return 1
    import flyr

    rows: list[tuple[str, str, float, str, float | None]] = []
    example = SAMPLES / "flir" / "flir_example.jpg"

    def ours_cold() -> int:
        radiometry.clear_table_cache()
        _ = tio.load(example).celsius
        return 1

    def ours_warm() -> int:
        _ = tio.load(example).celsius
        return 1

    def theirs() -> int:
        _ = flyr.unpack(str(example)).celsius
        return 1

    peer = per_second(theirs)
    rows.append(
        (
            "flir_example.jpg 240x320",
            "thermoscope (cold LUT)",
            per_second(ours_cold),
            "flyr 5.1",
            peer,
        )
    )
    rows.append(
        (
            "flir_example.jpg 240x320",
            "thermoscope (warm LUT)",
            per_second(ours_warm),
            "flyr 5.1",
            peer,
        )
    )

    seq = SAMPLES / "flir" / "test.seq"
    with tio.open_path(seq) as source:
        frames = list(source)
    with tempfile.TemporaryDirectory() as tmp:
        long_seq = Path(tmp) / "long.seq"
        long_csq = Path(tmp) / "long.csq"
        long_seq.write_bytes(flir_writer.emit_seq(frames * 30))
        long_csq.write_bytes(flir_writer.emit_csq(frames * 5))
        for label, path in (
            ("test.seq 7x512x640", seq),
            ("SEQ 210x512x640", long_seq),
            ("CSQ 35x512x640", long_csq),
        ):
            ours = per_second(lambda p=path: decode_sequence(p))
            naive = per_second(lambda p=path: naive_sequence(p))
            rows.append((label, "thermoscope", ours, "naive NumPy (per-pixel Planck)", naive))
            rows.append((label, "flyr 5.1", float("nan"), "cannot read SEQ/CSQ", None))

    print(
        f"{'input':28} {'reader':24} {'frames/s':>10}   {'peer':32} {'frames/s':>10} {'ratio':>7}"
    )
    for label, reader, rate, peer_name, peer_rate in rows:
        if peer_rate is None:
            print(f"{label:28} {reader:24} {'-':>10}   {peer_name:32} {'-':>10} {'-':>7}")
            continue
        print(
            f"{label:28} {reader:24} {rate:10.1f}   {peer_name:32} {peer_rate:10.1f} "
            f"{rate / peer_rate:6.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
