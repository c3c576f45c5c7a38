"""Model family 3: a patch-feature anomaly model (PatchCore family) trained on OK parts only.

Fitting, from contract-applied 1-channel OK frames (``patch_features``: a stride-4 grid of
feature vectors, D floats per cell):

1. the OK frames are split (seeded) into a memory part and a calibration part
   (``calibration`` share, at least one frame);
2. memory: for every cell p, the features of the memory frames at p and at the cells within
   ``radius`` of it (so a part lying a few pixels off its place still finds its own patch),
   thinned by greedy k-centre coreset selection to ``bank`` vectors per cell: the bank
   (P, K, D) for P = (H/4)(W/4) cells;
3. calibration: the raw scores of the calibration frames; their ``quantile`` is the level t
   that maps to 0.5, so the release threshold 0.5 passes that share of good parts.

Scoring a frame x (the ONNX graph computes exactly this; ``PatchModel.forward`` is its torch
version):

    d(p)   = min over the bank of cell p of ||f(p) - m||, as ||f||² - 2 f·m + ||m||² on vectors
             centred by the cell's bank mean, softened at 0 as sqrt(d² + 0.01) - 0.1
    map    = d smoothed by a Gaussian of ``smooth`` cells (edges replicated)   (H/4, W/4)
    raw    = max(map)
    score  = 1 - 2^(-raw / t),   anomaly_map = 1 - 2^(-map / t)
    features = f at the map's peak (D,): the runtime looks its nearest examples up in the
               release's ``FeatureIndex`` ("looks like these 3 confirmed cold joints")

The index holds every bank vector, referenced back to the OK frame and pixel it came from, plus
the peak features of any labelled defective examples given to ``fit_patch_model``.

With ``components`` > 0 the model is registered and conditional (``patch_residual``): the graph
first aligns the input onto the template of the OK parts and takes its residual ``z`` to what OK
parts look like (mean and the first ``components`` principal components, in units of the OK
scatter, per pixel), then

    map    = |z smoothed by a Gaussian of ``smooth`` pixels| brought back onto the input (H, W)
    raw    = max(map);   score, anomaly_map normalised as above
    f      = the patch features of ``z`` (not of the input); features = f at the cell of the
             map's peak

so a cold joint 1..2 °C off is measured against the 0.1..0.3 °C a good part scatters there, not
against the whole range of reflected surroundings, pose and supply. The bank (coreset of the OK
parts' ``f``) then only serves the explanation index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional

from thermoscope.core import ThermalFrame
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.explain import INDEX_FILE, FeatureIndex
from thermoscope.models.onnx_export import check_parity, export_onnx
from thermoscope.models.patch_features import STRIDE, FeatureSettings, PatchFeatures
from thermoscope.models.patch_residual import AlignedResidual, fit_aligned_residual, separable_blur
from thermoscope.models.release import write_release

#: The release threshold on the normalised score (the calibrated OK level maps to it).
PATCH_THRESHOLD = 0.5
#: Outputs of the patch model's graph, in order.
PATCH_OUTPUTS = ("score", "anomaly_map", "features")
#: Softening of the distance at 0 (squared feature units): sqrt(d² + SOFT) - sqrt(SOFT).
SOFT = 0.01
#: Bank vectors per cell that go into the explanation index (a search over every cell's whole
#: bank would cost more than the graph itself).
INDEX_PER_CELL = 4
#: Largest number of principal components the conditional model removes.
MAX_COMPONENTS = 256
#: Frames per feature-extraction batch while fitting.
_BATCH = 32
#: Cells per block of the coreset selection (bounds its memory).
_CELL_BLOCK = 256

Frame = ThermalFrame | NDArray[Any]


@dataclass(frozen=True, slots=True)
class PatchSettings:
    """How a patch model is fitted and scored (stored in the release's ``training``).

    Attributes:
        features: which patch features.
        radius: cells around each cell whose OK features join its memory (pose tolerance:
            1 = ±4 input pixels).
        components: 0 for the plain model; > 0: align each part onto the OK template and score
            its residual after removing this many principal components of the OK parts
            (module docstring; at most the memory frames less 2 are used).
        bank: memory vectors kept per cell after the coreset selection.
        smooth: standard deviation of the Gaussian over the distance map, in cells (0: none);
            with ``components`` > 0, over the residual, in input pixels.
        quantile: quantile of the calibration frames' raw scores that maps to 0.5.
        calibration: share of the OK frames held out to calibrate (not in the memory).
        seed: seeds the split and the coreset's start.
    """

    features: FeatureSettings = field(default_factory=FeatureSettings)
    radius: int = 1
    components: int = 0
    bank: int = 48
    smooth: float = 1.0
    quantile: float = 0.99
    calibration: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= 4:
            raise ModelError(f"patch radius must be in 0..4 cells, got {self.radius}")
        if not 0 <= self.components <= MAX_COMPONENTS:
            raise ModelError(
                f"patch components must be in 0..{MAX_COMPONENTS}, got {self.components}"
            )
        if self.bank < 1:
            raise ModelError(f"patch bank must be >= 1 vector per cell, got {self.bank}")
        if not 0 <= self.smooth <= 8:
            raise ModelError(f"patch smooth must be in [0, 8] cells, got {self.smooth}")
        if not 0.5 <= self.quantile <= 1.0:
            raise ModelError(f"patch quantile must be in [0.5, 1], got {self.quantile}")
        if not 0.0 < self.calibration < 1.0:
            raise ModelError(f"patch calibration must be a share in (0, 1), got {self.calibration}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values (features nested)."""
        return asdict(self)


def gaussian_kernel(sigma: float) -> NDArray[np.float32]:
    """Normalised 2-D Gaussian kernel (k, k), k = 2 ceil(2 sigma) + 1; [[1]] for sigma 0."""
    if sigma <= 0:
        return np.ones((1, 1), dtype=np.float32)
    half = math.ceil(2 * sigma)
    r = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(r**2) / (2 * sigma**2))
    k = np.outer(g, g)
    out: NDArray[np.float32] = (k / k.sum()).astype(np.float32)
    return out


