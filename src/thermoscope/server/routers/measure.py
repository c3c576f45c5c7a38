"""Measurement views of a frame: its °C recomputed with another emissivity or reflected
temperature, for the whole frame or one region (``ThermalFrame.with_parameters``).

A recomputation is a view for the caller, not an edit: nothing is stored, so the frame's
stored °C, its findings and the dataset versions made from it stay as ingested.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

import numpy as np
from fastapi import APIRouter, Response
from numpy.typing import NDArray

import thermoscope.io as tio
from thermoscope.annotations import AnnotationError, shape_from_dict
from thermoscope.core import ThermalFrame, ThermoscopeError
from thermoscope.server.annotating import load_frame
from thermoscope.server.auth import Action
from thermoscope.server.context import ServerContext
from thermoscope.server.errors import ApiError
from thermoscope.server.routers.deps import Caller, Ctx, HexId
from thermoscope.server.schemas.measure import RecomputeIn

router = APIRouter(tags=["frames"])

#: Shapes that cover an area (the others select no pixel to recompute).
AREA_SHAPES = ("box", "rotated_box", "polygon", "mask")


def _frame_of(ctx: ServerContext, data: bytes, filename: str, index: int) -> ThermalFrame:
    """Frame ``index`` of a stored original, decoded again within the server's limits."""
    try:
        reader = tio.detect(data[: tio.registry.SNIFF_BYTES], PurePath(filename).suffix.lower())
        sequence = reader.parse(data, ctx.settings.decode_limits)
    except ThermoscopeError as exc:
        raise ApiError(422, f"{filename}: cannot decode the original again: {exc}") from None
    try:
        if index >= len(sequence):
            raise ApiError(
                422, f"frame {index} out of range: the item has {len(sequence)} frame(s)"
            )
        return sequence[index]
    finally:
        sequence.close()


def _region_mask(region: dict[str, Any], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """The pixels of an annotation shape in a frame of ``shape`` (core's rasterisation)."""
    kind = region.get("type")
    if kind not in AREA_SHAPES:
        raise ApiError(
            422, f"region: a {kind!r} covers no area; use one of {', '.join(AREA_SHAPES)}"
        )
    try:
        mask = shape_from_dict(region, "region").to_mask(shape)
    except (AnnotationError, ValueError) as exc:
        raise ApiError(422, str(exc)) from None
    if not mask.any():
        raise ApiError(422, "region: covers no pixel of the frame")
    return mask


@router.post(
    "/frames/{fid}/celsius/recompute",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "HxW float32"}},
)
def recompute_celsius(fid: HexId, body: RecomputeIn, caller: Caller, ctx: Ctx) -> Response:
    """The °C of one frame recomputed from the original file's signal with another emissivity
    and/or reflected temperature, for the whole frame or only a region's pixels: HxW float32
    little-endian (``X-Width``, ``X-Height``); ``X-Parameters`` holds the object parameters
    applied (JSON). A view for the caller: nothing is stored."""
    with ctx.db.read() as session:
        frame, _ = load_frame(session, caller, fid, Action.READ)
    if body.frame >= frame.frame_count:
        raise ApiError(
            422, f"frame {body.frame} out of range: the item has {frame.frame_count} frame(s)"
        )
    if frame.parameters is None:
        raise ApiError(
            422,
            f"{frame.filename}: the file has no measurement parameters ({frame.format}); "
            "its temperatures cannot be recomputed",
        )
    decoded = _frame_of(ctx, ctx.blobs.get(frame.original_key), frame.filename, body.frame)
    mask = None if body.region is None else _region_mask(body.region, decoded.shape)
    changes = {"emissivity": body.emissivity, "reflected_temp_c": body.reflected_temp_c}
    try:
        result = decoded.with_parameters(mask=mask, **changes)
        assert decoded.metadata.parameters is not None  # with_parameters checked it
        applied = decoded.metadata.parameters.updated(**changes)
    except ThermoscopeError as exc:
        raise ApiError(422, f"{frame.filename}: {exc}") from None
    celsius = np.ascontiguousarray(result.celsius, dtype="<f4")
    height, width = celsius.shape
    return Response(
        celsius.tobytes(),
        media_type="application/octet-stream",
        headers={
            "X-Width": str(width),
            "X-Height": str(height),
            "X-Frame-Index": str(body.frame),
            "X-Parameters": json.dumps(applied.as_dict(), separators=(",", ":")),
            "Cache-Control": "no-store",
            "Access-Control-Expose-Headers": "X-Width, X-Height, X-Frame-Index, X-Parameters",
        },
    )
