"""The Label Studio ML backend protocol, per project, under ``/api/v1/ml/{pid}``.

Label Studio calls an ML backend at the URL it is given (here
``https://<server>/api/v1/ml/<project id>``) with ``GET /health``, ``POST /setup``,
``POST /predict`` and ``POST /webhook``. A task names one of our frames, by ``data.frame_id``
or by an image URL the server serves (``.../frames/<frame id>/render.png``); its prediction is
the project's active model and recipe on that frame (the pipeline, as at ingest), as
``rectanglelabels`` results with percent coordinates (``x, y, width, height`` in 0..100 of the
image) and a ``choices`` result with the verdict. A task that names no frame of the project gets
an empty prediction (Label Studio expects one per task, in order).

Auth: an API token, as ``Authorization: Bearer <token>``, ``Token <token>``, or as the password
of HTTP Basic auth (Label Studio's ML backend form has user and password fields; the user
name is ignored).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, status
from sqlalchemy import select

from thermoscope.core import ThermalFrame, ThermoscopeError
from thermoscope.server.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Action,
    Principal,
    authenticate,
    require,
)
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import DatasetVersion, Frame, Project
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.jobs import add_job
from thermoscope.server.releases import active_model, active_release
from thermoscope.server.routers.deps import Ctx, ProjectId
from thermoscope.server.schemas.label_studio import LsPredictIn, LsSetupIn, LsTask, LsWebhookIn
from thermoscope.server.schemas.models import TrainIn
from thermoscope.storage.identity import read_celsius

router = APIRouter(prefix="/ml/{pid}", tags=["label-studio"])

#: A frame id inside an image URL the server serves.
_FRAME_URL = re.compile(r"/frames/([0-9a-f]{1,64})(?:/|$|\?)")
_FRAME_ID = re.compile(r"^[0-9a-f]{1,64}$")
#: Control tags of a labelling configuration: (tag, name, toName).
_CONTROL = re.compile(
    r"<(RectangleLabels|Choices)\b[^>]*?\bname=\"([^\"]+)\"[^>]*?\btoName=\"([^\"]+)\"", re.I
)


def ml_caller(request: Request) -> Principal:
    """Who calls: an API token (Bearer, Token, or Basic auth's password) or a session."""
    header = request.headers.get("authorization")
    if header is not None:
        kind, _, rest = header.partition(" ")
        if kind.lower() == "basic":
            try:
                decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError(401, "Basic auth is not base64 of user:token") from None
            header = f"Bearer {decoded.partition(':')[2]}"
        elif kind.lower() == "token":
            header = f"Bearer {rest}"
    ctx: ServerContext = request.app.state.ctx
    with ctx.db.read() as session:
        return authenticate(
            session,
            method=request.method,
            authorization=header,
            cookie=request.cookies.get(SESSION_COOKIE),
            csrf_header=request.headers.get(CSRF_HEADER),
        )


MlCaller = Annotated[Principal, Depends(ml_caller)]


def _project(ctx: ServerContext, caller: Principal, pid: int, action: Action) -> Project:
    with ctx.db.read() as session:
        return require(session, caller, pid, action)


def _model_version(ctx: ServerContext, pid: int) -> str:
    with ctx.db.read() as session:
        row = active_release(session, pid)
        return "none" if row is None else f"{row.name}:{row.version}"


@router.get("/health")
def ls_health(pid: ProjectId, caller: MlCaller, ctx: Ctx) -> dict[str, Any]:
    """Label Studio's health check: ``{"status": "UP", "model_class", "model_version"}``."""
    _project(ctx, caller, pid, Action.READ)
    return {"status": "UP", "model_class": "thermoscope", "model_version": _model_version(ctx, pid)}


@router.post("/setup")
def ls_setup(pid: ProjectId, body: LsSetupIn, caller: MlCaller, ctx: Ctx) -> dict[str, Any]:
    """Label Studio connects a project: answers ``{"model_version": ...}``."""
    del body  # nothing to keep: predictions follow the project's active model
    _project(ctx, caller, pid, Action.READ)
    return {"model_version": _model_version(ctx, pid)}


def _controls(config: str | None) -> tuple[tuple[str, str], tuple[str, str]]:
    """(from_name, to_name) of the rectangle and the choices control of a configuration
    (defaults: ``label``/``image`` and ``verdict``/``image``)."""
    rect, choice = ("label", "image"), ("verdict", "image")
    for tag, name, to in _CONTROL.findall(config or ""):
        if tag.lower() == "rectanglelabels":
            rect = (name, to)
        else:
            choice = (name, to)
    return rect, choice


def _frame_id(task: LsTask) -> str | None:
    """Our frame id a task names (``data.frame_id`` or an image URL of ours)."""
    direct = task.data.get("frame_id")
    if isinstance(direct, str) and _FRAME_ID.match(direct):
        return direct
    for value in task.data.values():
        if isinstance(value, str):
            found = _FRAME_URL.search(value)
            if found:
                return found.group(1)
    return None


def _pct(value: float, size: int) -> float:
    return round(min(100.0, max(0.0, value / size * 100.0)), 4)


def _predict_frame(
    ctx: ServerContext, frame: Frame, recipe_text: str | None, model: Any, controls: Any
) -> dict[str, Any] | None:
    """One task's prediction: the pipeline's drafts as Label Studio results."""
    (rect_from, rect_to), (choice_from, choice_to) = controls
    celsius = np.frombuffer(read_celsius(ctx.blobs, frame.celsius_prefix, 0), dtype="<f4")
    image = ThermalFrame(celsius=celsius.reshape(frame.height, frame.width).copy())
    shape = (frame.height, frame.width)
    if recipe_text is not None and not ctx.compiled_recipe(recipe_text).fits(shape):
        recipe_text = None
    if recipe_text is None and model is None:
        return None
    pipeline, recorder = ctx.pipeline(recipe_text, model)
    try:
        inspection = pipeline.inspect_part(image, source=frame.filename)
    except ThermoscopeError:
        return None
    pre = pipeline.drafts(inspection, shape)
    w, h = frame.width, frame.height
    results: list[dict[str, Any]] = []
    for a in pre.annotations:
        x0, y0, x1, y1 = a.shape.bounds()
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        item: dict[str, Any] = {
            "id": a.id[:10],
            "from_name": rect_from,
            "to_name": rect_to,
            "type": "rectanglelabels",
            "original_width": w,
            "original_height": h,
            "image_rotation": 0,
            "value": {
                "x": _pct(x0, w),
                "y": _pct(y0, h),
                "width": _pct(x1 - x0, w),
                "height": _pct(y1 - y0, h),
                "rotation": 0,
                "rectanglelabels": [a.label],
            },
        }
        if a.provenance.score is not None:
            item["score"] = a.provenance.score
        results.append(item)
    said = None if recorder is None else recorder.prediction
    score = said.score if said is not None else 1.0
    if pre.verdict is not None:  # a RETAKE inspection drafts no verdict
        results.append(
            {
                "id": "verdict",
                "from_name": choice_from,
                "to_name": choice_to,
                "type": "choices",
                "value": {"choices": [pre.verdict.verdict.value]},
                "score": score,
            }
        )
    if model is not None:
        version = f"{model.name}:{model.version}"
    else:
        version = "recipe" if pipeline.recipe is None else f"recipe:{pipeline.recipe.name}"
    return {"result": results, "score": score, "model_version": version}


@router.post("/predict")
def ls_predict(pid: ProjectId, body: LsPredictIn, caller: MlCaller, ctx: Ctx) -> dict[str, Any]:
    """Predictions for Label Studio tasks: ``{"results": [{"result": [...], "score",
    "model_version"}, ...]}``, one per task in order."""
    with ctx.db.read() as session:
        project = require(session, caller, pid, Action.READ)
        recipe_text = project.recipe_text
        model = active_model(ctx, session, pid)
        ids = [_frame_id(t) for t in body.tasks]
        wanted = [i for i in ids if i is not None]
        frames = {
            f.id: f
            for f in session.scalars(
                select(Frame).where(Frame.project_id == pid, Frame.id.in_(wanted))
            )
        }
        for f in frames.values():
            session.expunge(f)
    controls = _controls(body.label_config)
    empty_version = "none" if model is None else f"{model.name}:{model.version}"
    results = []
    for fid in ids:
        frame = None if fid is None else frames.get(fid)
        made = None if frame is None else _predict_frame(ctx, frame, recipe_text, model, controls)
        results.append(made or {"result": [], "score": 0.0, "model_version": empty_version})
    return {"results": results}


@router.post("/webhook", status_code=status.HTTP_201_CREATED)
def ls_webhook(pid: ProjectId, body: LsWebhookIn, caller: MlCaller, ctx: Ctx) -> dict[str, Any]:
    """Label Studio's events: ``START_TRAINING`` queues a training job (golden statistics)
    on the project's newest dataset version; other events are acknowledged and ignored."""
    if body.action != "START_TRAINING":
        _project(ctx, caller, pid, Action.MANAGE)
        return {"status": "ignored", "action": body.action}
    with ctx.db.write() as session:
        require(session, caller, pid, Action.MANAGE)
        newest = session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.project_id == pid)
            .order_by(DatasetVersion.created_at.desc(), DatasetVersion.id)
            .limit(1)
        ).first()
        if newest is None:
            raise not_found(f"a dataset version of project {pid} to train on")
        params = TrainIn(version_id=newest.id).model_dump() | {
            "project_id": pid,
            "username": caller.username,
        }
        job = add_job(session, "train_model", pid, params, caller.username)
    if ctx.jobs is not None:
        ctx.jobs.wake()
    return {"status": "ok", "job_id": job.id}
