"""A dataset version exported to each interchange format and imported into a fresh dataset keeps
its frames (°C, bit for bit through the side-cars) and what the format holds of its annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from thermoscope.annotations import AnnotatedItem
from thermoscope.annotations.formats import FORMATS
from thermoscope.annotations.model import Annotation, Provenance
from thermoscope.annotations.shapes import Box
from thermoscope.cli.main import app
from thermoscope.datasets.hashing import content_id
from thermoscope.datasets.interchange import export_version, import_export
from thermoscope.datasets.store import DatasetStore
from thermoscope.datasets.synthetic import simulate_run

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
