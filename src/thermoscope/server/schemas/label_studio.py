"""The Label Studio ML backend protocol's bodies (as Label Studio sends them: extra keys kept
out, never refused, so newer Label Studio versions keep working)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LsBody(BaseModel):
    """Base: unknown keys are ignored (Label Studio adds keys between versions)."""

    model_config = ConfigDict(extra="ignore")


class LsTask(LsBody):
    """A Label Studio task: its id and its data (the image URL, or our frame id)."""

    id: int | str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class LsPredictIn(LsBody):
    """``POST /predict``: tasks to pre-annotate."""

    tasks: list[LsTask] = Field(max_length=1000)
    label_config: str | None = Field(default=None, max_length=1_000_000)
    project: str | int | None = None
    model_version: str | None = None
    params: dict[str, Any] | None = None


class LsSetupIn(LsBody):
    """``POST /setup``: Label Studio connects a project to the backend."""

    project: str | int | None = None
    schema_: str | None = Field(default=None, alias="schema", max_length=1_000_000)
    hostname: str | None = None
    access_token: str | None = None
    model_version: str | None = None
    extra_params: Any = None


class LsWebhookIn(LsBody):
    """``POST /webhook``: an event of Label Studio (``START_TRAINING``, ``ANNOTATION_CREATED``
    ...)."""

    action: str = Field(max_length=100)
    project: dict[str, Any] | None = None
