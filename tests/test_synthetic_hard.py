"""The synthetic line's ``hard`` difficulty: determinism, ground truth for localisation,
physically plausible subtle defects, and the ``normal`` difficulty left bit for bit as it was."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from thermoscope.datasets.synthetic import ProductLine, simulate_run

#: SHA-256 of the ``normal`` output (raw counts, °C, masks, a sequence) before ``hard`` existed:
#: recipes, tests and recorded runs rely on it staying the same.
NORMAL_SHA256 = {
    "pcb": "be821578200f7390cd56e24834d678a3e7490ecf15914ffd01518df5584eb4e4",
    "battery": "a475914da50ffd39e9f909318cfc0310362dd7c393f69ec27bc3cfe5160d59f3",
    "seal": "5fc91934287540d0fd00e69aceb45b8bf2de520b148078bd8c0b9b9864a1979b",
}


@pytest.mark.parametrize("product", sorted(NORMAL_SHA256))
def test_normal_difficulty_is_unchanged_bit_for_bit(product: str) -> None:
    digest = hashlib.sha256()
    for part in simulate_run(product, parts=8, defect_rate=0.5, rng=np.random.default_rng(3)):
        assert part.frame.raw is not None
        digest.update(part.frame.raw.tobytes())
        digest.update(part.frame.celsius.tobytes())
        for defect in part.defects:
            digest.update(defect.mask.tobytes())
            digest.update(defect.kind.encode())
    recording = ProductLine(product, rng=np.random.default_rng(4)).part(5, sequence=True)
    for frame in recording.frames:
        assert frame.raw is not None
        digest.update(frame.raw.tobytes())
    assert digest.hexdigest() == NORMAL_SHA256[product]
