"""Annotation model: label schema, provenance, review, records and the AnnotatedItem dict form."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermoscope.annotations import (
    AnnotatedItem,
    Annotation,
    AnnotationError,
    AttributeSpec,
    AttributeType,
    Box,
    Keyframe,
    LabelSchema,
    LabelSpec,
    Mask,
    Point,
    Polygon,
    Polyline,
    Provenance,
    Review,
    ReviewState,
    RotatedBox,
    Shape,
    ToleranceLabel,
    Track,
    VerdictLabel,
)
from thermoscope.annotations.item import VERSION
from thermoscope.core import Verdict
from thermoscope.recipes.schema import parse_recipe

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ANNA = Provenance.human("anna", created=T0)

SCHEMA = LabelSchema(
    (
        LabelSpec(
            "hot_spot",
            (
                AttributeSpec("severity", AttributeType.ENUM, ("low", "high"), required=True),
                AttributeSpec("delta_c", AttributeType.NUMBER, minimum=0, maximum=200),
                AttributeSpec("note", AttributeType.TEXT),
                AttributeSpec("confirmed", AttributeType.BOOL, default=False, required=True),
            ),
        ),
        LabelSpec("component"),
    )
)


def hot(**attributes: Any) -> Annotation:
    return Annotation(
        id="a1", label="hot_spot", shape=Box(1, 1, 4, 4), attributes=attributes, provenance=ANNA
    )


def item(*annotations: Annotation, **kwargs: Any) -> AnnotatedItem:
    return AnnotatedItem(
        item_id="sha256-0f", width=32, height=24, annotations=annotations, **kwargs
    )


# --- schema -------------------------------------------------------------------------------


def test_schema_accepts_valid_attributes_and_fills_defaults() -> None:
    SCHEMA.validate("hot_spot", {"severity": "low", "delta_c": 12.5, "note": "x"})
    resolved = SCHEMA.resolve("hot_spot", {"severity": "high", "delta_c": 3})
    assert resolved == {"severity": "high", "delta_c": 3, "confirmed": False}
    item(hot(severity="low"), schema=SCHEMA)


@pytest.mark.parametrize(
    ("label", "attributes", "message"),
    [
        ("crack", {}, "unknown label 'crack'"),
        ("hot_spot", {"severity": "low", "colour": "red"}, "unknown attribute 'colour'"),
        ("hot_spot", {"severity": "huge"}, "attribute 'severity': 'huge' is not one of low, high"),
        ("hot_spot", {"severity": "low", "delta_c": "3"}, "attribute 'delta_c': expected a number"),
        (
            "hot_spot",
            {"severity": "low", "delta_c": True},
            "attribute 'delta_c': expected a number",
        ),
        ("hot_spot", {"severity": "low", "delta_c": -1}, "below the minimum 0"),
        ("hot_spot", {"severity": "low", "delta_c": 201}, "above the maximum 200"),
        ("hot_spot", {"severity": "low", "note": 4}, "attribute 'note': expected text"),
        ("hot_spot", {"severity": "low", "confirmed": 1}, "attribute 'confirmed': expected true"),
        ("hot_spot", {}, "requires attribute 'severity'"),
    ],
)
def test_schema_errors_name_the_item_and_field(
    label: str, attributes: dict[str, Any], message: str
) -> None:
    with pytest.raises(AnnotationError, match=message):
        SCHEMA.validate(label, attributes)
    bad = Annotation(
        id="a7", label=label, shape=Box(1, 1, 2, 2), attributes=attributes, provenance=ANNA
    )
    with pytest.raises(AnnotationError, match=r"annotations\[0\] \(id 'a7'\)") as info:
        item(bad, schema=SCHEMA)
    assert message.split(":")[0] in str(info.value)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: AttributeSpec("", AttributeType.TEXT), "name must not be empty"),
        (lambda: AttributeSpec("a", "colour"), "unknown type"),  # type: ignore[arg-type]
        (lambda: AttributeSpec("a", AttributeType.ENUM), "non-empty string values"),
        (lambda: AttributeSpec("a", AttributeType.ENUM, ("x", "x")), "unique"),
        (lambda: AttributeSpec("a", AttributeType.TEXT, ("x",)), "only an enum"),
        (lambda: AttributeSpec("a", AttributeType.TEXT, minimum=0), "only a number"),
        (lambda: AttributeSpec("a", AttributeType.NUMBER, minimum=2, maximum=1), "minimum"),
        (lambda: AttributeSpec("a", AttributeType.NUMBER, maximum=math.inf), "finite"),
        (lambda: AttributeSpec("a", AttributeType.ENUM, ("x",), default="y"), "not one of"),
        (lambda: AttributeSpec("a", AttributeType.NUMBER, maximum=1, default=2), "above"),
        (
            lambda: LabelSpec("l", (AttributeSpec("a", "text"), AttributeSpec("a", "bool"))),  # type: ignore[arg-type]
            "duplicate attribute",
        ),
        (lambda: LabelSchema((LabelSpec("l"), LabelSpec("l"))), "duplicate label"),
        (lambda: LabelSpec(""), "name must not be empty"),
    ],
)
def test_schema_definition_errors(build: Any, message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        build()


def test_schema_dict_round_trip() -> None:
    data = json.loads(json.dumps(SCHEMA.to_dict()))
    assert LabelSchema.from_dict(data) == SCHEMA
    data["labels"][0]["attributes"][0]["type"] = "colour"
    with pytest.raises(AnnotationError, match=r"schema\.labels\[0\]\.attributes\[0\]"):
        LabelSchema.from_dict(data)


# --- provenance and review ----------------------------------------------------------------


def test_provenance() -> None:
    machine = Provenance.machine("recipe-engine", "1.2", score=0.8, created=T0)
    assert machine.machine_made
    assert not ANNA.machine_made
    with pytest.raises(AnnotationError, match="author or a model"):
        Provenance(created=T0)
    with pytest.raises(AnnotationError, match=r"score must lie in \[0, 1\]"):
        Provenance.machine("m", "1", score=1.5)
    with pytest.raises(AnnotationError, match="timezone-aware"):
        Provenance(author="a", created=datetime(2026, 1, 1))
    assert Provenance.from_dict(machine.to_dict()) == machine
    assert Provenance.human("bob").created.tzinfo is not None


def test_review_transitions() -> None:
    a = hot(severity="low")
    assert a.review.state is ReviewState.DRAFT
    submitted = a.submit(by="anna", at=T0)
    assert submitted.review.state is ReviewState.SUBMITTED
    assert a.review.state is ReviewState.DRAFT  # immutable: a new object
    accepted = submitted.accept(by="rita", at=T0)
    assert (accepted.review.state, accepted.review.reviewer) == (ReviewState.ACCEPTED, "rita")
    rejected = submitted.reject(by="rita", comment="box too large")
    assert rejected.review.comment == "box too large"
    assert rejected.reopen().review.state is ReviewState.DRAFT
    assert submitted.reopen().review.state is ReviewState.DRAFT
    with pytest.raises(AnnotationError, match="from draft to accepted"):
        a.accept(by="rita")
    with pytest.raises(AnnotationError, match="from accepted to submitted"):
        accepted.submit()
    with pytest.raises(AnnotationError, match="from accepted to rejected"):
        accepted.reject(by="rita", comment="no")
    with pytest.raises(AnnotationError, match="needs a comment"):
        submitted.reject(by="rita", comment=" ")
    with pytest.raises(AnnotationError, match="from draft to draft"):
        a.reopen()


def test_edit_of_an_accepted_record_goes_back_to_draft() -> None:
    accepted = hot(severity="low").submit().accept(by="rita")
    edited = accepted.edit(shape=Box(2, 2, 4, 4))
    assert edited.review == Review()
    assert edited.shape == Box(2, 2, 4, 4)
    assert edited.id == accepted.id
    assert accepted.shape == Box(1, 1, 4, 4)
    with pytest.raises(AnnotationError, match="id or review"):
        accepted.edit(id="other")
    with pytest.raises(AnnotationError, match="label must be a non-empty"):
        accepted.edit(label="")
    verdict = VerdictLabel(verdict=Verdict.OK, provenance=ANNA).submit().accept(by="r")
    assert verdict.edit(verdict=Verdict.NG, reason="hot").review.state is ReviewState.DRAFT


def test_review_dict_round_trip_and_errors() -> None:
    review = Review(state=ReviewState.REJECTED, reviewer="r", comment="c", updated=T0)
    assert Review.from_dict(review.to_dict()) == review
    with pytest.raises(AnnotationError, match=r"review\.state: unknown value 'lost'"):
        Review.from_dict({"state": "lost"})


# --- records ------------------------------------------------------------------------------


def test_annotation_attributes_are_read_only_and_checked() -> None:
    a = hot(severity="low")
    with pytest.raises(TypeError):
        a.attributes["severity"] = "high"  # type: ignore[index]
    with pytest.raises(AnnotationError, match="finite number"):
        hot(delta_c=math.nan)
    with pytest.raises(AnnotationError, match="text, a finite number or a bool"):
        hot(severity=["low"])
    with pytest.raises(AnnotationError, match="frame must be an integer"):
        Annotation(label="x", shape=Point(1, 1), frame=-1, provenance=ANNA)
    with pytest.raises(AnnotationError, match="metadata must be JSON-ready"):
        Annotation(label="x", shape=Point(1, 1), metadata={"a": {1, 2}}, provenance=ANNA)
    with pytest.raises(AnnotationError, match="id must be"):
        Annotation(id=" a", label="x", shape=Point(1, 1), provenance=ANNA)


def test_verdict_label() -> None:
    with pytest.raises(AnnotationError, match="needs a reason"):
        VerdictLabel(verdict=Verdict.NG, provenance=ANNA)
    with pytest.raises(AnnotationError, match="not WARN"):
        VerdictLabel(verdict=Verdict.WARN, reason="x", provenance=ANNA)
    with pytest.raises(AnnotationError, match="OK or NG, not RETAKE"):
        VerdictLabel(verdict=Verdict.RETAKE, reason="blurred", provenance=ANNA)
    with pytest.raises(AnnotationError, match="reason must be a string"):
        VerdictLabel(verdict=Verdict.NG, reason=3, provenance=ANNA)  # type: ignore[arg-type]
    with pytest.raises(AnnotationError, match="provenance: author must be a string"):
        Provenance(author=None, model="m")  # type: ignore[arg-type]
    with pytest.raises(AnnotationError, match="unknown verdict"):
        VerdictLabel(verdict="MAYBE", provenance=ANNA)  # type: ignore[arg-type]
    assert VerdictLabel(verdict="OK", provenance=ANNA).verdict is Verdict.OK  # type: ignore[arg-type]


def test_tolerance_label_and_recipe_rules() -> None:
    tol = ToleranceLabel(
        id="t1",
        name="U1",
        shape=Box(2, 3, 10, 8),
        low_c=20,
        high_c=85,
        provenance=ANNA,
        description="processor",
    )
    assert tol.to_recipe_rules() == {
        "region": {
            "name": "U1",
            "description": "processor",
            "box": {"x": 2, "y": 3, "width": 10, "height": 8},
        },
        "rules": [
            {"name": "U1 max", "type": "max", "region": "U1", "limits": {"max": 85.0}},
            {"name": "U1 min", "type": "min", "region": "U1", "limits": {"min": 20.0}},
        ],
    }
    tri = ToleranceLabel(
        id="t2", name="Q1", shape=Polygon(((0, 0), (5, 0), (0, 5))), high_c=60, provenance=ANNA
    )
    assert tri.to_recipe_rules()["region"] == {"name": "Q1", "polygon": [[0, 0], [5, 0], [0, 5]]}
    turned = tol.edit(shape=RotatedBox(10, 10, 4, 2, 90))
    corners = np.array(turned.to_recipe_rules()["region"]["polygon"])
    assert corners == pytest.approx(np.array([[11, 8], [11, 12], [9, 12], [9, 8]]))
    fractional = tol.edit(shape=Box(2.5, 3, 10, 8))
    assert fractional.to_recipe_rules()["region"]["polygon"] == [
        [2.5, 3],
        [12.5, 3],
        [12.5, 11],
        [2.5, 11],
    ]
    masked = ToleranceLabel(
        id="t3",
        name="R7",
        shape=Mask.from_array(np.eye(24, 32, dtype=bool)),
        low_c=-5,
        provenance=ANNA,
    )
    with pytest.raises(AnnotationError, match="needs mask_path"):
        masked.to_recipe_rules()
    assert masked.to_recipe_rules(mask_path="masks/R7.npy")["region"]["mask"] == "masks/R7.npy"
    fragment = item(tolerances=(tol, tri, masked)).recipe_rules(mask_paths={"R7": "r7.npy"})
    assert fragment["frame"] == {"width": 32, "height": 24}
    assert [r["name"] for r in fragment["regions"]] == ["U1", "Q1", "R7"]
    assert [r["name"] for r in fragment["rules"]] == ["U1 max", "U1 min", "Q1 max", "R7 min"]
    json.dumps(fragment)
    with pytest.raises(AnnotationError, match="below high_c"):
        ToleranceLabel(name="U1", shape=Box(0, 0, 1, 1), low_c=90, high_c=85, provenance=ANNA)
    with pytest.raises(AnnotationError, match="low_c, high_c or both"):
        ToleranceLabel(name="U1", shape=Box(0, 0, 1, 1), provenance=ANNA)
    with pytest.raises(AnnotationError, match="area shape"):
        ToleranceLabel(name="U1", shape=Point(1, 1), high_c=1, provenance=ANNA)
    with pytest.raises(AnnotationError, match="finite"):
        ToleranceLabel(name="U1", shape=Box(0, 0, 1, 1), high_c=math.inf, provenance=ANNA)


def test_recipe_fragment_loads_as_a_recipe(tmp_path: Any) -> None:
    arr = np.zeros((24, 32), dtype=bool)
    arr[5:9, 20:30] = True
    np.save(tmp_path / "r7.npy", arr)
    tolerances = (
        ToleranceLabel(name="U1", shape=Box(2, 3, 10, 8), low_c=20, high_c=85, provenance=ANNA),
        ToleranceLabel(name="Q1", shape=RotatedBox(16, 12, 6, 4, 30), high_c=60, provenance=ANNA),
        ToleranceLabel(name="R7", shape=Mask.from_array(arr), low_c=-5, provenance=ANNA),
    )
    fragment = item(tolerances=tolerances).recipe_rules(mask_paths={"R7": "r7.npy"})
    recipe = parse_recipe({"name": "from-labels", **fragment}, base_dir=tmp_path)
    assert [r.name for r in recipe.regions] == ["U1", "Q1", "R7"]
    assert [(r.type, r.region) for r in recipe.rules] == [
        ("max", "U1"),
        ("min", "U1"),
        ("max", "Q1"),
        ("min", "R7"),
    ]
    regions = {r.name: r.to_region() for r in recipe.regions}
    assert np.array_equal(regions["U1"].mask((24, 32)), Box(2, 3, 10, 8).to_mask((24, 32)))
    assert np.array_equal(regions["R7"].mask((24, 32)), arr)


# --- items --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"annotations": (hot(severity="low").edit(shape=Box(30, 1, 4, 4)),)},
            r"annotations\[0\] \(id 'a1'\): box spans x 30..34, y 1..5: outside the 32x24 frame",
        ),
        (
            {"annotations": (hot(severity="low").edit(frame=1),)},
            r"annotations\[0\] \(id 'a1'\): frame 1 out of range 0..0",
        ),
        (
            {"annotations": (hot(), hot())},
            r"annotations\[1\]: id 'a1' also used by annotations\[0\]",
        ),
        (
            {
                "tracks": (
                    Track(
                        id="a1", label="x", keyframes=(Keyframe(0, Point(1, 1)),), provenance=ANNA
                    ),
                ),
                "annotations": (hot(),),
            },
            r"tracks\[0\]: id 'a1' also used",
        ),
        (
            {
                "tracks": (
                    Track(
                        id="t", label="x", keyframes=(Keyframe(3, Point(1, 1)),), provenance=ANNA
                    ),
                )
            },
            r"tracks\[0\] \(id 't'\) keyframe 0: frame 3",
        ),
        (
            {
                "tracks": (
                    Track(
                        id="t", label="x", keyframes=(Keyframe(0, Point(40, 1)),), provenance=ANNA
                    ),
                )
            },
            "point spans x 40..40",
        ),
        (
            {
                "verdicts": (
                    VerdictLabel(id="v1", verdict=Verdict.OK, provenance=ANNA),
                    VerdictLabel(id="v2", verdict=Verdict.OK, provenance=ANNA),
                )
            },
            r"verdicts\[1\] \(id 'v2'\): a second verdict on the whole item",
        ),
        (
            {"verdicts": (VerdictLabel(verdict=Verdict.OK, frame=2, provenance=ANNA),)},
            "frame 2 out of range",
        ),
        (
            {
                "tolerances": (
                    ToleranceLabel(
                        id="t",
                        name="U",
                        high_c=1,
                        provenance=ANNA,
                        shape=Mask.from_array(np.eye(4, dtype=bool)),
                    ),
                )
            },
            r"tolerances\[0\] \(id 't'\): mask",
        ),
        ({"annotations": ("not a record",)}, r"annotations\[0\] is a str, not a Annotation"),
        ({"width": 0}, "width must be a positive integer"),
        ({"height": 20000}, "height 20000 exceeds"),
        ({"frame_count": 0}, "frame_count must be a positive integer"),
        ({"item_id": "a b"}, "item_id must be"),
        ({"metadata": {"x": math.nan}}, "metadata must be JSON-ready"),
    ],
)
def test_item_validation(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"item_id": "sha256-0f", "width": 32, "height": 24}
    with pytest.raises(AnnotationError, match=message):
        AnnotatedItem(**(base | kwargs))


def test_item_accessors() -> None:
    whole = VerdictLabel(id="v", verdict=Verdict.NG, reason="U1 hot", provenance=ANNA)
    on0 = VerdictLabel(id="v0", verdict=Verdict.OK, frame=0, provenance=ANNA)
    track = Track(
        id="t",
        label="component",
        keyframes=(Keyframe(1, Box(0, 0, 4, 4)), Keyframe(3, Box(4, 4, 4, 4))),
        provenance=ANNA,
    )
    a = hot(severity="low").edit(frame=2)
    it = AnnotatedItem(
        item_id="x",
        width=32,
        height=24,
        frame_count=5,
        annotations=(a,),
        tracks=(track,),
        verdicts=(on0, whole),
    )
    assert it.verdict == whole
    assert it.annotations_at(2) == (a,)
    assert it.annotations_at(0) == ()
    assert it.track_shapes_at(0) == []
    assert it.track_shapes_at(2) == [(track, Box(2, 2, 4, 4))]
    single = AnnotatedItem(item_id="y", width=4, height=4, verdicts=(on0,))
    assert single.verdict == on0


def test_item_from_dict_errors_name_the_path() -> None:
    it = item(hot(severity="low"))
    data = it.to_dict()
    assert data["version"] == VERSION
    bad = json.loads(json.dumps(data))
    bad["annotations"][0]["shape"]["points"] = [[0, 0]]
    with pytest.raises(AnnotationError, match=r"annotations\[0\]\.shape: unknown key"):
        AnnotatedItem.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["annotations"][0]["provenance"]["created"] = "yesterday"
    with pytest.raises(AnnotationError, match=r"annotations\[0\]\.provenance\.created"):
        AnnotatedItem.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["version"] = 2
    with pytest.raises(AnnotationError, match="version 1, got 2"):
        AnnotatedItem.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["extra"] = 1
    with pytest.raises(AnnotationError, match="unknown key"):
        AnnotatedItem.from_dict(bad)
    bad = json.loads(json.dumps(data))
    del bad["annotations"][0]["label"]
    with pytest.raises(AnnotationError, match=r"annotations\[0\]: missing 'label'"):
        AnnotatedItem.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["annotations"][0]["attributes"]["severity"] = "huge"
    with pytest.raises(AnnotationError, match="'huge' is not one of"):
        AnnotatedItem.from_dict(bad, schema=SCHEMA)
    with pytest.raises(AnnotationError, match="expected an object"):
        AnnotatedItem.from_dict([])  # type: ignore[arg-type]


def test_dict_layout_is_stable() -> None:
    """The documented layout, key by key: other layers build on it."""
    a = Annotation(
        id="a1",
        label="hot_spot",
        shape=Box(1, 1, 4, 4),
        frame=0,
        attributes={"severity": "low"},
        provenance=ANNA,
    )
    it = item(a, metadata={"serial": "PCB-000001"})
    assert it.to_dict() == {
        "format": "thermoscope.annotated-item",
        "version": 1,
        "item_id": "sha256-0f",
        "width": 32,
        "height": 24,
        "frame_count": 1,
        "annotations": [
            {
                "id": "a1",
                "label": "hot_spot",
                "frame": 0,
                "shape": {"type": "box", "x": 1.0, "y": 1.0, "width": 4.0, "height": 4.0},
                "attributes": {"severity": "low"},
                "metadata": {},
                "provenance": {
                    "author": "anna",
                    "model": "",
                    "model_version": "",
                    "score": None,
                    "created": "2026-03-01T12:00:00+00:00",
                },
                "review": {"state": "draft", "reviewer": "", "comment": "", "updated": None},
            }
        ],
        "tracks": [],
        "verdicts": [],
        "tolerances": [],
        "metadata": {"serial": "PCB-000001"},
    }


# --- hypothesis round trip ----------------------------------------------------------------

W, H, FRAMES = 48, 36, 6
coord_x = st.floats(0, W, allow_nan=False)
coord_y = st.floats(0, H, allow_nan=False)
sizes = st.floats(0.01, 10, allow_nan=False)


@st.composite
def shapes(draw: st.DrawFn, area_only: bool = False) -> Shape:
    kind = draw(
        st.sampled_from(
            ["box", "rotated_box", "polygon", "mask"] + ([] if area_only else ["polyline", "point"])
        )
    )
    if kind == "box":
        x, y = draw(st.floats(0, W - 10)), draw(st.floats(0, H - 10))
        return Box(x, y, draw(sizes), draw(sizes))
    if kind == "rotated_box":
        w, h = draw(sizes), draw(sizes)
        return RotatedBox(
            draw(st.floats(8, W - 8)), draw(st.floats(8, H - 8)), w, h, draw(st.floats(-720, 720))
        )
    if kind == "point":
        return Point(draw(coord_x), draw(coord_y))
    if kind == "mask":
        pixels = draw(
            st.lists(
                st.tuples(st.integers(0, H - 1), st.integers(0, W - 1)), min_size=1, max_size=20
            )
        )
        arr = np.zeros((H, W), dtype=bool)
        for r, c in pixels:
            arr[r, c] = True
        return Mask.from_array(arr)
    pts = draw(
        st.lists(st.tuples(coord_x, coord_y), min_size=3 if kind == "polygon" else 2, max_size=8)
    )
    try:
        return Polygon(tuple(pts)) if kind == "polygon" else Polyline(tuple(pts))
    except AnnotationError:
        return Box(1, 1, 2, 2)


times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
)
text = st.text(max_size=8)


@st.composite
def provenances(draw: st.DrawFn) -> Provenance:
    if draw(st.booleans()):
        return Provenance(author=draw(text.filter(bool)), created=draw(times))
    return Provenance(
        model=draw(text.filter(bool)),
        model_version=draw(text),
        score=draw(st.none() | st.floats(0, 1)),
        created=draw(times),
    )


@st.composite
def reviews(draw: st.DrawFn) -> Review:
    state = draw(st.sampled_from(list(ReviewState)))
    comment = draw(text.filter(str.strip)) if state is ReviewState.REJECTED else draw(text)
    return Review(
        state=state, reviewer=draw(text), comment=comment, updated=draw(st.none() | times)
    )


attribute_values = st.one_of(
    text,
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
)
attributes = st.dictionaries(st.text(min_size=1, max_size=6), attribute_values, max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
metadata = st.dictionaries(text, json_values, max_size=3)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)


@st.composite
def items(draw: st.DrawFn) -> AnnotatedItem:
    frame_count = draw(st.integers(1, FRAMES))
    prefix = draw(ids)
    record_ids = iter(f"{prefix}.{k}" for k in range(40))
    frames = st.integers(0, frame_count - 1)
    annotations = tuple(
        Annotation(
            id=next(record_ids),
            label=draw(text.filter(bool)),
            shape=draw(shapes()),
            frame=draw(frames),
            attributes=draw(attributes),
            metadata=draw(metadata),
            provenance=draw(provenances()),
            review=draw(reviews()),
        )
        for _ in range(draw(st.integers(0, 5)))
    )
    tracks = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(shapes())
        key_frames = draw(st.lists(frames, min_size=1, max_size=frame_count, unique=True))
        keyframes = []
        for f in key_frames:
            shape = draw(shapes())
            shape = shape if shape.kind == kind.kind else kind
            keyframes.append(Keyframe(f, shape, draw(st.booleans())))
        tracks.append(
            Track(
                id=next(record_ids),
                label=draw(text.filter(bool)),
                keyframes=tuple(keyframes),
                attributes=draw(attributes),
                metadata=draw(metadata),
                provenance=draw(provenances()),
                review=draw(reviews()),
            )
        )
    verdict_frames = draw(st.lists(st.none() | frames, max_size=3, unique=True))
    verdicts = tuple(
        VerdictLabel(
            id=next(record_ids),
            verdict=draw(st.sampled_from([Verdict.OK, Verdict.NG])),
            reason=draw(text.filter(str.strip)),
            frame=f,
            provenance=draw(provenances()),
            review=draw(reviews()),
        )
        for f in verdict_frames
    )
    tolerances = []
    for _ in range(draw(st.integers(0, 2))):
        low = draw(st.none() | st.floats(-50, 50))
        high = draw(st.floats(60, 200)) if low is None or draw(st.booleans()) else None
        tolerances.append(
            ToleranceLabel(
                id=next(record_ids),
                name=draw(text.filter(str.strip)),
                shape=draw(shapes(area_only=True)),
                low_c=low,
                high_c=high,
                description=draw(text),
                provenance=draw(provenances()),
                review=draw(reviews()),
            )
        )
    return AnnotatedItem(
        item_id=draw(ids),
        width=W,
        height=H,
        frame_count=frame_count,
        annotations=annotations,
        tracks=tuple(tracks),
        verdicts=verdicts,
        tolerances=tuple(tolerances),
        metadata=draw(metadata),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items())
def test_item_dict_round_trip_is_lossless(it: AnnotatedItem) -> None:
    data = it.to_dict()
    text_form = json.dumps(data, allow_nan=False, sort_keys=True)
    again = AnnotatedItem.from_dict(json.loads(text_form))
    assert again == it
    assert json.dumps(again.to_dict(), allow_nan=False, sort_keys=True) == text_form
