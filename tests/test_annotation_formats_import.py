"""Importers on files other tools write (``tests/data/interop``, see its SOURCES.md): CVAT
project exports with subsets, CVAT skeletons and other shapes we cannot hold, Label Studio
annotations beside predictions, datumaro's VOC label map with ``background``, counts per format
on datumaro-written files, and XML with document type declarations refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermoscope.annotations import AnnotatedItem, Box, Point, Polygon
from thermoscope.annotations.formats import (
    AnnotationFormatError,
    coco,
    cvat,
    label_studio,
    voc,
    yolo,
)
from thermoscope.annotations.formats.records import clip_shape

INTEROP = Path(__file__).parent / "data" / "interop"


def shape_counts(items: list[AnnotatedItem]) -> Counter[tuple[str, str]]:
    """``(shape kind, label)`` counts over the items' annotations."""
    return Counter((a.shape.kind, a.label) for item in items for a in item.annotations)


# ---------------------------------------------------------------------------------------------
# CVAT


def test_cvat_project_export_keeps_subsets_that_reuse_an_image_name() -> None:
    result = cvat.load(INTEROP / "cvat/project_subsets.xml")
    ids = [item.item_id for item in result.items]
    assert ids == ["Train/img0", "Train/img1", "Validation/img0", "Test/img0"]
    assert [item.metadata["subset"] for item in result.items] == [
        "Train",
        "Train",
        "Validation",
        "Test",
    ]
    assert shape_counts(result.items) == {
        ("box", "hot_spot"): 2,
        ("polygon", "cold_joint"): 1,
        ("box", "cold_joint"): 1,
        ("point", "hot_spot"): 1,
    }
    validation = result.items[2]
    assert validation.annotations[0].shape == Box(5, 6, 2, 3)
    assert validation.annotations[0].attributes == {"severity": "low"}
    machine = result.items[1].annotations[0]
    assert machine.provenance.machine_made
    assert machine.metadata == {"occluded": True}
    assert [spec.name for spec in result.schema.labels] == ["hot_spot", "cold_joint"]


def test_cvat_skeleton_on_an_image_is_refused_by_name_not_dropped() -> None:
    path = INTEROP / "cvat/skeleton_images.xml"
    with pytest.raises(
        AnnotationFormatError,
        match=r"skeleton_images.xml: image 'board.png': skeleton\[0\]: CVAT skeletons are not "
        r"supported \(skeleton 'connector' with 2 points\)",
    ):
        cvat.load(path)
    result = cvat.load(path, skip_invalid=True)
    (item,) = result.items
    assert [a.shape for a in item.annotations] == [Box(2, 3, 7, 5)]
    (skipped,) = result.skipped
    assert "skeleton" in skipped.reason


def test_cvat_skeleton_track_is_refused_by_name() -> None:
    path = INTEROP / "cvat/skeleton_video.xml"
    with pytest.raises(
        AnnotationFormatError,
        match=r"track\[1\] \(id 1\): CVAT skeletons are not supported \(skeleton 'connector'",
    ):
        cvat.load(path, mode="video")
    result = cvat.load(path, mode="video", skip_invalid=True)
    (item,) = result.items
    (track,) = item.tracks
    # keyframes 0 and 2 (frame 1 is interpolated, keyframe="0")
    assert [k.frame for k in track.keyframes] == [0, 2]
    assert track.shape_at(1) == Box(3, 3, 7, 5)
    assert "skeleton" in result.skipped[0].reason


@pytest.mark.parametrize("tag", ["ellipse", "cuboid", "mask3d"])
def test_cvat_shapes_without_a_thermoscope_kind_are_refused_by_name(tag: str) -> None:
    xml = (
        '<annotations><version>1.1</version><image id="0" name="a.png" width="10" height="10">'
        f'<box label="x" xtl="1" ytl="1" xbr="2" ybr="2"/><{tag} label="x" cx="5" cy="5"/>'
        "</image></annotations>"
    ).encode()
    with pytest.raises(AnnotationFormatError, match=f"CVAT {tag} shapes are not supported"):
        cvat.parse({"a.xml": xml})
    result = cvat.parse({"a.xml": xml}, skip_invalid=True)
    assert len(result.items[0].annotations) == 1
    assert len(result.skipped) == 1


