"""The command line: every command on real samples, globs and folders, and broken input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import thermoscope.io as tio
from sample_data import reference_cases, reference_for
from synthetic_frames import planck_frame
from thermoscope.cli.main import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _has_temperatures(path: Path) -> bool:
    try:
        tio.load(path)
    except tio.TemperatureUnavailableError:
        return False
    return True


@pytest.mark.parametrize("path", reference_cases("flir", "dji"))
def test_convert_to_npy_works_on_every_sample(path: Path, tmp_path: Path) -> None:
    out = tmp_path / f"{path.stem}.npy"
    code, output = invoke("convert", str(path), str(out))
    if not _has_temperatures(path):
        assert code == 1
        assert "SDK" in output or "conversion" in output
        return
    assert code == 0, output
    data = np.load(out)
    assert data.dtype == np.float32
    reference = np.load(reference_for(path))["celsius"]
    assert data.shape == (
        reference.shape if reference.ndim == 3 and len(reference) > 1 else reference.shape[-2:]
    )
    frames = data if data.ndim == 3 else data[None]
    with tio.open_path(path) as seq:
        for i, frame in enumerate(seq):
            np.testing.assert_array_equal(frames[i], frame.celsius)


@pytest.mark.parametrize("path", reference_cases("flir", "dji"))
def test_render_works_on_every_sample(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    code, output = invoke(
        "render", str(path), str(out), "--palette", "rainbow", "--isotherm", "30:40"
    )
    if not _has_temperatures(path):
        assert code == 1
        return
    assert code == 0, output
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    frame = tio.load(path)
    assert image.ndim == 3
    assert image.shape[0] >= frame.height
    assert image.shape[1] > frame.width  # the colour bar is on by default


def test_info_of_one_file(samples: Path) -> None:
    code, output = invoke("info", str(samples / "flir" / "FLIR_T640.jpg"))
    assert code == 0
    for expected in ("FLIR T640", "640", "480", "97.85", "emissivity"):
        assert expected in output


def test_info_json_of_a_folder_and_a_glob(samples: Path) -> None:
    code, output = invoke("info", "--json", str(samples / "flir"), str(samples / "flir" / "*.seq"))
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    names = [Path(r["file"]).name for r in rows]
    assert "test.seq" in names
    assert names.count("test.seq") == 1  # folder and glob name it twice, reported once
    seq = next(r for r in rows if r["file"].endswith("test.seq"))
    assert seq["frames"] == 7
    assert seq["width"] == 640


def test_one_broken_file_is_reported_and_the_rest_go_on(tmp_path: Path) -> None:
    good = tio.save(planck_frame(), tmp_path / "good.fff")
    (tmp_path / "broken.fff").write_bytes(b"FFF\x00" + b"\xff" * 30)
    (tmp_path / "empty.seq").write_bytes(b"")
    code, output = invoke("info", "--json", str(tmp_path))
    assert code == 1
    assert "broken.fff" in output
    assert "empty.seq" in output
    assert "Traceback" not in output
    assert any(line.startswith("{") and str(good) in line for line in output.splitlines())


def test_temp_reads_the_reference_value(samples: Path) -> None:
    path = samples / "flir" / "test.seq"
    reference = np.load(reference_for(path))["celsius"]
    code, output = invoke("temp", str(path), "100", "200", "--frame", "3")
    assert code == 0
    assert float(output) == pytest.approx(float(reference[3, 200, 100]), abs=1e-3)


def test_temp_outside_the_frame_is_a_clear_error(tmp_path: Path) -> None:
    path = tio.save(planck_frame(), tmp_path / "f.fff")
    code, output = invoke("temp", str(path), "999", "0")
    assert code == 1  # the pixel does not fit this file (docs/cli.md: exit codes)
    assert "outside" in output


def test_render_a_folder_into_a_folder(tmp_path: Path) -> None:
    for i in range(3):
        tio.save(planck_frame(seed=i), tmp_path / "in" / f"p{i}.fff")
    code, output = invoke(
        "render", str(tmp_path / "in"), str(tmp_path / "out"), "--range", "20:60", "--no-colorbar"
    )
    assert code == 0, output
    pngs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert pngs == ["p0.png", "p1.png", "p2.png"]
    assert cv2.imread(str(tmp_path / "out" / "p0.png")).shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--palette", "plasma-x"], "unknown palette"),
        (["--range", "hot:cold"], "--range"),
        (["--isotherm", "60:80:#zz"], "--isotherm"),
    ],
)
def test_render_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    path = tio.save(planck_frame(), tmp_path / "f.fff")
    code, output = invoke("render", str(path), str(tmp_path / "o.png"), *args)
    assert code == 2
    assert message in output


def test_convert_a_recording_to_a_compressed_one_and_back(tmp_path: Path) -> None:
    frames = [planck_frame(seed=i, index=i) for i in range(3)]
    source = tio.save(frames, tmp_path / "run.seq")
    code, output = invoke("convert", str(source), str(tmp_path / "run.csq"))
    assert code == 0, output
    with tio.open_path(tmp_path / "run.csq") as seq:
        assert [f.raw.tobytes() for f in seq] == [f.raw.tobytes() for f in frames]  # type: ignore[union-attr]


def test_convert_to_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tio.save(planck_frame(), tmp_path / "f.fff")
    code, output = invoke("convert", str(path), str(tmp_path / "f.xyz"))
    assert code == 2
    assert "no writer" in output


def test_formats_lists_readers_and_writers() -> None:
    code, output = invoke("formats")
    assert code == 0
    for reader in tio.readers():
        assert reader.name in output


def test_demo_runs_the_demo_line(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    code, output = invoke("demo", "--out", str(out), "--parts", "40")
    assert code == 0, output
    assert "40 boards inspected" in output
    lines = (out / "inspections.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40
    assert {json.loads(line)["verdict"] for line in lines} <= {"OK", "WARN", "NG"}
    assert "<html" in (out / "report.html").read_text(encoding="utf-8")[:200].lower()
    with tio.open_path(sorted((out / "parts").glob("*.seq"))[0]) as seq:
        assert seq[0].shape == (120, 160)


def test_info_shows_what_a_dji_file_has_without_the_sdk(
    samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THERMOSCOPE_DJI_SDK", raising=False)
    code, output = invoke("info", "--json", str(samples / "dji" / "M3T_DJI_0001_R.JPG"))
    assert code == 0
    row = json.loads(output)
    assert (row["camera"], row["width"], row["height"]) == ("DJI M3T", 640, 512)
    assert row["parameters"]["emissivity"] == pytest.approx(0.95)
    assert "Thermal SDK" in row["temperatures"]
    assert "min_c" not in row
