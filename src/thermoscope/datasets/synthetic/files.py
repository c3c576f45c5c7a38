"""Writing a synthetic run to a folder: one recording per part plus its ground truth.

Layout of ``out``::

    PCB-000001.seq ...            one file per part, in a format thermoscope reads
    masks/PCB-000004_0.png        one 8-bit mask per defect (255 = defect), frame-sized
    ground_truth.jsonl            one JSON object per part, in part order

Each line of ``ground_truth.jsonl``: ``{"serial", "index", "product", "file", "frames",
"defective", "defects": [{"kind", "where", "frames": [first, stop], "delta_c", "bbox":
[x0, y0, x1, y1], "mask"}], "ambient_c", "drift_c", "pose": {"dx_px", "dy_px",
"angle_deg"}}``; paths are relative to ``out``, temperatures in °C, ``bbox`` in pixels with
x1, y1 exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import thermoscope.io as tio
from thermoscope.datasets.synthetic.line import SyntheticPart

#: Name of the ground-truth file in a saved run.
GROUND_TRUTH = "ground_truth.jsonl"


def save_run(parts: Iterable[SyntheticPart], out: str | Path, *, suffix: str = ".seq") -> Path:
    """Write each part's recording as ``<serial><suffix>``, its defect masks and the ground truth.

    Args:
        parts: the parts, e.g. ``simulate_run(...)`` or ``ProductLine.run(...)``.
        out: folder to write into (created when missing).
        suffix: file format by suffix (``.seq``, ``.csq``, ``.tif``, ``.npy``; ``.fff`` for
            single frames only).

    Returns:
        The path of ``ground_truth.jsonl``.
    """
    folder = Path(out)
    lines = []
    for part in parts:
        recording = tio.save(list(part.frames), folder / f"{part.serial}{suffix}")
        lines.append(json.dumps(_record(part, recording.name, folder)))
    text = "".join(line + "\n" for line in lines)
    return tio.registry.write_atomic(folder / GROUND_TRUTH, text.encode("utf-8"))


def _record(part: SyntheticPart, file: str, folder: Path) -> dict[str, Any]:
    defects = []
    for k, defect in enumerate(part.defects):
        mask_name = f"masks/{part.serial}_{k}.png"
        ok, png = cv2.imencode(".png", defect.mask.astype(np.uint8) * 255)
        if not ok:
            raise ValueError(f"cannot encode the mask of {part.serial} as PNG")
        tio.registry.write_atomic(folder / mask_name, png.tobytes())
        defects.append(
            {
                "kind": defect.kind,
                "where": defect.where,
                "frames": list(defect.frames),
                "delta_c": round(defect.delta_c, 3),
                "bbox": list(defect.bbox),
                "mask": mask_name,
            }
        )
    return {
        "serial": part.serial,
        "index": part.index,
        "product": part.product,
        "file": file,
        "frames": len(part.frames),
        "defective": part.is_defective,
        "defects": defects,
        "ambient_c": round(part.ambient_c, 3),
        "drift_c": round(part.drift_c, 3),
        "pose": {
            "dx_px": round(part.pose.dx_px, 3),
            "dy_px": round(part.pose.dy_px, 3),
            "angle_deg": round(part.pose.angle_deg, 3),
        },
    }
