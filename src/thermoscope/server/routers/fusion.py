"""Visual + thermal views of a stored frame: the visual photo its file carries (FLIR's
embedded image, kept in the stored original), registered from the camera's own metadata and
composed with the thermogram (docs/fusion.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from thermoscope.analysis.fusion_registration import fused_view, registration_for
from thermoscope.analysis.spatial import AnalysisError
from thermoscope.core import ThermalFrame
from thermoscope.core.visual import VisualImage
from thermoscope.io.errors import ThermoscopeFormatError
from thermoscope.io.visual import embedded_visual
from thermoscope.render import PALETTES, encode_png
from thermoscope.render.fusion import MODES, Mode
from thermoscope.server.annotating import load_frame
from thermoscope.server.auth import Action
from thermoscope.server.errors import ApiError
from thermoscope.server.ingest import decode
from thermoscope.server.routers.deps import Caller, Ctx, HexId
from thermoscope.server.routers.frames import FrameIndex

router = APIRouter(tags=["frames"])


class VisualOut(BaseModel):
    """Whether a frame's file carries a visual photo, and how it is placed on the frame."""

    has_photo: bool = Field(description="the file carries a visual photo")
    photo_width: int | None = Field(default=None, description="the photo's width, pixels")
    photo_height: int | None = Field(default=None, description="the photo's height, pixels")
    registration: str | None = Field(
        default=None,
        description="'camera' (the camera's own alignment) when the photo can be placed",
    )
    modes: list[str] = Field(description="fused views GET /frames/{fid}/fused.png can draw")


def _photo(
    ctx: Ctx, caller: Caller, fid: str, index: int
) -> tuple[str, ThermalFrame, VisualImage | None]:
    """The file name, the decoded frame and the photo its file carries (``None``: none)."""
    with ctx.db.read() as session:
        row, _ = load_frame(session, caller, fid, Action.READ)
    if index >= row.frame_count:
        raise ApiError(422, f"frame {index} out of range: the item has {row.frame_count} frame(s)")
    decoded = decode(ctx.blobs.get(row.original_key), row.filename, ctx.settings.decode_limits)
    with decoded:
        thermal = decoded.frame(index)
    try:
        return row.filename, thermal, embedded_visual(thermal)
    except ThermoscopeFormatError as exc:
        raise ApiError(422, f"{row.filename}: visual photo: {exc}") from None


@router.get("/frames/{fid}/visual", response_model=VisualOut)
def get_visual(fid: HexId, caller: Caller, ctx: Ctx, frame: FrameIndex = 0) -> VisualOut:
    """Whether the frame's file carries a visual photo (FLIR's embedded image) that the fused
    views can use; the UI asks before it offers them."""
    _, _, visual = _photo(ctx, caller, fid, frame)
    if visual is None:
        return VisualOut(has_photo=False, modes=[])
    height, width = visual.shape
    placed = visual.alignment is not None
    return VisualOut(
        has_photo=True,
        photo_width=width,
        photo_height=height,
        registration="camera" if placed else None,
        modes=list(MODES) if placed else [],
    )


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
    filename, thermal, visual = _photo(ctx, caller, fid, frame)
    if visual is None:
        raise ApiError(422, f"{filename}: the file carries no visual photo")
    try:
        registration = registration_for(visual, (thermal.width, thermal.height))
    except AnalysisError as exc:
        raise ApiError(422, f"{filename}: visual photo: {exc}") from None
    image = fused_view(
        thermal.celsius, visual, registration, mode=mode, palette=palette, alpha=alpha
    )
    return Response(
        encode_png(image),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=3600"},
    )
