"""Train / validation / test splits without leakage.

Items are first merged into *leakage groups*, which are never divided between parts:

1. items that share a frame (the same content id: exact duplicates, or a sequence and a frame of
   it) are one group;
2. items whose perceptual hashes (``hashing.perceptual_hash``) differ in at most
   ``near_duplicate_bits`` bits are one group (near-identical frames: re-quantised copies,
   consecutive frames of a still scene);
3. items with the same value of each ``group_by`` field (part ``serial``, recording
   ``sequence``, ``duplicate_group``) are one group.

Groups are merged transitively (union-find): if A is near B and B has C's serial, A, B and C stay
together. Each group then gets a stratum, the most common key of its items (``verdict``: OK / NG /
none; ``label``: the item's rarest label in the whole set, or none), ties going to the rarer key.
Groups are ordered by stratum, shuffled by ``rng`` within a stratum, and dealt one by one to the
part furthest below its share of what has been dealt so far. So every stratum is spread over
the parts in proportion (within about one group), and each part's size is within the largest
group of its target. Items are sorted by id first: the result depends on the items and the
``rng`` state only, never on their order.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from thermoscope.datasets.hashing import NEAR_DUPLICATE_BITS, near_pairs
from thermoscope.datasets.versions import DatasetError, ItemRecord

GroupField = Literal["serial", "sequence", "duplicate_group"]
StratifyBy = Literal["label", "verdict"]
#: The default parts and their shares of the items.
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}
#: Grouping fields used when none are named.
GROUP_FIELDS: tuple[GroupField, ...] = ("serial", "sequence", "duplicate_group")
#: Stratum of items without a verdict or label.
NONE_KEY = "none"


@dataclass(frozen=True, slots=True)
class SplitResult:
    """The parts of a split and the leakage groups they were built from.

    Attributes:
        parts: part name -> sorted item ids (every item in exactly one part).
        groups: the leakage groups (sorted item ids), each entirely inside one part.
        strata: part name -> stratum key -> number of items.
        assignment: item id -> part name.
    """

    parts: Mapping[str, tuple[str, ...]]
    groups: tuple[tuple[str, ...], ...]
    strata: Mapping[str, Mapping[str, int]]
    assignment: Mapping[str, str]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _fields(group_by: GroupField | Sequence[GroupField] | None) -> tuple[GroupField, ...]:
    if group_by is None:
        return ()
    fields: tuple[GroupField, ...] = (group_by,) if isinstance(group_by, str) else tuple(group_by)
    for name in fields:
        if name not in GROUP_FIELDS:
            raise DatasetError(f"cannot group by {name!r}; choose from {', '.join(GROUP_FIELDS)}")
    return fields


def leakage_groups(
    items: Iterable[ItemRecord],
    *,
    group_by: GroupField | Sequence[GroupField] | None = GROUP_FIELDS,
    near_duplicate_bits: int | None = NEAR_DUPLICATE_BITS,
) -> list[list[ItemRecord]]:
    """Items merged by shared frames, near-identical perceptual hashes and ``group_by`` fields.

    Args:
        items: the items (ids unique).
        group_by: fields whose equal values tie items together (``None`` or ``()``: none).
        near_duplicate_bits: largest Hamming distance of perceptual hashes that counts as
            near-identical; ``None`` to merge exact frame matches only.

    Returns:
        the groups, each sorted by id, ordered by their first id.
    """
    ordered = sorted(items, key=lambda item: item.id)
    if len({item.id for item in ordered}) != len(ordered):
        raise DatasetError("item ids must be unique to split")
    uf = _UnionFind(len(ordered))
    first_of: dict[tuple[str, str], int] = {}

    def tie(kind: str, value: str, index: int) -> None:
        seen = first_of.setdefault((kind, value), index)
        if seen != index:
            uf.union(seen, index)

    fields = _fields(group_by)
    for index, item in enumerate(ordered):
        for fid in item.frames:
            tie("frame", fid, index)
        for name in fields:
            value = getattr(item, name)
            if value is not None:
                tie(name, value, index)
    if near_duplicate_bits is not None:
        hashed = [i for i, item in enumerate(ordered) if item.phash is not None]
        values = np.array([int(str(ordered[i].phash), 16) for i in hashed], dtype=np.uint64)
        for a, b in near_pairs(values, near_duplicate_bits).tolist():
            uf.union(hashed[a], hashed[b])
    groups: dict[int, list[ItemRecord]] = {}
    for index, item in enumerate(ordered):
        groups.setdefault(uf.find(index), []).append(item)
    return list(groups.values())


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """The parts' shares as floats; ``DatasetError`` unless each is >= 0 and they add up to 1."""
    if not fractions:
        raise DatasetError("a split needs at least one part")
    out = {str(k): float(v) for k, v in fractions.items()}
    for name, value in out.items():
        if not name or not math.isfinite(value) or value < 0:
            raise DatasetError(f"part {name!r}: fraction must be a number >= 0, got {value}")
    total = sum(out.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise DatasetError(f"fractions must add up to 1, they add up to {total:g}")
    return out


def _item_keys(items: Sequence[ItemRecord], stratify_by: StratifyBy | None) -> dict[str, str]:
    """Stratum key per item id."""
    if stratify_by is None:
        return {item.id: NONE_KEY for item in items}
    if stratify_by == "verdict":
        return {item.id: item.verdict or NONE_KEY for item in items}
    if stratify_by != "label":
        raise DatasetError(f"cannot stratify by {stratify_by!r}; choose label or verdict")
    frequency = Counter(label for item in items for label, n in item.labels.items() if n > 0)
    keys = {}
    for item in items:
        present = [label for label, n in item.labels.items() if n > 0]
        keys[item.id] = min(present, key=lambda k: (frequency[k], k)) if present else NONE_KEY
    return keys


def split(
    items: Iterable[ItemRecord],
    *,
    rng: np.random.Generator,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    group_by: GroupField | Sequence[GroupField] | None = GROUP_FIELDS,
    stratify_by: StratifyBy | None = None,
    near_duplicate_bits: int | None = NEAR_DUPLICATE_BITS,
) -> SplitResult:
    """Split items into parts so that no leakage group straddles two parts.

    Args:
        items: the items (``ItemRecord``; ids unique).
        rng: the random generator (the same seed gives the same split).
        fractions: part name -> share of the items (>= 0, adding up to 1).
        group_by: fields whose equal values keep items together (see the module docstring).
        stratify_by: ``"verdict"`` or ``"label"`` to spread each class over the parts in
            proportion, or ``None``.
        near_duplicate_bits: perceptual-hash distance (bits of 63) of near-identical frames;
            ``None`` to group exact matches only.

    Raises:
        DatasetError: bad fractions, grouping field or stratum, or duplicate item ids.
    """
    shares = check_fractions(fractions)
    groups = leakage_groups(items, group_by=group_by, near_duplicate_bits=near_duplicate_bits)
    members = [item for group in groups for item in group]
    keys = _item_keys(members, stratify_by)
    overall = Counter(keys.values())
    strata: dict[str, list[list[ItemRecord]]] = {}
    for group in groups:
        counts = Counter(keys[item.id] for item in group)
        stratum = min(counts, key=lambda k: (-counts[k], overall[k], k))
        strata.setdefault(stratum, []).append(group)
    names = list(shares)
    assigned = dict.fromkeys(names, 0)
    parts: dict[str, list[str]] = {name: [] for name in names}
    part_strata: dict[str, Counter[str]] = {name: Counter() for name in names}
    dealt = 0
    for stratum in sorted(strata):
        stratum_groups = strata[stratum]
        for index in rng.permutation(len(stratum_groups)).tolist():
            group = stratum_groups[index]
            size = len(group)
            target = dealt + size
            name = max(names, key=lambda n: shares[n] * target - assigned[n])
            assigned[name] += size
            dealt = target
            parts[name].extend(item.id for item in group)
            part_strata[name].update(keys[item.id] for item in group)
    return SplitResult(
        parts={name: tuple(sorted(ids)) for name, ids in parts.items()},
        assignment={item_id: name for name, ids in parts.items() for item_id in ids},
        groups=tuple(tuple(item.id for item in group) for group in groups),
        strata={name: dict(sorted(c.items())) for name, c in part_strata.items()},
    )
