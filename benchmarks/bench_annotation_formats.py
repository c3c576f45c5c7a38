"""Export and import speed of every annotation format: 10,000 frames with 5 shapes each.

Run: ``.venv/bin/python benchmarks/bench_annotation_formats.py [--frames N] [--masks] [--dir D]``

Each frame is a 640 x 512 single-frame item with three boxes, a polygon (8 points) and a
rotated box, all with attributes and mixed human / machine provenance (``--masks`` swaps one
box for a small RLE mask). ``export`` is ``save`` to a fresh folder on disk (annotation files
only: no renderings or side-cars), ``import`` is ``load`` of that folder; the table prints
seconds each way and the shapes written and read back (formats that turn polygons or rotated
boxes into boxes keep the count; none here drops a shape). Target: under 10 s each way,
judged on CPU seconds, since elapsed time on a shared host also counts other processes.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from thermoscope.annotations import (
    AnnotatedItem,
    Annotation,
    AttributeSpec,
    Box,
    LabelSchema,
    LabelSpec,
    Mask,
    Polygon,
    Provenance,
    RotatedBox,
)
from thermoscope.annotations.formats import FORMATS, ImportDefaults

WIDTH, HEIGHT = 640, 512
TARGET_S = 10.0
SCHEMA = LabelSchema(
    (
        LabelSpec("hot_spot", (AttributeSpec("severity", "enum", values=("low", "high")),)),
        LabelSpec("cold_joint"),
    )
)


def make_items(frames: int, *, masks: bool, seed: int = 0) -> list[AnnotatedItem]:
    """``frames`` single-frame items with 5 shapes each."""
    rng = np.random.default_rng(seed)
    created = datetime(2024, 1, 1, tzinfo=UTC)
    human = Provenance.human("alice", created=created)
    machine = Provenance.machine("detector", "2", score=0.9, created=created)
    blob = np.zeros((HEIGHT, WIDTH), dtype=bool)
    blob[200:230, 300:340] = True
    mask = Mask.from_array(blob)
    angles = np.linspace(0.0, 2 * math.pi, 8, endpoint=False)
    out = []
    for n in range(frames):
        x, y = rng.uniform(20, WIDTH - 120), rng.uniform(20, HEIGHT - 120)
        shapes: list[object] = [
            Box(x, y, 40.5, 30.25),
            Box(x + 50, y + 10, 20.0, 25.0),
            mask if masks else Box(x + 5, y + 60, 33.0, 12.5),
            Polygon(tuple((x + 50 + 30 * math.cos(a), y + 50 + 20 * math.sin(a)) for a in angles)),
            RotatedBox(x + 60, y + 60, 30.0, 12.0, 25.0),
        ]
        annotations = tuple(
            Annotation(
                label="hot_spot" if k % 2 == 0 else "cold_joint",
                shape=shape,
                attributes={"severity": "high"} if k % 2 == 0 else {},
                provenance=machine if k == 4 else human,
                id=f"r{k}",
            )
            for k, shape in enumerate(shapes)
        )
        out.append(
            AnnotatedItem(item_id=f"{n:08x}", width=WIDTH, height=HEIGHT, annotations=annotations)
        )
    return out


Row = tuple[str, float, float, float, float, int, int]


def run(frames: int, masks: bool, folder: str | None) -> list[Row]:
    items = make_items(frames, masks=masks)
    defaults = ImportDefaults(created=datetime(2024, 1, 1, tzinfo=UTC))
    rows = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for name, fmt in FORMATS.items():
            target = Path(tmp) / name
            c0, t0 = time.process_time(), time.perf_counter()
            fmt.save(items, target, schema=SCHEMA)
            c1, t1 = time.process_time(), time.perf_counter()
            result = fmt.load(target, schema=SCHEMA, defaults=defaults)
            c2, t2 = time.process_time(), time.perf_counter()
            written = sum(len(i.annotations) for i in items)
            read = sum(len(i.annotations) for i in result.items)
            read += sum(len(t.keyframes) for i in result.items for t in i.tracks)
            rows.append((name, t1 - t0, t2 - t1, c1 - c0, c2 - c1, written, read))
            shutil.rmtree(target)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--masks", action="store_true", help="one RLE mask per frame")
    parser.add_argument("--dir", help="where to write the exports (default: the temp folder)")
    args = parser.parse_args()
    rows = run(args.frames, args.masks, args.dir)
    print(f"{args.frames} frames x 5 shapes ({args.frames * 5} shapes), 640 x 512 px")
    print("wall: elapsed seconds; cpu: this process's CPU seconds (they differ on a busy host)")
    print(
        f"{'format':<14} {'export wall':>11} {'import wall':>11} {'export cpu':>10} "
        f"{'import cpu':>10} {'shapes out':>10} {'shapes in':>9}  < {TARGET_S:g} s"
    )
    for name, ew, iw, ec, ic, written, read in rows:
        ok = "yes" if max(ec, ic) < TARGET_S else "NO"
        print(
            f"{name:<14} {ew:>11.2f} {iw:>11.2f} {ec:>10.2f} {ic:>10.2f} {written:>10} "
            f"{read:>9}  {ok}"
        )


if __name__ == "__main__":
    main()
