"""Model releases of a project and training jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from thermoscope.server.schemas.common import Request


class ModelOut(BaseModel):
    """A model release a project holds."""

    version: int = Field(description="the release's monotonic version")
    name: str
    kind: str = Field(description="classifier, anomaly, golden or temporal")
    created: datetime
    expires: datetime
    sha256: str = Field(description="SHA-256 (hex) of the release zip")
    size_bytes: int
    active: bool = Field(description="whether ingest pre-annotates with it")
    signed: bool = Field(description="verified with a trusted key (false: a training job's own)")
    classes: list[str]
    thresholds: dict[str, float]
    metrics: dict[str, object] = Field(description="the release's own held-out figures")
    uploaded_by: str
    uploaded_at: datetime


class ScoreIn(Request):
    """A scoring job: the active model's score of the project's frames."""

    all: bool = Field(
        default=False,
        description="score again the frames the active model already scored (default: only "
        "the others)",
    )


class TrainIn(Request):
    """A training job: a model of ``kind`` from a dataset version of the project."""

    version_id: str = Field(pattern=r"^[0-9a-f]{1,64}$", description="the dataset version")
    kind: Literal["golden", "anomaly"] = Field(
        default="golden",
        description="golden: per-pixel statistics of the training part's OK items (no "
        "training framework, milliseconds); anomaly: the patch-feature anomaly model of those "
        "items (needs the train extra, torch; seconds to minutes). NG items are used in the "
        "held-out evaluation",
    )
    name: str = Field(
        default="golden",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the release's name",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seeds the held-out split")
    holdout: float = Field(
        default=0.25, ge=0.0, lt=1.0, description="share of the items held out for evaluation"
    )
    activate: bool = Field(
        default=False,
        description="make the release active when done (only when the server signs it)",
    )
