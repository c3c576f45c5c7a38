"""ONNX Runtime inference: graph checks, predictions, heat maps, findings, refusals."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_graphs import anomaly_graph, classifier_graph

from thermoscope.core import Finding, FrameMetadata, ThermalFrame, Verdict
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError, ReleaseError
from thermoscope.models.explain import INDEX_FILE, FeatureIndex
from thermoscope.models.manifest import (
    EMBEDDED_FIELDS,
    MANIFEST_FILE,
    MODEL_FILE,
    embedded_metadata,
)
from thermoscope.models.release import generate_keys, sign_release, write_release
from thermoscope.models.runtime import (
    DEFAULT_NEIGHBOURS,
    OK_CLASS_NAMES,
    REQUIRED_OUTPUTS,
    LoadedModel,
    decide_class,
    is_ok_class,
    load_model,
    onnx_session,
    peak_box,
)
from thermoscope.pipeline import PartModel, Pipeline

CONTRACT = InputContract(window_c=(20.0, 60.0), height=32, width=40)
CLASSES = ("ok", "cold_joint", "hot_spot")


def anomaly_release(folder: Path, **changes: Any) -> Path:
    fields: dict[str, Any] = {
        "name": "spots",
        "version": 2,
        "kind": "anomaly",
        "contract": CONTRACT,
        "onnx": anomaly_graph(1, 32, 40),
        "thresholds": {"anomaly": 0.7},
        **changes,
    }
    return write_release(folder, **fields)


def classifier_release(folder: Path, **changes: Any) -> Path:
    # mean window value m in [0, 1]: logits ok = 0, cold = 3 - 16 m, hot = 16 m - 12, so a
    # part at 30 °C (m = 0.25) is ok, at 22 °C (m = 0.05) cold, at 55 °C (m = 0.875) hot.
    fields: dict[str, Any] = {
        "name": "classes",
        "version": 1,
        "kind": "classifier",
        "contract": CONTRACT,
        "onnx": classifier_graph(1, 32, 40, [0.0, -16.0, 16.0], [0.0, 3.0, -12.0]),
        "classes": CLASSES,
        **changes,
    }
    return write_release(folder, **fields)


def part(background: float = 30.0, spot: float | None = None) -> ThermalFrame:
    celsius = np.full((120, 160), background, np.float32)
    if spot is not None:
        celsius[40:60, 100:124] = spot
    return ThermalFrame(celsius, metadata=FrameMetadata(source="part.tiff"))


def test_anomaly_prediction_heat_map_peak_and_box(tmp_path: Path) -> None:
    model = load_model(anomaly_release(tmp_path / "r"))
    assert model.name == "spots"
    assert model.version == "2"
    prediction = model.predict(part(spot=56.0))
    assert prediction.verdict is Verdict.NG
    assert prediction.label == "anomaly"
    assert prediction.anomaly_score == pytest.approx(0.9, abs=1e-6)
    assert prediction.score == prediction.anomaly_score
    assert prediction.probabilities is None
    assert prediction.heatmap is not None
    assert prediction.heatmap.shape == (120, 160)
    assert prediction.heatmap.dtype == np.float32
    (finding,) = prediction.findings
    assert finding.rule == "model:spots"
    assert finding.region == "anomaly"
    assert finding.unit == "score"
    assert finding.limit == 0.7
    assert finding.margin == pytest.approx(0.7 - 0.9, abs=1e-6)
    assert finding.score == pytest.approx(0.9, abs=1e-6)
    assert 100 <= (finding.x or 0) < 124
    assert 40 <= (finding.y or 0) < 60
    x0, y0, x1, y1 = finding.extra["box"]
    assert abs(x0 - 100) <= 3
    assert abs(y0 - 40) <= 3
    assert abs(x1 - 124) <= 3
    assert abs(y1 - 60) <= 3
    assert finding.extra["kind"] == "anomaly"
    assert "anomaly score 0.90 ≥ 0.70" in finding.explanation
    assert Finding.from_json(finding.to_json()) == finding

    good = model.predict(part())
    assert good.verdict is Verdict.OK
    assert good.label == "ok"
    assert good.findings[0].verdict is Verdict.OK


def test_the_loaded_model_is_a_pipeline_part_model(tmp_path: Path) -> None:
    model = load_model(anomaly_release(tmp_path / "r"))
    assert isinstance(model, PartModel)
    inspection = Pipeline(model=model).inspect_part(part(spot=56.0), source="part.tiff")
    assert inspection.verdict is Verdict.NG
    assert [f.rule for f in inspection.findings] == ["model:spots"]


def test_classifier_decisions(tmp_path: Path) -> None:
    model = load_model(classifier_release(tmp_path / "r"))
    cold, fine, hot = model.predict_batch([part(22.0), part(30.0), part(55.0)])
    assert [p.label for p in (cold, fine, hot)] == list(CLASSES[1:2] + CLASSES[:1] + CLASSES[2:])
    assert [p.verdict for p in (cold, fine, hot)] == [Verdict.NG, Verdict.OK, Verdict.NG]
    assert fine.probabilities is not None
    assert sum(fine.probabilities.values()) == pytest.approx(1.0)
    assert fine.score == max(fine.probabilities.values())
    assert hot.heatmap is None
    (finding,) = hot.findings
    assert finding.region == "hot_spot"
    assert finding.extra["kind"] == "hot_spot"
    assert finding.extra["box"] is None
    assert finding.x is None
    assert finding.limit is None
    assert finding.unit == "score"
    assert finding.explanation.startswith("classes v1: hot_spot (p=")


def test_class_activation_map_of_the_label(tmp_path: Path) -> None:
    onnx = classifier_graph(1, 32, 40, [0.0, -16.0, 16.0], [0.0, 3.0, -12.0], cam=True)
    model = load_model(classifier_release(tmp_path / "r", onnx=onnx))
    prediction = model.predict(part(background=50.0, spot=59.0))
    assert prediction.label == "hot_spot"
    assert prediction.heatmap is not None
    assert prediction.heatmap.shape == (120, 160)
    assert float(prediction.heatmap.max()) == pytest.approx(1.0, abs=1e-5)
    finding = prediction.findings[0]
    assert 100 <= (finding.x or 0) < 124
    assert 40 <= (finding.y or 0) < 60
    assert finding.extra["box"] is not None


def test_classifier_thresholds(tmp_path: Path) -> None:
    # At 45 °C (m = 0.625): logits 0, -7, -2 → p(hot) ≈ 0.12, p(ok) ≈ 0.88.
    strict = load_model(classifier_release(tmp_path / "a", thresholds={"defect": 0.1}))
    prediction = strict.predict(part(45.0))
    assert prediction.label == "hot_spot"
    assert prediction.verdict is Verdict.NG
    finding = prediction.findings[0]
    assert finding.limit == 0.1
    assert prediction.probabilities is not None
    assert finding.value == pytest.approx(1.0 - prediction.probabilities["ok"])
    assert "defect p=" in finding.explanation
    lenient = load_model(classifier_release(tmp_path / "b", thresholds={"hot_spot": 0.99}))
    assert lenient.predict(part(55.0)).label == "ok"


def test_decide_class_rules() -> None:
    p = {"No-Anomaly": 0.5, "Cracking": 0.3, "Soiling": 0.2}
    assert decide_class(p, {}) == ("No-Anomaly", 0.5, None)
    assert decide_class(p, {"defect": 0.5}) == ("Cracking", 0.5, 0.5)
    assert decide_class(p, {"Soiling": 0.15})[0] == "Soiling"
    assert decide_class(p, {"Cracking": 0.35}) == ("No-Anomaly", 0.5, None)
    assert decide_class({"a": 0.6, "b": 0.4}, {"a": 0.9}) == ("a", 0.6, 0.9)
    assert all(is_ok_class(n) for n in ("OK", "No-Anomaly", "no anomaly", "Good", *OK_CLASS_NAMES))
    assert not is_ok_class("cold_joint")


def test_a_fixed_batch_graph_runs_in_chunks(tmp_path: Path) -> None:
    model = load_model(anomaly_release(tmp_path / "r", onnx=anomaly_graph(1, 32, 40, batch=1)))
    scores = [p.score for p in model.predict_batch([part(), part(spot=56.0), part(spot=40.0)])]
    np.testing.assert_allclose(scores, [0.25, 0.9, 0.5], atol=1e-6)
    assert model.predict_batch([]) == []
    with pytest.raises(ModelError, match="run needs a batch"):
        model.run(np.zeros((0, 1, 32, 40), np.float32))
    pairs = load_model(anomaly_release(tmp_path / "s", onnx=anomaly_graph(1, 32, 40, batch=2)))
    out = pairs.run(np.stack([CONTRACT.apply(part(spot=t).celsius) for t in (40.0, 48.0, 56.0)]))
    np.testing.assert_allclose(out["score"], [0.5, 0.7, 0.9], atol=1e-6)
    assert out["anomaly_map"].shape == (3, 32, 40)


def test_neighbours_come_from_the_release_index(tmp_path: Path) -> None:
    contract = InputContract(
        window_c=(20.0, 60.0), channels=("celsius", "gradient"), height=32, width=40
    )
    index = FeatureIndex(
        [[0.25, 0.0], [0.9, 0.05], [0.3, 0.0], [0.8, 0.1]],
        ["f1", "f2", "f3", "f4"],
        [-1, 10, -1, 12],
        [-1, 20, -1, 22],
        ["ok", "hot_spot", "ok", "hot_spot"],
        metric="l2",
    )
    folder = anomaly_release(
        tmp_path / "r",
        contract=contract,
        onnx=anomaly_graph(2, 32, 40, features=True),
        extra_files={INDEX_FILE: index.to_bytes()},
    )
    model = load_model(folder, neighbours=2)
    prediction = model.predict(part(56.0))
    assert [n.frame_id for n in prediction.neighbours] == ["f2", "f4"]
    finding = prediction.findings[0]
    assert [n["label"] for n in finding.extra["neighbours"]] == ["hot_spot", "hot_spot"]
    assert finding.extra["neighbours"][0]["x"] == 10
    assert "looks like 2 confirmed: hot_spot, hot_spot" in finding.explanation
    assert load_model(folder).k == DEFAULT_NEIGHBOURS


def test_signed_loading(tmp_path: Path) -> None:
    generate_keys(tmp_path / "k", tmp_path / "k.pub")
    folder = anomaly_release(tmp_path / "r")
    with pytest.raises(ReleaseError, match="unsigned"):
        load_model(folder, public_key=tmp_path / "k.pub")
    sign_release(folder, tmp_path / "k")
    assert load_model(folder, public_key=tmp_path / "k.pub", min_version=2).version == "2"
    with pytest.raises(ReleaseError, match="older than the minimum version 3"):
        load_model(folder, public_key=tmp_path / "k.pub", min_version=3)


def test_the_layer_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import thermoscope.models.runtime, thermoscope.models.golden, "
        "thermoscope.models.explain, thermoscope.models.release, thermoscope.models.contract\n"
        "assert sys.modules['torch'] is None"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_damaged_onnx_bytes_load_or_give_model_error(data: st.DataObject) -> None:
    graph = bytearray(anomaly_graph(1, 32, 40))
    for _ in range(data.draw(st.integers(1, 4))):
        graph[data.draw(st.integers(0, len(graph) - 1))] = data.draw(st.integers(0, 255))
    try:
        session = onnx_session(bytes(graph))
    except ModelError as exc:
        message = str(exc)
    else:
        assert session.get_inputs()
        return
    assert message.startswith("model.onnx: not a model ONNX Runtime can load")


def test_the_release_fields_travel_inside_the_onnx_file(tmp_path: Path) -> None:
    folder = anomaly_release(tmp_path / "a")
    proto = onnx.load_from_string((folder / MODEL_FILE).read_bytes())
    embedded = embedded_metadata({p.key: p.value for p in proto.metadata_props})
    assert set(embedded) == set(EMBEDDED_FIELDS)
    assert InputContract.from_dict(embedded["contract"]) == CONTRACT
    assert embedded["thresholds"] == {"anomaly": 0.7}
    assert embedded["version"] == 2
    # A model file moved into another release (hashes redone, unsigned) is refused.
    other = anomaly_release(tmp_path / "b", thresholds={"anomaly": 0.2}, version=5)
    model_bytes = (folder / MODEL_FILE).read_bytes()
    (other / MODEL_FILE).write_bytes(model_bytes)
    manifest = json.loads((other / MANIFEST_FILE).read_text())
    manifest["files"][MODEL_FILE] = hashlib.sha256(model_bytes).hexdigest()
    (other / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="embedded version 2 differs from the manifest's 5"):
        load_model(other)


def test_corrupt_onnx_is_refused(tmp_path: Path) -> None:
    folder = anomaly_release(tmp_path / "r", onnx=b"\x00not a model at all")
    with pytest.raises(ModelError, match=r"model\.onnx: not a model ONNX Runtime can load"):
        load_model(folder)


@pytest.mark.parametrize(
    ("onnx", "message"),
    [
        (anomaly_graph(1, 64, 40), "input has 64 height but the release's contract gives 32"),
        (anomaly_graph(1, 32, 48), "input has 48 width"),
        (anomaly_graph(3, 32, 40), "input has 3 channels but the release's contract gives 1"),
        (classifier_graph(1, 32, 40, [1.0], [0.0]), r"needs outputs \['score', 'anomaly_map'\]"),
    ],
)
def test_graphs_that_do_not_fit_the_release_are_refused(
    tmp_path: Path, onnx: bytes, message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        load_model(anomaly_release(tmp_path / "r", onnx=onnx))


def test_logits_must_match_the_classes(tmp_path: Path) -> None:
    folder = classifier_release(tmp_path / "r", classes=("ok", "bad"))
    with pytest.raises(ModelError, match="3 logits but the manifest lists 2 classes"):
        load_model(folder)


def test_inputs_the_graph_refuses_and_frames_the_contract_refuses(tmp_path: Path) -> None:
    model = load_model(anomaly_release(tmp_path / "r"))
    with pytest.raises(ModelError, match=r"refused an input of shape \(1, 1, 16, 40\)"):
        model.run(np.zeros((1, 1, 16, 40), np.float32))
    with pytest.raises(ModelError, match="fall outside the contract's window"):
        model.predict(part(background=95.0))
    with pytest.raises(ModelError, match="threads must be a positive integer"):
        onnx_session(anomaly_graph(1, 32, 40), threads=0)


def test_temporal_releases_do_not_take_frames(tmp_path: Path) -> None:
    folder = classifier_release(tmp_path / "r", kind="temporal")
    model = load_model(folder)
    assert "logits" in REQUIRED_OUTPUTS[model.kind]
    with pytest.raises(ModelError, match="temporal release judges sequences"):
        model.predict(part())


def test_in_memory_model_and_plain_arrays(tmp_path: Path) -> None:
    manifest_folder = anomaly_release(tmp_path / "r")
    manifest = load_model(manifest_folder).manifest
    model = LoadedModel(manifest, anomaly_graph(1, 32, 40), threads=2)
    assert model.predict(np.full((120, 160), 30.0, np.float32)).score == pytest.approx(0.25)


def test_peak_box_without_level_uses_half_the_peak() -> None:
    heat = np.zeros((10, 10), np.float32)
    heat[2:5, 3:7] = 0.4
    heat[3, 4] = 0.8
    heat[8, 8] = 0.3  # not connected to the peak
    row, col, box = peak_box(heat)
    assert (row, col) == (3, 4)
    assert box == [3, 2, 7, 5]
    assert peak_box(heat, level=0.5)[2] == [4, 3, 5, 4]
