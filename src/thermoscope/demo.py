"""The demo production line: synthetic PCBs recorded, read back, measured and rendered.

This runs the part of the loop that exists today on the embedded defaults (files in a local
folder): a camera records each part's power-on heating sequence, thermoscope reads the files back
through the same readers a real camera's files use, measures each part and renders thermograms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import thermoscope.io as tio
from thermoscope.datasets.synthetic import ProductLine
from thermoscope.render import Isotherm, encode_png, render

#: Components hotter than this at the end of the sequence are flagged in the demo (°C).
DEMO_LIMIT_C = 65.0


@dataclass(frozen=True, slots=True)
class DemoPart:
    """One inspected part: its recording, how it read back, and its rendering."""

    recording: Path
    thermogram: Path
    frames: int
    max_c: float
    flagged: bool


def run_demo(out: Path, *, parts: int = 6, seed: int = 0) -> list[DemoPart]:
    """Record ``parts`` PCBs (part 3 has a hot spot on U1), read them back, measure, render.

    Files land in ``out``: one ``.seq`` recording per part, a ``.csq`` (compressed) copy of the
    first, the last frame of each part as ``.tif`` (float32 °C), and a PNG thermogram per part
    with an isotherm at ``DEMO_LIMIT_C``.
    """
    line = ProductLine("pcb", rng=np.random.default_rng(seed))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k in range(parts):
        defect = "hot_spot" if k == 3 else None
        part = line.part(k, defect=defect, where="U1", sequence=True)
        frames = list(part.frames)
        recording = tio.save(frames, out / f"part_{k:03d}.seq")
        if k == 0:
            tio.save(frames, out / f"part_{k:03d}.csq")
        with tio.open_path(recording) as seq:
            last = seq[-1]
            count = len(seq)
        tio.save(last, out / f"part_{k:03d}_final.tif")
        max_c = float(np.nanmax(last.celsius))
        image = render(
            last.celsius, palette="iron", isotherms=[Isotherm(DEMO_LIMIT_C)], colorbar=True
        )
        thermogram = tio.registry.write_atomic(out / f"part_{k:03d}.png", encode_png(image))
        results.append(DemoPart(recording, thermogram, count, max_c, max_c > DEMO_LIMIT_C))
    return results
