"""Write ``datumaro-written/``: a small dataset exported by datumaro's own exporters.

Run from the repository root: ``.venv/bin/python tests/data/interop/make_datumaro_written.py``.
The label map starts with ``background`` (datumaro's VOC default) and one box is labelled with
it; ``board_a`` has two boxes and a polygon, ``board_b`` one box. Images are 64 x 48 px.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import datumaro as dm
import numpy as np
from datumaro.components.annotation import Bbox, Polygon
from datumaro.components.dataset_base import DatasetItem
from datumaro.components.media import Image

OUT = Path(__file__).parent / "datumaro-written"
FORMATS = ("voc_detection", "coco_instances", "yolo", "cvat")


def main() -> None:
    pixels = np.zeros((48, 64, 3), np.uint8)
    items = [
        DatasetItem(
            id="board_a",
            subset="train",
            media=Image.from_numpy(pixels),
            annotations=[
                Bbox(10, 12, 10, 6, label=1, id=1),
                Bbox(2, 3, 5, 4, label=0, id=2),
                Polygon([30, 5, 40, 5, 40, 15], label=2, id=3),
            ],
        ),
        DatasetItem(
            id="board_b",
            subset="train",
            media=Image.from_numpy(pixels),
            annotations=[Bbox(1.5, 2.5, 6.5, 6.5, label=2, id=1)],
        ),
    ]
    dataset = dm.Dataset.from_iterable(items, categories=["background", "hot_spot", "cold_joint"])
    shutil.rmtree(OUT, ignore_errors=True)
    for fmt in FORMATS:
        dataset.export(str(OUT / fmt), fmt, save_media=True)


if __name__ == "__main__":
    main()
