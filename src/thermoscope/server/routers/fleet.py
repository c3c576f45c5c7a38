"""A project's fleet of edge stations: their reported status and a staged model roll-out.

Each station (an edge agent, named by its ``station`` id and calling with an API token of
``ingest`` scope) posts its status: the model release and recipe version it runs, whether it is
healthy, and the releases its updater refused or rolled back. The answer carries the release
the station should run (``target_model``, with the SHA-256 of its zip and its name): the
roll-out's target for that station, or the project's active release while no roll-out was ever
started. The edge agent's ``ModelUpdater`` follows it.

A roll-out offers a release to one station first (``first``, stage ``canary``); once that
station reports running it and healthy, every station is offered it (``complete``). When the
first station reports it refused or rolled back the release (or reports itself unhealthy on
it), the roll-out stops (``rolled_back``): the other stations keep the previous target and never
see the release.

State lives in the blob store (``fleet/<pid>/...`` JSON documents), not in process memory, so
every server process answers the same; a station's document is written only by its own reports.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from thermoscope.server.auth import Action, require
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import ModelRelease
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.releases import active_release
from thermoscope.server.routers.deps import Caller, Ctx, ProjectId

router = APIRouter(tags=["fleet"])

StationId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="a station's id")
]
Stage = Literal["canary", "complete", "rolled_back"]


class StatusIn(BaseModel):
    """What a station reports."""

    model_version: int | None = Field(None, ge=1, le=2**62, description="release it runs")
    recipe_version: str | None = Field(None, max_length=64, description="recipe it runs")
    healthy: bool = Field(True, description="its own health check passes")
    refused: list[int] = Field(
        default_factory=list, max_length=1000, description="releases refused or rolled back"
    )
    detail: str = Field("", max_length=500, description="a short note (the last error)")


class StationOut(StatusIn):
    """A station's last report and the release it should run."""

    station: str
    reported_at: datetime
    target_model: int | None = Field(None, description="release the station should run")
    target_sha256: str | None = Field(None, description="SHA-256 (hex) of that release's zip")
    target_name: str | None = Field(None, description="that release's name")


class RolloutIn(BaseModel):
    """A staged roll-out: the release and the station that gets it first."""

    version: int = Field(ge=1, le=2**62)
    first: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RolloutOut(RolloutIn):
    """A roll-out and where it stands."""

    stage: Stage
    previous: int | None = Field(None, description="the target before it (others keep it)")
    started_at: datetime
    reason: str = ""


def _key(pid: int, name: str) -> str:
    return f"fleet/{pid}/{name}.json"


def _rollout(ctx: ServerContext, pid: int) -> RolloutOut | None:
    key = _key(pid, "rollout")
    if not ctx.blobs.exists(key):
        return None
    return RolloutOut.model_validate(json.loads(ctx.blobs.get(key)))


def _names(ctx: ServerContext, pid: int) -> list[str]:
    """Ids of the stations that reported (kept in ``fleet/<pid>/stations.json``)."""
    key = _key(pid, "stations")
    return list(json.loads(ctx.blobs.get(key))) if ctx.blobs.exists(key) else []


def _save(ctx: ServerContext, key: str, model: BaseModel) -> None:
    ctx.blobs.put(key, model.model_dump_json().encode("utf-8"))


def _target(session: Session, pid: int, rollout: RolloutOut | None, station: str) -> int | None:
    """The release ``station`` should run: the roll-out's, or the active one before any."""
    if rollout is None:
        active = active_release(session, pid)
        return None if active is None else active.version
    if rollout.stage == "complete" or (rollout.stage == "canary" and station == rollout.first):
        return rollout.version
    return rollout.previous


def _aim(session: Session, pid: int, rollout: RolloutOut | None, row: StationOut) -> StationOut:
    """``row`` with its target release (version, zip SHA-256 and name) filled in."""
    version = _target(session, pid, rollout, row.station)
    release = (
        None
        if version is None
        else session.scalar(
            select(ModelRelease).where(
                ModelRelease.project_id == pid, ModelRelease.version == version
            )
        )
    )
    row.target_model = version
    row.target_sha256 = None if release is None else release.sha256
    row.target_name = None if release is None else release.name
    return row


def _advance(ctx: ServerContext, pid: int, station: str, report: StatusIn) -> RolloutOut | None:
    """Move a canary roll-out on by its first station's report; return the roll-out."""
    rollout = _rollout(ctx, pid)
    if rollout is None or rollout.stage != "canary" or station != rollout.first:
        return rollout
    if rollout.version in report.refused or (
        report.model_version == rollout.version and not report.healthy
    ):
        rollout.stage = "rolled_back"
        rollout.reason = report.detail or f"station {station} rolled back {rollout.version}"
    elif report.model_version == rollout.version and report.healthy:
        rollout.stage = "complete"
    else:
        return rollout
    _save(ctx, _key(pid, "rollout"), rollout)
    return rollout


@router.post("/projects/{pid}/stations/{station}/status", response_model=StationOut)
def report_status(
    pid: ProjectId, station: StationId, body: StatusIn, caller: Caller, ctx: Ctx
) -> StationOut:
    """A station's status; the answer says which release it should run."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.INGEST)
        rollout = _advance(ctx, pid, station, body)
        out = StationOut(**body.model_dump(), station=station, reported_at=datetime.now(UTC))
        _aim(session, pid, rollout, out)
    _save(ctx, _key(pid, f"stations/{station}"), out)
    names = _names(ctx, pid)
    if station not in names:
        ctx.blobs.put(_key(pid, "stations"), json.dumps(sorted({*names, station})).encode())
    return out


@router.get("/projects/{pid}/stations", response_model=list[StationOut])
def list_stations(pid: ProjectId, caller: Caller, ctx: Ctx) -> list[StationOut]:
    """Every station that reported, by id, with its last report and its target release."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        rollout = _rollout(ctx, pid)
        return [
            _aim(
                session,
                pid,
                rollout,
                StationOut.model_validate(json.loads(ctx.blobs.get(_key(pid, f"stations/{n}")))),
            )
            for n in _names(ctx, pid)
        ]


@router.post(
    "/projects/{pid}/rollouts", response_model=RolloutOut, status_code=status.HTTP_201_CREATED
)
def start_rollout(pid: ProjectId, body: RolloutIn, caller: Caller, ctx: Ctx) -> RolloutOut:
    """Offer a release to ``first`` alone; the rest follow once it reports healthy on it."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.MANAGE)
        found = session.scalar(
            select(ModelRelease.id).where(
                ModelRelease.project_id == pid, ModelRelease.version == body.version
            )
        )
        if found is None:
            raise not_found(f"model release {body.version}")
        current = _rollout(ctx, pid)
        if current is not None and current.stage == "canary":
            raise ApiError(
                409, f"roll-out of release {current.version} is still at its first station"
            )
        previous = _target(session, pid, current, "")
    rollout = RolloutOut(
        **body.model_dump(), stage="canary", previous=previous, started_at=datetime.now(UTC)
    )
    _save(ctx, _key(pid, "rollout"), rollout)
    return rollout


@router.get("/projects/{pid}/rollouts/current", response_model=RolloutOut | None)
def current_rollout(pid: ProjectId, caller: Caller, ctx: Ctx) -> RolloutOut | None:
    """The project's latest roll-out (``null`` before the first)."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
    return _rollout(ctx, pid)
