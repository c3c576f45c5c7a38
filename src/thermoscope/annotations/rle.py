"""COCO-compatible run-length encoding of binary masks.

A mask of ``height`` x ``width`` pixels is read in column-major order (down the first column,
then the next, as COCO and pycocotools do) and stored as alternating run lengths, starting with
a run of zeros (which may be empty): ``[0-run, 1-run, 0-run, ...]``, summing to
``height * width``. This is the *uncompressed* form (``{"size": [h, w], "counts": [...]}``).

The *compressed* form is the string pycocotools writes (``maskApi.c`` ``rleToString``): each
count, from the fourth on replaced by its difference to the count two places before it, is
written as a little-endian sequence of 5-bit groups, sign-extended from bit 4 of the last
group; each group becomes one character ``chr(48 + g)`` with bit 5 (``0x20``) set on every
group but the last.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from thermoscope.annotations.errors import AnnotationError


def encode(mask: NDArray[np.bool_]) -> list[int]:
    """Run lengths (pixels) of a 2-D boolean mask in column-major order, zeros first."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise AnnotationError(f"RLE: mask must be 2-D, got shape {arr.shape}")
    flat = arr.astype(bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def decode(counts: Sequence[int], height: int, width: int) -> NDArray[np.bool_]:
    """The (height, width) boolean mask of uncompressed run lengths."""
    check_counts(counts, height, width)
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    return flat.reshape((width, height)).T.copy()


def check_counts(counts: Sequence[int], height: int, width: int) -> None:
    """Raise ``AnnotationError`` unless ``counts`` are non-negative and sum to ``height*width``."""
    if height < 0 or width < 0:
        raise AnnotationError(f"RLE: size must be non-negative, got {height}x{width} (HxW)")
    if any(isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 0 for c in counts):
        raise AnnotationError("RLE: counts must be non-negative integers")
    total = sum(int(c) for c in counts)
    if total != height * width:
        raise AnnotationError(
            f"RLE: counts sum to {total}, a {height}x{width} (HxW) mask has {height * width} pixels"
        )


def area(counts: Sequence[int]) -> int:
    """Number of foreground pixels (the sum of the odd-position runs)."""
    return int(sum(counts[1::2]))


def to_string(counts: Sequence[int]) -> str:
    """The compressed COCO string of uncompressed run lengths."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def from_string(text: str) -> list[int]:
    """Uncompressed run lengths of a compressed COCO string."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x = 0
        k = 0
        more = True
        while more:
            if pos >= len(text):
                raise AnnotationError(f"RLE string ends inside a count at character {pos}")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise AnnotationError(f"RLE string: invalid character {text[pos]!r} at {pos}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts
