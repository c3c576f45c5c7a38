"""Ingest, uploads and frames."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from thermoscope.core import Verdict
from thermoscope.server.schemas.common import Request

Filename = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]


#: Bytes the JSON of one finding's ``extra`` may take.
MAX_EXTRA_BYTES = 64 * 1024


class EdgeFinding(Request):
    """One finding of the edge's inspection: exactly the fields of core's contract
    (``Finding.to_json()``, ``thermoscope.core.findings.FINDING_KEYS``), bounded."""

    rule: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    region: Annotated[str, StringConstraints(max_length=200)] = ""
    value: float | None = Field(default=None, description="measured value in unit; null = NaN")
    limit: float | None = Field(default=None, description="the limit held against, in unit")
    verdict: Verdict = Field(description="OK, WARN, NG or RETAKE (core.Verdict)")
    x: int | None = Field(default=None, ge=0, le=1 << 20)
    y: int | None = Field(default=None, ge=0, le=1 << 20)
    explanation: Annotated[str, StringConstraints(max_length=2000)] = ""
    margin: float | None = Field(
        default=None, description="distance to the NG limit in unit (positive: inside)"
    )
    unit: Annotated[str, StringConstraints(max_length=20)] = "°C"
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="model confidence")
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description=f"rule- or model-specific details (JSON, at most {MAX_EXTRA_BYTES} bytes)",
    )

    @field_validator("value", "limit", "margin")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number or null")
        return value

    @field_validator("extra")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8"))
        if size > MAX_EXTRA_BYTES:
            raise ValueError(f"{size} bytes of JSON, more than {MAX_EXTRA_BYTES}")
        return value


class EdgeInspection(Request):
    """The edge's inspection of a part: core's contract (``Inspection.to_json()``,
    ``thermoscope.core.findings.INSPECTION_KEYS``) plus the model's name and version."""

    source: Annotated[str, StringConstraints(max_length=1000)] = ""
    frame: int | None = Field(default=None, ge=0, le=1 << 20)
    verdict: Verdict = Field(description="the worst finding's verdict (core.Verdict)")
    findings: list[EdgeFinding] = Field(default_factory=list, max_length=10_000)
    model: Annotated[str, StringConstraints(max_length=200)] = ""
    model_version: Annotated[str, StringConstraints(max_length=100)] = ""

    def contract_json(self) -> dict[str, Any]:
        """The inspection as core's contract JSON (``Inspection.from_json`` reads it)."""
        return self.model_dump(mode="json", exclude=set(EDGE_ONLY))


#: EdgeInspection fields beyond core's inspection contract.
EDGE_ONLY = ("model", "model_version")


class IngestOut(BaseModel):
    """A committed frame (new or found by its content hash)."""

    frame_id: str
    created: bool
    width: int
    height: int
    frame_count: int
    format: str = Field(description="the file's format as read (flir-csq, flir-seq, ...)")
    issues: list[str] = Field(
        default_factory=list,
        description="problems of the file that did not stop ingest, e.g. a truncated last "
        "frame (its complete frames were stored)",
    )


class UploadIn(Request):
    """A resumable upload to open."""

    project_id: int = Field(ge=1, le=2**62)
    filename: Filename
    size: int = Field(ge=1, le=2**50, description="bytes the file has")
    sha256: Sha256
    findings: EdgeInspection | None = None
    meta: dict[str, Any] | None = None


class UploadOut(BaseModel):
    """Where a resumable upload stands."""

    upload_id: str
    offset: int = Field(description="bytes received and durable")
    size: int
    state: str = Field(description="open or complete")
    frame_id: str | None = None


class FrameOut(BaseModel):
    """A frame in a list."""

    id: str
    project_id: int
    filename: str
    format: str
    width: int
    height: int
    frame_count: int
    status: str
    verdict: str | None
    machine_verdict: str | None
    confidence: float | None
    disagreement: bool
    created_at: datetime
    issues: list[str] = Field(
        default_factory=list, description="problems of the file that did not stop ingest"
    )
    model_score: float | None = Field(
        default=None,
        description="the project model's score when it pre-annotated the frame, 0..1 (its "
        "label's probability, or the anomaly score)",
    )
    model_margin: float | None = Field(
        default=None, description="|score - threshold| of that model (0: least certain)"
    )
    model_version: str | None = Field(
        default=None, description="name:version of the model that pre-annotated the frame"
    )
    heatmap: bool = Field(
        default=False, description="whether GET /frames/{fid}/heatmap has the model's heat map"
    )


class FrameDetail(FrameOut):
    """Everything about a frame."""

    content_hash: str
    size_bytes: int
    camera: dict[str, Any]
    parameters: dict[str, Any] | None
    capture_time: datetime | None
    timestamps_s: list[float] | None
    findings: dict[str, Any] | None
    machine_findings: dict[str, Any] | None
    meta: dict[str, Any]
    min_c: float | None
    max_c: float | None
    revision: int
