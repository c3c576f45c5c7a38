"""Inference with ONNX Runtime: a release folder in, predictions and findings out.

``load_model`` verifies a release (signature when a public key is given, always the file
hashes, the expiry and the minimum version), opens its ``model.onnx`` in ONNX Runtime (one
intra-op thread by default: the edge runs one model per core) and checks the graph against the
manifest: one input ``input`` float32 (N, C, H, W) whose fixed dimensions match the input
contract, and the outputs of its kind:

- ``classifier``: ``logits`` (N, K), K = number of classes; optional ``cam`` (N, K, h, w), a
  class-activation map per class;
- ``anomaly`` and ``golden``: ``score`` (N,) in [0, 1] and ``anomaly_map`` (N, h, w), both
  already normalised in the graph;
- any kind may add ``features`` (N, D), the embedding searched in the release's ``index.npz``
  for the nearest annotated examples (for anomaly models: the feature at the map's peak).

``LoadedModel.predict`` applies the contract, runs the graph and turns the outputs into a
``Prediction``; ``findings`` gives the pipeline's ``PartModel`` view: one ``Finding`` per
frame, with the same fields as a recipe's (rule ``model:<name>``, region = class or
``"anomaly"``, value and limit on the score scale, verdict, x/y at the heat map's peak, unit
``"score"``, score, extra ``kind``/``box``/``neighbours``).

Classifier decisions: a class is an OK class when its name is ``ok``, ``good``, ``normal``,
``pass`` or ``no-anomaly`` (case, ``-``, ``_`` and spaces ignored); the others are defect
classes and give the verdict NG. Without thresholds the label is the most probable class. With
``thresholds["defect"]`` the part is NG when the defect probability (1 - the OK classes'
probability) reaches it, labelled with its most probable defect class. With per-class
thresholds a defect class is chosen only when its probability reaches its threshold (the most
probable such class wins); otherwise the most probable OK class.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from thermoscope.core import Finding, ThermalFrame, Verdict
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.explain import INDEX_FILE, FeatureIndex, Neighbour, neighbours_json
from thermoscope.models.manifest import EMBEDDED_FIELDS, embedded_metadata
from thermoscope.models.release import (
    MODEL_FILE,
    Manifest,
    check_release,
    read_file,
    verify_release,
)

#: Class names (normalised: lower case, ``_`` for ``-`` and spaces) that mean a good part.
OK_CLASS_NAMES = frozenset({"ok", "good", "normal", "pass", "no_anomaly"})
#: Outputs each kind of release must have.
REQUIRED_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "classifier": ("logits",),
    "anomaly": ("score", "anomaly_map"),
    "golden": ("score", "anomaly_map"),
    "temporal": ("logits",),
}
#: Default number of nearest annotated examples per prediction.
DEFAULT_NEIGHBOURS = 3

Frame = ThermalFrame | NDArray[Any]


def is_ok_class(name: str) -> bool:
    """Whether a class name means a good part (see ``OK_CLASS_NAMES``)."""
    return name.strip().lower().replace("-", "_").replace(" ", "_") in OK_CLASS_NAMES


def onnx_session(
    onnx: bytes,
    *,
    threads: int = 1,
    source: str = MODEL_FILE,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> ort.InferenceSession:
    """An ONNX Runtime session of ONNX bytes, sequential, ``threads`` intra-op threads.

    Raises:
        ModelError: naming ``source``: the bytes are not a model ONNX Runtime can load.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ModelError(f"threads must be a positive integer, got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(bytes(onnx), sess_options=options, providers=list(providers))
    except Exception as exc:  # ONNX Runtime raises its own exception types for bad graphs
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{source}: not a model ONNX Runtime can load ({reason})") from None


@dataclass(frozen=True, slots=True, eq=False)
class Prediction:
    """What a model says about one frame.

    Attributes:
        label: the predicted class (classifiers) or ``"anomaly"`` / ``"ok"``.
        score: confidence in [0, 1]: the label's probability, or the anomaly score.
        verdict: NG for a defect class or an anomaly score at or above its threshold, else OK.
        probabilities: class → probability (classifiers), else ``None``.
        anomaly_score: the normalised anomaly score in [0, 1] (anomaly and golden models).
        heatmap: (H, W) float32 over the frame (anomaly map or class activation of the label,
            0 outside the contract's crop), or ``None`` when the model gives none.
        neighbours: the nearest annotated examples (empty without an index).
        findings: the finding(s) of this prediction (see the module docstring).
    """

    label: str
    score: float
    verdict: Verdict
    probabilities: dict[str, float] | None
    anomaly_score: float | None
    heatmap: NDArray[np.float32] | None
    neighbours: tuple[Neighbour, ...]
    findings: tuple[Finding, ...]


class LoadedModel:
    """A release's model in ONNX Runtime (satisfies the pipeline's ``PartModel`` protocol).

    Args:
        manifest: the release's (verified) manifest.
        onnx: the model's ONNX bytes.
        index: the nearest-example index, if the release has one.
        threads: ONNX Runtime intra-op threads.
        neighbours: nearest examples per prediction.
        source: how errors name the model file.

    Raises:
        ModelError: the graph does not load, or its inputs/outputs do not fit the manifest.
    """

    def __init__(
        self,
        manifest: Manifest,
        onnx: bytes,
        *,
        index: FeatureIndex | None = None,
        threads: int = 1,
        neighbours: int = DEFAULT_NEIGHBOURS,
        source: str = MODEL_FILE,
    ) -> None:
        self.manifest = manifest
        self.contract: InputContract = manifest.contract
        self.kind = manifest.kind
        self.classes = manifest.classes
        self.index = index
        self.k = neighbours
        self.source = source
        self.session = onnx_session(onnx, threads=threads, source=source)
        self.outputs = tuple(o.name for o in self.session.get_outputs())
        self._batch = self._check_graph()

    @property
    def name(self) -> str:
        """The release's model name."""
        return self.manifest.name

    @property
    def version(self) -> str:
        """The release version, as a string."""
        return str(self.manifest.version)

    # -- graph ----------------------------------------------------------------------------

    def _check_graph(self) -> int | None:
        """Check the graph's I/O against the manifest; the fixed batch size, if any."""
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != "input":
            names = [i.name for i in inputs]
            raise ModelError(f"{self.source}: the graph must have one input 'input', has {names}")
        if inputs[0].type != "tensor(float)":
            raise ModelError(f"{self.source}: input must be float32, is {inputs[0].type}")
        shape = list(inputs[0].shape)
        missing = [o for o in REQUIRED_OUTPUTS[self.kind] if o not in self.outputs]
        if missing:
            raise ModelError(
                f"{self.source}: a {self.kind} graph needs outputs {missing}, has {self.outputs}"
            )
        if self.kind != "temporal":
            if len(shape) != 4:
                raise ModelError(f"{self.source}: input must be (N, C, H, W), is {shape}")
            dims = ("channels", "height", "width")
            for dim, want, what in zip(shape[1:], self.contract.input_shape, dims, strict=True):
                if isinstance(dim, int) and dim != want:
                    raise ModelError(
                        f"{self.source}: the graph's input has {dim} {what} but the release's "
                        f"contract gives {want}"
                    )
        if self.kind in ("classifier", "temporal"):
            logits = next(o for o in self.session.get_outputs() if o.name == "logits")
            k = logits.shape[-1] if logits.shape else None
            if isinstance(k, int) and k != len(self.classes):
                raise ModelError(
                    f"{self.source}: the graph gives {k} logits but the manifest lists "
                    f"{len(self.classes)} classes"
                )
        self._check_metadata()
        batch = shape[0] if shape else None
        return batch if isinstance(batch, int) and batch > 0 else None

    def _check_metadata(self) -> None:
        """Refuse a graph whose embedded release fields (``manifest.embed_metadata``) differ
        from the manifest's: the model file belongs to another release."""
        embedded = embedded_metadata(self.session.get_modelmeta().custom_metadata_map)
        expected = json.loads(json.dumps(self.manifest.to_dict()))
        for name in EMBEDDED_FIELDS:
            if name in embedded and embedded[name] != expected[name]:
                raise ModelError(
                    f"{self.source}: the model's embedded {name} {embedded[name]!r} differs from "
                    f"the manifest's {expected[name]!r} (the model file belongs to another "
                    "release)"
                )

    def run(self, inputs: NDArray[Any]) -> dict[str, NDArray[np.float32]]:
        """Raw graph outputs by name for contract-applied inputs (N, C, H, W) float32.

        Raises:
            ModelError: ONNX Runtime refuses the input (wrong size for the graph).
        """
        x = np.ascontiguousarray(inputs, dtype=np.float32)
        if x.ndim < 1 or len(x) == 0:
            raise ModelError(f"{self.source}: run needs a batch of inputs, got shape {x.shape}")
        step = len(x) if self._batch is None else self._batch
        results: list[list[NDArray[np.float32]]] = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            count = len(chunk)
            if count < step:  # a graph of fixed batch size: pad the last chunk, trim after
                pad = np.zeros((step - count, *chunk.shape[1:]), dtype=np.float32)
                chunk = np.concatenate([chunk, pad])
            try:
                out = self.session.run(None, {"input": chunk})
            except Exception as exc:  # ONNX Runtime's own exception types
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise ModelError(
                    f"{self.source}: the graph refused an input of shape {chunk.shape} ({reason})"
                ) from None
            arrays = [np.asarray(a, dtype=np.float32) for a in out]
            if any(a.ndim == 0 or len(a) != len(chunk) for a in arrays):
                shapes = [a.shape for a in arrays]
                raise ModelError(
                    f"{self.source}: every output must have the batch size {len(chunk)} first, "
                    f"got shapes {shapes}"
                )
            results.append([a[:count] for a in arrays])
        if len(results) == 1:
            return dict(zip(self.outputs, results[0], strict=True))
        return {
            name: np.concatenate([r[i] for r in results]) for i, name in enumerate(self.outputs)
        }

    # -- predictions ----------------------------------------------------------------------

    def predict(
        self,
        frame: Frame,
        *,
        ambient_c: float | None = None,
        visual: NDArray[Any] | None = None,
    ) -> Prediction:
        """The model's prediction on one frame (°C, (H, W)).

        Raises:
            ModelError: the frame does not fit the contract (clipped by the window, a missing
                ambient), or the graph refuses it.
        """
        visuals = None if visual is None else [visual]
        return self.predict_batch([frame], ambient_c=ambient_c, visual=visuals)[0]

    def predict_batch(
        self,
        frames: Sequence[Frame],
        *,
        ambient_c: float | Sequence[float | None] | None = None,
        visual: Sequence[NDArray[Any] | None] | None = None,
    ) -> list[Prediction]:
        """Predictions on many frames, run through the graph as one batch."""
        if self.kind == "temporal":
            raise ModelError(
                f"{self.name}: a temporal release judges sequences (thermoscope.models.temporal), "
                "not single frames"
            )
        arrays = [_celsius(f) for f in frames]
        if not arrays:
            return []
        x = self.contract.apply_batch(arrays, ambient_c=ambient_c, visual=visual)
        out = self.run(x)
        features = out.get("features")
        neighbours: list[tuple[Neighbour, ...]] = [()] * len(arrays)
        if self.index is not None and features is not None and self.k > 0:
            flat = features.reshape(len(arrays), -1)
            neighbours = [tuple(n) for n in self.index.nearest_batch(flat, self.k)]
        if self.kind == "classifier":
            return [self._classify(out, i, a.shape, neighbours[i]) for i, a in enumerate(arrays)]
        return [self._anomaly(out, i, a.shape, neighbours[i]) for i, a in enumerate(arrays)]

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        """The model's findings on ``frame`` (the pipeline's ``PartModel`` protocol)."""
        return list(self.predict(frame, ambient_c=ambient_c).findings)

    def _classify(
        self,
        out: dict[str, NDArray[np.float32]],
        i: int,
        shape: tuple[int, ...],
        neighbours: tuple[Neighbour, ...],
    ) -> Prediction:
        logits = out["logits"][i].astype(np.float64).reshape(-1)
        if logits.shape[0] != len(self.classes):
            raise ModelError(
                f"{self.source}: {logits.shape[0]} logits for {len(self.classes)} classes"
            )
        p = np.exp(logits - logits.max())
        p /= p.sum()
        probabilities = {c: float(v) for c, v in zip(self.classes, p, strict=True)}
        label, value, limit = decide_class(probabilities, self.manifest.thresholds)
        verdict = Verdict.OK if is_ok_class(label) else Verdict.NG
        heatmap = None
        if "cam" in out:
            cam = out["cam"][i]
            k = self.classes.index(label)
            plane = cam[k] if cam.ndim == 3 else cam
            heatmap = self.contract.to_frame(_unit_scale(plane), (shape[0], shape[1]))
        score = probabilities[label]
        explanation = f"{self.name} v{self.version}: {label} (p={score:.2f}"
        if limit is not None:
            relation = "≥" if value >= limit else "<"
            what = "defect p" if "defect" in self.manifest.thresholds else "p"
            explanation += f"; {what}={value:.2f} {relation} {limit:.2f}"
        explanation += ")" + _looks_like(neighbours)
        finding = self._finding(
            label, value, limit, verdict, explanation, score, heatmap, None, neighbours
        )
        return Prediction(
            label=label,
            score=score,
            verdict=verdict,
            probabilities=probabilities,
            anomaly_score=None,
            heatmap=heatmap,
            neighbours=neighbours,
            findings=(finding,),
        )

    def _anomaly(
        self,
        out: dict[str, NDArray[np.float32]],
        i: int,
        shape: tuple[int, ...],
        neighbours: tuple[Neighbour, ...],
    ) -> Prediction:
        raw = float(np.asarray(out["score"][i]).reshape(-1)[0])
        score = min(1.0, max(0.0, raw)) if math.isfinite(raw) else 1.0
        limit = self.manifest.threshold("anomaly")
        verdict = Verdict.NG if score >= limit else Verdict.OK
        label = "anomaly" if verdict is Verdict.NG else "ok"
        plane = np.nan_to_num(np.asarray(out["anomaly_map"][i], dtype=np.float32), nan=0.0)
        if plane.ndim == 3 and plane.shape[0] == 1:
            plane = plane[0]
        heatmap = self.contract.to_frame(plane, (shape[0], shape[1]))
        relation = "≥" if verdict is Verdict.NG else "<"
        explanation = (
            f"{self.name} v{self.version}: anomaly score {score:.2f} {relation} {limit:.2f}"
            + _looks_like(neighbours)
        )
        finding = self._finding(
            "anomaly", score, limit, verdict, explanation, score, heatmap, limit, neighbours
        )
        return Prediction(
            label=label,
            score=score,
            verdict=verdict,
            probabilities=None,
            anomaly_score=score,
            heatmap=heatmap,
            neighbours=neighbours,
            findings=(finding,),
        )

    def _finding(
        self,
        region: str,
        value: float,
        limit: float | None,
        verdict: Verdict,
        explanation: str,
        score: float,
        heatmap: NDArray[np.float32] | None,
        box_level: float | None,
        neighbours: Sequence[Neighbour],
    ) -> Finding:
        x = y = None
        box: list[int] | None = None
        if heatmap is not None:
            y, x, box = peak_box(heatmap, level=box_level)
        return Finding(
            rule=f"model:{self.name}",
            region=region,
            value=value,
            limit=limit,
            verdict=verdict,
            explanation=explanation,
            x=x,
            y=y,
            margin=None if limit is None else limit - value,
            unit="score",
            extra={"kind": region, "box": box, "neighbours": neighbours_json(neighbours)},
            score=score,
        )


def decide_class(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float]
) -> tuple[str, float, float | None]:
    """The label, the value held against a limit, and that limit (see the module docstring).

    Returns:
        ``(label, value, limit)``: with ``thresholds["defect"]`` the value is the defect
        probability; with a per-class threshold the label's probability and its threshold;
        otherwise the label's probability and ``None``.
    """
    classes = list(probabilities)
    ok = [c for c in classes if is_ok_class(c)]
    defects = [c for c in classes if not is_ok_class(c)]
    best = max(classes, key=lambda c: probabilities[c])
    if "defect" in thresholds and ok and defects:
        p_defect = 1.0 - sum(probabilities[c] for c in ok)
        limit = thresholds["defect"]
        pool = defects if p_defect >= limit else ok
        return max(pool, key=lambda c: probabilities[c]), p_defect, limit
    per_class = [c for c in defects if c in thresholds]
    if not per_class:
        return best, probabilities[best], thresholds.get(best)
    passed = [c for c in per_class if probabilities[c] >= thresholds[c]]
    if passed:
        label = max(passed, key=lambda c: probabilities[c])
    elif best in per_class and ok:
        label = max(ok, key=lambda c: probabilities[c])
    else:
        label = best
    return label, probabilities[label], thresholds.get(label)


