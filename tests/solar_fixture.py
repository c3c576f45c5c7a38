"""A tiny folder in the InfraredSolarModules layout, written with synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from thermoscope.datasets.solar import SOLAR_CLASSES


def make_solar_folder(root: Path, *, per_class: int = 6, seed: int = 0) -> Path:
    """``root`` with ``images/<id>.jpg`` (40 x 24 grey) and ``module_metadata.json``.

    Each class gets a bright band at its own row, so a network can tell them apart; image 1
    is a byte copy of image 0 with another label (a conflicting duplicate, as in the original).
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    meta: dict[str, dict[str, str]] = {}
    n = 0
    for k, name in enumerate(SOLAR_CLASSES):
        for _ in range(per_class):
            image = rng.normal(100, 6, (40, 24))
            image[3 * k : 3 * k + 3] += 80
            ok, data = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8))
            assert ok
            (root / "images" / f"{n}.jpg").write_bytes(data.tobytes())
            meta[str(n)] = {"image_filepath": f"images/{n}.jpg", "anomaly_class": name}
            n += 1
    (root / "images" / "1.jpg").write_bytes((root / "images" / "0.jpg").read_bytes())
    meta["1"]["anomaly_class"] = SOLAR_CLASSES[3]
    (root / "module_metadata.json").write_text(json.dumps(meta))
    return root
