"""The twin API: a project's line view (stations, drift state, recent NG) and a station's
parts against their expected values, both built from the ingested frames' ``meta`` (site,
line, station, part, recipe: what the edge agent sends) and their findings (the edge's, else
the server pipeline's machine findings).

The drift state is the run-long watch (:class:`~thermoscope.recipes.watch.RunWatch`) run over
the station's parts in the order they were ingested; an alarm raised within the station's last
``OPEN_PARTS`` parts is shown as open.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.recipes.watch import RunWatch
from thermoscope.server.auth import Action, require
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import Frame, utc
from thermoscope.server.routers.deps import Caller, Ctx, ProjectId
from thermoscope.server.schemas.twin import (
    DriftOut,
    PartOut,
    PartValueOut,
    RecentNg,
    StationOut,
    StationPartsOut,
    TwinOut,
)

router = APIRouter(tags=["twin"])

#: Most recent frames of a project the twin is built from.
MAX_FRAMES = 20_000
#: An alarm raised within a station's last this many parts is open.
OPEN_PARTS = 200
#: Parts whose median is a value's expected value.
BASELINE_PARTS = 100
StationId = Annotated[
    str, Path(min_length=1, max_length=100, description="the station's name as the edge sends it")
]


@dataclass
class _Part:
    frame_id: str
    time: datetime
    meta: dict[str, Any]
    verdict: str | None
    findings: list[dict[str, Any]] = field(default_factory=list)


def _findings(frame: Frame) -> tuple[str | None, list[dict[str, Any]]]:
    for source in (frame.findings, frame.machine_findings):
        if isinstance(source, dict) and isinstance(source.get("findings"), list):
            found = [f for f in source["findings"] if isinstance(f, dict)]
            verdict = source.get("verdict")
            return (verdict if isinstance(verdict, str) else frame.machine_verdict), found
    return frame.machine_verdict, []


def _stations(ctx: ServerContext, caller: Caller, pid: int) -> dict[str, list[_Part]]:
    """The project's parts by station, oldest first."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        frames = list(
            session.scalars(
                select(Frame)
                .where(Frame.project_id == pid)
                .order_by(Frame.created_at.desc(), Frame.id)
                .limit(MAX_FRAMES)
            )
        )
    stations: dict[str, list[_Part]] = {}
    for frame in reversed(frames):
        meta = frame.meta if isinstance(frame.meta, dict) else {}
        station = meta.get("station")
        if not isinstance(station, str) or not station:
            continue
        verdict, found = _findings(frame)
        stations.setdefault(station, []).append(
            _Part(frame.id, utc(frame.created_at), meta, verdict, found)
        )
    return stations


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _inspection(part: _Part) -> Inspection:
    findings = []
    seen = set()
    for f in part.findings:
        key = (str(f.get("rule", "")), str(f.get("region", "")))
        value = _number(f.get("value"))
        if key in seen or value is None:
            continue
        seen.add(key)
        try:
            verdict = Verdict(f.get("verdict", "OK"))
        except ValueError:
            verdict = Verdict.OK
        findings.append(
            Finding(
                key[0],
                key[1],
                value,
                _number(f.get("limit")),
                verdict,
                "",
                unit=str(f.get("unit", "°C")),
            )
        )
    verdict = Verdict.NG if part.verdict == "NG" else Verdict.worst([f.verdict for f in findings])
    return Inspection(part.frame_id, None, verdict, tuple(findings))


def _part_name(meta: dict[str, Any]) -> str | None:
    for key in ("part_id", "part"):
        value = meta.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def _station_out(name: str, parts: list[_Part]) -> StationOut:
    watch = RunWatch()
    for part in parts:
        watch.update(_inspection(part))
    open_from = len(parts) - OPEN_PARTS
    drift = [
        DriftOut(
            rule=a.rule,
            region=a.region,
            direction=a.direction,
            part=a.part_index,
            explanation=a.explanation,
        )
        for a in watch.alarms
        if a.part_index >= open_from
    ]
    ng = [p for p in parts if p.verdict == "NG"]
    last = parts[-1]
    status = "ng" if any(p.verdict == "NG" for p in parts[-20:]) else "drift" if drift else "ok"
    recipe = last.meta.get("recipe")
    return StationOut(
        site=str(last.meta.get("site", "")),
        line=str(last.meta.get("line", "")),
        station=name,
        recipe=recipe if isinstance(recipe, str) else None,
        parts=len(parts),
        ng=len(ng),
        last_seen=last.time,
        status=status,
        drift=drift,
        recent_ng=[
            RecentNg(frame_id=p.frame_id, part=_part_name(p.meta), time=p.time)
            for p in reversed(ng[-10:])
        ],
    )


@router.get("/projects/{pid}/twin", response_model=TwinOut)
def get_twin(pid: ProjectId, caller: Caller, ctx: Ctx) -> TwinOut:
    """The line view: every station that sent parts, its status, drift state and recent NG."""
    stations = _stations(ctx, caller, pid)
    out = [_station_out(name, parts) for name, parts in stations.items()]
    out.sort(key=lambda s: (s.site, s.line, s.station))
    return TwinOut(project_id=pid, stations=out)


def _matching(part: _Part, region: str | None, rule: str | None) -> Iterator[dict[str, Any]]:
    for f in part.findings:
        if region is not None and f.get("region") != region:
            continue
        if rule is not None and f.get("rule") != rule:
            continue
        yield f


@router.get("/projects/{pid}/twin/stations/{station}/parts", response_model=StationPartsOut)
def get_station_parts(
    pid: ProjectId,
    station: StationId,
    caller: Caller,
    ctx: Ctx,
    region: Annotated[str | None, Query(max_length=200, description="only this region")] = None,
    rule: Annotated[str | None, Query(max_length=200, description="only this rule")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="the last this many parts")] = 500,
) -> StationPartsOut:
    """The last parts of a station with their measured values against the expected ones
    (e.g. the last 500 parts at station 3, region Q1); none for a station that sent none."""
    parts = _stations(ctx, caller, pid).get(station, [])
    baseline: dict[tuple[str, str], list[float]] = {}
    for part in parts[:BASELINE_PARTS]:
        for f in _matching(part, region, rule):
            value = _number(f.get("value"))
            if value is not None:
                baseline.setdefault((str(f.get("rule")), str(f.get("region"))), []).append(value)
    expected = {key: median(values) for key, values in baseline.items()}
    out = []
    for part in parts[-limit:]:
        values = [
            PartValueOut(
                rule=str(f.get("rule", "")),
                region=str(f.get("region", "")),
                measured=_number(f.get("value")),
                expected=expected.get((str(f.get("rule")), str(f.get("region")))),
                limit=_number(f.get("limit")),
                unit=str(f.get("unit", "°C")),
                verdict=str(f.get("verdict", "")),
            )
            for f in _matching(part, region, rule)
        ]
        out.append(
            PartOut(
                frame_id=part.frame_id,
                part=_part_name(part.meta),
                time=part.time,
                verdict=part.verdict,
                values=values,
            )
        )
    return StationPartsOut(station=station, region=region, rule=rule, parts=out)
