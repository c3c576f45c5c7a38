"""``thermoscope model`` end to end on tiny data: train → release → sign / verify → predict
JSON lines → eval HTML, for a classifier (an InfraredSolarModules-layout folder of 8-bit
pictures, one epoch) and a temporal model (a synthetic heating-sequence run); and the bad
inputs: a window clipping most pixels, a wrong frame size, a corrupt ONNX file, a bad file
among the inputs: a clear error, the documented exit code, nothing half-written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import thermoscope
import thermoscope.io as tio
from thermoscope.annotations import AnnotatedItem, Provenance, VerdictLabel
from thermoscope.cli.main import app
from thermoscope.core import ThermalFrame, Verdict
from thermoscope.datasets.store import DatasetStore
from thermoscope.models.contract import InputContract
from thermoscope.models.manifest import embedded_metadata
from thermoscope.models.release import write_release

runner = CliRunner()
CLASSES = ("No-Anomaly", "Hot-Spot", "Cell")


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, AssertionError | TypeError | AttributeError), result
    return result.exit_code, result.output


def solar_folder(root: Path, per_class: int = 12) -> Path:
    """A tiny folder in the InfraredSolarModules layout: 40x24 8-bit JPEGs, three classes."""
    rng = np.random.default_rng(5)
    (root / "images").mkdir(parents=True)
    meta = {}
    for k in range(per_class * len(CLASSES)):
        label = CLASSES[k % len(CLASSES)]
        image = rng.normal(110.0, 6.0, (40, 24))
        if label == "Hot-Spot":
            row = int(rng.integers(5, 30))
            image[row : row + 6, 8:14] += 90.0
        elif label == "Cell":
            image[10:30, 4:20] += 45.0
        ok, jpeg = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8))
        assert ok
        (root / "images" / f"{k}.jpg").write_bytes(jpeg.tobytes())
        meta[str(k)] = {"image_filepath": f"images/{k}.jpg", "anomaly_class": label}
    (root / "module_metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    code, out = invoke("model", "keygen", folder / "private.pem", folder / "public.pem")
    assert code == 0, out
    return folder / "private.pem", folder / "public.pem"


@pytest.mark.slow
def test_classifier_round_trip(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    data = solar_folder(tmp_path / "solar")
    release = tmp_path / "release"
    code, out = invoke(
        "model",
        "train",
        data,
        "--out",
        release,
        "--epochs",
        "1",
        "--holdout",
        "0.25",
        "--key",
        private,
        "--name",
        "solar-tiny",
        "--seed",
        "3",
    )
    assert code == 0, out
    assert "macro-F1" in out
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["kind"] == "classifier"
    assert set(CLASSES) <= set(manifest["classes"])
    assert manifest["training"]["epochs"] == 1
    assert manifest["training"]["seed"] == 3
    assert manifest["dataset_hash"]
    assert re.fullmatch(
        rf"{re.escape(thermoscope.__version__)}(\+git\.[0-9a-f]{{12}})?", manifest["code_version"]
    )
    assert (release / "manifest.sig").is_file()

    code, out = invoke("model", "verify", release, "--public-key", public)
    assert code == 0, out
    assert "solar-tiny v1" in out

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a picture")
    jsonl = tmp_path / "predictions.jsonl"
    code, out = invoke("model", "predict", "-m", release, data / "images", bad, "--jsonl", jsonl)
    assert code == 1, out  # one input failed; the others were still done
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == len(CLASSES) * 12 + 1
    judged = [line for line in lines if "error" not in line]
    assert all({"source", "label", "score", "verdict"} <= line.keys() for line in judged)
    assert all(0.0 <= line["score"] <= 1.0 for line in judged)
    (failed,) = [line for line in lines if "error" in line]
    assert failed["source"] == str(bad)
    assert "broken.jpg" in failed["error"]

    report = tmp_path / "eval"
    code, out = invoke("model", "eval", "-m", release, data, "--holdout", "--out", report)
    assert code == 0, out
    assert "accuracy" in out
    assert "macro-F1" in out
    doc = json.loads((report / "evaluation.json").read_text())
    held = json.loads((release / "split.json").read_text())["holdout"]
    assert doc["evaluation"]["count"] == len(held)
    assert doc["evaluation"]["accuracy"] == pytest.approx(manifest["metrics"]["accuracy"])
    assert doc["model_card"]["dataset_hash"] == manifest["dataset_hash"]
    assert '<svg class="roc"' in (report / "evaluation.html").read_text()

    exported = tmp_path / "model.onnx"
    code, out = invoke("model", "export", release, exported, "--public-key", public)
    assert code == 0, out
    meta = embedded_metadata({p.key: p.value for p in onnx.load(exported).metadata_props})
    assert meta["classes"] == manifest["classes"]
    assert meta["dataset_hash"] == manifest["dataset_hash"]
    assert meta["training"]["seed"] == 3


def test_golden_statistics_give_anomaly_scores(tmp_path: Path) -> None:
    data = solar_folder(tmp_path / "solar", per_class=6)
    release = tmp_path / "golden"
    code, out = invoke("model", "train", data, "--out", release, "--kind", "golden")
    assert code == 0, out
    assert json.loads((release / "manifest.json").read_text())["kind"] == "golden"
    jsonl = tmp_path / "p.jsonl"
    code, out = invoke("model", "predict", "-m", release, data / "images", "--jsonl", jsonl)
    assert code == 0, out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 18
    assert all(0.0 <= line["anomaly_score"] <= 1.0 for line in lines)
    assert all(line["label"] in ("ok", "anomaly") for line in lines)
    code, out = invoke("model", "eval", "-m", release, data, "--holdout", "--out", tmp_path / "e")
    assert code == 0, out
    doc = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert doc["evaluation"]["classes"] == ["normal", "anomaly"]

    # trained on the first 15 items: the held-out part exists only within those
    small = tmp_path / "golden-15"
    code, out = invoke("model", "train", data, "--out", small, "--kind", "golden", "--limit", "15")
    assert code == 0, out
    code, out = invoke("model", "eval", "-m", small, data, "--holdout", "--out", tmp_path / "f")
    assert code == 1
    assert "not the release's training data" in out
    code, out = invoke(
        "model", "eval", "-m", small, data, "--holdout", "--limit", "15", "--out", tmp_path / "f"
    )
    assert code == 0, out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    code, out = invoke(
        "synth",
        "pcb",
        "--out",
        folder,
        "--parts",
        "40",
        "--defect-rate",
        "0.5",
        "--sequence",
        "--seed",
        "2",
    )
    assert code == 0, out
    return folder


def test_window_clipping_most_pixels_writes_nothing(run: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    code, out = invoke(
        "model", "train", run, "--out", release, "--kind", "temporal", "--window", "0:10"
    )
    assert code == 1, out
    assert "outside the contract's window" in out
    assert list(tmp_path.iterdir()) == []  # neither the release nor a temporary folder


@pytest.mark.slow
def test_temporal_round_trip_and_bad_recordings(run: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    code, out = invoke("model", "train", run, "--out", release, "--kind", "temporal")
    assert code == 0, out
    assert json.loads((release / "manifest.json").read_text())["kind"] == "temporal"
    files = sorted(run.glob("*.seq"))[:3]
    frames = tio.open_path(files[0])
    with frames as seq:
        recording = list(seq)
    small = tio.save(
        [ThermalFrame(f.celsius[:60, :80].copy()) for f in recording], tmp_path / "small.npy"
    )
    hot = tio.save([ThermalFrame(f.celsius + 400.0) for f in recording], tmp_path / "hot.npy")
    jsonl = tmp_path / "p.jsonl"
    code, out = invoke("model", "predict", "-m", release, *files, small, hot, "--jsonl", jsonl)
    assert code == 1, out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["source"] for line in lines] == [str(p) for p in [*files, small, hot]]
    assert all("label" in line and "score" in line for line in lines[:3])
    assert "the model wants 160x120" in lines[3]["error"]
    assert "outside the contract's window" in lines[4]["error"]

    report = tmp_path / "eval"
    code, out = invoke("model", "eval", "-m", release, run, "--out", report)
    assert code == 0, out
    doc = json.loads((report / "evaluation.json").read_text())
    assert doc["evaluation"]["count"] == 40
    assert doc["evaluation"]["binary"]["auroc"] > 0.8


def test_corrupt_onnx_is_refused_and_nothing_written(tmp_path: Path) -> None:
    release = write_release(
        tmp_path / "release",
        name="broken",
        version=1,
        kind="classifier",
        contract=InputContract(window_c=(0.0, 255.0), height=40, width=24, unit="intensity"),
        onnx=b"\x08\x07garbage that is no protobuf",
        classes=("No-Anomaly", "Cell"),
    )
    picture = tmp_path / "x.jpg"
    shutil.copy(solar_folder(tmp_path / "solar", per_class=1) / "images" / "0.jpg", picture)
    jsonl = tmp_path / "p.jsonl"
    code, out = invoke("model", "predict", "-m", release, picture, "--jsonl", jsonl)
    assert code == 1, out
    assert "error:" in out
    assert "ONNX" in out
    assert not jsonl.exists()
    code, out = invoke("model", "export", release, tmp_path / "m.onnx")
    assert code == 1, out
    assert not (tmp_path / "m.onnx").exists()


def test_tampered_release_fails_verify(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    release = write_release(
        tmp_path / "release",
        name="tiny",
        version=2,
        kind="classifier",
        contract=InputContract(window_c=(0.0, 255.0), height=40, width=24, unit="intensity"),
        onnx=b"placeholder bytes",
        classes=("No-Anomaly", "Cell"),
    )
    code, out = invoke("model", "verify", release, "--public-key", public)
    assert code == 1
    assert "unsigned" in out
    code, out = invoke("model", "sign", release, "--key", private)
    assert code == 0, out
    code, out = invoke("model", "verify", release, "--public-key", public, "--min-version", "3")
    assert code == 1
    assert "older than the minimum version 3" in out
    (release / "model.onnx").write_bytes(b"altered")
    code, out = invoke("model", "verify", release, "--public-key", public)
    assert code == 1
    assert "model.onnx" in out


def test_a_refused_frame_in_a_batch_gets_its_own_error(run: Path, tmp_path: Path) -> None:
    release = tmp_path / "golden"
    code, out = invoke("model", "train", run, "--out", release, "--kind", "golden")
    assert code == 0, out
    files = sorted(run.glob("*.seq"))[:4]
    with tio.open_path(files[0]) as seq:
        last = list(seq)[-1]
    hot = tio.save([ThermalFrame(last.celsius + 400.0)], tmp_path / "hot.npy")
    jsonl = tmp_path / "p.jsonl"
    inputs = [files[0], hot, *files[1:]]
    code, out = invoke("model", "predict", "-m", release, *inputs, "--jsonl", jsonl)
    assert code == 1, out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["source"] for line in lines] == [str(p) for p in inputs]
    assert "outside the contract's window" in lines[1]["error"]
    judged = [lines[0], *lines[2:]]
    assert all(0.0 <= line["anomaly_score"] <= 1.0 for line in judged)


@pytest.mark.slow
# patch_model's export converts a kernel size to int while tracing (a TracerWarning, harmless
# there: the size is a constant); pytest's "error" filter would otherwise abort the export
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_anomaly_model_from_ok_parts(run: Path, tmp_path: Path) -> None:
    release = tmp_path / "anomaly"
    code, out = invoke(
        "model", "train", run, "--out", release, "--kind", "anomaly", "--limit", "24"
    )
    assert code == 0, out
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["kind"] == "anomaly"
    assert "index.npz" in manifest["files"]
    jsonl = tmp_path / "p.jsonl"
    files = sorted(run.glob("*.seq"))[:3]
    code, out = invoke("model", "predict", "-m", release, *files, "--jsonl", jsonl)
    assert code == 0, out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert all(line["score"] == line["anomaly_score"] for line in lines)
    code, out = invoke(
        "model", "eval", "-m", release, run, "--holdout", "--limit", "24", "--out", tmp_path / "e"
    )
    assert code == 0, out
    doc = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert doc["evaluation"]["count"] == manifest["metrics"]["holdout_count"]


def test_eval_compares_several_releases_side_by_side(run: Path, tmp_path: Path) -> None:
    for seed, version in (("0", "1"), ("1", "2")):
        code, out = invoke(
            "model",
            "train",
            run,
            "--out",
            tmp_path / f"g{version}",
            "--kind",
            "golden",
            "--seed",
            seed,
            "--release-version",
            version,
            "--name",
            "pcb-golden",
        )
        assert code == 0, out
    report = tmp_path / "report"
    code, out = invoke(
        "model", "eval", "-m", tmp_path / "g1", "-m", tmp_path / "g2", run, "--out", report
    )
    assert code == 0, out
    assert (report / "pcb-golden-v1" / "evaluation.html").is_file()
    assert (report / "pcb-golden-v2" / "evaluation.html").is_file()
    doc = json.loads((report / "comparison.json").read_text())
    assert [m["label"] for m in doc["models"]] == ["pcb-golden v1", "pcb-golden v2"]
    assert all(m["figures"]["samples"] == 40 for m in doc["models"])
    page = (report / "comparison.html").read_text()
    assert 'href="pcb-golden-v1/evaluation.html"' in page
    assert '<svg class="roc-overlay"' in page


@pytest.mark.slow
def test_golden_from_a_dataset_version_by_verdict(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out = invoke(
        "synth", "pcb", "--out", run, "--parts", "24", "--defect-rate", "0.25", "--seed", "4"
    )
    assert code == 0, out
    store = DatasetStore.create(tmp_path / "ds")
    me = Provenance.human("tester")
    for line in (run / "ground_truth.jsonl").read_text().splitlines():
        record = json.loads(line)
        (added,) = store.add_file(run / record["file"])
        item = added.item
        verdict = Verdict.NG if record["defective"] else Verdict.OK
        store.annotate(
            item.id,
            AnnotatedItem(
                item_id=item.content,
                width=item.width,
                height=item.height,
                frame_count=1,
                verdicts=(VerdictLabel(verdict=verdict, reason="ground truth", provenance=me),),
            ),
        )
    store.commit(tag="v1")
    release = tmp_path / "golden"
    code, out = invoke(
        "model",
        "train",
        tmp_path / "ds",
        "-V",
        "v1",
        "--target",
        "verdict",
        "--kind",
        "golden",
        "--out",
        release,
    )
    assert code == 0, out
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["dataset_hash"] == store.resolve("v1")
    data = [tmp_path / "ds", "-V", "v1", "--target", "verdict"]
    # near-identical synthetic boards form one leakage group: nothing could be held out
    code, out = invoke("model", "eval", "-m", release, *data, "--holdout", "--out", tmp_path / "e")
    assert code == 1
    assert "held nothing out" in out
    code, out = invoke("model", "eval", "-m", release, *data, "--out", tmp_path / "e")
    assert code == 0, out
    doc = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert doc["evaluation"]["count"] == 24
    assert doc["model_card"]["dataset_hash"] == store.resolve("v1")
    code, out = invoke("model", "train", *data[:3], "--kind", "golden", "--out", release)
    assert code == 1  # by label (the default) the version has OK items only
    assert "at least 2 classes" in out
