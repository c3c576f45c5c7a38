"""The pipeline: decode → recipe + model → verdict → findings → drafts, on small made-up parts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import thermoscope.io as tio
from thermoscope.core import (
    Finding,
    FrameMetadata,
    Inspection,
    ThermalFrame,
    ThermalSequence,
    Verdict,
)
from thermoscope.pipeline import (
    DecodedPart,
    PartModel,
    Pipeline,
    PipelineError,
    decode_bytes,
    decode_path,
)
from thermoscope.recipes import Recipe, inspect, parse_recipe
from thermoscope.storage.identity import content_id, hash_file

H, W = 40, 60
BOXES = {"U3": (10, 5, 10, 8), "bg": (0, 30, 60, 10)}


def recipe(rules: list[dict[str, Any]], **extra: Any) -> Recipe:
    regions = [
        {"name": name, "box": {"x": x, "y": y, "width": w, "height": h}}
        for name, (x, y, w, h) in BOXES.items()
    ]
    body = {"name": "bench", "version": "2", "frame": {"width": W, "height": H},
            "regions": regions, "rules": rules, **extra}  # fmt: skip
    return parse_recipe(body)


MAX_U3 = {"type": "max", "region": "U3", "limits": {"max": 70}}


def frame(u3_c: float, *, t_s: float | None = None, index: int | None = None) -> ThermalFrame:
    """A 20 °C frame whose U3 box is at ``u3_c``."""
    image = np.full((H, W), 20.0, np.float32)
    x, y, w, h = BOXES["U3"]
    image[y : y + h, x : x + w] = u3_c
    return ThermalFrame(image, metadata=FrameMetadata(timestamp_s=t_s, frame_index=index))


class StubModel:
    """A model that says "cold joint" at a fixed pixel with a fixed confidence."""

    name = "stub-net"
    version = "7"

    def __init__(self, score: float, threshold: float = 0.5) -> None:
        self.score = score
        self.threshold = threshold
        self.seen: list[tuple[ThermalFrame, float | None]] = []

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        self.seen.append((frame, ambient_c))
        verdict = Verdict.NG if self.score >= self.threshold else Verdict.OK
        return [
            Finding(
                rule=f"model:{self.name}",
                region="cold_joint",
                value=self.score,
                limit=self.threshold,
                verdict=verdict,
                explanation=f"cold joint, confidence {self.score:.2f}",
                x=12,
                y=7,
                margin=self.threshold - self.score,
                unit="score",
                extra={"kind": "cold_joint", "box": [10, 5, 20, 13]},
                score=self.score,
            )
        ]


def test_the_stub_is_a_part_model() -> None:
    model: PartModel = StubModel(0.9)
    assert isinstance(model, PartModel)


def test_model_findings_join_the_recipes_and_the_worst_verdict_wins() -> None:
    model = StubModel(0.9)
    pipeline = Pipeline(recipe([MAX_U3]), model)
    part = frame(50.0)
    result = pipeline.inspect_part(part, source="p1", ambient_c=21.5)
    assert [f.rule for f in result.findings] == ["U3 max", "model:stub-net"]
    assert [f.verdict for f in result.findings] == [Verdict.OK, Verdict.NG]
    assert result.verdict is Verdict.NG
    assert result.source == "p1"
    assert model.seen == [(part, 21.5)]
    recipe_only = Pipeline(recipe([MAX_U3])).inspect_part(part, source="p1")
    assert result.findings[0] == recipe_only.findings[0]
    assert recipe_only.verdict is Verdict.OK
    quiet = Pipeline(recipe([MAX_U3]), StubModel(0.2)).inspect_part(part, source="p1")
    assert quiet.verdict is Verdict.OK


def test_a_model_alone_inspects_a_part() -> None:
    result = Pipeline(model=StubModel(0.6)).inspect_part(frame(50.0, index=4), source="p")
    assert (result.frame, result.verdict) == (4, Verdict.NG)
    assert [f.rule for f in result.findings] == ["model:stub-net"]


def test_drafts_place_recipe_findings_on_regions_and_model_findings_with_their_score() -> None:
    pipeline = Pipeline(recipe([MAX_U3]), StubModel(0.8))
    inspection = pipeline.inspect_part(frame(90.0), source="p")
    pre = pipeline.drafts(inspection, (H, W))
    ruled, learned = pre.annotations
    assert (ruled.label, ruled.provenance.model, ruled.provenance.model_version) == (
        "max",
        "recipe:bench",
        "2",
    )
    assert ruled.provenance.score is None
    assert (learned.label, learned.provenance.model, learned.provenance.model_version) == (
        "cold_joint",
        "stub-net",
        "7",
    )
    assert learned.provenance.score == pytest.approx(0.8)
    assert learned.attributes["unit"] == "score"
    assert pre.verdict.verdict is Verdict.NG
    assert pre.verdict.provenance.model == "recipe:bench"
    assert "model:stub-net" in pre.verdict.reason


def sequence(u3: list[float]) -> list[ThermalFrame]:
    return [frame(c, t_s=float(i), index=i) for i, c in enumerate(u3)]


def test_a_sequence_without_sequence_rules_is_inspected_on_its_named_frame() -> None:
    frames = sequence([30.0, 40.0, 90.0, 50.0])
    plan = recipe([MAX_U3], sequence={"frame": 2})
    result = Pipeline(plan).inspect_part(frames, source="s")
    assert (result.frame, result.verdict) == (2, Verdict.NG)
    assert result == inspect(frames, plan, source="s")  # the whole sequence says the same
    lazy = ThermalSequence.of(frames, source="s")
    assert Pipeline(plan).inspect_part(lazy, source="s") == result


def test_sequence_rules_see_every_frame_and_the_model_the_named_one() -> None:
    frames = sequence([30.0, 40.0, 50.0, 60.0])
    rate = {"type": "heating_rate", "region": "U3", "limits": {"max": 5}}
    model = StubModel(0.1)
    result = Pipeline(recipe([rate, MAX_U3]), model).inspect_part(frames, source="s")
    assert result.findings[0].value == pytest.approx(10.0)
    assert result.findings[0].verdict is Verdict.NG
    assert result.frame == 3
    assert model.seen[0][0] is frames[3]


def test_decoded_parts_carry_ids_and_facts_and_inspect_like_their_frames(tmp_path: Path) -> None:
    frames = sequence([30.0, 40.0, 90.0])
    path = tmp_path / "part.npy"
    np.save(path, np.stack([f.celsius for f in frames]))
    with decode_path(path) as part:
        assert isinstance(part, DecodedPart)
        assert part.frame_count == 3
        assert part.frame_ids == tuple(hash_file(path))
        assert part.content_id == content_id([part.frame(i) for i in range(3)])
        assert (part.width, part.height, part.format) == (W, H, "npy")
        assert part.min_c == 20.0
        assert part.max_c == 90.0
        plan = recipe([MAX_U3], sequence={"frame": 2})
        via_file = Pipeline(plan).inspect_part(part, source="x")
        decoded_frames = [part.frame(i) for i in range(3)]
    assert via_file == Pipeline(plan).inspect_part(decoded_frames, source="x")
    with decode_bytes(path.read_bytes(), "part.npy") as again:
        assert again.content_id == part.content_id


def test_decode_errors_name_the_file_and_say_when_it_is_too_large() -> None:
    with pytest.raises(PipelineError, match=r"empty\.npy: the file is empty"):
        decode_bytes(b"", "empty.npy")
    with pytest.raises(PipelineError, match=r"x\.jpg: ") as garbage:
        decode_bytes(b"\x00\x01not a thermal image" * 10, "x.jpg")
    assert not garbage.value.too_large
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((64, 64), np.float32))
    tight = tio.DecodeLimits(max_frame_pixels=1000)
    with pytest.raises(PipelineError, match="beyond the decode limits") as big:
        decode_bytes(buffer.getvalue(), "big.npy", tight)
    assert big.value.too_large
    with pytest.raises(PipelineError, match="the part has no frame"):
        Pipeline(recipe([MAX_U3])).inspect_part([], source="nothing")


def test_drafts_of_a_retake_part_hold_no_verdict_and_no_defects() -> None:
    pipeline = Pipeline(recipe([MAX_U3]), StubModel(0.8))
    judged = pipeline.inspect_part(frame(90.0), source="p")
    protocol = Finding("protocol", "top focus", 0.1, 2.0, Verdict.RETAKE, "retake: out of focus")
    retake = Inspection.of("p", judged.frame, [*judged.findings, protocol])
    assert retake.verdict is Verdict.RETAKE
    pre = pipeline.drafts(retake, (H, W))
    assert (pre.annotations, pre.verdict, pre.unplaced) == ((), None, ())
