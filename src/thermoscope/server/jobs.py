"""Background jobs: an in-process worker pool over a ``jobs`` table, with progress.

A job is a row (kind, parameters, state, progress); nothing about it is held only in the memory
of the process that runs it. A worker claims a job safely against every other process sharing
the database: on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED`` (concurrent workers skip
each other's rows instead of queueing on them), on SQLite with a conditional ``UPDATE ... WHERE
state = 'queued'`` (only one writer can win it). The claim holds a lease, extended by a
heartbeat every third of ``lease_s`` while the handler runs and whenever it reports progress; a
job whose lease ran out (its process died) is taken over by another worker, at most
``MAX_ATTEMPTS`` times. The claim's attempt number fences the holder: once a job was taken over,
the old holder's progress, heartbeat and result are refused (``LeaseLostError``), so each attempt's
outcome is recorded at most once. Handlers must be idempotent (dataset versions and exports
are: their outputs are content-addressed or overwritten whole).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from thermoscope.core import ThermoscopeError
from thermoscope.server.db.models import Job, now
from thermoscope.server.errors import ApiError

if TYPE_CHECKING:
    from thermoscope.server.context import ServerContext

log = logging.getLogger(__name__)

#: Times a job is started before it is given up as failed.
MAX_ATTEMPTS = 3


class LeaseLostError(ThermoscopeError):
    """The job was taken over by another worker (this one's lease ran out)."""


def _extend(ctx: ServerContext, job_id: str, attempt: int, lease_s: float, **values: Any) -> bool:
    """Extend the lease of ``job_id`` held under claim ``attempt`` (and set ``values``);
    ``False`` when that claim is no longer the job's."""
    moment = now()
    with ctx.db.write() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.attempts == attempt, Job.state == "running")
            .values(lease_until=moment + timedelta(seconds=lease_s), updated_at=moment, **values)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0) == 1)


class JobContext:
    """What a handler gets: its parameters, the server and a way to report progress.

    Args:
        ctx: the server context.
        job_id: the job's id.
        params: its parameters.
        lease_s: seconds each extension of the lease lasts.
        attempt: the claim this worker holds (the job's ``attempts`` when it was claimed).
    """

    def __init__(
        self,
        ctx: ServerContext,
        job_id: str,
        params: dict[str, Any],
        lease_s: float,
        attempt: int = 0,
    ):
        self.ctx = ctx
        self.job_id = job_id
        self.params = params
        self.attempt = attempt
        self._lease_s = lease_s

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0..1) and extend the lease.

        Raises:
            LeaseLostError: another worker took the job over; the handler should stop.
        """
        held = _extend(
            self.ctx,
            self.job_id,
            self.attempt,
            self._lease_s,
            progress=max(0.0, min(1.0, fraction)),
            message=message,
        )
        if not held:
            raise LeaseLostError(f"job {self.job_id}: attempt {self.attempt} was taken over")


Handler = Callable[[JobContext], dict[str, Any]]


def add_job(
    session: Session, kind: str, project_id: int, params: dict[str, Any], created_by: str
) -> Job:
    """Queue a job in the caller's transaction (call ``JobRunner.wake`` after the commit)."""
    job = Job(
        id=uuid.uuid4().hex,
        kind=kind,
        project_id=project_id,
        state="queued",
        progress=0.0,
        message="queued",
        params=params,
        created_by=created_by,
        attempts=0,
    )
    session.add(job)
    return job


