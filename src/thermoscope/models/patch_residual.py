"""The aligned residual front of the patch model: a part registered onto its OK template and its
difference to what OK parts look like, in units of the OK parts' own scatter.

A part on a line lies a few pixels off and turns a little, and its shiny metal reads the warm
surroundings, which change from part to part; a cold joint 1..2 °C off drowns in both. The front,
all inside the ONNX graph (so training, the server and the edge run the same numbers):

1. **alignment**: an affine warp ``A`` (template pixels → input pixels, normalised coordinates of
   ``grid_sample``) found by inverse-compositional Lucas-Kanade against the template (the mean
   of the aligned OK inputs), ``COARSE_STEPS`` steps on a half-size image blurred then
   ``FINE_STEPS`` at full size; each step is one bilinear resampling and one product with the
   precomputed steepest-descent matrix, whose images are projected off the appearance subspace
   (so a part that only reflects warmer surroundings does not pull the warp);
2. **conditional residual**: the aligned input minus the template, minus its projection onto
   the first ``components`` principal components of the aligned OK inputs (the ways a good part
   varies: reflected surroundings, supply, warm-up, sub-pixel pose), divided per pixel by the
   residual's standard deviation over the OK parts: ``z`` in noise units, template coordinates.

``AlignedResidual.forward`` returns ``z`` and the warp, ``to_input`` brings a template-space map
back onto the input. ``fit_aligned_residual`` builds it from contract-applied OK inputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional

from thermoscope.models.errors import ModelError

#: Lucas-Kanade steps on the half-size image blurred, then on the full-size one.
COARSE_STEPS, FINE_STEPS = 4, 2
#: Blur of the coarse level after halving (half-size pixels).
COARSE_BLUR_PX = 1.0
#: Levenberg damping of the Gauss-Newton steps, a share of the Hessian's mean diagonal: a
#: template with little structure in some direction (a round blob turns freely) then stays put
#: in that direction instead of running off.
DAMPING = 0.01
#: Rounds of align-then-average that build the template while fitting.
TEMPLATE_ROUNDS = 3
#: The residual's standard deviation is floored at this share of its median (pixels that never
#: vary, like a clipped background, would otherwise divide by ~0).
SCATTER_FLOOR = 0.1
#: The identity warp (1, 2, 3).
_IDENTITY = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
#: Frames per alignment batch while fitting.
_BATCH = 32


def _base_grid(height: int, width: int) -> Tensor:
    """(H W, 3) normalised pixel-centre coordinates (u, v, 1), ``align_corners=False``."""
    v = (torch.arange(height, dtype=torch.float64) * 2 + 1) / height - 1
    u = (torch.arange(width, dtype=torch.float64) * 2 + 1) / width - 1
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv, torch.ones_like(uu)], dim=-1).reshape(-1, 3)


def _uv(height: int, width: int) -> Tensor:
    """(3, H W) float32 normalised pixel-centre coordinates (u, v, 1)."""
    return _base_grid(height, width).T.float().contiguous()


def _blur_kernel(sigma: float) -> Tensor:
    """Normalised 1-D Gaussian (1, 1, 1, k), k = 2 ceil(2 sigma) + 1."""
    half = math.ceil(2 * sigma)
    r = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return (g / g.sum()).float().reshape(1, 1, 1, -1)


def separable_blur(x: Tensor, kernel: Tensor) -> Tensor:
    """Images (N, 1, H, W) blurred by the 1-D ``kernel`` (1, 1, 1, k) along both axes, edges
    replicated (two thin convolutions: a k x k one costs several times more on one core)."""
    half = kernel.shape[-1] // 2
    x = functional.conv2d(functional.pad(x, (half, half, 0, 0), mode="replicate"), kernel)
    return functional.conv2d(
        functional.pad(x, (0, 0, half, half), mode="replicate"), kernel.transpose(2, 3)
    )


def _coarse(x: Tensor, kernel: Tensor) -> Tensor:
    """Halved then blurred images (N, 1, H/2, W/2)."""
    return separable_blur(functional.avg_pool2d(x, 2), kernel)


def _descent(template: Tensor, basis: Tensor) -> Tensor:
    """(6, P) matrix taking an error image (P,) to the affine update, for ``template`` (h, w)
    float64 and an orthonormal appearance ``basis`` (k, P) the steepest-descent images are
    projected off."""
    h, w = template.shape
    t = template.numpy()
    gy, gx = np.gradient(t)
    tu = torch.from_numpy(gx * (w / 2.0)).reshape(-1)  # d/du in normalised units
    tv = torch.from_numpy(gy * (h / 2.0)).reshape(-1)
    base = _base_grid(h, w)
    sd = torch.stack(
        [tu * base[:, 0], tu * base[:, 1], tu, tv * base[:, 0], tv * base[:, 1], tv], dim=1
    )  # (P, 6)
    if basis.shape[0]:
        sd = sd - basis.T @ (basis @ sd)
    hessian = sd.T @ sd
    # (plus a floor: a flat template has no Hessian at all and then simply stays unwarped)
    scale = DAMPING * float(torch.trace(hessian)) / 6 + 1e-12
    damping = scale * torch.eye(6, dtype=hessian.dtype)
    out: Tensor = torch.linalg.solve(hessian + damping, sd.T)
    return out


def _compose_inverse(a: Tensor, step: Tensor) -> Tensor:
    """``a`` (N, 2, 3) composed with the inverse of the small affine ``I + step`` (N, 6), to
    first order: ``a (I - step)`` (exact for a pure shift; the steps shrink as the warp
    converges, and three element-wise operations export to far fewer graph nodes)."""
    return a - a[:, :, :2] @ step.reshape(-1, 2, 3)


def _invert(a: Tensor) -> Tensor:
    """Inverse of affine maps (N, 2, 3)."""
    a00, a01, a02 = a[:, 0].unbind(dim=1)
    a10, a11, a12 = a[:, 1].unbind(dim=1)
    det = a00 * a11 - a01 * a10
    i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det
    return torch.stack(
        [
            torch.stack([i00, i01, -(i00 * a02 + i01 * a12)], dim=1),
            torch.stack([i10, i11, -(i10 * a02 + i11 * a12)], dim=1),
        ],
        dim=1,
    )


def _bounds(height: int, width: int) -> Tensor:
    """(3, 2, P): half the sides and the last pixel (x, y) of an image of that size, then the
    pixel (x, y) of each of its P pixels."""
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    p = height * width
    half = torch.tensor([[width / 2.0], [height / 2.0]]).expand(2, p)
    top = torch.tensor([[width - 1.0], [height - 1.0]]).expand(2, p)
    return torch.stack([half, top, torch.stack([xx.reshape(-1), yy.reshape(-1)])])


def _sample(image: Tensor, grid: Tensor, a: Tensor, bounds: Tensor) -> Tensor:
    """``image`` (N, 1, h, w) read bilinearly at ``a`` applied to ``grid`` (3, P) of its own
    normalised pixel centres (u, v, 1), edges replicated: (N, 1, h, w); ``bounds``:
    ``_bounds(h, w)``. The same numbers as ``grid_sample`` (bilinear, ``"border"``,
    ``align_corners=False``) from four gathers, which ONNX Runtime runs several times faster
    than its ``GridSample``. The displacement from each pixel is computed apart from the pixel
    itself, so its fraction keeps float32's precision of a few pixels, not of a hundred (torch
    and ONNX Runtime round a product differently; at 1e-5 px that shows on a steep edge)."""
    n, _, height, width = image.shape
    half, top, pixels = bounds[0:1], bounds[1:2], bounds[2:3]
    shift = ((a - _IDENTITY) @ grid) * half  # (N, 2, P) pixels from each pixel
    whole = torch.floor(shift)
    corner = pixels + whole  # integers
    inside = torch.minimum(torch.clamp(corner, min=0.0), top - 1.0)
    fraction = torch.clamp(corner - inside + (shift - whole), 0.0, 1.0)
    index = (inside[:, 0] + inside[:, 1] * width).long()
    flat = image.flatten(1)
    v00 = torch.gather(flat, 1, index)
    v01 = torch.gather(flat, 1, index + 1)
    v10 = torch.gather(flat, 1, index + width)
    v11 = torch.gather(flat, 1, index + width + 1)
    fx, fy = fraction[:, 0], fraction[:, 1]
    upper = v00 + fx * (v01 - v00)
    out = upper + fy * (v10 + fx * (v11 - v10) - upper)
    return out.reshape(n, 1, height, width)


class AlignedResidual(nn.Module):
    """Alignment and conditional residual (module docstring) of inputs (N, 1, H, W).

    Args:
        template: (H, W) mean aligned OK input (window units).
        basis: (k, H W) orthonormal principal components of the aligned OK inputs (k may be 0).
        scatter: (H, W) standard deviation of the OK residual (window units, > 0).
    """

    def __init__(self, template: Tensor, basis: Tensor, scatter: Tensor) -> None:
        super().__init__()
        h, w = template.shape
        if h % 2 or w % 2:
            raise ModelError(f"aligned residual: input sides must be even, got {h}x{w}")
        if basis.ndim != 2 or basis.shape[1] != h * w or scatter.shape != template.shape:
            raise ModelError(
                f"aligned residual: basis (k, {h * w}) and scatter ({h}, {w}) expected, got "
                f"{tuple(basis.shape)} and {tuple(scatter.shape)}"
            )
        self.shape = (h, w)
        self._components = int(basis.shape[0])
        self.coarse_shape = (h // 2, w // 2)
        kernel = _blur_kernel(COARSE_BLUR_PX)
        t64 = template.double()
        b64 = basis.double()
        coarse_t = _coarse(t64[None, None].float(), kernel)[0, 0].double()
        coarse_b = _coarse(b64.reshape(-1, 1, h, w).float(), kernel).double()
        coarse_b = coarse_b.reshape(b64.shape[0], (h // 2) * (w // 2))
        if coarse_b.shape[0]:
            coarse_b = torch.linalg.qr(coarse_b.T).Q.T
        self.kernel: Tensor
        self.template: Tensor
        self.coarse_template: Tensor
        self.fine_descent: Tensor
        self.coarse_descent: Tensor
        self.fine_grid: Tensor
        self.coarse_grid: Tensor
        self.basis: Tensor
        self.scatter: Tensor
        self.register_buffer("kernel", kernel)
        self.register_buffer("template", template.float().reshape(1, -1))
        self.register_buffer("coarse_template", coarse_t.float().reshape(1, -1))
        # float64: the update sums 20k products; in float32 torch and ONNX Runtime would sum
        # them in different orders and end on warps 1e-6 px apart, which the steep edges of a
        # hot part, divided by the OK scatter, magnify to differences near 1e-4 in the map
        self.register_buffer("fine_descent", _descent(t64, b64).T.contiguous())
        self.register_buffer("coarse_descent", _descent(coarse_t, coarse_b).T.contiguous())
        self.fine_bounds: Tensor
        self.coarse_bounds: Tensor
        self.register_buffer("fine_bounds", _bounds(h, w))
        self.register_buffer("coarse_bounds", _bounds(h // 2, w // 2))
        self.register_buffer("fine_grid", _uv(h, w))
        self.register_buffer("coarse_grid", _uv(h // 2, w // 2))
        self.register_buffer("basis", basis.float().contiguous())
        self.register_buffer("scatter", scatter.float().reshape(1, -1))

    @property
    def components(self) -> int:
        """Principal components k removed from the residual."""
        return self._components

    def align(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The aligned inputs (N, 1, H, W) in template coordinates and the warps (N, 2, 3)."""
        n = x.shape[0]
        a = _IDENTITY.repeat(n, 1, 1)
        small = _coarse(x, self.kernel)
        for _ in range(COARSE_STEPS):
            seen = _sample(small, self.coarse_grid, a, self.coarse_bounds)
            error = (seen.flatten(1) - self.coarse_template).double()
            a = _compose_inverse(a, (error @ self.coarse_descent).float())
        for _ in range(FINE_STEPS):
            seen = _sample(x, self.fine_grid, a, self.fine_bounds)
            error = (seen.flatten(1) - self.template).double()
            a = _compose_inverse(a, (error @ self.fine_descent).float())
        return _sample(x, self.fine_grid, a, self.fine_bounds), a

    def residual(self, aligned: Tensor) -> Tensor:
        """Residual in noise units (N, 1, H, W) of aligned inputs (template coordinates)."""
        r = aligned.flatten(1) - self.template
        if self.components:
            r = r - (r @ self.basis.T) @ self.basis
        return (r / self.scatter).reshape(aligned.shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Residual ``z`` (N, 1, H, W) in template coordinates and the warps (N, 2, 3)."""
        aligned, a = self.align(x)
        return self.residual(aligned), a

    def to_input(self, m: Tensor, a: Tensor) -> Tensor:
        """A template-space map (N, 1, H, W) brought onto the inputs the warps ``a`` came from."""
        return _sample(m, self.fine_grid, _invert(a), self.fine_bounds)


def _aligned(front: AlignedResidual, x: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.cat([front.align(x[i : i + _BATCH])[0] for i in range(0, len(x), _BATCH)])


def _principal(residuals: Tensor, k: int) -> Tensor:
    """The first ``k`` principal directions (k, P) of centred rows ``residuals`` (N, P)."""
    if k == 0:
        return torch.zeros((0, residuals.shape[1]), dtype=torch.float64)
    vt: Tensor = torch.linalg.svd(residuals, full_matrices=False)[2]
    return vt[:k]


def fit_aligned_residual(x: Tensor, components: int) -> AlignedResidual:
    """The front of OK inputs ``x`` (N, 1, H, W), N >= 2: template by repeated align-and-average
    (from the first frame), then the principal components (at most N - 2) and the scatter of
    what remains, corrected for the degrees of freedom the mean and components took.

    Raises:
        ModelError: fewer than 2 frames, or sides that are not even.
    """
    n = x.shape[0]
    if n < 2:
        raise ModelError(f"the aligned residual needs at least 2 OK frames, got {n}")
    k = min(components, n - 2)
    h, w = x.shape[2:]
    ones = torch.ones((h, w))
    none = torch.zeros((0, h * w))
    template = x[0, 0].clone()
    for _ in range(TEMPLATE_ROUNDS):
        template = _aligned(AlignedResidual(template, none, ones), x).mean(dim=0)[0]
    residuals = (
        _aligned(AlignedResidual(template, none, ones), x).flatten(1) - template.flatten()
    ).double()
    basis = _principal(residuals, k)
    aligned = _aligned(AlignedResidual(template, basis, ones), x)
    template = aligned.mean(dim=0)[0]
    residuals = (aligned.flatten(1) - template.flatten()).double()
    basis = _principal(residuals, k)
    rest = residuals - (residuals @ basis.T) @ basis
    scatter = torch.sqrt((rest**2).sum(dim=0) / max(n - 1 - k, 1)).reshape(h, w)
    scatter = scatter + max(SCATTER_FLOOR * float(scatter.median()), 1e-6)
    return AlignedResidual(template, basis.float(), scatter.float())


__all__ = ["COARSE_STEPS", "FINE_STEPS", "AlignedResidual", "fit_aligned_residual"]