def test_cvat_shape_without_a_label_is_reported() -> None:
    xml = (
        b'<annotations><image id="0" name="a.png" width="10" height="10">'
        b'<box xtl="1" ytl="1" xbr="2" ybr="2"/></image></annotations>'
    )
    with pytest.raises(AnnotationFormatError, match=r"box\[0\]: the shape has no label"):
        cvat.parse({"a.xml": xml})


# ---------------------------------------------------------------------------------------------
# Label Studio


def test_label_studio_groups_results_within_one_annotation_or_prediction() -> None:
    result = label_studio.load(INTEROP / "label-studio/prediction_accepted.json")
    (item,) = result.items
    assert item.item_id == "0f3a9c2e-board"
    assert (item.width, item.height) == (64, 48)
    human_box, polygon, machine_box = item.annotations
    # the annotator's box (changed from the prediction, same region id) with its note
    assert human_box.id == "a1B2c3"
    assert human_box.attributes == {"note": "checked by hand"}
    assert not human_box.provenance.machine_made
    # it overshoots the right edge by 0.4 % (0.256 px): clipped, not rejected
    assert human_box.shape == Box(32.0, 19.2, 32.0, 9.6)
    assert any("clipped" in note for note in result.notes)
    assert polygon.shape == Polygon(((6.4, 4.8), (12.8, 4.8), (12.8, 12.0)))
    # the prediction's box with the same id is a record of its own, not an attribute
    assert machine_box.id != human_box.id
    assert machine_box.provenance.machine_made
    assert (machine_box.provenance.model, machine_box.provenance.score) == ("detector", 0.87)
    assert machine_box.attributes == {}
    assert machine_box.shape == Box(31.36, 19.2, 32.0, 9.6)


def _ls_task(x: float, width: float) -> bytes:
    value = {"x": x, "y": 10, "width": width, "height": 20, "rotation": 0}
    result = {
        "id": "r",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": 100,
        "original_height": 50,
        "value": {**value, "rectanglelabels": ["hot"]},
    }
    task = {"id": 1, "data": {"image": "a.png"}, "annotations": [{"result": [result]}]}
    return json.dumps([task]).encode()


def test_label_studio_rejects_a_box_far_outside_the_image() -> None:
    assert label_studio.parse(_ls_task(-0.5, 10.0)).items[0].annotations[0].shape == Box(
        0, 5, 9.5, 10
    )
    with pytest.raises(AnnotationFormatError, match="outside the 100x50 image"):
        label_studio.parse(_ls_task(95.0, 10.0))


# ---------------------------------------------------------------------------------------------
# VOC and datumaro-written files


def test_voc_label_map_keeps_background_and_its_objects() -> None:
    result = voc.load(INTEROP / "datumaro-written/voc_detection")
    assert [spec.name for spec in result.schema.labels] == [
        "background",
        "hot_spot",
        "cold_joint",
    ]
    board_a, board_b = result.items
    assert [(a.label, a.shape) for a in board_a.annotations] == [
        ("hot_spot", Box(10, 12, 10, 6)),
        ("background", Box(2, 3, 5, 4)),
    ]
    assert [(a.label, a.shape) for a in board_b.annotations] == [
        ("cold_joint", Box(1.5, 2.5, 6.5, 6.5))
    ]


def test_datumaro_written_coco_yolo_and_cvat_import_with_their_counts() -> None:
    root = INTEROP / "datumaro-written"
    got = coco.load(root / "coco_instances")
    assert [i.item_id for i in got.items] == ["board_a", "board_b"]
    assert shape_counts(got.items) == {
        ("box", "hot_spot"): 1,
        ("box", "background"): 1,
        ("polygon", "cold_joint"): 1,
        ("box", "cold_joint"): 1,
    }
    got = cvat.load(root / "cvat")
    assert [i.item_id for i in got.items] == ["board_a", "board_b"]
    assert shape_counts(got.items) == {
        ("box", "hot_spot"): 1,
        ("box", "background"): 1,
        ("polygon", "cold_joint"): 1,
        ("box", "cold_joint"): 1,
    }
    assert got.items[0].annotations[2].shape == Polygon(((30, 5), (40, 5), (40, 15)))
    got = yolo.load(root / "yolo")
    assert sorted(i.item_id for i in got.items) == ["board_a", "board_b"]
    # datumaro's YOLO exporter writes boxes only (the polygon is not exported)
    assert shape_counts(got.items) == {
        ("box", "hot_spot"): 1,
        ("box", "background"): 1,
        ("box", "cold_joint"): 1,
    }


# ---------------------------------------------------------------------------------------------
# XML with a document type declaration


INTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotation [
<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<annotation><size><width>10</width><height>10</height></size>
<object><name>&d;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>
</bndbox></object></annotation>
"""


def billion_laughs(root: str, body: str) -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE {root} [\n' + "\n".join(levels) + f"\n]>\n{body}"
    ).encode()


EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE annotations [<!ENTITY x SYSTEM "file:///etc/hostname">]>
<annotations><image id="0" name="a.png" width="10" height="10">
<box label="&x;" xtl="1" ytl="1" xbr="2" ybr="2"/></image></annotations>
"""


def test_voc_refuses_internal_entities() -> None:
    with pytest.raises(AnnotationFormatError, match=r"a.xml: .*document type declaration"):
        voc.parse({"Annotations/a.xml": INTERNAL_ENTITY})
    # skipping invalid files leaves it out, and says why; no 3 MB label is built
    result = voc.parse({"Annotations/a.xml": INTERNAL_ENTITY}, skip_invalid=True)
    assert result.items == []
    assert "document type declaration" in result.skipped[0].reason


def test_voc_and_cvat_refuse_billion_laughs() -> None:
    body = "<annotation><size><width>9</width><height>9</height></size>"
    body += "<object><name>&lol9;</name></object></annotation>"
    with pytest.raises(AnnotationFormatError, match="document type declaration"):
        voc.parse({"Annotations/a.xml": billion_laughs("annotation", body)})
    body = '<annotations><image id="0" name="a.png" width="9" height="9">'
    body += '<box label="&lol9;" xtl="1" ytl="1" xbr="2" ybr="2"/></image></annotations>'
    with pytest.raises(AnnotationFormatError, match=r"a.xml: .*document type declaration"):
        cvat.parse({"a.xml": billion_laughs("annotations", body)})
    with pytest.raises(AnnotationFormatError, match="document type declaration"):
        cvat.parse({"v/annotations.xml": billion_laughs("annotations", body)}, mode="video")


def test_cvat_refuses_internal_and_external_entities() -> None:
    with pytest.raises(AnnotationFormatError, match="document type declaration"):
        cvat.parse({"a.xml": EXTERNAL_ENTITY})
    internal = INTERNAL_ENTITY.replace(b"DOCTYPE annotation", b"DOCTYPE annotations")
    with pytest.raises(AnnotationFormatError, match="document type declaration"):
        cvat.parse({"a.xml": internal})


# ---------------------------------------------------------------------------------------------
# clipping


@given(
    x=st.floats(-2, 90),
    y=st.floats(-2, 40),
    w=st.floats(0.5, 20),
    h=st.floats(0.5, 20),
)
def test_clipped_shapes_lie_in_the_image_or_are_refused(
    x: float, y: float, w: float, h: float
) -> None:
    box = Box(x, y, w, h)
    clipped = clip_shape(box, 100, 50, margin=1.0)
    x0, y0, x1, y1 = box.bounds()
    near = x0 >= -1.0 and y0 >= -1.0 and x1 <= 101.0 and y1 <= 51.0
    if clipped is None:
        assert not near or min(x1, 100) <= max(x0, 0) or min(y1, 50) <= max(y0, 0)
        return
    assert near
    assert clipped.inside(100, 50)
    if box.inside(100, 50):
        assert clipped == box
    polygon = clip_shape(Polygon(((x, y), (x + w, y), (x, y + h))), 100, 50, margin=1.0)
    assert polygon is not None
    assert polygon.inside(100, 50)
    point = Point(x, y)
    moved = Point(min(max(x, 0.0), 100.0), min(max(y, 0.0), 50.0))
    assert clip_shape(point, 100, 50, margin=1.0) == (point if point.inside(100, 50) else moved)


def test_xml_without_a_dtd_expands_no_entity_and_a_quoted_doctype_is_harmless() -> None:
    undefined = (
        b'<annotations><image id="0" name="a.png" width="9" height="9">'
        b'<box label="&x;" xtl="1" ytl="1" xbr="2" ybr="2"/></image></annotations>'
    )
    with pytest.raises(AnnotationFormatError, match="not well-formed XML: undefined entity"):
        cvat.parse({"a.xml": undefined})
    quoted = (
        b"<annotations><!-- no <!DOCTYPE here, only words -->"
        b'<image id="0" name="a.png" width="9" height="9">'
        b'<box label="x &amp; y" xtl="1" ytl="1" xbr="2" ybr="2"/></image></annotations>'
    )
    (item,) = cvat.parse({"a.xml": quoted}).items
    assert item.annotations[0].label == "x & y"


# ---------------------------------------------------------------------------------------------
# labelImg and mmdetection


def test_labelimg_voc_and_yolo_files_beside_their_images() -> None:
    expected = [("hot_spot", Box(8, 12, 16, 6)), ("cold_joint", Box(40, 6, 24, 24))]
    (item,) = voc.load(INTEROP / "labelimg/voc").items
    assert item.item_id == "board_07"
    assert [(a.label, a.shape) for a in item.annotations] == expected
    assert item.annotations[1].metadata == {"difficult": True, "truncated": True}
    result = yolo.load(INTEROP / "labelimg/yolo")
    (item,) = result.items
    assert (item.item_id, item.width, item.height) == ("board_07", 64, 48)
    assert [(a.label, a.shape) for a in item.annotations] == expected
    assert [spec.name for spec in result.schema.labels] == ["hot_spot", "cold_joint"]


def test_mmdetection_coco_with_category_id_0() -> None:
    result = coco.load(INTEROP / "mmdetection/balloon_train_coco.json")
    first, second = result.items
    assert first.item_id == "34020010494_e5cb88e1c4_k"
    assert shape_counts(result.items) == {("polygon", "balloon"): 3}
    assert [len(a.shape.points) for a in first.annotations] == [4, 3]
    assert second.annotations[0].shape == Polygon(
        ((2.5, 3.5), (9.5, 3.5), (9.5, 11.5), (2.5, 11.5))
    )


def test_label_studio_converter_coco_output() -> None:
    result = coco.load(INTEROP / "label-studio-converter/result.json")
    ids = [item.item_id for item in result.items]
    assert ids == ["5c2a1b0e-board_07", "9d1e77aa-board_08"]
    box, polygon = result.items[0].annotations
    assert (box.label, box.shape) == ("hot_spot", Box(8, 12, 16, 6))
    assert (polygon.label, polygon.shape) == ("cold_joint", Polygon(((40, 6), (56, 6), (56, 30))))
    assert result.items[1].annotations == ()
    assert [spec.name for spec in result.schema.labels] == ["cold_joint", "hot_spot"]


# ---------------------------------------------------------------------------------------------
# any bytes: a result or a format error, never another exception


@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_parsers_answer_any_bytes_with_a_result_or_a_format_error(data: bytes) -> None:
    xml_like = b"<annotations>" + data + b"</annotations>"
    for parse, files in (
        (cvat.parse, {"a.xml": data}),
        (cvat.parse, {"a.xml": xml_like}),
        (voc.parse, {"Annotations/a.xml": data}),
        (coco.parse, data),
        (label_studio.parse, data),
    ):
        try:
            result = parse(files, skip_invalid=True)
        except AnnotationFormatError as exc:
            message = str(exc)  # names what is wrong
        else:
            message = f"{len(result.items)} items"
            assert all(isinstance(item, AnnotatedItem) for item in result.items)
        assert message


def test_cvat_tracks_beside_images_are_reported_not_dropped() -> None:
    xml = (
        b'<annotations><image id="0" name="a.png" width="10" height="10">'
        b'<box label="x" xtl="1" ytl="1" xbr="2" ybr="2"/></image>'
        b'<track id="4" label="x"><box frame="0" xtl="1" ytl="1" xbr="2" ybr="2"/></track>'
        b"</annotations>"
    )
    with pytest.raises(AnnotationFormatError, match=r"track\[0\] \(id 4\): tracks beside images"):
        cvat.parse({"a.xml": xml})
    result = cvat.parse({"a.xml": xml}, skip_invalid=True)
    assert len(result.items[0].annotations) == 1
    assert "cvat-video" in result.skipped[0].reason


def test_a_dtd_hidden_behind_a_declared_encoding_is_refused() -> None:
    # "+ADw-" is "<" in UTF-7: the file is read as UTF-8 whatever it declares
    xml = (
        b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE annotations +AFs-'
        b'+ADw-!ENTITY a "aaaa"+AD4-+AF0-+AD4-<annotations><image id="0" name="a.png" '
        b'width="9" height="9"><box label="&a;" xtl="1" ytl="1" xbr="2" ybr="2"/></image>'
        b"</annotations>"
    )
    with pytest.raises(AnnotationFormatError, match=r"a\.xml"):
        cvat.parse({"a.xml": xml})
