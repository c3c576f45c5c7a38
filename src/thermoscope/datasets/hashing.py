"""Near-identical frames: a perceptual hash of a radiometric frame and fast near-pair search.

The perceptual hash (``perceptual_hash``) finds near-identical frames: the °C image (NaN filled
with the median) is resized to 32 x 32, and each of the 8 x 8 lowest-frequency DCT coefficients
but the constant one gives one bit, set when the coefficient exceeds their median (63 bits, as
16 hex digits). Offsets and gains of the temperature scale cancel out (they change only the
constant coefficient and the coefficients' common scale), so the same scene at another ambient
temperature hashes alike; a frame without contrast has no perceptual hash (``None``).

Exact content ids of frames live in ``thermoscope.storage.identity``.
"""

from __future__ import annotations

import itertools
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

#: Side of the image the perceptual hash is computed on (pixels).
PHASH_SIZE = 32
#: Default Hamming distance (bits out of 63) at or below which frames count as near-identical.
NEAR_DUPLICATE_BITS = 4


def _dct_bits(image: NDArray[np.float64]) -> int | None:
    coeffs = cv2.dct(image)[:8, :8].reshape(-1)[1:]
    if float(np.abs(coeffs).max()) <= 1e-9:
        return None
    bits = coeffs > np.median(coeffs)
    value = 0
    for bit in bits.tolist():
        value = (value << 1) | int(bit)
    return value


def perceptual_hash(celsius: NDArray[Any]) -> str | None:
    """A 63-bit DCT hash of a (H, W) °C image as 16 hex digits; ``None`` without contrast.

    The image is normalised (minus its median, divided by its spread) before resizing, so the
    hash ignores the temperature offset and scale; NaN pixels take the median.
    """
    values = np.asarray(celsius, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    centre = float(np.median(values[finite]))
    spread = float(np.max(np.abs(values[finite] - centre)))
    if spread <= 1e-6:
        return None
    image = np.where(finite, (values - centre) / spread, 0.0)
    interpolation = cv2.INTER_AREA if min(image.shape) >= PHASH_SIZE else cv2.INTER_LINEAR
    small = cv2.resize(image, (PHASH_SIZE, PHASH_SIZE), interpolation=interpolation)
    bits = _dct_bits(np.ascontiguousarray(small, dtype=np.float64))
    return None if bits is None else f"{bits:016x}"


def hamming(a: str, b: str) -> int:
    """Differing bits between two perceptual hashes (hex strings)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(values: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        counts: NDArray[np.uint8] = np.bitwise_count(values)
        return counts
    as_bytes = values.reshape(-1, 1).view(np.uint8)
    total: NDArray[np.uint8] = _POPCOUNT8[as_bytes].sum(axis=1, dtype=np.uint8)
    return total.reshape(values.shape)


def near_pairs(hashes: NDArray[np.uint64], max_distance: int) -> NDArray[np.intp]:
    """Index pairs ``(i, j)``, ``i < j``, of 63-bit hashes at most ``max_distance`` bits apart.

    Multi-index hashing: the bits are cut into ``max_distance + 1`` bands, and two hashes that
    close agree exactly on at least one band (pigeonhole), so only hashes sharing a band value
    are compared; for near-random hashes the work grows about linearly with their number.

    Returns:
        an array of shape (k, 2), each pair once, sorted.
    """
    n = len(hashes)
    if n < 2 or max_distance < 0:
        return np.empty((0, 2), dtype=np.intp)
    bands = min(max_distance + 1, 63)
    edges = np.linspace(0, 63, bands + 1).round().astype(int)
    found: list[NDArray[np.intp]] = []
    for lo, hi in itertools.pairwise(edges.tolist()):
        keys = (hashes >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(keys, kind="stable")
        ranked = keys[order]
        for offset in range(1, n):
            same = np.flatnonzero(ranked[:-offset] == ranked[offset:])
            if same.size == 0:
                break
            a, b = order[same], order[same + offset]
            close = _popcount(hashes[a] ^ hashes[b]) <= max_distance
            found.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[close])
    if not found:
        return np.empty((0, 2), dtype=np.intp)
    return np.unique(np.concatenate(found).astype(np.intp), axis=0)
