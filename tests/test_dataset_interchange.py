"""A dataset version exported to each interchange format and imported into a fresh dataset keeps
its frames (°C, bit for bit through the side-cars) and what the format holds of its annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from thermoscope import io as tio
from thermoscope.annotations import AnnotatedItem
from thermoscope.annotations.formats import FORMATS
from thermoscope.annotations.model import Annotation, Provenance
from thermoscope.annotations.shapes import Box, Polygon
from thermoscope.cli.main import app
from thermoscope.core import ThermalFrame
from thermoscope.datasets.interchange import export_version, import_export, import_onto_originals
from thermoscope.datasets.store import DatasetStore
from thermoscope.datasets.synthetic import simulate_run
from thermoscope.datasets.versions import DatasetError
from thermoscope.render import encode_png, render
from thermoscope.storage.identity import content_id

runner = CliRunner()


def _dataset(root: Path, parts: int = 4) -> tuple[DatasetStore, str]:
    store = DatasetStore.create(root)
    run = simulate_run("pcb", parts=parts, defect_rate=0.0, rng=np.random.default_rng(3))
    for part in run:
        frame = part.frame
        item = AnnotatedItem(
            item_id=content_id([frame]),
            width=frame.width,
            height=frame.height,
            frame_count=1,
            annotations=(
                Annotation(
                    label="hot_spot",
                    shape=Box(10.0, 12.0, 20.0, 16.0),
                    provenance=Provenance.human("qc"),
                ),
            ),
        )
        store.add(frame, annotation=item, serial=part.serial)
    return store, store.commit(message="four boards")


@pytest.mark.parametrize("fmt", ["coco", "yolo-detect", "cvat-images", "label-studio", "voc"])
def test_export_then_import_keeps_frames_and_boxes(tmp_path: Path, fmt: str) -> None:
    store, version = _dataset(tmp_path / "a")
    export_version(store, version, fmt, tmp_path / "export")
    fresh = DatasetStore.create(tmp_path / "b")
    summary = import_export(fresh, fmt, tmp_path / "export")
    assert len(summary.added) == 4
    assert summary.skipped == []
    # the side-cars hold °C only, so frame ids differ from the originals (which had raw counts)
    originals = {store.load_frame(r.frames[0]).celsius.tobytes() for r in store.version(version)}
    for record in fresh.items():
        assert fresh.load_frame(record.frames[0]).celsius.tobytes() in originals
        assert record.annotation is not None
        boxes = [a.shape for a in fresh.load_annotation(record.annotation).annotations]
        assert boxes == [Box(10.0, 12.0, 20.0, 16.0)]


def test_every_format_is_exported_by_the_cli(tmp_path: Path) -> None:
    _, version = _dataset(tmp_path / "ds", parts=2)
    for fmt in FORMATS:
        out = tmp_path / f"out-{fmt}"
        result = runner.invoke(
            app, ["dataset", "export", str(tmp_path / "ds"), version, str(out), "--format", fmt]
        )
        assert result.exit_code == 0, result.output
        assert out.is_dir()


def test_cli_import_reports_and_skips_invalid_entries(tmp_path: Path) -> None:
    store, version = _dataset(tmp_path / "ds", parts=2)
    export_version(store, version, "coco", tmp_path / "export")
    (tmp_path / "fresh").mkdir()
    DatasetStore.create(tmp_path / "fresh")
    args = [
        "dataset",
        "import",
        str(tmp_path / "fresh"),
        str(tmp_path / "export"),
        "--format",
        "coco",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 items added" in result.output
    again = runner.invoke(app, args)
    assert "0 items added, 2 unchanged" in again.output


def test_cli_import_of_a_broken_export_is_a_clear_error(tmp_path: Path) -> None:
    DatasetStore.create(tmp_path / "ds")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "annotations.json").write_text("{not json", encoding="utf-8")
    result = runner.invoke(
        app, ["dataset", "import", str(tmp_path / "ds"), str(tmp_path / "export")]
    )
    assert result.exit_code == 1
    assert "error" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# annotations made by other tools on rendered pictures, back onto the radiometric originals

W, H = 64, 48
# exact in every format: YOLO's 6-decimal normalised centres and sizes, Label Studio's percent
BOX_A = ("hot_spot", Box(8.0, 12.0, 16.0, 6.0))
POLYGON_A = ("cold_joint", Polygon(((40.0, 6.0), (56.0, 6.0), (56.0, 30.0))))
BOX_B = ("cold_joint", Box(4.0, 3.0, 8.0, 6.0))
BOX_HEAT = ("hot_spot", Box(32.0, 24.0, 16.0, 12.0))
LABELS = ["hot_spot", "cold_joint"]


def _originals(folder: Path) -> dict[str, list[ThermalFrame]]:
    """Radiometric originals (float32 °C TIFF), two single frames and a 3-frame sequence, and
    the pictures rendered from them (``board_a.png``, ``board_b.png``, ``heat@000001.png``)."""
    rng = np.random.default_rng(11)
    (folder / "originals" / "line2").mkdir(parents=True)
    (folder / "pictures").mkdir()
    made = {}
    for name, count in (("board_a", 1), ("board_b", 1), ("heat", 3)):
        frames = [
            ThermalFrame((20.0 + 15.0 * rng.random((H, W))).astype(np.float32))
            for _ in range(count)
        ]
        sub = "line2/" if name == "heat" else ""
        path = tio.save(frames, folder / "originals" / f"{sub}{name}.tiff")
        with tio.open_path(path) as seq:
            made[name] = list(seq)
    pictures = {"board_a": made["board_a"][0], "board_b": made["board_b"][0]}
    pictures["heat@000001"] = made["heat"][1]
    for stem, frame in pictures.items():
        (folder / "pictures" / f"{stem}.png").write_bytes(encode_png(render(frame.celsius)))
    return made


def _expected(fmt: str) -> dict[str, list[tuple[str, object]]]:
    polygons = fmt in ("coco_instances", "cvat", "label-studio")
    return {
        "board_a": [BOX_A, POLYGON_A] if polygons else [BOX_A],
        "board_b": [BOX_B],
        "heat": [BOX_HEAT],
    }


def _datumaro_export(folder: Path, fmt: str) -> Path:
    """Annotate the pictures with datumaro and export them with its ``fmt`` exporter."""
    import datumaro as dm
    from datumaro.components.annotation import Bbox
    from datumaro.components.annotation import Polygon as DmPolygon
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    def bbox(shape: Box, label: str) -> Bbox:
        return Bbox(shape.x, shape.y, shape.width, shape.height, label=LABELS.index(label))

    polygon = DmPolygon(
        [v for point in POLYGON_A[1].points for v in point], label=LABELS.index(POLYGON_A[0])
    )
    annotations = {
        "board_a": [bbox(BOX_A[1], BOX_A[0]), polygon],
        "board_b": [bbox(BOX_B[1], BOX_B[0])],
        "heat@000001": [bbox(BOX_HEAT[1], BOX_HEAT[0])],
    }
    items = [
        DatasetItem(
            id=stem,
            media=Image.from_file(str(folder / "pictures" / f"{stem}.png")),
            annotations=anns,
        )
        for stem, anns in annotations.items()
    ]
    out = folder / f"dm-{fmt}"
    dm.Dataset.from_iterable(items, categories=LABELS).export(str(out), fmt, save_media=True)
    return out


def _label_studio_export(folder: Path) -> Path:
    """The pictures as Label Studio exports them: uploaded files get a hash prefix, regions are
    in percent of the image with ``original_width``/``original_height``."""

    def region(rid: str, label: str, shape: object) -> dict[str, object]:
        if isinstance(shape, Box):
            kind = "rectanglelabels"
            value: dict[str, object] = {
                "x": shape.x / W * 100,
                "y": shape.y / H * 100,
                "width": shape.width / W * 100,
                "height": shape.height / H * 100,
                "rotation": 0,
            }
        else:
            assert isinstance(shape, Polygon)
            kind = "polygonlabels"
            value = {"points": [[x / W * 100, y / H * 100] for x, y in shape.points]}
        return {
            "id": rid,
            "type": kind,
            "from_name": "label",
            "to_name": "image",
            "original_width": W,
            "original_height": H,
            "image_rotation": 0,
            "origin": "manual",
            "value": {**value, kind: [label]},
        }

    regions = {
        "board_a": [region("k1", *BOX_A), region("k2", *POLYGON_A)],
        "board_b": [region("k3", *BOX_B)],
        "heat@000001": [region("k4", *BOX_HEAT)],
    }
    tasks = [
        {
            "id": n + 1,
            "data": {"image": f"/data/upload/1/{n:08x}-{stem}.png"},
            "annotations": [{"id": n + 10, "result": results, "was_cancelled": False}],
            "predictions": [],
        }
        for n, (stem, results) in enumerate(regions.items())
    ]
    path = folder / "project-1-at-2024-05-03.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


PEERS = {
    "coco_instances": "coco",
    "cvat": "cvat-images",
    "voc_detection": "voc",
    "yolo": "yolo-detect",
    "label-studio": "label-studio",
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("peer", list(PEERS))
def test_annotations_on_rendered_pictures_land_on_the_originals(tmp_path: Path, peer: str) -> None:
    originals = _originals(tmp_path)
    exported = (
        _label_studio_export(tmp_path)
        if peer == "label-studio"
        else _datumaro_export(tmp_path, peer)
    )
    root = tmp_path / "ds"
    store = DatasetStore.create(root)
    result = runner.invoke(
        app,
        [
            "dataset",
            "import",
            str(root),
            str(exported),
            "--format",
            PEERS[peer],
            "--originals",
            str(tmp_path / "originals"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 items added, 0 unchanged, 0 skipped" in result.output
    store = DatasetStore.open(root)
    expected = _expected(peer)
    for name, frames in (
        ("board_a", originals["board_a"]),
        ("board_b", originals["board_b"]),
        ("heat", [originals["heat"][1]]),
    ):
        record = store.item(content_id(frames))
        # temperatures bit for bit those of the original
        for fid, frame in zip(record.frames, frames, strict=True):
            assert np.array_equal(store.load_frame(fid).celsius, frame.celsius)
        assert record.annotation is not None
        item = store.load_annotation(record.annotation)
        got = sorted((a.label, repr(a.shape)) for a in item.annotations)
        assert got == sorted((label, repr(shape)) for label, shape in expected[name])
    heat = store.item(content_id([originals["heat"][1]]))
    assert heat.frame_index == 1
    assert heat.source == "heat.tiff"


def test_originals_already_in_the_dataset_get_the_annotations(tmp_path: Path) -> None:
    originals = _originals(tmp_path)
    store = DatasetStore.create(tmp_path / "ds")
    for path in sorted((tmp_path / "originals").rglob("*.tiff")):
        store.add_file(path)
    exported = _label_studio_export(tmp_path)
    summary = import_onto_originals(store, "label-studio", exported, tmp_path / "originals")
    # board_a and board_b were held without annotation; frame 1 of heat is an item of its own
    assert len(summary.added) == 3
    record = store.item(content_id(originals["board_a"]))
    assert record.annotation is not None
    again = import_onto_originals(store, "label-studio", exported, tmp_path / "originals")
    assert len(again.unchanged) == 3


def test_a_picture_without_a_fitting_original_is_a_clear_error(tmp_path: Path) -> None:
    _originals(tmp_path)
    store = DatasetStore.create(tmp_path / "ds")
    tasks = json.loads(_label_studio_export(tmp_path).read_text(encoding="utf-8"))
    for task in tasks:
        for r in task["annotations"][0]["result"]:
            r["original_width"], r["original_height"] = 2 * W, 2 * H
    (tmp_path / "big.json").write_text(json.dumps(tasks), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"no original fits \(board_a.tiff: 64x48 px, the "):
        import_onto_originals(store, "label-studio", tmp_path / "big.json", tmp_path / "originals")
    summary = import_onto_originals(
        store, "label-studio", tmp_path / "big.json", tmp_path / "originals", skip_invalid=True
    )
    assert summary.added == []
    assert len(summary.skipped) == 3
    (tmp_path / "originals" / "board_a.tiff").unlink()
    with pytest.raises(DatasetError, match="original named '00000000-board_a' or 'board_a'"):
        import_onto_originals(
            store, "label-studio", _label_studio_export(tmp_path), tmp_path / "originals"
        )
