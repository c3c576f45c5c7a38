"""Export and import speed of every annotation format: 10,000 frames with 5 shapes each, beside
datumaro (the peer) on the same frames in the same run.

Run: ``.venv/bin/python benchmarks/bench_annotation_formats.py [--frames N] [--masks] [--dir D]``

Each frame is a 640 x 512 single-frame item with three boxes, a polygon (8 points) and a
rotated box, all with attributes and mixed human / machine provenance (``--masks`` swaps one
box for a small RLE mask). ``export`` is ``save`` to a fresh folder on disk (annotation files
only: no renderings or side-cars), ``import`` is ``load`` of that folder; the table prints
seconds each way and the shapes written and read back (formats that turn polygons or rotated
boxes into boxes keep the count; none here drops a shape), and whether what came back is
exactly what the format keeps (``reduce``: lossless within the format). Target: under 10 s each
way, judged on CPU seconds, since elapsed time on a shared host also counts other processes.

datumaro exports the same frames (boxes with the same attributes, the polygon, the rotated box)
with its exporter of the same format (``coco_instances``, ``yolo``, ``cvat``,
``voc_detection``; it has none for Label Studio or CVAT for video) from a dataset already in
memory, and imports them with ``Dataset.import_from`` followed by reading every item's
annotations (datumaro reads lazily). The ratio is datumaro's CPU seconds over ours: above 1,
ours is faster. On a shared host, ``--dir /dev/shm`` (a RAM disk) keeps other processes' disk
traffic out of the figures: writing and opening 10,000 small files on a busy disk costs both
tools seconds of system time that have nothing to do with either.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import signature
from pathlib import Path
from typing import Any

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


#: Our format name -> datumaro's exporter/importer of the same format.
PEER_FORMATS = {
    "coco": "coco_instances",
    "yolo-detect": "yolo",
    "cvat-images": "cvat",
    "voc": "voc_detection",
}


@dataclass
class Row:
    """Seconds (wall and CPU) each way for one format, ours and datumaro's."""

    name: str
    export_wall: float
    import_wall: float
    export_cpu: float
    import_cpu: float
    written: int
    read: int
    lossless: bool
    peer_export_cpu: float | None = None
    peer_import_cpu: float | None = None
    peer_read: int | None = None


def peer_dataset(items: list[AnnotatedItem]) -> Any:
    """The items as a datumaro dataset in memory (same shapes, labels and attributes)."""
    import datumaro as dm
    from datumaro.components.annotation import (
        AnnotationType,
        Bbox,
        LabelCategories,
        RotatedBbox,
    )
    from datumaro.components.annotation import Polygon as DmPolygon
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image

    labels = [spec.name for spec in SCHEMA.labels]
    out = []
    for item in items:
        annotations: list[Any] = []
        for n, a in enumerate(item.annotations):
            common = {"label": labels.index(a.label), "id": n + 1, "attributes": dict(a.attributes)}
            shape = a.shape
            if isinstance(shape, Box):
                annotations.append(Bbox(shape.x, shape.y, shape.width, shape.height, **common))
            elif isinstance(shape, Polygon):
                flat = [v for point in shape.points for v in point]
                annotations.append(DmPolygon(flat, **common))
            elif isinstance(shape, RotatedBox):
                annotations.append(
                    RotatedBbox(
                        shape.cx, shape.cy, shape.width, shape.height, shape.angle_deg, **common
                    )
                )
        out.append(
            DatasetItem(
                id=item.item_id,
                media=Image.from_numpy(
                    np.zeros((1, 1, 3), np.uint8), size=(item.height, item.width)
                ),
                annotations=annotations,
            )
        )
    categories = LabelCategories.from_iterable(
        (spec.name, "", [a.name for a in spec.attributes]) for spec in SCHEMA.labels
    )
    return dm.Dataset.from_iterable(out, categories={AnnotationType.label: categories})


def run_peer(dataset: Any, fmt: str, target: Path) -> tuple[float, float, int]:
    """datumaro's export and import CPU seconds, and the annotations it read back."""
    import datumaro as dm

    c0 = time.process_time()
    dataset.export(str(target), fmt, save_media=False)
    c1 = time.process_time()
    if fmt == "yolo":  # without images, datumaro's YOLO importer takes sizes from images.meta
        lines = (f"{item.id} {item.media.size[0]} {item.media.size[1]}\n" for item in dataset)
        (target / "images.meta").write_text("".join(lines), encoding="utf-8")
        c1 = time.process_time()
    if fmt == "cvat":  # datumaro's CVAT importer wants each image file to exist (not read)
        (target / "images").mkdir(exist_ok=True)
        for item in dataset:
            (target / "images" / f"{item.id}.jpg").touch()
    c1_import = time.process_time()
    loaded = dm.Dataset.import_from(str(target), fmt)
    read = sum(len(item.annotations) for item in loaded)
    c2 = time.process_time()
    return c1 - c0, c2 - c1_import, read


def run_ours(
    fmt: Any, items: list[AnnotatedItem], target: Path, defaults: ImportDefaults
) -> tuple[float, float, float, float, Any]:
    """Our save and load: wall and CPU seconds each way, and what was read."""
    c0, t0 = time.process_time(), time.perf_counter()
    fmt.save(items, target, schema=SCHEMA)
    c1, t1 = time.process_time(), time.perf_counter()
    result = fmt.load(target, schema=SCHEMA, defaults=defaults)
    c2, t2 = time.process_time(), time.perf_counter()
    shutil.rmtree(target)
    return t1 - t0, t2 - t1, c1 - c0, c2 - c1, result


def run(frames: int, masks: bool, folder: str | None, peer: bool, repeat: int) -> list[Row]:
    """Each format (and datumaro's) ``repeat`` times, in turns; the fastest run of each way
    counts (the least disturbed by other work on the host)."""
    items = make_items(frames, masks=masks)
    defaults = ImportDefaults(created=datetime(2024, 1, 1, tzinfo=UTC))
    dataset = peer_dataset(items) if peer else None
    rows = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for name, fmt in FORMATS.items():
            ours = []
            theirs = []
            for _ in range(repeat):
                ours.append(run_ours(fmt, items, Path(tmp) / name, defaults))
                if dataset is not None and name in PEER_FORMATS:
                    peer_target = Path(tmp) / f"peer-{name}"
                    theirs.append(run_peer(dataset, PEER_FORMATS[name], peer_target))
                    shutil.rmtree(peer_target)
            result = ours[-1][4]
            written = sum(len(i.annotations) for i in items)
            read = sum(len(i.annotations) for i in result.items)
            read += sum(len(t.keyframes) for i in result.items for t in i.tracks)
            options = (
                {"schema": SCHEMA} if "schema" in signature(fmt.module.reduce).parameters else {}
            )
            kept, _ = fmt.reduce(items, defaults=defaults, **options)
            best = [min(o[k] for o in ours) for k in range(4)]
            row = Row(name, *best, written, read, result.items == kept)
            if theirs:
                row.peer_export_cpu = min(t[0] for t in theirs)
                row.peer_import_cpu = min(t[1] for t in theirs)
                row.peer_read = theirs[-1][2]
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--masks", action="store_true", help="one RLE mask per frame")
    parser.add_argument("--dir", help="where to write the exports (default: the temp folder)")
    parser.add_argument("--no-peer", action="store_true", help="leave datumaro out")
    parser.add_argument("--repeat", type=int, default=1, help="runs per way; the fastest counts")
    args = parser.parse_args()
    rows = run(args.frames, args.masks, args.dir, not args.no_peer, max(1, args.repeat))
    print(f"{args.frames} frames x 5 shapes ({args.frames * 5} shapes), 640 x 512 px")
    print("wall: elapsed seconds; cpu: this process's CPU seconds (they differ on a busy host)")
    print("dm: datumaro's CPU seconds on the same frames; x: dm / ours (above 1: ours faster)")
    print(f"fastest of {args.repeat} run(s) each way")
    print(
        f"{'format':<14} {'exp wall':>8} {'imp wall':>8} {'exp cpu':>7} {'imp cpu':>7} "
        f"{'dm exp':>6} {'x':>5} {'dm imp':>6} {'x':>5} {'out':>6} {'in':>6} {'dm in':>6} "
        f"{'lossless':>8}  < {TARGET_S:g} s"
    )

    def cell(value: float | None, width: int) -> str:
        return f"{value:>{width}.2f}" if value is not None else f"{'-':>{width}}"

    for r in rows:
        ok = "yes" if max(r.export_cpu, r.import_cpu) < TARGET_S else "NO"
        ex = r.peer_export_cpu / r.export_cpu if r.peer_export_cpu is not None else None
        ix = r.peer_import_cpu / r.import_cpu if r.peer_import_cpu is not None else None
        dm_in = f"{r.peer_read:>6}" if r.peer_read is not None else f"{'-':>6}"
        print(
            f"{r.name:<14} {r.export_wall:>8.2f} {r.import_wall:>8.2f} {r.export_cpu:>7.2f} "
            f"{r.import_cpu:>7.2f} {cell(r.peer_export_cpu, 6)} {cell(ex, 5)} "
            f"{cell(r.peer_import_cpu, 6)} {cell(ix, 5)} {r.written:>6} {r.read:>6} {dm_in} "
            f"{'yes' if r.lossless else 'NO':>8}  {ok}"
        )


if __name__ == "__main__":
    main()
