"""Sensor time series (vibration, acoustic, process values) from WAV, CSV and NumPy files.

Every reader gives a :class:`~thermoscope.core.SensorSeries`: evenly spaced samples with their
sample rate, unit and start time. Pure parsers take bytes; :func:`load_sensor` picks one by
suffix and names the file in errors. What each format carries:

- **WAV** (PCM 8/16/24/32-bit, via the standard library's ``wave``): the sample rate; a sample
  at full scale (±1.0) is ``full_scale`` in ``unit`` (both given by the caller: WAV stores no
  unit). One channel is taken (``channel``, default 0).
- **CSV**: two columns ``time_s, value``; a header line may name the unit in brackets or
  parentheses (``time_s,accel[g]``). The times must be evenly spaced (within 1 % of the median
  step); the sample rate is their inverse and the start time the first time.
- **NumPy** ``.npz``: arrays ``values`` (1-D), ``sample_rate_hz`` and optionally ``unit`` and
  ``start_s`` (0-d); a plain ``.npy`` holds only values (give ``sample_rate_hz`` and ``unit``).

The caller may state what it expects (``sample_rate_hz``, ``unit``): a file that says otherwise
is a :class:`SensorFormatError` naming both. Pickled arrays are never loaded.
"""

from __future__ import annotations

import io
import math
import re
import struct
import tokenize
import wave
import zipfile
import zlib
from pathlib import Path

import numpy as np

from thermoscope.core.part_record import PartRecordError, SensorSeries
from thermoscope.io.errors import ThermoscopeFormatError

#: Relative disagreement tolerated between a stated and a found sample rate.
RATE_TOLERANCE = 1e-3
#: What NumPy's header parser and ``zipfile`` raise on broken bytes.
_NUMPY_ERRORS = (
    ValueError, TypeError, KeyError, OSError, EOFError, RuntimeError, NotImplementedError,
    SyntaxError, tokenize.TokenError, zipfile.BadZipFile, zlib.error, struct.error,
)  # fmt: skip
_UNIT_IN_HEADER = re.compile(r"[\[(]\s*([^\])]+?)\s*[\])]\s*$")


class SensorFormatError(ThermoscopeFormatError):
    """A sensor file cannot be read, or says another rate or unit than expected."""


def _series(
    name: str,
    values: np.ndarray,
    rate: float,
    unit: str,
    start_s: float,
    kind: str,
    expected_rate: float | None,
    expected_unit: str | None,
) -> SensorSeries:
    if expected_rate is not None and abs(rate - expected_rate) > RATE_TOLERANCE * expected_rate:
        raise SensorFormatError(
            f"sensor {name!r} is sampled at {rate:g} Hz, expected {expected_rate:g} Hz"
        )
    if expected_unit is not None and unit != expected_unit:
        raise SensorFormatError(f"sensor {name!r} is in {unit!r}, expected {expected_unit!r}")
    try:
        return SensorSeries(name, values, rate, unit, start_s, kind)
    except PartRecordError as exc:
        raise SensorFormatError(str(exc)) from None


