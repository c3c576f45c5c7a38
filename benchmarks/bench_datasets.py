"""Dataset hashing throughput: frame content ids of big files vs plain reads and ``sha256sum``.

Run: ``python benchmarks/bench_datasets.py [--mb 512] [--frames-seq 100]``. Writes a float32
``.npy`` recording of about ``--mb`` MB and a FLIR ``.seq`` with raw counts into a temporary
folder in the current directory (so that it measures that disk, not a RAM-backed ``/tmp``;
removed afterwards), then prints MB/s (of file bytes) for:

* plain read: the file read in 8 MiB chunks, nothing else (the ceiling for anything that reads);
* ``sha256sum``: coreutils hashing the file (when installed);
* hashlib file: Python's SHA-256 over the file's bytes in 8 MiB chunks;
* decode to °C only: ``thermoscope.io`` reading every frame, no hashing;
* ``hash_file``: thermoscope's frame ids (one SHA-256 per frame, NaN check, threads). A frame id
  hashes float32 °C plus any raw counts, so for a ``.seq`` (2-byte counts on disk) it hashes
  about three bytes per file byte, after decoding;

each warm (file in the page cache) and, where the OS can drop a file's pages
(``posix_fadvise``), cold (read from the disk).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

import thermoscope.io as tio
from thermoscope.core import FrameMetadata, ObjectParameters, ThermalFrame
from thermoscope.datasets.synthetic import CALIBRATION
from thermoscope.storage.identity import hash_file

CHUNK = 8 << 20


def drop_cache(path: Path) -> bool:
    """Evict the file's pages from the page cache; ``False`` where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def plain_read(path: Path) -> None:
    buffer = bytearray(CHUNK)
    with path.open("rb", buffering=0) as fh:
        while fh.readinto(buffer):
            pass


def hashlib_file(path: Path) -> None:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])


def decode_only(path: Path) -> None:
    with tio.open_path(path) as seq:
        for frame in seq:
            _ = frame.celsius


def sha256sum(path: Path) -> None:
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)


def mb_per_s(action: Callable[[Path], object], path: Path, *, cold: bool) -> float | None:
    """Best of 3 runs, in MB (10^6 bytes) of file per second."""
    best = None
    for _ in range(3):
        if cold and not drop_cache(path):
            return None
        if not cold:
            action(path)  # warm the cache
        start = time.perf_counter()
        action(path)
        rate = path.stat().st_size / (time.perf_counter() - start) / 1e6
        best = rate if best is None else max(best, rate)
    return best


def write_npy(path: Path, megabytes: int) -> None:
    frames = max(1, megabytes * 10**6 // (640 * 512 * 4))
    rng = np.random.default_rng(0)
    out = open_memmap(path, mode="w+", dtype="<f4", shape=(frames, 512, 640))
    base = rng.normal(30.0, 5.0, (512, 640)).astype(np.float32)
    for i in range(frames):
        out[i] = base + np.float32(0.01 * i)
    out.flush()
    del out


def write_seq(path: Path, frames: int) -> None:
    rng = np.random.default_rng(1)
    params = ObjectParameters()
    scene = rng.normal(35.0, 4.0, (512, 640))
    items = []
    for i in range(frames):
        raw = np.rint(CALIBRATION.to_signal(scene + 0.02 * i, params)).astype(np.uint16)
        meta = FrameMetadata(parameters=params, calibration=CALIBRATION, frame_index=i)
        items.append(ThermalFrame(CALIBRATION.to_celsius(raw, params), raw=raw, metadata=meta))
    tio.save(items, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="size of the .npy file, MB")
    parser.add_argument("--frames-seq", type=int, default=100, help="frames of the .seq file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-datasets-", dir=".") as tmp:
        npy, seq = Path(tmp) / "rec.npy", Path(tmp) / "rec.seq"
        write_npy(npy, args.mb)
        write_seq(seq, args.frames_seq)
        threads = min(8, os.cpu_count() or 1)
        cases: list[tuple[str, Callable[[Path], object]]] = [
            ("plain read", plain_read),
            ("hashlib file (1 thread)", hashlib_file),
            ("decode to °C only", decode_only),
            ("hash_file, 1 thread", lambda p: hash_file(p, workers=1)),
            (f"hash_file, {threads} threads", hash_file),
        ]
        if shutil.which("sha256sum"):
            cases.insert(1, ("sha256sum", sha256sum))
        print(f"{os.cpu_count()} CPUs; MB/s of file bytes, best of 3")
        for path, what in ((npy, ".npy float32"), (seq, ".seq raw counts, decoded to °C")):
            print(f"\n{what}: {path.stat().st_size // 10**6} MB")
            print(f"  {'':28} {'warm':>8} {'cold':>8}")
            for name, action in cases:
                warm = mb_per_s(action, path, cold=False)
                cold = mb_per_s(action, path, cold=True)
                cold_text = "n/a" if cold is None else f"{cold:.0f}"
                print(f"  {name:28} {warm or 0:8.0f} {cold_text:>8}")


if __name__ == "__main__":
    main()
