"""Responses of the twin API: the line view of a project and a station's part history."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DriftOut(BaseModel):
    """A drift alarm of a station's value (the run-long watch over its ingested parts)."""

    rule: str
    region: str
    direction: str = Field(description="up or down")
    part: int = Field(description="the station's part count (0-based) at which it rose")
    explanation: str


class RecentNg(BaseModel):
    """An NG part of a station."""

    frame_id: str
    part: str | None = Field(description="the part's id or number as the edge sent it")
    time: datetime


class StationOut(BaseModel):
    """One station as the line view shows it."""

    site: str
    line: str
    station: str
    recipe: str | None
    parts: int = Field(description="parts ingested from the station")
    ng: int = Field(description="NG parts among them")
    last_seen: datetime
    status: str = Field(description="ng (an NG part in the last 20), drift (an open alarm), ok")
    drift: list[DriftOut]
    recent_ng: list[RecentNg] = Field(description="the last 10 NG parts, newest first")


class TwinOut(BaseModel):
    """The line view of a project: its stations, as the edge agents reported them."""

    project_id: int
    stations: list[StationOut]


class PartValueOut(BaseModel):
    """One measured value of a part against the station's expected value."""

    rule: str
    region: str
    measured: float | None
    expected: float | None = Field(
        description="the median of this value over the station's first 100 parts"
    )
    limit: float | None
    unit: str
    verdict: str


class PartOut(BaseModel):
    """One part at a station and its values."""

    frame_id: str
    part: str | None
    time: datetime
    verdict: str | None
    values: list[PartValueOut]


class StationPartsOut(BaseModel):
    """The last parts of a station, oldest first."""

    station: str
    region: str | None
    rule: str | None
    parts: list[PartOut]
