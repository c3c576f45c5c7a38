"""Sensor time series: the part record's checks, the readers (WAV, CSV, NumPy) and features."""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from thermoscope.analysis import sensor_features as sf
from thermoscope.analysis.spatial import AnalysisError
from thermoscope.core import (
    CaptureConditions,
    FrameMetadata,
    PartRecord,
    PartRecordError,
    SensorSeries,
    ThermalFrame,
    View,
)
from thermoscope.io.sensor_series import (
    SensorFormatError,
    load_sensor,
    parse_csv,
    parse_numpy,
    parse_wav,
)

RATE = 1000.0


def _tone(freq: float, amp: float, n: int = 1000, rate: float = RATE) -> np.ndarray:
    return amp * np.sin(2 * math.pi * freq * np.arange(n) / rate)


def _wav(samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> bytes:
    scale = float(1 << (8 * width - 1)) - 1
    ints = np.round(np.clip(samples, -1, 1) * scale).astype("<i4")
    if width == 1:
        ints = ints + 128  # 8-bit WAV is unsigned
    raw = np.repeat(ints[:, None], channels, axis=1).reshape(-1)
    data = b"".join(int(v).to_bytes(4, "little", signed=True)[:width] for v in raw)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return buf.getvalue()


def _frame(t: float | None = None) -> ThermalFrame:
    return ThermalFrame(np.zeros((4, 5), np.float32), metadata=FrameMetadata(timestamp_s=t))


# ----------------------------------------------------------------------- part record


def test_part_record_holds_views_sensors_and_conditions() -> None:
    vib = SensorSeries("vib", _tone(50, 1.0), RATE, "g", start_s=9.5)
    record = PartRecord(
        "P1",
        (View("top", (_frame(10.0),)), View("side", (_frame(10.0), _frame(10.2)))),
        (vib,),
        CaptureConditions(temperature_c=23.0, relative_humidity_pct=40.0),
        timestamp_s=10.0,
    )
    assert record.view("side").time_span_s == (10.0, 10.2)
    assert record.sensor("vib").duration_s == pytest.approx(1.0)
    cut = record.sensors_during("side", margin_s=0.1)["vib"]
    assert cut.start_s == pytest.approx(9.9)
    assert cut.values.size == 400  # 9.9 .. 10.3 s at 1 kHz
    np.testing.assert_array_equal(cut.values, vib.values[400:800])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SensorSeries("vib", np.zeros(1), RATE, "g"), "at least 2 samples"),
        (lambda: SensorSeries("vib", np.array([0.0, np.nan]), RATE, "g"), "finite"),
        (lambda: SensorSeries("vib", np.zeros(8), 0.0, "g"), "sample_rate_hz"),
        (lambda: SensorSeries("vib", np.zeros(8), RATE, ""), "unit"),
        (lambda: SensorSeries("bad name", np.zeros(8), RATE, "g"), "sensor name"),
        (lambda: View("v", ()), "no frames"),
        (lambda: PartRecord("p", ()), "no thermal view"),
        (
            lambda: PartRecord("p", (View("a", (_frame(),)), View("a", (_frame(),)))),
            "two views named 'a'",
        ),
        (lambda: CaptureConditions(relative_humidity_pct=120.0), "outside 0..100"),
    ],
)
def test_bad_records_are_refused_with_the_field(build: object, message: str) -> None:
    with pytest.raises(PartRecordError, match=message):
        build()  # type: ignore[operator]


def test_sensor_times_that_do_not_overlap_the_frames_are_an_error() -> None:
    record = PartRecord(
        "P2",
        (View("top", (_frame(100.0), _frame(101.0))),),
        (SensorSeries("vib", _tone(50, 1.0), RATE, "g", start_s=0.0),),
    )
    with pytest.raises(PartRecordError, match=r"does not overlap the window 100\.\.101 s"):
        record.sensors_during("top")
    with pytest.raises(PartRecordError, match="no view 'front'"):
        record.view("front")


# ----------------------------------------------------------------------- readers


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_keeps_rate_and_scales_to_the_unit(width: int) -> None:
    samples = _tone(40, 0.5, n=800, rate=8000)
    series = parse_wav(_wav(samples, 8000, width), name="mic", unit="Pa", full_scale=20.0)
    assert series.sample_rate_hz == 8000
    assert series.unit == "Pa"
    tolerance = 20.0 / 100 if width == 1 else 1e-3
    np.testing.assert_allclose(series.values, samples * 20.0, atol=tolerance)


def test_wav_with_another_rate_than_expected_is_refused() -> None:
    data = _wav(_tone(40, 0.5, n=100, rate=8000), 8000, channels=2)
    with pytest.raises(SensorFormatError, match="sampled at 8000 Hz, expected 4096 Hz"):
        parse_wav(data, name="mic", unit="Pa", sample_rate_hz=4096)
    with pytest.raises(SensorFormatError, match="channel 2 requested, the file has 2"):
        parse_wav(data, name="mic", unit="Pa", channel=2)
    with pytest.raises(SensorFormatError, match="not a PCM WAV"):
        parse_wav(b"RIFF....WAVEjunk", name="mic", unit="Pa")


