"""Job claiming shared by several workers (SKIP LOCKED on PostgreSQL, a conditional UPDATE on
SQLite), lease take-over with fencing of the old holder, and the expiry of abandoned uploads;
on both databases, with several runners standing for several processes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from server_support import make_settings
from sqlalchemy import select, update

from thermoscope.server.app import build_context
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import Job, Project, Upload, User, now
from thermoscope.server.housekeeping import expire_uploads
from thermoscope.server.jobs import JobContext, JobRunner, LeaseLostError, add_job


def _context(tmp_path: Path, database_url: str) -> ServerContext:
    ctx = build_context(make_settings(tmp_path, database_url, worker_threads=0))
    ctx.db.migrate()
    return ctx


def _project(ctx: ServerContext) -> int:
    with ctx.db.write() as session:
        project = Project(name="line-1", label_schema={})
        session.add(project)
        session.flush()
        return project.id


def _queue(ctx: ServerContext, pid: int, n: int, kind: str = "count") -> list[str]:
    with ctx.db.write() as session:
        return [add_job(session, kind, pid, {"i": i}, "admin").id for i in range(n)]


def test_four_runners_run_each_job_exactly_once(tmp_path: Path, database_url: str) -> None:
    ctx = _context(tmp_path, database_url)
    pid = _project(ctx)
    ids = _queue(ctx, pid, 40)
    runs: Counter[int] = Counter()
    lock = threading.Lock()

    def count(job: JobContext) -> dict[str, Any]:
        with lock:
            runs[int(job.params["i"])] += 1
        return {"i": job.params["i"]}

    runners = [JobRunner(ctx, {"count": count}, threads=2, poll_s=0.05) for _ in range(4)]
    for runner in runners:
        runner.start()
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            with ctx.db.read() as session:
                left = session.scalars(select(Job.id).where(Job.state != "done")).all()
            if not left:
                break
            time.sleep(0.05)
    finally:
        for runner in runners:
            runner.stop()
    assert runs == Counter(range(40))
    with ctx.db.read() as session:
        jobs = session.scalars(select(Job).where(Job.id.in_(ids))).all()
    assert {job.state for job in jobs} == {"done"}
    assert {job.attempts for job in jobs} == {1}
    ctx.db.dispose()


def test_a_dead_workers_job_is_taken_over_and_its_late_result_dropped(
    tmp_path: Path, database_url: str
) -> None:
    ctx = _context(tmp_path, database_url)
    pid = _project(ctx)
    (job_id,) = _queue(ctx, pid, 1)
    first = JobRunner(ctx, {}, threads=0, lease_s=30)
    claimed = first._claim()  # the "dead" worker: claims, then never reports
    assert claimed is not None
    assert claimed.attempts == 1
    assert first._claim() is None  # leased: nobody else gets it
    with ctx.db.write() as session:  # time passes: the lease runs out
        session.execute(
            update(Job).where(Job.id == job_id).values(lease_until=now() - timedelta(seconds=1))
        )
    second = JobRunner(ctx, {"count": lambda job: {"by": "second", "attempt": job.attempt}})
    assert second.run_pending() == 1
    stale = JobContext(ctx, job_id, {}, 30, attempt=claimed.attempts)
    with pytest.raises(LeaseLostError):
        stale.progress(0.5, "late")
    first._finish(claimed, state="failed", error="late")  # refused: the claim was taken over
    with ctx.db.read() as session:
        job = session.get(Job, job_id)
    assert job is not None
    assert (job.state, job.attempts, job.result) == ("done", 2, {"by": "second", "attempt": 2})
    ctx.db.dispose()


def test_the_heartbeat_keeps_a_long_job_leased(tmp_path: Path, database_url: str) -> None:
    ctx = _context(tmp_path, database_url)
    pid = _project(ctx)
    (job_id,) = _queue(ctx, pid, 1, kind="slow")
    release = threading.Event()

    def slow(job: JobContext) -> dict[str, Any]:  # reports no progress at all
        release.wait(10)
        return {}

    runner = JobRunner(ctx, {"slow": slow}, threads=1, lease_s=1.0, poll_s=0.05)
    thief = JobRunner(ctx, {"slow": slow}, threads=0, lease_s=1.0)
    runner.start()
    try:
        time.sleep(2.5)  # more than two leases: only the heartbeat keeps it
        assert thief._claim() is None
    finally:
        release.set()
        runner.stop()
    with ctx.db.read() as session:
        job = session.get(Job, job_id)
    assert job is not None
    assert (job.state, job.attempts) == ("done", 1)
    ctx.db.dispose()


def test_abandoned_uploads_expire_with_their_chunks(tmp_path: Path, database_url: str) -> None:
    ctx = _context(tmp_path, database_url)
    pid = _project(ctx)
    with ctx.db.write() as session:
        user = User(username="u", password_hash="x", is_admin=False)
        session.add(user)
        session.flush()
        for name, age_s in (("a" * 32, 7200.0), ("b" * 32, 10.0)):
            key = f"uploads/{name}/{0:020d}-0000"
            ctx.blobs.put(key, b"chunk")
            session.add(
                Upload(
                    id=name,
                    project_id=pid,
                    user_id=user.id,
                    filename="f.npy",
                    size=100,
                    sha256="0" * 64,
                    offset=5,
                    chunks=[key],
                    state="open",
                    updated_at=now() - timedelta(seconds=age_s),
                )
            )
    assert expire_uploads(ctx, 3600.0) == 1
    assert expire_uploads(ctx, 3600.0) == 0  # a second sweep (another process) finds nothing
    with ctx.db.read() as session:
        states = {row[0]: row[1] for row in session.execute(select(Upload.id, Upload.state))}
    assert states == {"a" * 32: "expired", "b" * 32: "open"}
    assert list(ctx.blobs.keys("uploads/")) == [f"uploads/{'b' * 32}/{0:020d}-0000"]
    ctx.db.dispose()
