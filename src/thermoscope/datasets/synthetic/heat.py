"""Steady-state heat conduction on a pixel grid: how heat spreads through a board and its traces.

A thin part (a board, a module's housing, a lid film) is a sheet of pixels, each with an in-plane
thermal conductance ``k`` (copper traces conduct ~100x better than FR4, air gaps barely at all)
and a loss ``h`` to the surroundings (convection and radiation from its faces; a conveyor belt
under a pixel that is not on the part holds it at ambient). A heat input ``q`` per pixel then
raises the sheet's temperature over ambient by ``u``, the solution of the discrete steady-state
equation

    h_i u_i + sum_j k_ij (u_i - u_j) = q_i,

over the 4-neighbours ``j`` of pixel ``i``, with ``k_ij`` the harmonic mean of the two pixels'
conductances (series conduction across the shared face) and no flow out of the frame's edges.
The matrix is symmetric positive definite, so a Jacobi-preconditioned conjugate gradient solves
it; several heat inputs are solved together. Larger frames (``scale`` > 1) are solved on the
160x120 grid and ``upsample``-d: the field is smooth at that resolution, and the solver's cost
grows with the fourth power of the scale. Units are relative: only the ratios ``k / h``
(the square of a spreading length in pixels) and the map's shape matter, amplitudes are set by
normalising the result.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.datasets.versions import DatasetError

FloatMap = NDArray[np.float32]


def _faces(conductance: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Face conductances between horizontal and vertical neighbours (harmonic means)."""
    left, right = conductance[:, :-1], conductance[:, 1:]
    top, bottom = conductance[:-1, :], conductance[1:, :]
    return 2.0 * left * right / (left + right), 2.0 * top * bottom / (top + bottom)


def steady_state(
    conductance: NDArray[np.floating],
    loss: NDArray[np.floating],
    heat: NDArray[np.floating],
    *,
    tolerance: float = 1e-5,
    max_iterations: int = 5000,
) -> FloatMap:
    """Temperature rise over ambient for each heat input, float32 ``(N, H, W)`` or ``(H, W)``.

    Args:
        conductance: in-plane conductance per pixel, ``(H, W)``, > 0 (relative units).
        loss: loss to the surroundings per pixel, ``(H, W)``, > 0 (same units).
        heat: heat input per pixel, ``(H, W)`` or a stack ``(N, H, W)`` solved together.
        tolerance: stop when every residual's norm is below this fraction of its input's norm.
        max_iterations: upper bound on conjugate-gradient steps.

    Raises:
        DatasetError: shapes differ or a conductance or loss is not positive.
    """
    k = np.asarray(conductance, dtype=np.float64)
    h = np.asarray(loss, dtype=np.float64)
    q = np.asarray(heat, dtype=np.float64)
    single = q.ndim == 2
    if single:
        q = q[None]
    if k.shape != h.shape or q.shape[1:] != k.shape or k.ndim != 2:
        raise DatasetError(
            f"conductance {k.shape}, loss {h.shape} and heat {q.shape} must share (H, W)"
        )
    if not (np.all(k > 0) and np.all(h > 0)):
        raise DatasetError("conductance and loss must be > 0 everywhere")
    kx, ky = _faces(k)
    diagonal = h.copy()
    diagonal[:, :-1] += kx
    diagonal[:, 1:] += kx
    diagonal[:-1, :] += ky
    diagonal[1:, :] += ky

    def apply(u: NDArray[np.float64]) -> NDArray[np.float64]:
        out = h * u
        flow = kx * (u[:, :, 1:] - u[:, :, :-1])
        out[:, :, :-1] -= flow
        out[:, :, 1:] += flow
        flow = ky * (u[:, 1:, :] - u[:, :-1, :])
        out[:, :-1, :] -= flow
        out[:, 1:, :] += flow
        return out

    u = q / diagonal
    residual = q - apply(u)
    z = residual / diagonal
    direction = z.copy()
    rz = np.einsum("nij,nij->n", residual, z)
    target = tolerance * np.sqrt(np.einsum("nij,nij->n", q, q))
    for _ in range(max_iterations):
        if np.all(np.sqrt(np.einsum("nij,nij->n", residual, residual)) <= target):
            break
        image = apply(direction)
        curvature = np.einsum("nij,nij->n", direction, image)
        alpha = np.divide(rz, curvature, out=np.zeros_like(rz), where=curvature > 0)
        u += alpha[:, None, None] * direction
        residual -= alpha[:, None, None] * image
        z = residual / diagonal
        rz_next = np.einsum("nij,nij->n", residual, z)
        beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)
        direction = z + beta[:, None, None] * direction
        rz = rz_next
    out = u.astype(np.float32)
    return out[0] if single else out


def unit_maps(
    conductance: NDArray[np.floating], loss: NDArray[np.floating], heat: NDArray[np.floating]
) -> FloatMap:
    """``steady_state`` with each solution scaled to a peak of 1 (float32, same shape as heat)."""
    rise = steady_state(conductance, loss, heat)
    stack = rise[None] if rise.ndim == 2 else rise
    peaks = np.abs(stack).reshape(len(stack), -1).max(axis=1)
    stack = stack / np.where(peaks > 0, peaks, 1.0).astype(np.float32)[:, None, None]
    return stack[0] if rise.ndim == 2 else stack


def upsample(values: NDArray[np.floating], scale: int) -> FloatMap:
    """``(H, W)`` or ``(N, H, W)`` maps enlarged ``scale`` times (bilinear, pixel centres
    aligned), each rescaled to its former peak; ``scale`` 1 returns them as float32."""
    arr = np.asarray(values, dtype=np.float32)
    if scale == 1:
        return arr
    stack = arr[None] if arr.ndim == 2 else arr
    height, width = stack.shape[1:]
    out = np.stack(
        [
            cv2.resize(m, (width * scale, height * scale), interpolation=cv2.INTER_LINEAR)
            for m in stack
        ]
    ).astype(np.float32)
    before = np.abs(stack).reshape(len(stack), -1).max(axis=1)
    after = np.abs(out).reshape(len(out), -1).max(axis=1)
    out *= (before / np.where(after > 0, after, 1.0)).astype(np.float32)[:, None, None]
    return out[0] if arr.ndim == 2 else out
