"""Annotation formats: lossless round trips for what each format holds, loss warnings,
malformed files, skip-invalid reports and atomic exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation_samples import (
    DEFAULTS,
    HUMAN,
    SCHEMA,
    frames_for,
    items,
    sample_item,
    single_item,
)
from thermoscope.annotations import AnnotatedItem, Annotation, Box, LabelSchema, Polygon
from thermoscope.annotations.formats import (
    FORMATS,
    AnnotationFormatError,
    AnnotationLossError,
    coco,
    cvat,
    get_format,
    label_studio,
    voc,
    yolo,
)
from thermoscope.annotations.formats.naming import frame_stem, split_stem

Emit = Callable[[list[AnnotatedItem], LabelSchema | None], dict[str, bytes]]

# name -> (emit, parse, reduce) with the same schema on the way out and in
ROUND_TRIPS: dict[str, tuple[Any, Any, Any]] = {
    "coco": (
        lambda xs, s: coco.emit(xs, schema=s).files,
        lambda f, s: coco.parse(f, schema=s, defaults=DEFAULTS),
        lambda xs, s: coco.reduce(xs, defaults=DEFAULTS),
    ),
    "yolo-detect": (
        lambda xs, s: yolo.emit(xs, task="detect", schema=s).files,
        lambda f, s: yolo.parse(f, schema=s, defaults=DEFAULTS),
        lambda xs, s: yolo.reduce(xs, task="detect", defaults=DEFAULTS),
    ),
    "yolo-segment": (
        lambda xs, s: yolo.emit(xs, task="segment", schema=s).files,
        lambda f, s: yolo.parse(f, schema=s, defaults=DEFAULTS),
        lambda xs, s: yolo.reduce(xs, task="segment", defaults=DEFAULTS),
    ),
    "voc": (
        lambda xs, s: voc.emit(xs, schema=s).files,
        lambda f, s: voc.parse(f, schema=s, defaults=DEFAULTS),
        lambda xs, s: voc.reduce(xs, schema=s, defaults=DEFAULTS),
    ),
    "cvat-images": (
        lambda xs, s: cvat.emit(xs, mode="images", schema=s).files,
        lambda f, s: cvat.parse(f, mode="images", schema=s, defaults=DEFAULTS),
        lambda xs, s: cvat.reduce(xs, mode="images", schema=s, defaults=DEFAULTS),
    ),
    "cvat-video": (
        lambda xs, s: cvat.emit(xs, mode="video", schema=s).files,
        lambda f, s: cvat.parse(f, mode="video", schema=s, defaults=DEFAULTS),
        lambda xs, s: cvat.reduce(xs, mode="video", schema=s, defaults=DEFAULTS),
    ),
    "label-studio": (
        lambda xs, s: label_studio.emit(xs, schema=s).files,
        lambda f, s: label_studio.parse(f, schema=s, defaults=DEFAULTS),
        lambda xs, s: label_studio.reduce(xs, schema=s, written=s, defaults=DEFAULTS),
    ),
}


def round_trip(name: str, xs: list[AnnotatedItem], schema: LabelSchema | None) -> None:
    emit, parse, reduce = ROUND_TRIPS[name]
    kept, _ = reduce(xs, schema)
    back = parse(emit(xs, schema), schema).items
    assert [i.to_dict() for i in back] == [i.to_dict() for i in kept]
    assert back == kept
    # what came back goes through the same way
    assert parse(emit(back, schema), schema).items == reduce(back, schema)[0]


def test_registry_lists_every_format() -> None:
    assert set(FORMATS) == set(ROUND_TRIPS)
    assert get_format("voc").module is voc
    with pytest.raises(AnnotationFormatError, match="one of coco"):
        get_format("nope")


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
@pytest.mark.parametrize("schema", [SCHEMA, None], ids=["schema", "no-schema"])
def test_round_trip_of_sample_items(name: str, schema: LabelSchema | None) -> None:
    xs = [sample_item("seq"), single_item("one"), sample_item("s2", frame_count=1)]
    round_trip(name, xs, schema)


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_of_random_items(name: str, data: st.DataObject) -> None:
    xs = [data.draw(items("it-1")), data.draw(items("it.2"))]
    round_trip(name, xs, SCHEMA)


def test_coco_keeps_every_box_polygon_and_mask_exactly() -> None:
    item = sample_item()
    kept, _ = coco.reduce([item], defaults=DEFAULTS)
    shapes = [a.shape for a in kept[0].annotations]
    assert shapes[0] == item.annotations[0].shape
    assert shapes[1] == item.annotations[1].shape
    assert shapes[2] == item.annotations[2].shape
    assert shapes[3] == Polygon(item.annotations[3].shape.corners())
    assert kept[0].annotations[1].provenance.score == 0.625
    assert kept[0].annotations[0].attributes == item.annotations[0].attributes
    assert kept[0].annotations[0].metadata == {"occluded": True}
    # the track comes back with its shape on every frame it showed on
    track = kept[0].tracks[0]
    for f in range(item.frame_count):
        assert track.shape_at(f) == item.tracks[0].shape_at(f)


@pytest.mark.parametrize("name", ["yolo-detect", "label-studio", "cvat-images"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_converted_coordinates_stay_within_1e_9_px(name: str, data: st.DataObject) -> None:
    item = data.draw(items())
    boxes = [
        Annotation(label=a.label, shape=a.shape, frame=a.frame, provenance=HUMAN)
        for a in sorted(item.annotations, key=lambda a: a.frame)
        if isinstance(a.shape, Box)
    ]
    plain = AnnotatedItem(
        item_id="p",
        width=item.width,
        height=item.height,
        frame_count=item.frame_count,
        annotations=tuple(boxes),
    )
    kept, _ = ROUND_TRIPS[name][2]([plain], SCHEMA)
    for a, b in zip(boxes, kept[0].annotations, strict=True):
        assert np.allclose(a.shape.bounds(), b.shape.bounds(), rtol=0, atol=1e-9)


def test_loss_warnings_name_what_each_format_drops() -> None:
    item = sample_item()
    kinds = {name: {w.kind for w in f.reduce([item])[1]} for name, f in FORMATS.items()}
    assert {"polygon", "mask", "rotated_box", "point", "polyline", "verdict", "track"} <= kinds[
        "voc"
    ]
    assert {"point", "polyline", "verdict", "rotated_box"} <= kinds["coco"]
    assert "attribute" in kinds["yolo-detect"]
    assert "polyline" in kinds["label-studio"]
    assert "track" not in kinds["cvat-video"]
    assert "provenance" in kinds["cvat-images"]
    warning = next(w for w in FORMATS["voc"].reduce([item])[1] if w.kind == "polygon")
    assert warning.count == 1
    assert warning.examples == ("item 'a1b2': annotations[1]",)
    assert "voc: polygons become their bounding boxes" in str(warning)


def test_strict_save_refuses_a_lossy_export_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(AnnotationLossError, match="polygons become") as err:
        voc.save([sample_item()], tmp_path / "out", strict=True)
    assert err.value.warnings
    assert list(tmp_path.iterdir()) == []
    empty = AnnotatedItem(item_id="empty", width=4, height=3)
    report = coco.save([empty], tmp_path / "ok", strict=True, schema=SCHEMA)
    assert report.warnings == ()


def test_file_stems_keep_item_ids_and_frames() -> None:
    assert frame_stem("ab12", 0, 1) == "ab12"
    assert frame_stem("ab12", 3, 5) == "ab12@000003"
    assert frame_stem("a b/c@d", 0, 1) == "a%20b%2Fc%40d"
    assert split_stem("ab12@000003") == ("ab12", 3)
    assert split_stem(frame_stem("a/c@d", 0, 1)) == ("a/c@d", None)
    assert split_stem("my photo") == ("my_photo", None)


# ---------------------------------------------------------------------------------------------
# save / load with images and radiometric side-cars


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("sidecar", ["tiff", "npy"])
def test_export_with_sidecars_reimports_temperatures(
    name: str, sidecar: str, tmp_path: Path
) -> None:
    xs = [sample_item("seq"), single_item("one")]
    frames = {x.item_id: frames_for(x, n) for n, x in enumerate(xs)}
    fmt = FORMATS[name]
    report = fmt.save(xs, tmp_path / "out", schema=SCHEMA, frames=frames, sidecar=sidecar)
    assert report.path == tmp_path / "out"
    pngs = [f for f in report.files if f.endswith(".png")]
    assert len(pngs) == 4
    result = fmt.load(tmp_path / "out", schema=SCHEMA, defaults=DEFAULTS)
    kept, _ = ROUND_TRIPS[name][2](xs, SCHEMA)
    assert sorted(i.item_id for i in result.items) == sorted(i.item_id for i in kept)
    by_id = {i.item_id: i for i in kept}
    for item in result.items:
        assert item == by_id[item.item_id]
        loaded = result.load_frames(item.item_id)
        assert len(loaded) == item.frame_count
        for got, want in zip(loaded, frames[item.item_id], strict=True):
            assert got.celsius.dtype == np.float32
            np.testing.assert_array_equal(got.celsius, want.celsius)
    # no temporary folder is left beside the export
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_rendered_images_have_the_frame_size(tmp_path: Path) -> None:
    import cv2

    item = sample_item()
    coco.save([item], tmp_path / "c", frames={item.item_id: frames_for(item)})
    image = cv2.imread(str(tmp_path / "c/images/default/a1b2@000001.png"))
    assert image.shape == (item.height, item.width, 3)


def test_failed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    xs = [single_item(f"i{n}") for n in range(5)]
    calls = []

    def frames(item_id: str) -> list[Any]:
        calls.append(item_id)
        if len(calls) == 3:
            raise OSError("disk gone")
        return frames_for(xs[0])

    with pytest.raises(OSError, match="disk gone"):
        yolo.save(xs, tmp_path / "out", frames=frames)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "out"
    voc.save([single_item()], target)
    with pytest.raises(AnnotationFormatError, match="already exists"):
        voc.save([single_item()], target)
    (target / "stale.txt").write_text("old")
    voc.save([single_item("other")], target, overwrite=True)
    assert not (target / "stale.txt").exists()
    assert [i.item_id for i in voc.load(target).items] == ["other"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_frame_count_must_match(tmp_path: Path) -> None:
    item = sample_item()
    with pytest.raises(AnnotationFormatError, match="1 frames given, the item has 3"):
        coco.save([item], tmp_path / "x", frames={item.item_id: frames_for(item)[:1]})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# malformed files


def coco_doc() -> dict[str, Any]:
    return json.loads(
        coco.emit([single_item(), sample_item()], schema=SCHEMA).files[coco.ANNOTATION_FILE]
    )


def coco_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_coco_bad_json_names_the_file() -> None:
    with pytest.raises(AnnotationFormatError, match=r"^instances.json: not valid JSON"):
        coco.parse(b'{"images": [', source="annotations/instances.json")


def test_coco_box_outside_the_image_names_file_and_annotation() -> None:
    doc = coco_doc()
    doc["annotations"][1]["bbox"] = [30.0, 20.0, 20.0, 20.0]
    with pytest.raises(
        AnnotationFormatError,
        match=r"^instances.json: annotations\[1\]: bbox extends outside image 1 \(40x30\)$",
    ):
        coco.parse(coco_bytes(doc), source="instances.json")


def test_coco_missing_image_and_unknown_category() -> None:
    doc = coco_doc()
    doc["annotations"][0]["image_id"] = 99
    with pytest.raises(AnnotationFormatError, match=r"annotations\[0\]: image_id 99 is not among"):
        coco.parse(coco_bytes(doc))
    doc = coco_doc()
    doc["annotations"][2]["category_id"] = 7
    with pytest.raises(
        AnnotationFormatError, match=r"annotations\[2\]: category_id 7 is not among"
    ):
        coco.parse(coco_bytes(doc))


def test_coco_skip_invalid_reports_what_it_skipped() -> None:
    doc = coco_doc()
    n = len(doc["annotations"])
    doc["annotations"][0]["image_id"] = 99
    doc["annotations"][1]["bbox"] = [-5.0, 0.0, 3.0, 3.0]
    doc["images"][1]["width"] = "wide"
    result = coco.parse(coco_bytes(doc), skip_invalid=True, defaults=DEFAULTS)
    reasons = [str(s) for s in result.skipped]
    expected = "images[1]: width and height must be positive integers (a1b2@000000.png)"
    assert reasons[0] == f"instances_default.json: {expected}"
    assert any("annotations[0]: image_id 99" in r for r in reasons)
    assert any("annotations[1]: bbox extends outside image 1" in r for r in reasons)
    counted = sum(len(i.annotations) + len(i.tracks) for i in result.items)
    assert 0 < counted < n


def test_unknown_label_against_the_schema() -> None:
    doc = coco_doc()
    doc["categories"][0]["name"] = "smoke"
    with pytest.raises(AnnotationFormatError, match=r"annotations\[0\]: unknown label 'smoke'"):
        coco.parse(coco_bytes(doc), schema=SCHEMA)


def test_truncated_xml_names_the_file() -> None:
    data = cvat.emit([sample_item()]).files[cvat.ANNOTATION_FILE]
    with pytest.raises(AnnotationFormatError, match=r"^annotations.xml: not well-formed XML"):
        cvat.parse({"annotations.xml": data[: len(data) // 2]})
    files = voc.emit([single_item(), single_item("b")]).files
    files["Annotations/b.xml"] = files["Annotations/b.xml"][:100]
    with pytest.raises(AnnotationFormatError, match=r"^Annotations/b.xml: not well-formed XML"):
        voc.parse(files)
    result = voc.parse(files, skip_invalid=True)
    assert [i.item_id for i in result.items] == ["single"]
    assert result.skipped[0].file == "Annotations/b.xml"


def test_cvat_unknown_label_and_shape_outside() -> None:
    text = cvat.emit([single_item()], schema=SCHEMA).files[cvat.ANNOTATION_FILE].decode()
    bad = text.replace('label="cold_joint"', 'label="smoke"', 1)
    with pytest.raises(
        AnnotationFormatError,
        match=r"^annotations.xml: image 'single.png': box\[1\]: unknown label 'smoke'$",
    ):
        cvat.parse({"annotations.xml": bad.encode()})
    bad = text.replace('xbr="40"', 'xbr="41"', 1)
    with pytest.raises(
        AnnotationFormatError, match=r"box\[0\]: box spans x 0..41, y 0..30: outside"
    ):
        cvat.parse({"annotations.xml": bad.encode()})
    result = cvat.parse({"annotations.xml": bad.encode()}, skip_invalid=True)
    assert len(result.items[0].annotations) == 1
    assert "box[0]" in result.skipped[0].item


def test_yolo_unknown_class_missing_image_and_bad_line() -> None:
    files = yolo.emit([single_item()]).files
    label = "labels/train/single.txt"
    files[label] = files[label] + b"7 0.5 0.5 0.1 0.1\n0 0.5 0.5\n"
    with pytest.raises(AnnotationFormatError, match=r"^labels/train/single.txt: line 3: class 7"):
        yolo.parse(files)
    result = yolo.parse(files, skip_invalid=True)
    assert [s.item for s in result.skipped] == ["line 3", "line 4"]
    assert len(result.items[0].annotations) == 2
    del files[yolo.META_FILE]
    with pytest.raises(AnnotationFormatError, match="image size unknown"):
        yolo.parse(files)


def test_voc_unknown_label_with_a_label_map() -> None:
    files = voc.emit([single_item()]).files
    files["Annotations/single.xml"] = files["Annotations/single.xml"].replace(
        b"<name>cold_joint</name>", b"<name>dog</name>"
    )
    with pytest.raises(
        AnnotationFormatError, match=r"^Annotations/single.xml: object\[1\]: unknown label 'dog'$"
    ):
        voc.parse(files)


def test_label_studio_bad_json_and_unknown_size() -> None:
    with pytest.raises(AnnotationFormatError, match=r"^tasks.json: not valid JSON"):
        label_studio.parse(b"[{")
    task = {"id": 3, "data": {"image": "/data/upload/1/x.png"}, "annotations": []}
    with pytest.raises(AnnotationFormatError, match=r"tasks\[0\] \(id 3\): image size unknown"):
        label_studio.parse(json.dumps([task]).encode())
    result = label_studio.parse(json.dumps([task]).encode(), sizes={"x": (10, 8)})
    assert (result.items[0].item_id, result.items[0].width) == ("x", 10)


def test_label_studio_brush_code_round_trips() -> None:
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (7, 9), (64, 80)]:
        mask = rng.random(shape) > 0.6
        code = label_studio.encode_brush(mask)
        assert all(0 <= b < 256 for b in code)
        np.testing.assert_array_equal(label_studio.decode_brush(code, shape[1], shape[0]), mask)
    with pytest.raises(ValueError, match="holds 36 values"):
        label_studio.decode_brush(label_studio.encode_brush(np.ones((3, 3), bool)), 4, 4)


def test_coco_parse_accepts_uncompressed_rle_and_splits_multi_part_polygons() -> None:
    doc = {
        "images": [{"id": 1, "file_name": "x.png", "width": 5, "height": 10}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 1, 9],
                "iscrowd": 1,
                "segmentation": {"counts": [0, 20, 30], "size": [10, 5]},
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 4, 4],
                "iscrowd": 0,
                "segmentation": [[0, 0, 2, 0, 2, 2], [3, 3, 4, 3, 4, 4]],
            },
        ],
    }
    result = coco.parse(coco_bytes(doc))
    shapes = [a.shape for a in result.items[0].annotations]
    assert shapes[0].area == 20
    assert result.items[0].annotations[0].metadata == {"iscrowd": True}
    assert [s.kind for s in shapes[1:]] == ["polygon", "polygon"]
    assert "split in parts" in result.notes[0]


def test_record_annotation_stays_a_plain_annotation_in_cvat_video() -> None:
    item = AnnotatedItem(
        item_id="v",
        width=20,
        height=10,
        frame_count=4,
        annotations=(Annotation(label="a", shape=Box(1, 1, 2, 2), frame=1, provenance=HUMAN),),
    )
    files = cvat.emit([item], mode="video").files
    text = files["v/annotations.xml"].decode()
    assert 'frame="1" keyframe="1" outside="0"' in text
    assert 'frame="2" keyframe="1" outside="1"' in text
    back = cvat.parse(files, mode="video", defaults=DEFAULTS).items[0]
    assert back.annotations[0].shape == Box(1, 1, 2, 2)
    assert back.tracks == ()
