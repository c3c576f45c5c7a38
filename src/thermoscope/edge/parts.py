"""What the agent makes of one part, apart from the loop that drives it: the error and warning
codes the PLC gets, the ``edge:error`` inspection of a part that could not be judged, decoding and
inspecting a captured file (``judge``), the flagged frame's metadata, the PLC overrun event, the
records of a part (``PartDone``), the run's totals, and the local results journal.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from thermoscope.core import Finding, Inspection, ThermalFrame, ThermoscopeError, Verdict
from thermoscope.edge.messaging import PartOutcome, Topics, utc_now
from thermoscope.edge.outbox import Pending
from thermoscope.edge.plc.handshake import Delivery, InspectionResult
from thermoscope.edge.sources import Capture
from thermoscope.edge.triggers import PartTrigger
from thermoscope.pipeline import Pipeline, decode_bytes
from thermoscope.recipes.watch import DriftAlarm

#: PLC error codes (0: none).
ERROR_UNREADABLE = 1  # the frame could not be decoded
ERROR_INSPECTION = 2  # the frame does not fit the recipe or the model
ERROR_ACQUISITION = 3  # the source gave no frame for the trigger
#: PLC warning bits (OR'ed; 0: none).
WARNING_WARN_VERDICT = 1  # a finding is in its warning band
WARNING_NOT_RECORDED = 2  # the outbox could not record the part (disk or database failure)
WARNING_FRAME_REFUSED = 4  # the part's NG, RETAKE or drift frame did not fit the disk budget
WARNING_RETAKE = 8  # verdict RETAKE: the capture broke the recipe's protocol (job_fail)
#: The outbox sink of the local results journal (used when neither MQTT nor a webhook is set).
JOURNAL_SINK = "journal"
#: The rule name of an edge-side error finding (an NG verdict with an error code).
ERROR_RULE = "edge:error"


@dataclass(frozen=True)
class RecentPart:
    """A part recently inspected: its (first) frame and the active pipeline's inspection."""

    number: int
    frame: ThermalFrame
    inspection: Inspection


@dataclass(frozen=True)
class PartDone:
    """What the agent did with one part.

    Attributes:
        trigger: the trigger.
        inspection: the verdict and findings (an ``edge:error`` finding on errors).
        result: what the PLC was (or would have been) given.
        delivery: where the PLC result went (``None`` without a PLC trigger).
        flagged: why its frame was flagged (``NG``, ``RETAKE``, ``drift``, ``sample``), "" if it
            was not.
        alarms: drift alarms the part raised.
        content_id: the frame's content id ("" on a decode error).
    """

    trigger: PartTrigger
    inspection: Inspection
    result: InspectionResult
    delivery: Delivery | None
    flagged: str
    alarms: tuple[DriftAlarm, ...]
    content_id: str


@dataclass
class RunSummary:
    """A run's totals: parts by verdict, errors, PLC overruns, parts the outbox did not take."""

    parts: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    overruns: int = 0
    unrecorded: int = 0


class JournalSink:
    """Results and events appended as JSON lines to a local file (the sink when no MQTT broker
    or webhook is configured, so every verdict still leaves the outbox somewhere)."""

    name = JOURNAL_SINK

    def __init__(self, path: Path) -> None:
        self.path = path

    async def deliver(self, entry: Pending) -> None:
        line = json.dumps({**entry.payload, "id": entry.key, "kind": entry.kind.value}) + "\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)


def error_inspection(source: str, code: int, reason: str) -> Inspection:
    """The NG inspection of a part the agent could not judge (an ``edge:error`` finding)."""
    finding = Finding(
        rule=ERROR_RULE,
        region="",
        value=float(code),
        limit=None,
        verdict=Verdict.NG,
        explanation=reason[:500],
        unit="",
    )
    return Inspection.of(source, None, [finding])


def plc_verdict(verdict: Verdict) -> tuple[bool, int]:
    """What the PLC gets for an inspection's verdict: ``job_pass`` and the warning bits.

    OK passes; WARN passes with ``WARNING_WARN_VERDICT``; NG fails; RETAKE (the capture broke
    the recipe's protocol, the part is not judged) fails with ``WARNING_RETAKE`` and no error
    code, so a PLC that reads only pass/fail rejects the part and one that reads the warning
    word can present it to the camera again.
    """
    if verdict is Verdict.RETAKE:
        return False, WARNING_RETAKE
    return verdict is not Verdict.NG, WARNING_WARN_VERDICT if verdict is Verdict.WARN else 0


def alarm_detail(alarm: DriftAlarm) -> dict[str, Any]:
    """A drift alarm as a JSON object (non-finite numbers left out)."""
    detail = asdict(alarm)
    return {k: v for k, v in detail.items() if not isinstance(v, float) or math.isfinite(v)}


def judge(
    pipeline: Pipeline, capture: Capture | None, name: str
) -> tuple[Inspection, int, ThermalFrame | None, str]:
    """Decode a captured file and inspect it: the inspection, its error code (0: none), its
    first frame and its content id (``None`` and "" when it could not be decoded)."""
    if capture is None:
        code = ERROR_ACQUISITION
        return error_inspection(name, code, "the source gave no frame"), code, None, ""
    try:
        decoded = decode_bytes(capture.data, capture.filename, keep=pipeline.frames_needed)
    except ThermoscopeError as exc:
        return error_inspection(name, ERROR_UNREADABLE, str(exc)), ERROR_UNREADABLE, None, ""
    with decoded:
        try:
            inspection = pipeline.inspect_part(decoded, source=name)
        except (ThermoscopeError, ValueError) as exc:
            inspection, code = error_inspection(name, ERROR_INSPECTION, str(exc)), ERROR_INSPECTION
            return inspection, code, decoded.first, decoded.content_id
        return inspection, 0, decoded.first, decoded.content_id


def frame_meta(
    trigger: PartTrigger, capture: Capture, topics: Topics, flag: str, outcome: PartOutcome
) -> dict[str, Any]:
    """The ``meta`` object the server keeps with a flagged frame."""
    meta: dict[str, Any] = {
        "part": trigger.number,
        "part_id": trigger.part_id or capture.part_id,
        "site": topics.site,
        "line": topics.line,
        "station": topics.station,
        "flag": flag,
        "recipe": outcome.recipe,
        "recipe_checksum": outcome.recipe_checksum,
        "ts": outcome.ts,
    }
    if capture.truth:
        meta["truth"] = capture.truth
    return meta


def overrun_event(part: str, passed: bool) -> dict[str, Any]:
    """The event payload of a result the PLC's full buffer did not take."""
    return {"type": "plc", "change": "overrun", "part": part, "passed": passed, "ts": utc_now()}
