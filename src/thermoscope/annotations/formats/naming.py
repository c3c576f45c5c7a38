"""File stems of frames and item ids from other tools' file names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import quote, unquote

from thermoscope.annotations.formats.base import Problems

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Naming


_SAFE = "._-"
_PLAIN = re.compile(r"[A-Za-z0-9._-]+")
_STEM_FRAME = re.compile(r"(.+)@(\d{6,})")


def frame_stem(item_id: str, frame: int, frame_count: int) -> str:
    """The file stem of ``frame`` of an item (see the module docstring)."""
    base = item_id if _PLAIN.fullmatch(item_id) else quote(item_id, safe=_SAFE)
    return base if frame_count == 1 else f"{base}@{frame:06d}"


def item_id_of(name: str) -> str:
    """An item id from a file name or stem written by another tool: unquoted, whitespace
    runs replaced by ``_`` (``"item"`` when nothing is left)."""
    text = re.sub(r"\s+", "_", unquote(name)).strip("_")
    return text or "item"


def split_stem(stem: str) -> tuple[str, int | None]:
    """``(item id, frame)`` of a stem; ``frame`` is ``None`` unless it ends in ``@NNNNNN``."""
    match = _STEM_FRAME.fullmatch(stem)
    if match:
        return item_id_of(match.group(1)), int(match.group(2))
    return item_id_of(stem), None


def stem_of(path: str) -> str:
    """The stem of a ``/`` or ``\\`` separated path (file name without its last suffix)."""
    name = re.split(r"[\\/]", path)[-1]
    return name.rsplit(".", 1)[0] if "." in name[1:] else name


def group_frames(
    entries: Iterable[tuple[str, T]], problems: Problems, file: str
) -> list[tuple[str, list[T]]]:
    """Group ``(stem, payload)`` entries into items: stems ``<id>@NNNNNN`` whose frames run
    0..n-1 become one item; anything else is an item of one frame. Returns ``(item id,
    payloads by frame)`` in the order items first appear; a second entry for the same frame
    is a problem (reported, then ignored)."""
    groups: dict[str, dict[int, tuple[str, T]]] = {}
    singles: dict[str, tuple[str, T]] = {}
    order: list[tuple[str, str]] = []
    for stem, payload in entries:
        item_id, frame = split_stem(stem)
        if frame is None:
            if item_id in singles or item_id in groups:
                problems.fail(file, f"image {stem!r}", f"a second image of item {item_id!r}")
                continue
            singles[item_id] = (stem, payload)
            order.append(("single", item_id))
            continue
        frames = groups.setdefault(item_id, {})
        if not frames:
            order.append(("group", item_id))
        if frame in frames:
            problems.fail(file, f"image {stem!r}", f"a second image of frame {frame}")
            continue
        frames[frame] = (stem, payload)
    out: list[tuple[str, list[T]]] = []
    taken: set[str] = set()
    for kind, item_id in order:
        if kind == "single":
            out.append((item_id, [singles[item_id][1]]))
            taken.add(item_id)
            continue
        frames = groups[item_id]
        if sorted(frames) == list(range(len(frames))) and item_id not in singles:
            out.append((item_id, [frames[f][1] for f in range(len(frames))]))
            taken.add(item_id)
        else:  # not a complete sequence: every frame is an item of its own
            for f in sorted(frames):
                stem = frames[f][0]
                own = item_id_of(stem)
                if own in taken:
                    problems.fail(file, f"image {stem!r}", f"a second image of item {own!r}")
                    continue
                taken.add(own)
                out.append((own, [frames[f][1]]))
    return out