def peak_box(
    heatmap: NDArray[np.float32], *, level: float | None = None
) -> tuple[int, int, list[int]]:
    """The heat map's peak (row, column) and the box ``[x0, y0, x1, y1]`` (end-exclusive) of
    the connected region around it at or above ``level`` (half the peak when ``level`` is
    ``None`` or above the peak)."""
    flat = int(np.argmax(heatmap))
    row, col = divmod(flat, heatmap.shape[1])
    peak = float(heatmap[row, col])
    if level is None or level > peak:
        level = peak / 2.0 if peak > 0 else peak
    mask = (heatmap >= level).astype(np.uint8)
    # Flood fill from the peak: touches only the peak's region, and gives its bounding box.
    _, _, _, (x0, y0, w, h) = cv2.floodFill(
        mask, None, (col, row), 2, flags=8 | cv2.FLOODFILL_FIXED_RANGE
    )
    box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
    return row, col, box


def load_model(
    folder: Path,
    *,
    public_key: Path | None = None,
    min_version: int | None = None,
    threads: int = 1,
    neighbours: int = DEFAULT_NEIGHBOURS,
) -> LoadedModel:
    """Verify a release folder and load its model.

    Args:
        folder: the release folder.
        public_key: the Ed25519 public key the release must be signed with; ``None`` checks
            the files' hashes and the expiry only (development releases).
        min_version: refuse a release older than this version.
        threads: ONNX Runtime intra-op threads.
        neighbours: nearest annotated examples per prediction (when the release has an index).

    Raises:
        ReleaseError: the release is refused (unsigned, altered, expired, older ...).
        ModelError: the graph is corrupt or does not fit the manifest.
    """
    folder = Path(folder)
    if public_key is not None:
        manifest = verify_release(folder, public_key, min_version=min_version)
    else:
        manifest = check_release(folder, min_version=min_version)
    onnx = read_file(folder, MODEL_FILE, manifest)
    index = None
    if INDEX_FILE in manifest.files:
        index = FeatureIndex.from_bytes(
            read_file(folder, INDEX_FILE, manifest), source=str(folder / INDEX_FILE)
        )
    return LoadedModel(
        manifest,
        onnx,
        index=index,
        threads=threads,
        neighbours=neighbours,
        source=str(folder / MODEL_FILE),
    )


def _celsius(frame: Frame) -> NDArray[Any]:
    if isinstance(frame, ThermalFrame):
        return frame.celsius
    return np.asarray(frame)


def _unit_scale(plane: NDArray[Any]) -> NDArray[np.float32]:
    """A class activation as [0, 1]: negative parts cut, divided by its maximum."""
    p = np.maximum(np.nan_to_num(np.asarray(plane, dtype=np.float32), nan=0.0), 0.0)
    top = float(p.max()) if p.size else 0.0
    scaled: NDArray[np.float32] = (p / top if top > 0 else p).astype(np.float32)
    return scaled


def _looks_like(neighbours: Sequence[Neighbour]) -> str:
    if not neighbours:
        return ""
    labels = ", ".join(n.label for n in neighbours)
    return f"; looks like {len(neighbours)} confirmed: {labels}"


__all__ = [
    "DEFAULT_NEIGHBOURS",
    "OK_CLASS_NAMES",
    "REQUIRED_OUTPUTS",
    "LoadedModel",
    "Prediction",
    "decide_class",
    "is_ok_class",
    "load_model",
    "onnx_session",
    "peak_box",
]
