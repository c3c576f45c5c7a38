"""Background jobs: an in-process worker pool over a ``jobs`` table, with progress.

A job is a row (kind, parameters, state, progress). Workers claim a queued job with a
conditional ``UPDATE`` and hold a lease on it, extended whenever the job reports progress; a job
whose lease ran out (its server died) is taken up again, at most ``MAX_ATTEMPTS`` times. The
same table works for one embedded server and for several servers sharing PostgreSQL. Handlers
must be idempotent (dataset versions and exports are: their outputs are content-addressed or
overwritten whole).
"""

from __future__ import annotations

import logging
import threading
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


class JobContext:
    """What a handler gets: its parameters, the server and a way to report progress."""

    def __init__(self, ctx: ServerContext, job_id: str, params: dict[str, Any], lease_s: float):
        self.ctx = ctx
        self.job_id = job_id
        self.params = params
        self._lease_s = lease_s

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0..1) and extend the lease."""
        moment = now()
        with self.ctx.db.write() as session:
            session.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(
                    progress=max(0.0, min(1.0, fraction)),
                    message=message,
                    lease_until=moment + timedelta(seconds=self._lease_s),
                    updated_at=moment,
                )
                .execution_options(synchronize_session=False)
            )


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
        poll_s: how often idle workers look for jobs queued by other processes.
    """

    def __init__(
        self,
        ctx: ServerContext,
        handlers: dict[str, Handler],
        *,
        threads: int = 1,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.threads = threads
        self.lease_s = lease_s
        self.poll_s = poll_s
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
                ran = self.run_pending(limit=1)
            except Exception:  # keep the worker alive; the job row records the failure
                log.exception("job worker failed")
                ran = 0
            if not ran:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _claim(self) -> Job | None:
        moment = now()
        claimable = or_(
            Job.state == "queued", and_(Job.state == "running", Job.lease_until < moment)
        )
        with self.ctx.db.read() as session:  # idle polls never take the write lock
            job_id = session.scalars(
                select(Job.id).where(claimable).order_by(Job.created_at).limit(1)
            ).first()
        if job_id is None:
            return None
        with self.ctx.db.write() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, claimable)
                .values(
                    state="running",
                    attempts=Job.attempts + 1,
                    lease_until=moment + timedelta(seconds=self.lease_s),
                    message="started",
                    updated_at=moment,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            return session.get(Job, job_id, populate_existing=True)

    def _finish(self, job_id: str, **values: Any) -> None:
        with self.ctx.db.write() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(lease_until=None, updated_at=now(), **values)
                .execution_options(synchronize_session=False)
            )

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
            self._finish(job.id, state="failed", error=f"unknown job kind {job.kind!r}")
            return
        if job.attempts > MAX_ATTEMPTS:
            self._finish(
                job.id, state="failed", error=f"gave up after {MAX_ATTEMPTS} interrupted attempts"
            )
            return
        try:
            result = handler(JobContext(self.ctx, job.id, dict(job.params), self.lease_s))
        except (ApiError, ThermoscopeError, ValueError) as exc:
            message = exc.detail if isinstance(exc, ApiError) else str(exc)
            self._finish(job.id, state="failed", error=message, message="failed")
            return
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            self._finish(job.id, state="failed", error=f"internal error: {exc}", message="failed")
            return
        self._finish(job.id, state="done", progress=1.0, message="done", result=result)