def parse_wav(
    data: bytes,
    *,
    name: str,
    unit: str,
    full_scale: float = 1.0,
    channel: int = 0,
    start_s: float = 0.0,
    kind: str = "acoustic",
    sample_rate_hz: float | None = None,
) -> SensorSeries:
    """A series from WAV bytes (PCM); ±1.0 of full scale is ``full_scale`` ``unit``.

    Raises:
        SensorFormatError: not a PCM WAV, no such channel, or another rate than
            ``sample_rate_hz``.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError, RuntimeError, ValueError, struct.error) as exc:
        # the standard library's reader raises RuntimeError or struct.error on broken chunks
        raise SensorFormatError(f"not a PCM WAV file: {exc or type(exc).__name__}") from None
    if not 0 <= channel < channels:
        raise SensorFormatError(f"channel {channel} requested, the file has {channels}")
    if width not in (1, 2, 3, 4):
        raise SensorFormatError(f"{8 * width}-bit samples are not supported")
    raw = np.frombuffer(frames[: len(frames) - len(frames) % (width * channels)], np.uint8)
    raw = raw.reshape(-1, channels, width)[:, channel, :]
    if width == 1:
        ints = raw[:, 0].astype(np.int64) - 128  # 8-bit WAV is unsigned
    else:
        padded = np.zeros((raw.shape[0], 4), np.uint8)
        padded[:, 4 - width :] = raw  # little-endian bytes into the high end of an int32
        ints = padded.view("<i4")[:, 0].astype(np.int64) >> (8 * (4 - width))
    scale = float(1 << (8 * width - 1))
    values = ints.astype(np.float64) / scale * full_scale
    return _series(name, values, float(rate), unit, start_s, kind, sample_rate_hz, None)


def parse_csv(
    text: str | bytes,
    *,
    name: str,
    unit: str | None = None,
    kind: str = "vibration",
    sample_rate_hz: float | None = None,
) -> SensorSeries:
    """A series from CSV text of ``time_s, value`` rows (a header line may give the unit).

    Args:
        unit: the unit the caller expects; required when the header names none.

    Raises:
        SensorFormatError: a row is not two numbers, the times do not increase evenly, the
            unit is missing or differs from ``unit``, or the rate from ``sample_rate_hz``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SensorFormatError(f"not UTF-8 text: {exc}") from None
    found_unit: str | None = None
    rows: list[tuple[float, float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in re.split(r"[,;\t]", line.strip())]
        try:
            if len(cells) != 2:
                raise ValueError
            t, v = float(cells[0]), float(cells[1])
        except ValueError:
            if not rows and found_unit is None and len(cells) == 2:
                match = _UNIT_IN_HEADER.search(cells[1])
                found_unit = match.group(1) if match else ""
                continue
            raise SensorFormatError(
                f"line {number}: expected 'time_s, value', got {line!r}"
            ) from None
        if not (math.isfinite(t) and math.isfinite(v)):
            raise SensorFormatError(f"line {number}: values must be finite")
        rows.append((t, v))
    if len(rows) < 2:
        raise SensorFormatError(f"sensor {name!r}: at least 2 samples needed, got {len(rows)}")
    arr = np.asarray(rows, dtype=np.float64)
    steps = np.diff(arr[:, 0])
    step = float(np.median(steps))
    if not step > 0 or not bool(np.all(np.abs(steps - step) <= 0.01 * step)):
        raise SensorFormatError(
            f"sensor {name!r}: times must increase in even steps (median step {step:g} s, "
            f"steps from {float(steps.min()):g} to {float(steps.max()):g} s)"
        )
    if found_unit:
        if unit is not None and found_unit != unit:
            raise SensorFormatError(f"sensor {name!r} is in {found_unit!r}, expected {unit!r}")
        unit = found_unit
    if unit is None:
        raise SensorFormatError(f"sensor {name!r}: the file names no unit; give one")
    rate = 1.0 / step
    return _series(name, arr[:, 1], rate, unit, float(arr[0, 0]), kind, sample_rate_hz, None)


def _read_numpy(data: bytes) -> tuple[np.ndarray, float | None, str | None, float | None]:
    """``(values, sample_rate_hz, unit, start_s)`` of ``.npy`` or ``.npz`` bytes (``None``:
    not in the file); a broken file raises what NumPy or ``zipfile`` raise."""
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return np.asarray(loaded), None, None, None
    with loaded:
        if "values" not in loaded.files:
            raise ValueError(f"the .npz has no 'values' array (it has {loaded.files})")
        names = loaded.files
        rate = float(loaded["sample_rate_hz"]) if "sample_rate_hz" in names else None
        unit = str(loaded["unit"]) if "unit" in names else None
        start = float(loaded["start_s"]) if "start_s" in names else None
        return np.asarray(loaded["values"]), rate, unit, start


def parse_numpy(
    data: bytes,
    *,
    name: str,
    unit: str | None = None,
    sample_rate_hz: float | None = None,
    start_s: float = 0.0,
    kind: str = "vibration",
) -> SensorSeries:
    """A series from ``.npz`` bytes (``values``, ``sample_rate_hz``, optional ``unit`` and
    ``start_s``) or ``.npy`` bytes (values only: ``sample_rate_hz`` and ``unit`` required).

    Raises:
        SensorFormatError: unreadable, pickled, missing arrays, or another rate or unit than
            stated.
    """
    try:
        values, file_rate, file_unit, file_start = _read_numpy(data)
    except _NUMPY_ERRORS as exc:
        raise SensorFormatError(
            f"not a readable NumPy .npy/.npz file: {exc or type(exc).__name__}"
        ) from None
    if file_start is not None:
        start_s = file_start
    if values.dtype.kind not in "iuf":
        raise SensorFormatError(f"values must be numbers, got dtype {values.dtype}")
    if file_unit is not None and unit is not None and file_unit != unit:
        raise SensorFormatError(f"sensor {name!r} is in {file_unit!r}, expected {unit!r}")
    unit = file_unit or unit
    rate = file_rate if file_rate is not None else sample_rate_hz
    if rate is None or unit is None:
        raise SensorFormatError(
            f"sensor {name!r}: the file states no sample rate or unit; give them"
        )
    return _series(name, values, rate, unit, start_s, kind, sample_rate_hz, None)


def load_sensor(
    path: str | Path,
    *,
    name: str | None = None,
    unit: str | None = None,
    sample_rate_hz: float | None = None,
    full_scale: float = 1.0,
    start_s: float = 0.0,
    kind: str = "vibration",
) -> SensorSeries:
    """Read a sensor file by suffix (``.wav``, ``.csv``/``.txt``, ``.npy``/``.npz``).

    Args:
        name: the series' name (default: the file's stem).
        unit: the expected unit (required for WAV; checked against CSV/NumPy files).
        sample_rate_hz: the expected rate, Hz (checked against the file; required for ``.npy``).
        full_scale: WAV only: the value of a full-scale sample, in ``unit``.
        start_s: start time on the record's clock, s (CSV files carry their own).

    Raises:
        SensorFormatError: naming the file and the reason.
    """
    path = Path(path)
    label = name or path.stem
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SensorFormatError(f"cannot read: {exc.strerror or exc}", str(path)) from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".wav":
            if unit is None:
                raise SensorFormatError("a WAV file stores no unit; give one")
            return parse_wav(
                data,
                name=label,
                unit=unit,
                full_scale=full_scale,
                start_s=start_s,
                kind=kind,
                sample_rate_hz=sample_rate_hz,
            )
        if suffix in (".csv", ".txt"):
            return parse_csv(data, name=label, unit=unit, kind=kind, sample_rate_hz=sample_rate_hz)
        if suffix in (".npy", ".npz"):
            return parse_numpy(
                data,
                name=label,
                unit=unit,
                sample_rate_hz=sample_rate_hz,
                start_s=start_s,
                kind=kind,
            )
    except SensorFormatError as exc:
        raise exc.with_source(str(path)) from None
    raise SensorFormatError(
        f"unknown sensor file suffix {suffix!r} (.wav, .csv, .npy, .npz)", str(path)
    )