class JobRunner:
    """Worker threads that run queued jobs.

    Args:
        ctx: the server context (database, blobs ...).
        handlers: the function of each job kind.
        threads: worker threads (0: jobs run only through ``run_pending``).
        lease_s: how long a claimed job is held without progress.
        poll_s: how often idle workers look for jobs queued by other processes, seconds.
        housekeeping: called by the workers every ``housekeeping_s`` seconds (e.g. removing
            abandoned uploads; it must be safe to run in several processes at once).
        housekeeping_s: seconds between two housekeeping calls of one process.
    """

    def __init__(
        self,
        ctx: ServerContext,
        handlers: dict[str, Handler],
        *,
        threads: int = 1,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        housekeeping: Callable[[ServerContext], object] | None = None,
        housekeeping_s: float = 300.0,
    ) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.threads = threads
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.housekeeping = housekeeping
        self.housekeeping_s = housekeeping_s
        self._next_housekeeping = 0.0
        self._housekeeping_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads."""
        self._stop.clear()
        for i in range(self.threads):
            worker = threading.Thread(target=self._loop, name=f"thermoscope-job-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the workers to finish their current job and wait for them."""
        self._stop.set()
        self._wake.set()
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()

    def wake(self) -> None:
        """Tell idle workers a job was queued."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._housekeep()
                ran = self.run_pending(limit=1)
            except Exception:  # keep the worker alive; the job row records the failure
                log.exception("job worker failed")
                ran = 0
            if not ran:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _housekeep(self) -> None:
        """Run ``housekeeping`` when it is due (one worker thread of the process at a time)."""
        if self.housekeeping is None or time.monotonic() < self._next_housekeeping:
            return
        if not self._housekeeping_lock.acquire(blocking=False):
            return
        try:
            self._next_housekeeping = time.monotonic() + self.housekeeping_s
            self.housekeeping(self.ctx)
        finally:
            self._housekeeping_lock.release()

    def _claim(self) -> Job | None:
        """Claim the oldest claimable job (queued, or running with its lease run out)."""
        moment = now()
        claimable = or_(
            Job.state == "queued", and_(Job.state == "running", Job.lease_until < moment)
        )
        oldest = select(Job.id).where(claimable).order_by(Job.created_at).limit(1)
        claim = (
            update(Job)
            .values(
                state="running",
                attempts=Job.attempts + 1,
                lease_until=moment + timedelta(seconds=self.lease_s),
                message="started",
                updated_at=moment,
            )
            .execution_options(synchronize_session=False)
        )
        if self.ctx.db.is_sqlite:
            # one writer at a time: the conditional UPDATE is won by one process only
            with self.ctx.db.read() as session:  # idle polls never take the write lock
                job_id = session.scalars(oldest).first()
            if job_id is None:
                return None
            with self.ctx.db.write() as session:
                result = session.execute(claim.where(Job.id == job_id, claimable))
                if getattr(result, "rowcount", 0) != 1:
                    return None
                return session.get(Job, job_id, populate_existing=True)
        with self.ctx.db.write() as session:
            # the row stays locked until the commit; concurrent claimers skip it
            job_id = session.scalars(oldest.with_for_update(skip_locked=True)).first()
            if job_id is None:
                return None
            session.execute(claim.where(Job.id == job_id))
            return session.get(Job, job_id, populate_existing=True)

    def _finish(self, job: Job, **values: Any) -> None:
        """Record the outcome of the claim ``job`` holds (ignored once it was taken over)."""
        with self.ctx.db.write() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.attempts == job.attempts, Job.state == "running")
                .values(lease_until=None, updated_at=now(), **values)
                .execution_options(synchronize_session=False)
            )
        if getattr(result, "rowcount", 0) != 1:
            log.warning(
                "job %s: attempt %d was taken over; its outcome is dropped", job.id, job.attempts
            )

    def _heartbeat(self, job: Job, done: threading.Event) -> None:
        """Extend the lease of ``job`` every third of ``lease_s`` until ``done`` is set."""
        while not done.wait(self.lease_s / 3.0):
            try:
                if not _extend(self.ctx, job.id, job.attempts, self.lease_s):
                    return
            except Exception:  # a database hiccup: try again at the next beat
                log.exception("job %s: heartbeat failed", job.id)

    def run_pending(self, limit: int | None = None) -> int:
        """Claim and run queued jobs in this thread; returns how many ran."""
        ran = 0
        while limit is None or ran < limit:
            job = self._claim()
            if job is None:
                break
            ran += 1
            self._run(job)
        return ran

    def _run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            self._finish(job, state="failed", error=f"unknown job kind {job.kind!r}")
            return
        if job.attempts > MAX_ATTEMPTS:
            self._finish(
                job, state="failed", error=f"gave up after {MAX_ATTEMPTS} interrupted attempts"
            )
            return
        done = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat,
            args=(job, done),
            name=f"thermoscope-lease-{job.id}",
            daemon=True,
        )
        beat.start()
        try:
            result = handler(
                JobContext(self.ctx, job.id, dict(job.params), self.lease_s, job.attempts)
            )
        except LeaseLostError:
            log.warning("job %s: taken over by another worker; stopped", job.id)
            return
        except (ApiError, ThermoscopeError, ValueError) as exc:
            message = exc.detail if isinstance(exc, ApiError) else str(exc)
            self._finish(job, state="failed", error=message, message="failed")
            return
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            self._finish(job, state="failed", error=f"internal error: {exc}", message="failed")
            return
        finally:
            done.set()
            beat.join()
        self._finish(job, state="done", progress=1.0, message="done", result=result)