def test_csv_reads_unit_rate_and_start() -> None:
    text = "time_s,accel[g]\n" + "".join(f"{2.0 + i / 100:.2f},{i % 3}\n" for i in range(50))
    series = parse_csv(text, name="vib")
    assert series.unit == "g"
    assert series.sample_rate_hz == pytest.approx(100.0)
    assert series.start_s == pytest.approx(2.0)
    assert series.values[:4].tolist() == [0.0, 1.0, 2.0, 0.0]


@pytest.mark.parametrize(
    ("text", "kw", "message"),
    [
        ("t,v[g]\n0,1\n0.01,2\n", {"unit": "m/s²"}, "is in 'g', expected 'm/s²'"),
        ("t,v\n0,1\n0.01,2\n", {}, "names no unit"),
        ("0,1\n0.01,2\n0.05,3\n", {"unit": "g"}, "even steps"),
        ("0,1\n0.01,2\n", {"unit": "g", "sample_rate_hz": 50.0}, "100 Hz, expected 50 Hz"),
        ("0,1\n0.01,x\n", {"unit": "g"}, "line 2"),
    ],
)
def test_bad_csv_series_are_refused(text: str, kw: dict[str, object], message: str) -> None:
    with pytest.raises(SensorFormatError, match=message):
        parse_csv(text, name="vib", **kw)  # type: ignore[arg-type]


def test_numpy_series_and_load_sensor_name_the_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, values=np.arange(10.0), sample_rate_hz=np.float64(200.0), unit=np.str_("A"))
    series = parse_numpy(buf.getvalue(), name="current")
    assert (series.sample_rate_hz, series.unit, series.values.size) == (200.0, "A", 10)
    with pytest.raises(SensorFormatError, match="is in 'A', expected 'V'"):
        parse_numpy(buf.getvalue(), name="current", unit="V")
    path = tmp_path / "raw.npy"
    np.save(path, np.arange(10.0))
    with pytest.raises(SensorFormatError, match=r"raw\.npy: sensor 'raw': the file states no"):
        load_sensor(path)
    assert load_sensor(path, unit="g", sample_rate_hz=50.0).duration_s == pytest.approx(0.2)
    odd = tmp_path / "x.bin"
    odd.write_bytes(b"1")
    with pytest.raises(SensorFormatError, match="unknown sensor file suffix"):
        load_sensor(odd)


# ----------------------------------------------------------------------- features


def test_features_of_a_tone() -> None:
    tone = _tone(50, 2.0) + 3.0  # a mean the features ignore
    assert sf.rms(tone) == pytest.approx(2.0 / math.sqrt(2), rel=1e-3)
    assert sf.peak(tone) == pytest.approx(2.0, rel=1e-3)
    assert sf.crest_factor(tone) == pytest.approx(math.sqrt(2), rel=1e-3)
    assert sf.band_energy(tone, RATE, low_hz=45, high_hz=55) == pytest.approx(2.0, rel=0.01)
    assert sf.band_energy(tone, RATE, low_hz=100, high_hz=200) < 1e-4
    assert sf.spectral_centroid(tone, RATE) == pytest.approx(50.0, abs=0.5)
    assert math.isnan(sf.crest_factor(np.ones(10)))


def test_band_energies_add_up_to_the_mean_square() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, 4096)
    bands = [(0, 100), (100.001, 300), (300.001, 500)]
    total = sum(sf.band_energy(noise, RATE, low_hz=lo, high_hz=hi) for lo, hi in bands)
    assert total == pytest.approx(float(np.var(noise)), rel=0.05)


def test_bad_bands_are_errors() -> None:
    tone = _tone(50, 1.0)
    with pytest.raises(AnalysisError, match="Nyquist"):
        sf.band_energy(tone, RATE, low_hz=600, high_hz=700)
    with pytest.raises(AnalysisError, match="inverted"):
        sf.band_energy(tone, RATE, low_hz=60, high_hz=50)


@pytest.mark.parametrize("kind", ["wav", "npz", "npy", "csv"])
def test_broken_sensor_bytes_are_format_errors(kind: str) -> None:
    buf = io.BytesIO()
    if kind == "wav":
        buf.write(_wav(_tone(40, 0.5, n=200, rate=8000), 8000, width=3, channels=2))
    elif kind == "npz":
        np.savez(buf, values=np.arange(50.0), sample_rate_hz=np.float64(10.0), unit=np.str_("g"))
    elif kind == "npy":
        np.save(buf, np.arange(50.0))
    else:
        buf.write(b"t,v[g]\n" + b"".join(b"%g,%d\n" % (i / 10, i) for i in range(40)))
    good = buf.getvalue()
    parse = {"wav": parse_wav, "npz": parse_numpy, "npy": parse_numpy, "csv": parse_csv}[kind]
    rng = np.random.default_rng(3)
    refused = 0
    messages: set[str] = set()
    for _ in range(300):
        data = bytearray(good)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        if rng.random() < 0.3:
            data = data[: int(rng.integers(len(data)))]
        rate = 10.0 if kind != "wav" else None
        try:  # anything but a SensorFormatError fails the test
            parse(bytes(data), name="s", unit="g", sample_rate_hz=rate)
        except SensorFormatError as exc:
            refused += 1
            messages.add(str(exc).split(":")[0])
    assert refused >= 10  # the header mutations are seen
    assert messages == {"<bytes>"}
