"""The durable outbox: idempotent keys, sequence numbers, live-before-backlog order, the bounded
disk policy (OK samples evicted oldest first, NG and results never; "disk full" reported), and
crash safety (a writer process killed with SIGKILL mid-run loses nothing it acknowledged)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from thermoscope.edge.outbox import (
    DeliveryState,
    Kind,
    Outbox,
    OutboxError,
    Record,
    Retention,
    content_key,
)


def result(part: int, verdict: str = "OK", sinks: tuple[str, ...] = ("mqtt",)) -> Record:
    payload = {"part": part, "verdict": verdict}
    return Record(Kind.RESULT, content_key(payload), payload, sinks, sequence="result")


def frame(part: int, size: int, *, ok: bool) -> Record:
    data = hashlib.sha256(str(part).encode()).digest() * (size // 32)
    return Record(
        Kind.FRAME,
        hashlib.sha256(data).hexdigest(),
        {"part": part, "verdict": "OK" if ok else "NG"},
        ("server",),
        Retention.SAMPLE if ok else Retention.KEEP,
        data,
        f"part-{part}.npy",
    )


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_record_is_idempotent_and_numbers_each_topic(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        first = box.record([result(1), result(2, "NG")])
        again = box.record([result(1)])
        assert [s.created for s in first] == [True, True]
        assert [s.seq for s in first] == [1, 2]
        assert again[0].created is False
        assert again[0].id == first[0].id
        assert again[0].seq == 1
        assert box.depth().pending == {"mqtt": 2}
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:  # numbers survive a restart
        assert box.record([result(3)])[0].seq == 3
        assert box.take_sequence("result") == 4
        assert box.take_sequence("status") == 1
        assert [p.payload["seq"] for p in box.pending("mqtt")] == [1, 2, 3]


def test_live_entries_go_before_the_backlog(tmp_path: Path) -> None:
    clock = Clock()
    with Outbox(tmp_path / "o.db", live_window_s=5.0, clock=clock, min_free_bytes=0) as box:
        box.record([result(i) for i in range(3)])
        clock.now += 60.0
        box.record([result(i) for i in range(3, 5)])
        assert [p.payload["part"] for p in box.pending("mqtt")] == [3, 4, 0, 1, 2]
        assert [p.payload["part"] for p in box.pending("mqtt", 3)] == [3, 4, 0]
        box.mark_delivered("mqtt", [p.id for p in box.pending("mqtt", 2)])
        clock.now += 60.0  # everything is backlog now: oldest first
        assert [p.payload["part"] for p in box.pending("mqtt")] == [0, 1, 2]


def test_retry_later_holds_an_entry_back_and_counts_attempts(tmp_path: Path) -> None:
    clock = Clock()
    with Outbox(tmp_path / "o.db", clock=clock, min_free_bytes=0) as box:
        (stored,) = box.record([result(1)])
        assert stored.id is not None
        box.retry_later("mqtt", stored.id, 2.0, "broker down")
        assert box.pending("mqtt") == []
        clock.now += 2.5
        (again,) = box.pending("mqtt")
        assert again.attempts == 1
        with pytest.raises(OutboxError, match="retry delay"):
            box.retry_later("mqtt", stored.id, float("nan"), "x")


def test_frame_files_are_dropped_once_every_sink_has_them(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        rec = frame(1, 4096, ok=False)
        both = Record(
            rec.kind,
            rec.key,
            rec.payload,
            ("server", "webhook"),
            data=rec.data,
            filename=rec.filename,
        )
        (stored,) = box.record([both])
        assert stored.id is not None
        assert box.depth().file_bytes == 4096
        box.mark_delivered("server", [stored.id])
        assert box.depth().file_bytes == 4096  # the webhook still waits
        box.mark_delivered("webhook", [stored.id])
        assert box.depth().file_bytes == 0
        assert box.depth().pending == {}
        assert box.delivery_state(rec.key, "server") is DeliveryState.DELIVERED
        assert box.purge(older_than_s=-1.0) == 1
        assert box.keys() == set()


def test_a_rejected_frame_keeps_its_file_and_its_reason(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        (stored,) = box.record([frame(1, 1024, ok=False)])
        assert stored.id is not None
        box.mark_rejected("server", stored.id, "422 unreadable")
        depth = box.depth()
        assert depth.rejected == {"server": 1}
        assert depth.file_bytes == 1024
        assert box.delivery_state(stored.key, "server") is DeliveryState.REJECTED
        assert box.purge(older_than_s=-1.0) == 0  # kept for someone to look at


def test_disk_policy_evicts_oldest_ok_samples_never_ng_nor_results(tmp_path: Path) -> None:
    """Budget of four 1 KiB frames: OK samples make room for NG frames oldest first; when the
    budget holds only NG frames, a new NG frame is refused, ``disk_full`` is reported and its
    result record is still kept; a delivery clears it."""
    with Outbox(tmp_path / "o.db", max_bytes=4096, min_free_bytes=0) as box:
        for part in range(4):
            box.record([result(part), frame(part, 1024, ok=True)])
        stored = box.record([result(4, "NG"), frame(4, 1024, ok=False)])
        assert stored[1].stored_file
        kept = {p.payload["part"] for p in box.pending("server", 100) if p.data is not None}
        assert kept == {1, 2, 3, 4}  # part 0's sample, the oldest, went
        for part in range(5, 8):
            box.record([result(part, "NG"), frame(part, 1024, ok=False)])
        sample = box.record([result(8), frame(8, 1024, ok=True)])
        assert not sample[1].stored_file
        assert sample[1].refused == "disk full"
        refused = box.record([result(9, "NG"), frame(9, 1024, ok=False)])
        assert refused[0].stored_file is False
        assert refused[0].created
        assert refused[1].id is None
        assert refused[1].refused == "disk full"
        depth = box.depth()
        assert depth.disk_full
        assert depth.evicted_samples == 4
        assert depth.dropped_samples == 1
        assert depth.refused_frames == 1
        assert depth.file_bytes == 4096
        # no result lost
        assert [p.payload["part"] for p in box.pending("mqtt", 100)] == list(range(10))
        ng_files = [p for p in box.pending("server", 100) if p.data is not None]
        assert sorted(p.payload["part"] for p in ng_files) == [4, 5, 6, 7]
        box.mark_delivered("server", [ng_files[0].id])
        assert not box.depth().disk_full
    with Outbox(tmp_path / "o.db", max_bytes=4096, min_free_bytes=0) as box:
        assert box.depth().evicted_samples == 4
        assert box.depth().file_bytes == 3072


def test_records_are_checked(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", min_free_bytes=0) as box:
        with pytest.raises(OutboxError, match="names no sink"):
            box.record([Record(Kind.RESULT, "k", {}, ())])
        with pytest.raises(OutboxError, match="needs a filename"):
            box.record([Record(Kind.FRAME, "k", {}, ("s",), data=b"x")])
        with pytest.raises(OutboxError, match="not finite JSON"):
            box.record([Record(Kind.RESULT, "k", {"v": float("nan")}, ("s",))])
        assert box.keys() == set()  # nothing of a failed call is stored


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(OutboxError, match="newer than this agent"):
        Outbox(path)


WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from thermoscope.edge.outbox import Kind, Outbox, Record, Retention, content_key

    box = Outbox(sys.argv[1], min_free_bytes=0)
    part = 0
    while True:
        data = hashlib.sha256(str(part).encode()).digest() * 1024
        verdict = "NG" if part % 3 == 0 else "OK"
        payload = {"part": part, "verdict": verdict}
        box.record([
            Record(Kind.RESULT, content_key(payload), payload, ("mqtt", "server"),
                   sequence="result"),
            Record(Kind.FRAME, hashlib.sha256(data).hexdigest(), payload, ("server",),
                   Retention.KEEP if verdict == "NG" else Retention.SAMPLE, data, f"{part}.npy"),
        ])
        print(part, flush=True)
        part += 1
    """
)


