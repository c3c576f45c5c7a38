"""The folder dataset store: frames by content, annotations, immutable versions, diff, stats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.annotations import (
    AnnotatedItem,
    Annotation,
    AnnotationError,
    Box,
    LabelSchema,
    LabelSpec,
    Provenance,
    VerdictLabel,
)
from thermoscope.core import ThermalFrame, Verdict
from thermoscope.datasets.library import GroundTruthLibrary
from thermoscope.datasets.store import DatasetStore, summarise
from thermoscope.datasets.versions import DatasetError, ItemRecord, Version, diff, stats
from thermoscope.storage.identity import content_id, frame_id

SCHEMA = LabelSchema((LabelSpec("hot_spot"), LabelSpec("cold_joint")))
ME = Provenance.human("tester")


def annotated(
    frames: ThermalFrame | list[ThermalFrame],
    labels: tuple[str, ...] = (),
    verdict: str | None = None,
) -> AnnotatedItem:
    items = [frames] if isinstance(frames, ThermalFrame) else frames
    return AnnotatedItem(
        item_id=content_id(items),
        width=items[0].width,
        height=items[0].height,
        frame_count=len(items),
        annotations=tuple(
            Annotation(label=label, shape=Box(1, 1, 4, 3), provenance=ME) for label in labels
        ),
        verdicts=()
        if verdict is None
        else (VerdictLabel(verdict=Verdict(verdict), reason="hot", provenance=ME),),
    )


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore.create(tmp_path / "ds", schema=SCHEMA)


def test_create_and_open(tmp_path: Path, store: DatasetStore) -> None:
    assert store.name == "ds"
    assert DatasetStore.open(store.root).schema == SCHEMA.to_dict()
    with pytest.raises(DatasetError, match="already holds"):
        DatasetStore.create(store.root)
    with pytest.raises(DatasetError, match="no dataset"):
        DatasetStore.open(tmp_path / "nothing")


def test_frames_are_stored_once_and_come_back_bit_identical(store: DatasetStore) -> None:
    frame = planck_frame()
    result = store.add(frame, product="pcb", serial="S1", source="/some/where/a.jpg")
    assert result.status == "added"
    assert result.item.id == result.item.content == frame_id(frame)
    assert result.item.source == "a.jpg"  # never a full path
    back = store.load_frame(frame_id(frame), verify=True)
    assert back.raw is not None
    assert frame.raw is not None
    assert np.array_equal(back.raw, frame.raw)
    assert np.array_equal(back.celsius, frame.celsius)
    assert back.metadata.parameters == frame.metadata.parameters
    assert back.metadata.calibration == frame.metadata.calibration
    files = sorted(p.name for p in (store.root / "frames").rglob("*") if p.is_file())
    assert files == [f"{frame_id(frame)}.raw.npy", f"{frame_id(frame)}.tiff"]
    # the same content again is unchanged, whatever its source
    assert store.add(frame, product="pcb", serial="S1", source="b.jpg").status == "unchanged"
    assert store.item(frame_id(frame)).source == "a.jpg"


def test_conflicting_content_needs_replace(store: DatasetStore) -> None:
    frame = planck_frame()
    store.add(frame, serial="S1")
    with pytest.raises(DatasetError, match="serial"):
        store.add(frame, serial="S2")
    assert store.add(frame, serial="S2", replace=True).status == "updated"
    assert store.item(frame_id(frame)).serial == "S2"
    with pytest.raises(DatasetError, match="unknown item metadata"):
        store.add(frame, colour="red")


def test_a_tampered_frame_is_detected(store: DatasetStore) -> None:
    frame = ThermalFrame(planck_frame().celsius)
    fid = store.add(frame).item.frames[0]
    tio.save(ThermalFrame(frame.celsius + 1), store.root / "frames" / fid[:2] / f"{fid}.tiff")
    store.load_frame(fid)  # loads
    with pytest.raises(DatasetError, match="modified"):
        store.load_frame(fid, verify=True)


def test_annotations_are_checked_and_summarised(store: DatasetStore) -> None:
    frame = planck_frame()
    ann = annotated(frame, ("hot_spot", "hot_spot", "cold_joint"), "NG")
    item = store.add(frame, annotation=ann.to_dict()).item
    assert item.labels == {"cold_joint": 1, "hot_spot": 2}
    assert (item.verdict, item.review) == ("NG", "draft")
    assert item.annotation is not None
    assert store.load_annotation(item.annotation) == ann
    other = planck_frame(seed=5)
    with pytest.raises(DatasetError, match="annotation is for item"):
        store.add(other, annotation=ann)  # written for another frame
    with pytest.raises(AnnotationError, match="unknown label"):
        store.add(other, annotation=annotated(other, ("crack",)))
    cleared = store.annotate(item.id, None)
    assert (cleared.annotation, cleared.labels, cleared.verdict) == (None, {}, None)
    again = store.annotate(item.id, ann)
    assert again.labels == item.labels


def test_summary_of_per_frame_verdicts() -> None:
    frames = [planck_frame(seed=i) for i in range(3)]
    base = annotated(frames)
    ok = [VerdictLabel(verdict=Verdict.OK, frame=i, provenance=ME) for i in range(3)]
    ng = VerdictLabel(verdict=Verdict.NG, reason="x", frame=1, provenance=ME)
    assert summarise(AnnotatedItem(**{**_fields(base), "verdicts": tuple(ok)})).verdict == "OK"
    mixed = (ok[0], ng, ok[2])
    assert summarise(AnnotatedItem(**{**_fields(base), "verdicts": mixed})).verdict == "NG"
    assert summarise(base).verdict is None


def _fields(item: AnnotatedItem) -> dict[str, object]:
    return {
        "item_id": item.item_id,
        "width": item.width,
        "height": item.height,
        "frame_count": item.frame_count,
    }


def test_sequence_items_and_per_frame_items(store: DatasetStore, tmp_path: Path) -> None:
    frames = [planck_frame(seed=i, index=i) for i in range(3)]
    path = tmp_path / "rec.seq"
    tio.save(frames, path)
    with tio.open_path(path) as seq:
        read = list(seq)
    [whole] = store.add_file(path, serial="S1")
    assert whole.item.frame_count == 3
    assert whole.item.id == content_id(read)
    per_frame = store.add_file(path, key="name", per_frame=True, serial="S1")
    ids = [r.item.id for r in per_frame]
    assert ids == ["rec.seq#0", "rec.seq#1", "rec.seq#2"]
    assert {r.item.sequence for r in per_frame} == {content_id(read)}
    assert [r.item.frame_index for r in per_frame] == [0, 1, 2]
    stats_ = store.stats()
    assert (stats_.items, stats_.frames) == (4, 3)


def test_a_broken_file_adds_nothing(store: DatasetStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(tio.ThermoscopeFormatError):
        store.add_file(bad)
    assert len(store) == 0


def test_versions_are_immutable_and_content_addressed(store: DatasetStore) -> None:
    store.add(planck_frame(seed=1), serial="A")
    v1 = store.commit(message="one", tag="v1")
    assert store.commit() == v1  # same content, same id, the file is left alone
    path = store.root / "versions" / f"{v1}.json"
    assert path.stat().st_mode & 0o222 == 0  # read-only
    version = store.version("v1")
    assert version.id == v1
    assert Version.from_manifest(path.read_bytes(), expected_id=v1) == version
    # a manifest changed on disk is detected on reading, and never overwritten
    forged = Version.of([r.with_changes(serial="B") for r in version], version.schema)
    path.chmod(0o644)
    path.write_bytes(forged.manifest())
    with pytest.raises(DatasetError, match="modified"):
        store.version(v1)
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        store.commit()
    assert path.read_bytes() == forged.manifest()


def test_tags_never_move(store: DatasetStore) -> None:
    store.add(planck_frame(seed=1))
    v1 = store.commit(tag="v1")
    store.add(planck_frame(seed=2))
    with pytest.raises(DatasetError, match="never move"):
        store.commit(tag="v1")
    v2 = store.commit(tag="v2")
    assert store.tag("v1", v1) == v1
    with pytest.raises(DatasetError, match="names version"):
        store.tag("v1", v2)
    for bad in ("working", "a b", "0" * 64, ""):
        with pytest.raises(DatasetError, match="bad tag"):
            store.tag(bad, v2)
    assert store.tags() == {"v1": v1, "v2": v2}
    assert store.resolve(v2[:8]) == v2
    assert [e.id for e in store.log()] == [v1, v2]
    with pytest.raises(DatasetError, match="no version"):
        store.resolve("v3")


def test_diff_and_stats(store: DatasetStore) -> None:
    a, b, c = (planck_frame(seed=i) for i in range(3))
    store.add(a, annotation=annotated(a, ("hot_spot",), "NG"), product="pcb")
    store.add(b, annotation=annotated(b, (), "OK"), product="pcb")
    v1 = store.commit(tag="v1")
    store.annotate(frame_id(a), annotated(a, ("hot_spot", "cold_joint"), "NG"))
    store.remove(frame_id(b))
    store.add(c, product="tray")
    d = store.diff("v1")
    assert d.added == (frame_id(c),)
    assert d.removed == (frame_id(b),)
    assert d.changed == (frame_id(a),)
    assert d.label_deltas == {"cold_joint": 1}
    assert d.verdict_deltas == {"OK": -1, "none": 1}
    assert not d.empty
    assert not d.schema_changed
    assert diff(store.version(v1), store.version(v1)).empty
    s = store.stats()
    assert s.labels == {"cold_joint": 1, "hot_spot": 1}
    assert s.verdicts == {"OK": 0, "NG": 1, "none": 1}
    assert s.products == {"pcb": 1, "tray": 1}
    assert s.product_verdicts == {"pcb": {"NG": 1}, "tray": {"none": 1}}
    assert stats(store.version("v1")).verdicts == {"OK": 1, "NG": 1, "none": 0}


def test_batch_saves_once_and_other_writers_are_merged(store: DatasetStore) -> None:
    other = DatasetStore.open(store.root)
    with store.batch():
        store.add(planck_frame(seed=1))
        assert len(DatasetStore.open(store.root)) == 0  # not saved yet
        other.add(planck_frame(seed=2))  # saved at once by another writer
    assert len(DatasetStore.open(store.root)) == 2
    assert len(store) == 2


def test_changes_before_an_error_in_a_batch_are_kept(store: DatasetStore) -> None:
    def add_then_fail() -> None:
        with store.batch():
            store.add(planck_frame(seed=1))
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        add_then_fail()
    assert len(DatasetStore.open(store.root)) == 1


def test_saved_splits_are_checked(store: DatasetStore) -> None:
    ids = [store.add(planck_frame(seed=i)).item.id for i in range(3)]
    vid = store.commit()
    sid = store.save_split(vid, {"train": ids[:2], "test": ids[2:]}, seed=1)
    assert store.load_split(sid)["parts"] == {"train": sorted(ids[:2]), "test": ids[2:]}
    assert store.save_split(vid, {"train": ids[:2], "test": ids[2:]}, seed=1) == sid
    with pytest.raises(DatasetError, match="is in parts"):
        store.save_split(vid, {"train": ids, "test": ids[:1]})
    with pytest.raises(DatasetError, match="no item"):
        store.save_split(vid, {"train": ["nope"]})


def test_item_record_round_trip_and_checks() -> None:
    record = ItemRecord(id="x", frames=("a", "b"), height=2, width=3, labels={"b": 1, "a": 2})
    assert ItemRecord.from_dict(record.to_dict()) == record
    assert list(record.labels) == ["a", "b"]
    with pytest.raises(DatasetError, match="verdict"):
        ItemRecord(id="x", frames=("a",), height=1, width=1, verdict="WARN")
    with pytest.raises(DatasetError, match="unknown key"):
        ItemRecord.from_dict({**record.to_dict(), "colour": "red"})
    with pytest.raises(DatasetError, match="no frames"):
        ItemRecord(id="x", frames=(), height=1, width=1)


def test_golden_examples_per_product(store: DatasetStore) -> None:
    library = GroundTruthLibrary(store)
    good = library.add_example(
        planck_frame(seed=1),
        product="pcb",
        verdict="OK",
        author="ann",
        accepted_by="bob",
        golden=True,
        serial="P1",
    ).item
    draft = library.add_example(planck_frame(seed=2), product="pcb", verdict="OK", author="ann")
    bad = library.add_example(
        planck_frame(seed=3),
        product="pcb",
        verdict="NG",
        reason="U1 hot",
        author="ann",
        accepted_by="bob",
    )
    library.add_example(
        planck_frame(seed=4), product="tray", verdict="OK", author="ann", accepted_by="bob"
    )
    assert [i.id for i in library.golden("pcb")] == [good.id]
    assert library.golden("tray") == []
    assert library.products() == ["pcb", "tray"]
    assert {i.id for i in library.examples("pcb", verdict="OK")} == {good.id, draft.item.id}
    with pytest.raises(DatasetError, match="accepted OK"):
        library.mark_golden(draft.item.id)
    with pytest.raises(DatasetError, match="accepted OK"):
        library.mark_golden(bad.item.id)
    with pytest.raises(DatasetError, match="golden example needs"):
        library.add_example(
            planck_frame(seed=5), product="pcb", verdict="OK", author="a", golden=True
        )
    vid = store.commit(tag="library-1")
    library.mark_golden(good.id, golden=False)
    assert library.golden("pcb") == []
    assert [i.id for i in library.golden("pcb", ref=vid)] == [good.id]
    assert store.stats(vid).golden == {"pcb": 1}


def test_frames_of_one_item_must_share_a_size(store: DatasetStore) -> None:
    with pytest.raises(DatasetError, match="differ in size"):
        store.add([planck_frame(24, 32), planck_frame(25, 32)])
    with pytest.raises(DatasetError, match="at least one frame"):
        store.add([])
    assert len(store) == 0


def test_only_committed_versions_are_split(store: DatasetStore) -> None:
    store.add(planck_frame())
    with pytest.raises(DatasetError, match="commit it first"):
        store.save_split("working", {"all": []})
