"""Annotation formats against independent readers and writers: pycocotools and datumaro read
our exports; our importers read files other tools wrote (``tests/data/interop``, see its
SOURCES.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotation_samples import DEFAULTS, SCHEMA, frames_for, sample_item, single_item
from thermoscope.annotations import AnnotatedItem, Box, Mask, Point, Polygon, RotatedBox
from thermoscope.annotations.formats import (
    FORMATS,
    coco,
    cvat,
    label_studio,
    voc,
    yolo,
)
from thermoscope.annotations.formats.records import bounding_box

INTEROP = Path(__file__).parent / "data" / "interop"


def exported(name: str, folder: Path, **options: Any) -> list[AnnotatedItem]:
    """Export sample items with their frames (images and side-cars) and return them as kept."""
    xs = [sample_item("seq"), single_item("one"), sample_item("s2", frame_count=1)]
    frames = {x.item_id: frames_for(x, n) for n, x in enumerate(xs)}
    FORMATS[name].save(xs, folder, schema=SCHEMA, frames=frames, **options)
    return xs


# ---------------------------------------------------------------------------------------------
# pycocotools


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pycocotools_reads_our_coco_and_decodes_the_same_masks(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    xs = exported("coco", tmp_path / "c")
    kept, _ = coco.reduce(xs, defaults=DEFAULTS)
    api = COCO(str(tmp_path / "c" / coco.ANNOTATION_FILE))
    images = api.loadImgs(api.getImgIds())
    assert len(images) == sum(x.frame_count for x in xs)
    names = {cat["id"]: cat["name"] for cat in api.loadCats(api.getCatIds())}
    assert list(names.values()) == [spec.name for spec in SCHEMA.labels]
    anns = api.loadAnns(api.getAnnIds())
    shapes = [
        (a.label, a.shape)
        for item in kept
        for f in range(item.frame_count)
        for a in item.annotations_at(f)
    ]
    shapes += [
        (t.label, s)
        for item in kept
        for f in range(item.frame_count)
        for t, s in item.track_shapes_at(f)
    ]
    assert len(anns) == len(shapes)
    masks = [s for _, s in shapes if isinstance(s, Mask)]
    decoded = [api.annToMask(a) for a in anns if isinstance(a["segmentation"], dict)]
    assert len(decoded) == len(masks) > 0
    for ours, theirs in zip(masks, decoded, strict=True):
        want = ours.to_mask((ours.height, ours.width))
        np.testing.assert_array_equal(theirs.astype(bool), want)
    for a in anns:
        x, y, w, h = a["bbox"]
        image = api.loadImgs(a["image_id"])[0]
        assert min(x, y) >= 0
        assert (x + w, y + h) <= (image["width"], image["height"])
        if a["segmentation"] == []:
            assert a["area"] == pytest.approx(w * h)


# ---------------------------------------------------------------------------------------------
# datumaro


def datumaro_dataset(path: Path, fmt: str) -> Any:
    dm = pytest.importorskip("datumaro")
    return dm.Dataset.import_from(str(path), fmt)


def datumaro_boxes(dataset: Any) -> Boxes:
    from datumaro.components.annotation import AnnotationType

    labels = dataset.categories()[AnnotationType.label]
    out = []
    for item in dataset:
        for ann in item.annotations:
            if ann.type == AnnotationType.bbox:
                out.append((labels[ann.label].name, *ann.get_bbox()))
    return sorted(out)


Boxes = list[tuple[str, float, float, float, float]]


def our_boxes(items: list[AnnotatedItem], *, coco_like: bool = False) -> Boxes:
    """The boxes of the kept items as datumaro stores them: corners as float32 rounded to
    ``COORDINATE_ROUNDING_DIGITS`` (2) decimals (``coco_like``: every shape's bounding box,
    as a COCO ``bbox``)."""
    from datumaro.components.annotation import COORDINATE_ROUNDING_DIGITS

    out = []
    for item in items:
        for f in range(item.frame_count):
            shapes = [(a.label, a.shape) for a in item.annotations_at(f)]
            shapes += [(t.label, s) for t, s in item.track_shapes_at(f)]
            for label, shape in shapes:
                if isinstance(shape, Box) or (coco_like and not isinstance(shape, Point)):
                    box = shape if isinstance(shape, Box) else bounding_box(shape)
                    assert box is not None
                    corners = [box.x, box.y, box.x + box.width, box.y + box.height]
                    x0, y0, x1, y1 = (
                        np.array(corners, dtype=np.float32)
                        .round(COORDINATE_ROUNDING_DIGITS)
                        .tolist()
                    )
                    out.append((label, x0, y0, x1 - x0, y1 - y0))
    return sorted(out)


def assert_same_boxes(theirs: Boxes, ours: Boxes) -> None:
    assert len(theirs) == len(ours)
    for a, b in zip(theirs, ours, strict=True):
        assert a[0] == b[0]
        np.testing.assert_allclose(a[1:], b[1:], rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_datumaro_reads_our_coco(tmp_path: Path) -> None:
    xs = exported("coco", tmp_path / "c")
    kept, _ = coco.reduce(xs, defaults=DEFAULTS)
    dataset = datumaro_dataset(tmp_path / "c", "coco_instances")
    assert len(dataset) == sum(x.frame_count for x in xs)
    assert_same_boxes(datumaro_boxes(dataset), our_boxes(kept, coco_like=True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_datumaro_reads_our_voc(tmp_path: Path) -> None:
    xs = exported("voc", tmp_path / "v")
    kept, _ = voc.reduce(xs, schema=SCHEMA, defaults=DEFAULTS)
    dataset = datumaro_dataset(tmp_path / "v", "voc")
    assert len(dataset) == sum(x.frame_count for x in xs)
    assert_same_boxes(datumaro_boxes(dataset), our_boxes(kept))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_datumaro_reads_our_yolo(tmp_path: Path) -> None:
    xs = exported("yolo-detect", tmp_path / "y")
    kept, _ = yolo.reduce(xs, task="detect", defaults=DEFAULTS)
    dataset = datumaro_dataset(tmp_path / "y", "yolo")
    assert len(dataset) == sum(x.frame_count for x in xs)
    assert_same_boxes(datumaro_boxes(dataset), our_boxes(kept))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_datumaro_reads_our_cvat_for_images(tmp_path: Path) -> None:
    from datumaro.components.annotation import AnnotationType

    xs = exported("cvat-images", tmp_path / "cv")
    kept, _ = cvat.reduce(xs, mode="images", schema=SCHEMA, defaults=DEFAULTS)
    dataset = datumaro_dataset(tmp_path / "cv", "cvat")
    assert len(dataset) == sum(x.frame_count for x in xs)
    assert_same_boxes(datumaro_boxes(dataset), our_boxes(kept))
    # every shape, tag and rotated box arrives
    counts: dict[str, int] = {}
    for item in dataset:
        for ann in item.annotations:
            counts[ann.type.name] = counts.get(ann.type.name, 0) + 1
    shapes = [a.shape for item in kept for a in item.annotations]
    assert counts["polygon"] == sum(isinstance(s, Polygon) for s in shapes)
    assert counts["rotated_bbox"] == sum(isinstance(s, RotatedBox) for s in shapes)
    assert counts["mask"] == sum(isinstance(s, Mask) for s in shapes)
    assert counts["label"] == sum(len(item.verdicts) for item in kept)
    # datumaro decodes CVAT's mask runs to our pixels
    masks = [s for s in shapes if isinstance(s, Mask)]
    theirs = [a for item in dataset for a in item.annotations if a.type == AnnotationType.mask]
    for ours, their in zip(masks, theirs, strict=True):
        np.testing.assert_array_equal(
            their.image.astype(bool), ours.to_mask((ours.height, ours.width))
        )


# ---------------------------------------------------------------------------------------------
# files written by other tools


def test_reads_datumaro_coco_instances_with_uncompressed_rle() -> None:
    result = coco.load(INTEROP / "datumaro/coco_instances/annotations/instances_val.json")
    (item,) = result.items
    assert (item.item_id, item.width, item.height) == ("b", 5, 10)
    polygon, mask = (a.shape for a in item.annotations)
    assert polygon == Polygon(((0.0, 0.0), (1.0, 0.0), (1.0, 2.0), (0.0, 2.0)))
    assert item.annotations[0].attributes == {"x": 1, "y": "hello"}
    assert isinstance(mask, Mask)
    # runs [0, 20, 30] down the columns of a 10 x 5 (H x W) image: the first two columns
    pixels = mask.to_mask((10, 5))
    assert pixels[:, :2].all()
    assert not pixels[:, 2:].any()
    assert item.annotations[1].metadata == {"iscrowd": True}
    assert [spec.name for spec in result.schema.labels] == ["a", "b", "c"]
    train = coco.load(INTEROP / "datumaro/coco_instances/annotations/instances_train.json")
    assert train.items[0].annotations[0].shape == Box(2.0, 2.0, 3.0, 1.0)


def test_reads_a_cvat_for_images_file_and_reports_unlabelled_shapes() -> None:
    path = INTEROP / "datumaro/cvat_images/train.xml"
    with pytest.raises(
        Exception, match=r"train.xml: image 'img0.jpg': polyline\[0\]: the shape has no label"
    ):
        cvat.load(path)
    result = cvat.load(path, skip_invalid=True)
    img0, img1 = result.items
    assert (img0.item_id, img0.width, img0.height) == ("img0", 8, 8)
    box = img0.annotations[0]
    assert box.shape == Box(0, 2, 4, 2)
    assert box.attributes == {"a1": True, "a2": "v3", "a3": "0003", "a4": 2.4}
    assert box.metadata == {"occluded": True, "z_order": 1}
    assert [a.shape for a in img1.annotations] == [Point(1, 2), Point(3, 4), Point(5, 6)]
    assert len(result.skipped) == 2
    spec = result.schema.label("label1")
    assert spec is not None
    assert [a.type.value for a in spec.attributes] == ["bool", "enum", "text", "number"]


def test_reads_a_cvat_for_video_dump() -> None:
    result = cvat.load(INTEROP / "datumaro/cvat_video/annotations.xml", mode="video")
    (item,) = result.items
    assert (item.item_id, item.width, item.height, item.frame_count) == ("v1", 25, 20, 4)
    # frames 10, 13, 16 with step=3 from start_frame 10 are frames 0, 1, 2
    (track,) = item.tracks
    assert [(k.frame, k.outside) for k in track.keyframes] == [(0, False), (1, True), (2, True)]
    assert track.shape_at(0) == Box(3, 4, 7, 1)
    assert track.shape_at(1) is None
    points = [a for a in item.annotations if isinstance(a.shape, Point)]
    assert [a.shape for a in points] == [Point(21.95, 8.0), Point(2.55, 15.09), Point(2.23, 3.16)]
    assert points[0].attributes == {"hgl": "hgkf"}
    (line,) = [a for a in item.annotations if a.shape.kind == "polyline"]
    assert line.frame == 1
    assert [spec.name for spec in result.schema.labels] == ["klhg", "z U k", "II"]


def test_reads_a_voc_file() -> None:
    result = voc.load(INTEROP / "datumaro/voc")
    (item,) = result.items
    assert (item.item_id, item.width, item.height) == ("2007_000001", 20, 10)
    cat, person = item.annotations
    assert (cat.label, cat.shape, cat.metadata) == ("cat", Box(1, 2, 2, 2), {"truncated": True})
    assert (person.label, person.shape) == ("person", Box(4, 5, 2, 2))
    one_based = voc.load(INTEROP / "datumaro/voc", one_based=True)
    assert one_based.items[0].annotations[0].shape == Box(0, 1, 3, 3)


def test_reads_a_darknet_yolo_folder() -> None:
    result = yolo.load(INTEROP / "datumaro/yolo_strict")
    (item,) = result.items
    assert (item.item_id, item.width, item.height) == ("1", 15, 10)
    first, second = item.annotations
    assert (first.label, second.label) == ("label_2", "label_4")
    # written with 6 decimals: 0.133333 - 0.266667 / 2 rounds just below 0 and is clipped
    np.testing.assert_allclose(first.shape.bounds(), (0.0, 2.0, 4.0, 4.0), atol=1e-4)
    np.testing.assert_allclose(second.shape.bounds(), (3.0, 3.0, 5.0, 6.0), atol=1e-4)
    assert len(result.schema.labels) == 10


def test_reads_label_studio_exports_with_rotated_rectangles() -> None:
    result = label_studio.load(INTEROP / "label-studio/data_obb.json")
    first = result.items[0]
    assert (first.item_id, first.width, first.height) == ("image1", 597, 768)
    region = first.annotations[0]
    assert (region.id, region.label) == ("veUGPaahTw", "Butterfly")
    assert isinstance(region.shape, RotatedBox)
    # Label Studio turns the rectangle about its top-left corner (x, y)
    x0, y0 = region.shape.corners()[0]
    assert x0 == pytest.approx(10.537066764905694 * 597 / 100)
    assert y0 == pytest.approx(79.55767690059092 * 768 / 100)
    assert region.shape.angle_deg == pytest.approx(328.33240366032836)
    assert region.provenance == DEFAULTS.human() or region.provenance.author == "import"
    polygons = label_studio.load(INTEROP / "label-studio/data_polygons.json")
    (plane,) = polygons.items[0].annotations
    assert (plane.label, len(plane.shape.points)) == ("Airplane", 37)
    assert plane.shape.points[0] == pytest.approx((60 * 640 / 100, 19.55922865013774 * 426 / 100))