@pytest.mark.parametrize("after_s", [0.3, 0.8])
def test_sigkill_mid_run_loses_nothing_acknowledged(tmp_path: Path, after_s: float) -> None:
    """A writer records parts (result + 32 KiB frame, fsynced) and prints each part number once
    ``record`` returned; it is killed with SIGKILL while writing. Every part it acknowledged is
    there, whole, with its result numbered without gaps, and the file passes SQLite's check."""
    path = tmp_path / "o.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    acked: list[int] = []
    first = proc.stdout.readline()  # the first part: the writer is running
    assert first, "the writer did not start"
    acked.append(int(first))
    time.sleep(after_s)
    proc.send_signal(signal.SIGKILL)
    acked += [int(line) for line in proc.stdout.read().split()]
    proc.stdout.close()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) > 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Outbox(path, min_free_bytes=0) as box:
        # by number: entries older than the live window would otherwise come after newer ones
        results = sorted(box.pending("mqtt", 1 << 20), key=lambda p: p.payload["seq"])
        parts = [p.payload["part"] for p in results]
        assert parts[: len(acked)] == acked  # in order; at most one more, unacknowledged
        assert [p.payload["seq"] for p in results] == list(range(1, len(results) + 1))
        for part in acked:
            data = hashlib.sha256(str(part).encode()).digest() * 1024
            entry = box.entry(hashlib.sha256(data).hexdigest())
            assert entry is not None
            assert entry.data == data


def test_frames_leave_the_file_system_its_reserve(tmp_path: Path) -> None:
    """``min_free_bytes`` above what the disk has free: no frame fits however large the budget;
    an OK sample is dropped, an NG frame refused with "disk full", results still kept."""
    free = shutil.disk_usage(tmp_path).free
    with Outbox(tmp_path / "o.db", max_bytes=1 << 40, min_free_bytes=free + (1 << 30)) as box:
        sample = box.record([result(1), frame(1, 1024, ok=True)])
        ng = box.record([result(2, "NG"), frame(2, 1024, ok=False)])
        assert [s.created for s in sample + ng] == [True, False, True, False]
        assert box.depth().disk_full
        assert box.depth().dropped_samples == 1
        assert [p.payload["part"] for p in box.pending("mqtt")] == [1, 2]


def test_checkpoints_run_beside_record_not_inside_it(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, min_free_bytes=0) as box:
        for part in range(4):
            box.record([frame(part, 256 << 10, ok=False)])
        wal = path.with_name("o.db-wal")
        before = path.stat().st_size
        assert wal.stat().st_size > 1 << 20  # record left the log alone
        box.checkpoint(above_bytes=1 << 30)  # small log: nothing to do
        assert path.stat().st_size == before
        box.checkpoint(above_bytes=0)
        assert path.stat().st_size > before + (1 << 20)  # the frames are in the database now
        box.record([frame(9, 1024, ok=False)])
        assert len(box.pending("server")) == 5
