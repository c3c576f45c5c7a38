"""A candidate model tried beside the running one: its shadow run on recent parts, the bound it
must meet to be switched to, and the health check of a switched model on probation
(``WatchedModel`` times and counts its calls). Used by ``thermoscope.edge.updates``; pure
functions of their inputs except ``WatchedModel``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thermoscope.core import Finding, Inspection, ThermalFrame, Verdict
from thermoscope.edge.config import UpdatesConfig
from thermoscope.edge.status import LATENCY_WINDOW, percentile
from thermoscope.models.errors import ModelError
from thermoscope.models.runtime import LoadedModel

if TYPE_CHECKING:
    from thermoscope.edge.agent import RecentPart

#: The rule prefix of a model's findings (``model:<name>``).
MODEL_RULE = "model:"


@dataclass(frozen=True)
class ShadowReport:
    """A candidate's shadow run over recent parts.

    Attributes:
        parts: parts it ran on.
        agreement: share of parts whose pass/fail verdict matched the running pipeline's.
        score_delta: mean |candidate score - running model score| (``None``: no model ran).
        latency_p95_ms: 95th percentile of its inference time per frame, ms.
        errors: frames it failed on; ``first_error`` the first one's part and reason.
        ng_share_running: share of the parts the running pipeline called NG.
        ng_share_candidate: share the candidate's pipeline would call NG.
    """

    parts: int
    agreement: float
    score_delta: float | None
    latency_p95_ms: float
    errors: int
    first_error: str
    ng_share_running: float
    ng_share_candidate: float


@dataclass(frozen=True)
class Health:
    """A switched model's record since the switch: parts it inspected, inference errors, the
    95th percentile of its inference time (ms), and the NG share of the parts since."""

    calls: int
    errors: int
    latency_p95_ms: float | None
    ng_share: float | None


def _score(findings: Sequence[Finding]) -> float | None:
    for f in findings:
        if f.rule.startswith(MODEL_RULE):
            return float(f.score if f.score is not None else f.value)
    return None


def shadow_run(candidate: Any, parts: Sequence[RecentPart]) -> ShadowReport:
    """Run ``candidate`` (a ``PartModel``) on recent parts beside their running inspections.

    The shadow verdict of a part is the worst of the running recipe's findings (kept from its
    inspection) and the candidate's; the running model's findings are replaced. The inference
    time is timed per part after one untimed warm-up call.
    """
    agree = ng_running = ng_candidate = errors = 0
    deltas: list[float] = []
    latencies: list[float] = []
    first_error = ""
    if parts:  # one untimed call first: a fresh ONNX Runtime session is slow once
        with contextlib.suppress(ModelError, ValueError):
            candidate.findings(parts[0].frame)
    for part in parts:
        own = [f for f in part.inspection.findings if not f.rule.startswith(MODEL_RULE)]
        started = time.perf_counter()
        try:
            learned = list(candidate.findings(part.frame))
        except (ModelError, ValueError) as exc:
            errors += 1
            first_error = first_error or f"part {part.number}: {exc}"
            continue
        latencies.append((time.perf_counter() - started) * 1000.0)
        shadow = Inspection.of(part.inspection.source, part.inspection.frame, [*own, *learned])
        running_ng = part.inspection.verdict is Verdict.NG
        shadow_ng = shadow.verdict is Verdict.NG
        agree += running_ng == shadow_ng
        ng_running += running_ng
        ng_candidate += shadow_ng
        before, after = _score(part.inspection.findings), _score(learned)
        if before is not None and after is not None:
            deltas.append(abs(after - before))
    done = max(len(latencies), 1)
    p95 = percentile(sorted(latencies), 95)
    return ShadowReport(
        parts=len(latencies),
        agreement=agree / done,
        score_delta=sum(deltas) / len(deltas) if deltas else None,
        latency_p95_ms=0.0 if p95 is None else p95,
        errors=errors,
        first_error=first_error,
        ng_share_running=ng_running / done,
        ng_share_candidate=ng_candidate / done,
    )


def shadow_failure(report: ShadowReport, settings: UpdatesConfig) -> str:
    """Why a shadow run does not allow the switch ("" when it does)."""
    if report.errors > settings.max_inference_errors:
        return f"{report.errors} inference error(s) in shadow, the first {report.first_error}"
    if report.agreement < settings.min_agreement:
        return (
            f"verdicts agree on {report.agreement:.1%} of {report.parts} shadow parts, "
            f"below {settings.min_agreement:.1%}"
        )
    if report.score_delta is not None and report.score_delta > settings.max_score_delta:
        return (
            f"mean score difference {report.score_delta:.3f} to the running model exceeds "
            f"{settings.max_score_delta}"
        )
    if report.latency_p95_ms > settings.max_latency_ms:
        return (
            f"inference p95 {report.latency_p95_ms:.1f} ms exceeds the budget of "
            f"{settings.max_latency_ms} ms"
        )
    return ""


def ng_baseline(parts: int, ng_parts: int, report: ShadowReport) -> float:
    """The NG share (0 to 1) a switched model's probation is judged against: the run's so far
    (``ng_parts`` of ``parts``; more parts than the shadow's), or the running pipeline's over
    the shadow's recent parts where that is higher, so that a line which drifted toward NG
    before the switch does not fail a model that only follows it."""
    run_share = ng_parts / parts if parts else 0.0
    return max(run_share, report.ng_share_running)


def health_failure(health: Health, baseline_ng: float, settings: UpdatesConfig) -> str:
    """Why a switched model fails its health check ("" when it has not failed: errors count at
    once, latency and the NG share once ``health_parts`` parts are in)."""
    if health.errors > settings.max_inference_errors:
        return f"{health.errors} inference error(s) since the switch"
    if health.calls < settings.health_parts:
        return ""
    if health.latency_p95_ms is not None and health.latency_p95_ms > settings.max_latency_ms:
        return (
            f"inference p95 {health.latency_p95_ms:.1f} ms over the budget of "
            f"{settings.max_latency_ms} ms"
        )
    if health.ng_share is not None and health.ng_share - baseline_ng > settings.max_ng_rate_jump:
        return (
            f"NG share rose from {baseline_ng:.1%} to {health.ng_share:.1%} (more than "
            f"{settings.max_ng_rate_jump:.1%})"
        )
    return ""


class WatchedModel:
    """A model on probation: the pipeline's ``PartModel`` that times and counts its calls
    (thread-safe: parts are inspected in a worker thread)."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._calls = 0
        self._errors = 0

    @property
    def name(self) -> str:
        """The model's name."""
        return self.model.name

    @property
    def version(self) -> str:
        """The release version."""
        return self.model.version

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        """The model's findings (an error is counted and raised again)."""
        started = time.perf_counter()
        try:
            found = self.model.findings(frame, ambient_c=ambient_c)
        except Exception:
            with self._lock:
                self._calls += 1
                self._errors += 1
            raise
        with self._lock:
            self._calls += 1
            self._latencies.append((time.perf_counter() - started) * 1000.0)
        return found

    def record(self) -> tuple[int, int, float | None]:
        """Calls (succeeded or failed), errors, 95th percentile latency of the last
        ``LATENCY_WINDOW`` calls (ms)."""
        with self._lock:
            latencies = sorted(self._latencies)
            return self._calls, self._errors, percentile(latencies, 95)


__all__ = [
    "MODEL_RULE",
    "Health",
    "ShadowReport",
    "WatchedModel",
    "health_failure",
    "shadow_failure",
    "shadow_run",
]