class PatchModel(nn.Module):
    """A fitted patch model; ``forward`` is the scoring (module docstring) and exports to ONNX.

    Args:
        contract: the input contract (1 channel, height and width multiples of 4).
        settings: how it was fitted.
        features: the feature extractor.
        memory: (P, K, D) bank per cell, P = (height/4)(width/4).
        level: the raw score t that maps to 0.5 (> 0).
        refs: (P, K, 3) int: for each bank vector the memory frame it came from and its cell
            (row, column), for the explanation index.
        frame_ids: ids of the memory frames (refs' first column indexes them).
        front: the aligned residual front of a conditional model (``components`` > 0), whose
            ``z`` the features are computed on; ``None`` for the plain model.
    """

    def __init__(
        self,
        contract: InputContract,
        settings: PatchSettings,
        features: PatchFeatures,
        memory: Tensor,
        level: float,
        refs: NDArray[np.int64],
        frame_ids: Sequence[str],
        front: AlignedResidual | None = None,
    ) -> None:
        super().__init__()
        if (front is None) != (settings.components == 0):
            raise ModelError("a patch model has an aligned residual front iff components > 0")
        self.front = front
        self.contract = contract
        self.settings = settings
        self.features = features
        self.grid = grid_shape(contract)
        cells = self.grid[0] * self.grid[1]
        if memory.ndim != 3 or memory.shape[0] != cells or memory.shape[2] != settings.features.dim:
            raise ModelError(
                f"patch memory must be ({cells}, K, {settings.features.dim}), "
                f"got {tuple(memory.shape)}"
            )
        if not (math.isfinite(level) and level > 0):
            raise ModelError(f"patch level must be positive, got {level!r}")
        self.level = float(level)
        self.refs = refs
        self.frame_ids = list(frame_ids)
        m = memory.float()
        centre = m.mean(dim=1)  # (P, D): distances are computed on centred vectors (precision)
        m = (m - centre[:, None, :]).contiguous()
        self.centre: Tensor
        self.register_buffer("centre", centre.unsqueeze(1))  # (P, 1, D)
        self.memory_t: Tensor
        self.memory_sq: Tensor
        self.smooth_kernel: Tensor
        self.register_buffer("memory_t", m.transpose(1, 2).contiguous())  # (P, D, K)
        self.register_buffer("memory_sq", (m * m).sum(-1).unsqueeze(1))  # (P, 1, K)
        kernel = torch.from_numpy(gaussian_kernel(settings.smooth))
        if front is not None:  # separable: the same Gaussian along rows, then columns
            kernel = kernel.sum(dim=0, keepdim=True)
        self.register_buffer("smooth_kernel", kernel[None, None])
        self.smooth_half = kernel.shape[-1] // 2
        self.rate = -math.log(2.0) / self.level
        self.eval()

    @property
    def bank_size(self) -> int:
        """Vectors per cell K."""
        return int(self.memory_t.shape[2])

    def distances(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Raw distance maps (N, 1, h, w) (smoothed) and features (N, D, h, w) of inputs."""
        f = self.features(x)
        n, _, h, w = f.shape
        q = f.flatten(2).permute(2, 0, 1) - self.centre  # (P, N, D)
        d2 = (q * q).sum(-1, keepdim=True) - 2.0 * torch.bmm(q, self.memory_t) + self.memory_sq
        # sqrt(d² + c) - sqrt(c): the distance, but with a bounded slope at 0, so float
        # rounding of a near-zero d² does not blow up (torch and ONNX agree within 1e-4)
        nearest = torch.sqrt(torch.clamp(d2.min(dim=-1).values, min=0.0) + SOFT) - SOFT**0.5
        dist = nearest.transpose(0, 1).reshape(n, 1, h, w)
        if self.smooth_half > 0:
            half = self.smooth_half
            dist = functional.conv2d(
                functional.pad(dist, (half, half, half, half), mode="replicate"), self.smooth_kernel
            )
        return dist, f

    def residual_map(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Of a conditional model: the map (N, 1, H, W) on the inputs, the features of the
        residual (N, D, H/4, W/4) and the feature cell (N,) of the map's peak."""
        if self.front is None:
            raise ModelError("residual_map: this patch model has no aligned residual front")
        z, warp = self.front(x)
        m = z if self.smooth_half == 0 else separable_blur(z, self.smooth_kernel)
        m = m.abs()
        width = m.shape[3]
        top = m.flatten(1).argmax(dim=1)
        cell = (top // width // STRIDE) * (width // STRIDE) + (top % width) // STRIDE
        return self.front.to_input(m, warp), self.features(z), cell

    def maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The raw map (N, 1, h, w) the score is the peak of, the features (N, D, h', w') and
        the feature cell (N,) of the peak."""
        if self.front is not None:
            return self.residual_map(x)
        dist, f = self.distances(x)
        return dist, f, dist.flatten(1).argmax(dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised scores (N,), anomaly maps (N, h, w) and peak features (N, D)."""
        dist, f, peak = self.maps(x)
        raw = dist.flatten(1).max(dim=1).values
        score = 1.0 - torch.exp(raw * self.rate)
        amap = 1.0 - torch.exp(dist[:, 0] * self.rate)
        index = peak.reshape(-1, 1, 1).expand(-1, f.shape[1], 1)
        at_peak = torch.gather(f.flatten(2), 2, index)[:, :, 0]
        return score, amap, at_peak

    def score(self, inputs: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Normalised scores (N,) and anomaly maps (N, h, w) of contract-applied inputs."""
        scores, maps = [], []
        with torch.no_grad():
            for chunk in _chunks(_checked(inputs, self.contract)):
                s, m, _ = self(chunk)
                scores.append(s.numpy())
                maps.append(m.numpy())
        return np.concatenate(scores), np.concatenate(maps)

    def to_onnx(self, *, check: NDArray[Any] | None = None) -> bytes:
        """The scoring as ONNX bytes (outputs ``score``, ``anomaly_map``, ``features``).

        Args:
            check: contract-applied inputs on which torch and ONNX must agree within 1e-4.

        Raises:
            ModelError: the export fails or is not faithful on ``check``.
        """
        example = np.zeros((1, *self.contract.input_shape), dtype=np.float32)
        data = export_onnx(self, example, output_names=PATCH_OUTPUTS)
        if check is not None:
            check_parity(self, data, check)
        return data

    def bank_index(
        self, shapes: Sequence[tuple[int, int]], *, per_cell: int = INDEX_PER_CELL
    ) -> FeatureIndex:
        """The bank as a ``FeatureIndex`` (label ``ok``): the first ``per_cell`` coreset vectors
        of every cell (the most spread ones), each with its OK frame and source pixel
        (``shapes``: the memory frames' (H, W), by frame id order)."""
        keep = min(max(per_cell, 1), self.bank_size)
        bank = (self.memory_t.transpose(1, 2) + self.centre)[:, :keep]
        vectors = bank.reshape(-1, self.settings.features.dim).numpy()
        refs = self.refs[:, :keep].reshape(-1, 3)
        xs, ys = cell_pixels(self.contract, refs[:, 2], refs[:, 1], [shapes[i] for i in refs[:, 0]])
        ids = [self.frame_ids[i] for i in refs[:, 0]]
        return FeatureIndex(vectors, ids, xs, ys, ["ok"] * len(ids), metric="l2")

    def training_record(self) -> dict[str, Any]:
        """The settings and fitted figures for the release's ``training`` field."""
        return {
            "family": "patch",
            **self.settings.to_dict(),
            "memory_frames": len(self.frame_ids),
            "components_used": 0 if self.front is None else self.front.components,
            "bank_per_cell": self.bank_size,
            "grid": list(self.grid),
            "level": self.level,
        }


def grid_shape(contract: InputContract) -> tuple[int, int]:
    """The feature grid (rows, columns) of a contract; it must be 1 channel, sides multiples of 4.

    Raises:
        ModelError: the contract does not fit the patch model.
    """
    if contract.num_channels != 1:
        raise ModelError(
            f"contract.channels: the patch model takes 1 channel, got {list(contract.channels)}"
        )
    if contract.height % STRIDE or contract.width % STRIDE:
        raise ModelError(
            f"contract height and width must be multiples of {STRIDE} for the patch model, "
            f"got {contract.height}x{contract.width}"
        )
    return contract.height // STRIDE, contract.width // STRIDE


def cell_pixels(
    contract: InputContract,
    cols: NDArray[Any],
    rows: NDArray[Any],
    shapes: Sequence[tuple[int, int]],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Source-frame pixels (x, y) of cell centres (column, row), one source shape each."""
    xs = np.empty(len(shapes), dtype=np.int64)
    ys = np.empty(len(shapes), dtype=np.int64)
    for i, (shape, col, row) in enumerate(zip(shapes, cols, rows, strict=True)):
        crop = contract.crop or (0, 0, shape[1], shape[0])
        p = contract.placement_for(shape)
        mx, my = (float(col) + 0.5) * STRIDE, (float(row) + 0.5) * STRIDE
        fx = (mx - p.left) / max(p.width, 1) * (crop[2] - crop[0]) + crop[0]
        fy = (my - p.top) / max(p.height, 1) * (crop[3] - crop[1]) + crop[1]
        xs[i] = min(max(int(fx), 0), shape[1] - 1)
        ys[i] = min(max(int(fy), 0), shape[0] - 1)
    return xs, ys


def _checked(inputs: NDArray[Any], contract: InputContract) -> Tensor:
    x = np.asarray(inputs, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != contract.input_shape:
        raise ModelError(
            f"patch inputs must be (N, {', '.join(map(str, contract.input_shape))}), got {x.shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(x))


def _chunks(x: Tensor) -> list[Tensor]:
    return [x[i : i + _BATCH] for i in range(0, len(x), _BATCH)]


def _features(extractor: PatchFeatures, x: Tensor) -> Tensor:
    with torch.no_grad():
        return torch.cat([extractor(chunk) for chunk in _chunks(x)])


def neighbourhood(f: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    """Per cell, the features of all frames at the cells within ``radius``: (P, M, D), and
    each candidate's (frame, row, column) as (P, M, 3) int64."""
    n, d, h, w = f.shape
    rows = torch.arange(h).reshape(h, 1).expand(h, w)
    cols = torch.arange(w).reshape(1, w).expand(h, w)
    vectors, refs = [], []
    frames = torch.arange(n).reshape(n, 1, 1).expand(n, h, w)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            r = (rows + dy).clamp(0, h - 1)
            c = (cols + dx).clamp(0, w - 1)
            vectors.append(f[:, :, r, c])  # (N, D, h, w)
            refs.append(torch.stack([frames, r.expand(n, h, w), c.expand(n, h, w)], dim=-1))
    v = torch.stack(vectors, dim=1).permute(3, 4, 0, 1, 2).reshape(h * w, -1, d)
    ref = torch.stack(refs, dim=1).permute(2, 3, 0, 1, 4).reshape(h * w, -1, 3)
    return v, ref


def coreset(pool: Tensor, k: int, *, start: int = 0) -> Tensor:
    """Greedy k-centre selection per cell: indices (P, k) into ``pool`` (P, M, D).

    Each step adds, in every cell, the candidate farthest from those already chosen; with
    ``k >= M`` all candidates are kept.
    """
    p, m, _ = pool.shape
    if k >= m:
        return torch.arange(m).expand(p, m).clone()
    chosen = torch.empty((p, k), dtype=torch.int64)
    chosen[:, 0] = start % m
    cells = torch.arange(p)
    centre = pool[cells, chosen[:, 0]]
    nearest = ((pool - centre[:, None]) ** 2).sum(-1)
    for j in range(1, k):
        pick = nearest.argmax(dim=1)
        chosen[:, j] = pick
        centre = pool[cells, pick]
        nearest = torch.minimum(nearest, ((pool - centre[:, None]) ** 2).sum(-1))
    return chosen


def split_frames(
    count: int, settings: PatchSettings
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Indices of the memory frames and of the calibration frames among ``count`` OK frames
    (seeded by ``settings.seed``; at least one of each)."""
    order = np.random.default_rng([settings.seed, 1]).permutation(count)
    held = min(max(1, round(count * settings.calibration)), count - 1)
    return np.sort(order[held:]), np.sort(order[:held])


def fit_patch_model(
    frames: Sequence[Frame],
    contract: InputContract,
    *,
    settings: PatchSettings | None = None,
    ambient_c: float | Sequence[float | None] | None = None,
    frame_ids: Sequence[str] | None = None,
    weights: str | Path | None = None,
) -> PatchModel:
    """A patch model of OK frames (at least 2; every one must be a good part).

    Args:
        frames: OK frames in °C (``ThermalFrame`` or (H, W) arrays).
        contract: the input contract (1 channel, sides multiples of 4).
        settings: fitting and scoring settings.
        ambient_c: ambient temperature(s) in °C for a ``delta_ambient`` channel.
        frame_ids: ids of the frames for the explanation index (default ``ok-<i>``).
        weights: an EfficientNet-Lite0 state dict (default: the packaged ImageNet weights).

    Raises:
        ModelError: too few frames, a frame the contract refuses, or bad settings.
    """
    settings = settings or PatchSettings()
    grid_shape(contract)
    if len(frames) < 2:
        raise ModelError(f"the patch model needs at least 2 OK frames, got {len(frames)}")
    ids = [f"ok-{i}" for i in range(len(frames))] if frame_ids is None else list(frame_ids)
    if len(ids) != len(frames):
        raise ModelError(f"frame_ids: {len(ids)} ids for {len(frames)} frames")
    arrays = [f.celsius if isinstance(f, ThermalFrame) else np.asarray(f) for f in frames]
    x = torch.from_numpy(contract.apply_batch(arrays, ambient_c=ambient_c))
    rng = np.random.default_rng(settings.seed)
    keep, calib = split_frames(len(arrays), settings)
    extractor = PatchFeatures(settings.features, weights=weights)
    memory_x = x[torch.from_numpy(keep)]
    front = fit_aligned_residual(memory_x, settings.components) if settings.components else None
    if front is not None:
        with torch.no_grad():
            memory_x = torch.cat([front(c)[0] for c in _chunks(memory_x)])
    feats = _features(extractor, memory_x)
    pool, pool_refs = neighbourhood(feats, settings.radius)
    start = int(rng.integers(pool.shape[1]))
    banks, refs = [], []
    for lo in range(0, pool.shape[0], _CELL_BLOCK):
        block = pool[lo : lo + _CELL_BLOCK]
        pick = coreset(block, settings.bank, start=start)
        banks.append(torch.gather(block, 1, pick[..., None].expand(-1, -1, block.shape[2])))
        refs.append(
            torch.gather(pool_refs[lo : lo + _CELL_BLOCK], 1, pick[..., None].expand(-1, -1, 3))
        )
    memory = torch.cat(banks)
    ref = torch.cat(refs).numpy()
    ref[..., 0] = keep[ref[..., 0]]
    model = PatchModel(contract, settings, extractor, memory, 1.0, ref, ids, front)
    with torch.no_grad():
        raw = torch.cat(
            [
                model.maps(c)[0].flatten(1).max(dim=1).values
                for c in _chunks(x[torch.from_numpy(calib)])
            ]
        )
    level = float(np.quantile(raw.numpy().astype(np.float64), settings.quantile))
    return PatchModel(contract, settings, extractor, memory, max(level, 1e-6), ref, ids, front)


def example_index(
    model: PatchModel,
    shapes: Sequence[tuple[int, int]],
    examples: Sequence[tuple[str, Frame, str]] = (),
    *,
    ambient_c: Sequence[float | None] | None = None,
    per_cell: int = INDEX_PER_CELL,
) -> FeatureIndex:
    """The explanation index: the model's bank (label ``ok``) plus the peak feature of each
    labelled example ``(frame_id, frame, label)`` (e.g. confirmed cold joints).

    Args:
        shapes: the memory frames' (H, W), by the model's frame ids.
        examples: labelled frames, usually confirmed defects.
        ambient_c: per-example ambient (°C) for a ``delta_ambient`` channel.
        per_cell: bank vectors per cell in the index.
    """
    base = model.bank_index(shapes, per_cell=per_cell)
    if not examples:
        return base
    arrays = [f.celsius if isinstance(f, ThermalFrame) else np.asarray(f) for _, f, _ in examples]
    x = _checked(model.contract.apply_batch(arrays, ambient_c=ambient_c), model.contract)
    with torch.no_grad():
        outs = [model(chunk) for chunk in _chunks(x)]
    vectors = torch.cat([o[2] for o in outs]).numpy()
    maps = torch.cat([o[1] for o in outs])
    rows, cols = np.divmod(maps.flatten(1).argmax(dim=1).numpy(), maps.shape[2])
    if maps.shape[1:] != model.grid:  # a pixel map (conditional model): the cell it lies in
        rows, cols = rows // STRIDE, cols // STRIDE
    xs, ys = cell_pixels(model.contract, cols, rows, [a.shape[:2] for a in arrays])
    return FeatureIndex(
        np.concatenate([base.vectors, vectors]),
        [*base.frame_ids.tolist(), *(e[0] for e in examples)],
        np.concatenate([base.xs, xs]),
        np.concatenate([base.ys, ys]),
        [*base.labels.tolist(), *(e[2] for e in examples)],
        metric="l2",
    )


def write_patch_release(
    model: PatchModel,
    folder: Path,
    *,
    name: str,
    version: int,
    index: FeatureIndex | None = None,
    check: NDArray[Any] | None = None,
    dataset_hash: str = "",
    code_version: str = "",
    metrics: Mapping[str, Any] | None = None,
    private_key: Path | None = None,
) -> Path:
    """Write ``model`` as an ``anomaly`` release (threshold ``{"anomaly": 0.5}``) with its
    explanation ``index`` as ``index.npz``; ``check``: inputs for the torch/ONNX parity check."""
    extra = {INDEX_FILE: index.to_bytes()} if index is not None else {}
    return write_release(
        folder,
        name=name,
        version=version,
        kind="anomaly",
        contract=model.contract,
        onnx=model.to_onnx(check=check),
        classes=("ok", "anomaly"),
        thresholds={"anomaly": PATCH_THRESHOLD},
        dataset_hash=dataset_hash,
        code_version=code_version,
        training=model.training_record(),
        metrics=metrics,
        extra_files=extra,
        private_key=private_key,
    )


__all__ = [
    "INDEX_PER_CELL",
    "MAX_COMPONENTS",
    "PATCH_OUTPUTS",
    "PATCH_THRESHOLD",
    "PatchModel",
    "PatchSettings",
    "cell_pixels",
    "coreset",
    "example_index",
    "fit_patch_model",
    "gaussian_kernel",
    "grid_shape",
    "neighbourhood",
    "split_frames",
    "write_patch_release",
]
