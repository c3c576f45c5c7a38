"""``thermoscope inspect-record``: a synthetic motor written to files and named by a manifest
gives the same inspection as ``inspect_record`` on the in-memory record; bad manifests exit 1
naming the field."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import thermoscope.io as tio
from thermoscope.cli.main import app
from thermoscope.core import PartRecord, Verdict
from thermoscope.datasets.synthetic.motor import MotorPart, motor_part
from thermoscope.io.record_manifest import RecordManifestError, load_record_manifest
from thermoscope.recipes import load_recipe
from thermoscope.recipes.record import inspect_record

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "motor.yaml"
runner = CliRunner()


def _write_part(record: PartRecord, folder: Path, *, sensor_suffix: str = ".npy") -> Path:
    """The record as files (drive end .npy, fan end TIFF, vibration) and their manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    drive, fan = record.views
    vib = record.sensors[0]
    tio.save(drive.frames[0], folder / "drive_end.npy")  # .npy stores no time: the manifest does
    tio.save(fan.frames[0], folder / "fan_end.tiff")  # TIFF keeps the frame's time
    sensor: dict[str, object] = {"unit": vib.unit, "start_s": vib.start_s}
    if sensor_suffix == ".npy":
        np.save(folder / "vib.npy", vib.values)
        sensor["sample_rate_hz"] = vib.sample_rate_hz
    elif sensor_suffix == ".csv":  # carries its rate, unit and start: the manifest checks them
        pairs = zip(vib.times_s(), vib.values, strict=True)
        rows = [f"{float(t)!r},{float(v)!r}" for t, v in pairs]
        text = "\n".join([f"time_s,accel[{vib.unit}]", *rows])
        (folder / "vib.csv").write_text(text, encoding="utf-8")
        sensor = {"unit": vib.unit, "sample_rate_hz": vib.sample_rate_hz}
    else:
        full_scale = 2.0
        pcm = np.round(vib.values / full_scale * 32767).astype("<i2")
        with wave.open(str(folder / "vib.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(vib.sample_rate_hz))
            w.writeframes(pcm.tobytes())
        sensor["full_scale"] = full_scale
    manifest = {
        "part_id": record.part_id,
        "timestamp_s": record.timestamp_s,
        "views": {
            "drive_end": {
                "file": "drive_end.npy",
                "camera": drive.camera,
                "timestamp_s": drive.frames[0].metadata.timestamp_s,
            },
            "fan_end": {"file": "fan_end.tiff", "camera": fan.camera},
        },
        "sensors": {"vib": {"file": f"vib{sensor_suffix}", **sensor}},
        "ambient": {
            "temperature_c": record.ambient.temperature_c,
            "relative_humidity_pct": record.ambient.relative_humidity_pct,
        },
    }
    path = folder / "part.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return path


def _part(kind: str, *, misframed: bool = False, seed: int = 3) -> MotorPart:
    worn = "fan_end" if kind == "bearing_wear" else None
    rng = np.random.default_rng(seed)
    return motor_part(rng, 4, kind, worn_end=worn, misframed=misframed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "misframed", "verdict"),
    [("ok", False, "OK"), ("bearing_wear", False, "NG"), ("ok", True, "RETAKE")],
)
def test_cli_gives_the_in_memory_inspection(
    tmp_path: Path, kind: str, misframed: bool, verdict: str
) -> None:
    part = _part(kind, misframed=misframed)
    expected = inspect_record(part.record, load_recipe(RECIPE))
    assert expected.verdict.value == verdict  # the ground truth the synthetic line states
    manifest = _write_part(part.record, tmp_path / "part")
    out = tmp_path / "inspection.json"
    result = runner.invoke(
        app, ["inspect-record", str(manifest), "--recipe", str(RECIPE), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == expected.to_json()
    assert f"part {part.record.part_id}: {verdict}" in result.output


def test_the_table_names_the_view_and_sensors_of_each_finding(tmp_path: Path) -> None:
    manifest = _write_part(_part("bearing_wear").record, tmp_path / "part")
    result = runner.invoke(app, ["inspect-record", str(manifest), "-r", str(RECIPE)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "fan_end/bearing wear" in line]
    assert rows
    assert "fan_end" in rows[0].split("fan_end/")[0]  # the view column
    assert "vib" in rows[0]
    assert "NG" in rows[0]


def test_a_wav_sensor_gives_the_same_verdicts(tmp_path: Path) -> None:
    part = _part("bearing_wear")
    record = load_record_manifest(_write_part(part.record, tmp_path, sensor_suffix=".wav"))
    assert record.sensor("vib").sample_rate_hz == part.record.sensor("vib").sample_rate_hz
    recipe = load_recipe(RECIPE)
    got = inspect_record(record, recipe)
    want = inspect_record(part.record, recipe)
    assert [(f.rule, f.verdict) for f in got.findings] == [
        (f.rule, f.verdict) for f in want.findings
    ]
    assert got.verdict is Verdict.NG


def _edit(manifest: Path, change: dict[str, object]) -> Path:
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[key] = value
    manifest.write_text(yaml.safe_dump(data), encoding="utf-8")
    return manifest


@pytest.mark.parametrize(
    ("suffix", "change", "said"),
    [
        (".npy", {"views.fan_end.file": "nowhere.tiff"}, "views.fan_end"),
        (".npy", {"sensors.vib.file": "nowhere.csv"}, "sensors.vib"),
        (".npy", {"views.fan_end.angle": 30}, "views.fan_end.angle: unknown field"),
        (".npy", {"colour": "blue"}, "colour: unknown field"),
        (".csv", {"sensors.vib.sample_rate_hz": 8000}, "expected 8000 Hz"),
        (".wav", {"sensors.vib.sample_rate_hz": 8000}, "expected 8000 Hz"),
        (".csv", {"sensors.vib.unit": "m/s²"}, "expected 'm/s²'"),
        (".npy", {"sensors.vib.start_s": 500.0}, "sensors.vib: its samples cover 500..501 s"),
        (".npy", {"ambient.relative_humidity_pct": 140}, "ambient.relative_humidity_pct"),
        (".npy", {"views": {}}, "views: "),
    ],
)
def test_a_bad_manifest_exits_1_naming_the_field(
    tmp_path: Path, suffix: str, change: dict[str, object], said: str
) -> None:
    part = _part("ok")
    manifest = _edit(_write_part(part.record, tmp_path / "part", sensor_suffix=suffix), change)
    with pytest.raises(RecordManifestError, match=r"part\.yaml") as caught:
        load_record_manifest(manifest)
    assert said in str(caught.value)
    result = runner.invoke(app, ["inspect-record", str(manifest), "-r", str(RECIPE)])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "part.yaml" in result.output


def test_a_wav_sensor_needs_its_unit(tmp_path: Path) -> None:
    manifest = _write_part(_part("ok").record, tmp_path, sensor_suffix=".wav")
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    del data["sensors"]["vib"]["unit"]
    manifest.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(RecordManifestError, match=r"sensors\.vib: .*WAV file stores no unit"):
        load_record_manifest(manifest)


def test_a_sequence_without_frame_times_needs_an_interval(tmp_path: Path) -> None:
    frame = _part("ok").record.views[0].frames[0]
    tio.save([frame, frame], tmp_path / "seq.npy")
    manifest = tmp_path / "m.json"
    view: dict[str, object] = {"file": "seq.npy", "timestamp_s": 10.0}
    manifest.write_text(json.dumps({"part_id": "p", "views": {"top": view}}), encoding="utf-8")
    with pytest.raises(RecordManifestError, match=r"views\.top: 2 frames .* frame_interval_s"):
        load_record_manifest(manifest)
    view["frame_interval_s"] = 0.5
    manifest.write_text(json.dumps({"part_id": "p", "views": {"top": view}}), encoding="utf-8")
    assert load_record_manifest(manifest).view("top").time_span_s == (10.0, 10.5)


def test_text_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(RecordManifestError, match="must be a mapping"):
        load_record_manifest(manifest)
    manifest.write_text("views: {a: [unclosed\n", encoding="utf-8")
    with pytest.raises(RecordManifestError, match="not valid YAML/JSON"):
        load_record_manifest(manifest)


def test_a_record_that_does_not_fit_the_recipe_exits_1(tmp_path: Path) -> None:
    manifest = _write_part(_part("ok").record, tmp_path)
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    del data["views"]["fan_end"]
    manifest.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = runner.invoke(app, ["inspect-record", str(manifest), "-r", str(RECIPE)])
    assert result.exit_code == 1
    assert "no view 'fan_end'" in " ".join(result.output.split())
