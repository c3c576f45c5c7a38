"""Splits never leak: groups, shared frames and near-duplicates stay on one side."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.datasets.hashing import perceptual_hash
from thermoscope.datasets.splits import GROUP_FIELDS, leakage_groups, split
from thermoscope.datasets.versions import DatasetError, ItemRecord
from thermoscope.storage.identity import array_id


def item(i: int, **fields: object) -> ItemRecord:
    values: dict[str, object] = {"frames": (f"f{i}",), "height": 4, "width": 4}
    values.update(fields)
    return ItemRecord(id=f"item{i:05d}", **values)


def build_dataset(
    n: int, pool: int, shared: float, near: float, missing: float, seed: int
) -> list[ItemRecord]:
    """``n`` random items: serials, sequences and duplicate groups drawn from ``pool`` values
    (absent with probability ``missing``), frame ids from a pool small enough that a share of
    about ``shared`` items repeat a frame (1-3 frames per item), and perceptual hashes of which
    a share ``near`` are 1-4 bits from one of a few bases (the rest random or absent)."""
    rng = np.random.default_rng(seed)
    frame_pool = max(1, round(n * (1.0 - shared)))
    bases = rng.integers(0, 1 << 62, 4, dtype=np.int64) * 2 + 1

    def maybe() -> str | None:
        return None if rng.random() < missing else str(rng.integers(0, pool))

    out = []
    for i in range(n):
        frames = tuple(f"frame{k}" for k in rng.integers(0, frame_pool, int(rng.integers(1, 4))))
        draw = rng.random()
        phash: int | None
        if draw < near:
            phash = int(rng.choice(bases))
            for bit in rng.integers(0, 63, int(rng.integers(1, 5))):
                phash ^= 1 << int(bit)
        elif draw < near + (1 - near) / 2:
            phash = int(rng.integers(0, 1 << 62)) * 2
        else:
            phash = None
        labels = {k: int(rng.integers(1, 3)) for k in ("a", "b", "c") if rng.random() < 0.4}
        out.append(
            ItemRecord(
                id=f"i{i}",
                frames=frames,
                height=8,
                width=8,
                phash=None if phash is None else f"{phash:016x}",
                serial=maybe(),
                sequence=maybe(),
                duplicate_group=maybe(),
                labels=labels,
                verdict=[None, "OK", "NG"][int(rng.integers(0, 3))],
            )
        )
    return out


datasets = st.builds(
    build_dataset,
    n=st.integers(1, 200),
    pool=st.integers(1, 80),
    shared=st.floats(0.0, 0.5),
    near=st.floats(0.0, 0.5),
    missing=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
fractions_st = st.sampled_from(
    [
        {"train": 0.7, "val": 0.15, "test": 0.15},
        {"train": 0.8, "test": 0.2},
        {"a": 1.0},
        {"a": 0.5, "b": 0.0, "c": 0.5},
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    items=datasets,
    fractions=fractions_st,
    group_by=st.lists(st.sampled_from(GROUP_FIELDS), unique=True),
    stratify_by=st.sampled_from([None, "label", "verdict"]),
    near=st.sampled_from([None, 0, 2, 4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_no_group_and_no_duplicate_ever_straddles_parts(
    items: list[ItemRecord],
    fractions: dict[str, float],
    group_by: list[str],
    stratify_by: str | None,
    near: int | None,
    seed: int,
) -> None:
    result = split(
        items,
        rng=np.random.default_rng(seed),
        fractions=fractions,
        group_by=group_by,
        stratify_by=stratify_by,
        near_duplicate_bits=near,
    )
    # every item in exactly one part, and only the given items
    placed = [i for ids in result.parts.values() for i in ids]
    assert sorted(placed) == sorted(i.id for i in items)
    assert set(result.parts) == set(fractions)
    part = result.assignment
    assert all(part[i] == name for name, ids in result.parts.items() for i in ids)
    # no group field value, no shared frame, no near-identical pair across parts
    for field in group_by:
        sides: dict[str, set[str]] = {}
        for it in items:
            value = getattr(it, field)
            if value is not None:
                sides.setdefault(value, set()).add(part[it.id])
        assert all(len(s) == 1 for s in sides.values()), field
    frame_sides: dict[str, set[str]] = {}
    for it in items:
        for fid in it.frames:
            frame_sides.setdefault(fid, set()).add(part[it.id])
    assert all(len(s) == 1 for s in frame_sides.values())
    if near is not None:
        hashed = [it for it in items if it.phash is not None]
        for x in range(len(hashed)):
            for y in range(x + 1, len(hashed)):
                a, b = hashed[x], hashed[y]
                if (int(str(a.phash), 16) ^ int(str(b.phash), 16)).bit_count() <= near:
                    assert part[a.id] == part[b.id]
    # reported groups are whole parts' subsets and cover every item once
    assert sorted(i for g in result.groups for i in g) == sorted(i.id for i in items)
    assert all(len({part[i] for i in g}) == 1 for g in result.groups)
    # a part with share 0 stays empty
    assert all(not result.parts[k] for k, v in fractions.items() if v == 0)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1000, 3000),
    group_size=st.integers(1, 6),
    fractions=fractions_st,
    stratify_by=st.sampled_from([None, "verdict"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_fractions_are_met_for_large_inputs(
    n: int, group_size: int, fractions: dict[str, float], stratify_by: str | None, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    items = [
        item(
            i,
            serial=f"s{int(rng.integers(0, n // group_size))}",
            verdict=["OK", "NG"][int(rng.random() < 0.1)],
        )
        for i in range(n)
    ]
    result = split(
        items,
        rng=np.random.default_rng(seed),
        fractions=fractions,
        group_by="serial",
        stratify_by=stratify_by,
    )
    largest = max(len(g) for g in result.groups)
    # the dealer never overshoots a part by a whole group; the others absorb the rest
    bound = (len(fractions) - 1) * largest
    for name, share in fractions.items():
        assert abs(len(result.parts[name]) - share * n) <= bound, (name, largest)
        assert abs(len(result.parts[name]) / n - share) < 0.03


def test_strata_are_spread_in_proportion() -> None:
    items = [item(i, verdict="NG" if i % 10 == 0 else "OK") for i in range(1000)]
    result = split(items, rng=np.random.default_rng(3), stratify_by="verdict")
    ng = {name: result.strata[name].get("NG", 0) for name in result.parts}
    assert ng == {"train": 70, "val": 15, "test": 15}
    assert sum(result.strata["train"].values()) == 700


def test_label_strata_use_the_rarest_label() -> None:
    common = [item(i, labels={"scratch": 1}) for i in range(90)]
    rare = [item(100 + i, labels={"scratch": 2, "crack": 1}) for i in range(10)]
    result = split(
        common + rare,
        rng=np.random.default_rng(0),
        fractions={"a": 0.5, "b": 0.5},
        stratify_by="label",
    )
    assert result.strata["a"]["crack"] == result.strata["b"]["crack"] == 5


def test_split_is_deterministic_and_independent_of_input_order() -> None:
    items = [item(i, serial=f"s{i % 37}", verdict="OK") for i in range(300)]
    first = split(items, rng=np.random.default_rng(42), stratify_by="verdict")
    again = split(items[::-1], rng=np.random.default_rng(42), stratify_by="verdict")
    other = split(items, rng=np.random.default_rng(43), stratify_by="verdict")
    assert first.parts == again.parts
    assert first.parts != other.parts


def test_near_identical_frames_are_grouped() -> None:
    base = 0x1234_5678_9ABC_DEF0 & ((1 << 63) - 1)
    items = [
        item(0, phash=f"{base:016x}"),
        item(1, phash=f"{base ^ 0b1011:016x}"),  # 3 bits apart
        item(2, phash=f"{base ^ 0xFF00FF:016x}"),  # 16 bits apart
    ]
    groups = leakage_groups(items, group_by=None)
    assert [[i.id for i in g] for g in groups] == [["item00000", "item00001"], ["item00002"]]
    exact_only = leakage_groups(items, group_by=None, near_duplicate_bits=None)
    assert len(exact_only) == 3


def test_bad_arguments_are_refused() -> None:
    items = [item(0), item(1)]
    rng = np.random.default_rng(0)
    with pytest.raises(DatasetError, match="add up to 1"):
        split(items, rng=rng, fractions={"a": 0.5, "b": 0.4})
    with pytest.raises(DatasetError, match=">= 0"):
        split(items, rng=rng, fractions={"a": 1.5, "b": -0.5})
    with pytest.raises(DatasetError, match="group by"):
        split(items, rng=rng, group_by="colour")
    with pytest.raises(DatasetError, match="stratify"):
        split(items, rng=rng, stratify_by="size")
    with pytest.raises(DatasetError, match="unique"):
        split([item(0), item(0)], rng=rng)


def test_duplicate_images_of_the_solar_set_stay_on_one_side(samples: Path) -> None:
    """The InfraredSolarModules train side holds byte-identical images, some with conflicting
    labels; exact-content grouping must keep every such group on one side of the split."""
    root = samples / "InfraredSolarModules"
    meta = json.loads((root / "module_metadata_train.json").read_text(encoding="utf-8"))
    counts = json.loads((root / "class_counts.json").read_text(encoding="utf-8"))
    groups = [set(g) for g in counts["duplicate_groups"]]
    conflicting = [set(g) for g in counts["duplicate_groups_with_conflicting_labels"]]
    in_groups = set().union(*groups)
    labels = {Path(v["image_filepath"]).name: v["anomaly_class"] for v in meta.values()}
    # every duplicate plus every 8th other image: a few thousand items, all classes
    names = sorted(labels, key=lambda n: int(n.split(".")[0]))
    chosen = [n for i, n in enumerate(names) if n in in_groups or i % 8 == 0]
    items = []
    for name in chosen:
        data = (root / "images" / name).read_bytes()
        grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert grey is not None, name
        values = grey.astype(np.float32)  # 8-bit intensities stand in for °C
        items.append(
            ItemRecord(
                id=name,
                frames=(array_id(values),),
                height=values.shape[0],
                width=values.shape[1],
                phash=perceptual_hash(values),
                labels={labels[name]: 1},
            )
        )
    # the listed duplicates are found by content, not told
    by_frame = Counter(i.frames[0] for i in items)
    frame_of = {i.id: i.frames[0] for i in items}
    for group in groups:
        assert len({frame_of[n] for n in group}) == 1, group
    assert sum(n - 1 for n in by_frame.values()) == sum(len(g) - 1 for g in groups)
    assert any(len({labels[n] for n in g}) > 1 for g in conflicting)
    for seed, near in ((0, None), (1, None), (2, 4)):  # exact content alone, then with pHash
        result = split(
            items,
            rng=np.random.default_rng(seed),
            fractions={"train": 0.8, "test": 0.2},
            group_by=None,
            stratify_by="label",
            near_duplicate_bits=near,
        )
        for group in groups:
            assert len({result.assignment[n] for n in group}) == 1, (seed, group)
        share = len(result.parts["train"]) / len(items)
        assert abs(share - 0.8) < 0.01
