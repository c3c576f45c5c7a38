"""Visual + thermal views of a stored frame: the visual photo its file carries (FLIR's
embedded image, kept in the stored original), registered from the camera's own metadata and
composed with the thermogram (docs/fusion.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from thermoscope.analysis.fusion_registration import fused_view, registration_for
from thermoscope.analysis.spatial import AnalysisError
from thermoscope.io.errors import ThermoscopeFormatError
from thermoscope.io.visual import embedded_visual
from thermoscope.render import PALETTES, encode_png
from thermoscope.render.fusion import Mode
from thermoscope.server.annotating import load_frame
from thermoscope.server.auth import Action
from thermoscope.server.errors import ApiError
from thermoscope.server.ingest import decode
from thermoscope.server.routers.deps import Caller, Ctx, HexId
from thermoscope.server.routers.frames import FrameIndex

router = APIRouter(tags=["frames"])


@router.get(
    "/frames/{fid}/fused.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "fused RGB PNG, the frame's size"},
        422: {"description": "the frame's file carries no (readable) visual photo"},
    },
)
def get_fused(
    fid: HexId,
    caller: Caller,
    ctx: Ctx,
    frame: FrameIndex = 0,
    mode: Mode = "edges",
    palette: Annotated[str, Query(max_length=40)] = "iron",
    alpha: Annotated[float, Query(ge=0.0, le=1.0)] = 0.5,
) -> Response:
    """The frame fused with the visual photo its file carries: ``edges`` (the photo's edges over
    the palette, MSX-style; ``alpha`` their strength), ``blend`` (``alpha`` the photo's weight)
    or ``pip`` (the thermogram inside the camera's picture-in-picture box). 422 when the file
    carries no photo (the frame exists: a valid request the data cannot answer)."""
    if palette not in PALETTES:
        raise ApiError(422, f"unknown palette {palette!r}; choose from {', '.join(PALETTES)}")
    with ctx.db.read() as session:
        row, _ = load_frame(session, caller, fid, Action.READ)
    if frame >= row.frame_count:
        raise ApiError(422, f"frame {frame} out of range: the item has {row.frame_count} frame(s)")
    decoded = decode(ctx.blobs.get(row.original_key), row.filename, ctx.settings.decode_limits)
    with decoded:
        thermal = decoded.frame(frame)
    try:
        visual = embedded_visual(thermal)
        if visual is None:
            raise ApiError(422, f"{row.filename}: the file carries no visual photo")
        registration = registration_for(visual, (thermal.width, thermal.height))
        image = fused_view(
            thermal.celsius, visual, registration, mode=mode, palette=palette, alpha=alpha
        )
    except (ThermoscopeFormatError, AnalysisError) as exc:
        raise ApiError(422, f"{row.filename}: visual photo: {exc}") from None
    return Response(
        encode_png(image),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=3600"},
    )
