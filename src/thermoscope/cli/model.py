"""``thermoscope model``: train, evaluate, export, run, sign and verify model releases.

Registered with ``app.add_typer(model_app, name="model")``. The work is done by
``thermoscope.models.workflow`` (train / evaluate / predict / export), ``models.release`` (sign /
verify) and ``reports.evaluation`` (the HTML page); this module parses, shows progress and
prints. Every failure is a one-line ``error:`` with the exit code of ``cli.exits``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from thermoscope.cli.batch import err_console
from thermoscope.cli.exits import ExitCode, fail, usage
from thermoscope.cli.inputs import expand_inputs
from thermoscope.cli.scale import EngineChoice
from thermoscope.core import ThermoscopeError
from thermoscope.io.registry import write_atomic
from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import DEFAULT_TARGET_RECALL, Evaluation
from thermoscope.models.fitting import train_release
from thermoscope.models.labelled import LabelledData, class_counts, load_labelled
from thermoscope.models.release import check_release, generate_keys, sign_release, verify_release
from thermoscope.models.runtime import load_model
from thermoscope.models.workflow import (
    PICTURE_SUFFIXES,
    curve_features,
    evaluate_outcomes,
    export_onnx_file,
    held_out_part,
    predict_data,
    predict_files,
)
from thermoscope.models.workflow import (
    Progress as WorkProgress,
)
from thermoscope.reports.evaluation import (
    Compared,
    ModelCard,
    write_comparison_report,
    write_evaluation_report,
)

model_app = typer.Typer(
    name="model",
    help="Learned models: train from labelled data, evaluate, export, predict, sign and verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

KINDS = ("classifier", "anomaly", "golden", "temporal")
ReleaseDir = Annotated[
    Path, typer.Option("--model", "-m", help="The release folder.", show_default=False)
]
PublicKey = Annotated[
    Path | None,
    typer.Option("--public-key", help="Refuse the release unless signed with this key."),
]
DataVersion = Annotated[
    str | None,
    typer.Option("--version", "-V", help="Dataset version (id, prefix or tag) of a dataset."),
]
Target = Annotated[
    str,
    typer.Option(help="A dataset item's class: its one annotation label, or its verdict."),
]
DataDir = Annotated[
    Path,
    typer.Argument(
        help="A dataset folder (with --version), an InfraredSolarModules folder (images/ + "
        "module_metadata*.json) or a synthetic run (thermoscope synth).",
        metavar="DATA",
        show_default=False,
    ),
]


@contextmanager
def _progress(title: str) -> Iterator[WorkProgress]:
    """A Rich progress bar on stderr, one task per stage the work reports."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{title}: {stage}", total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield report


def _target(text: str) -> Literal["label", "verdict"]:
    if text not in ("label", "verdict"):
        raise usage(f"--target must be label or verdict, got {text!r}")
    return "label" if text == "label" else "verdict"


def _load(data: Path, version: str | None, limit: int | None, target: str) -> LabelledData:
    chosen = _target(target)
    try:
        with err_console.status(f"Reading {data}..."):
            return load_labelled(data, version=version, limit=limit, target=chosen)
    except ModelError as exc:
        raise fail(str(exc)) from None


def _window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise usage(f"--window wants LOW:HIGH, got {text!r}") from None
    if not lo < hi:
        raise usage(f"--window wants LOW < HIGH, got {text!r}")
    return lo, hi


def _print_evaluation(ev: Evaluation) -> None:
    """Accuracy, macro-F1, the binary view and per-class recall, as a table."""
    console.print(
        f"accuracy {100 * ev.accuracy:.2f} % · macro-F1 {ev.macro_f1:.4f} · "
        f"ECE {ev.calibration.ece:.4f} · {ev.count} samples"
    )
    if ev.binary is not None:
        b = ev.binary
        auroc = "-" if b.auroc is None else f"{b.auroc:.4f}"
        console.print(
            f"{b.positive} vs normal: accuracy {100 * b.accuracy:.2f} % · AUROC {auroc}",
            highlight=False,
        )
    table = Table("class", "precision", "recall", "F1", "support")
    for c in ev.per_class:
        table.add_row(
            c.name, f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}", str(c.support)
        )
    console.print(table)


@model_app.command("keygen")
def keygen(
    private: Annotated[Path, typer.Argument(help="Private key file to create (PEM).")],
    public: Annotated[Path, typer.Argument(help="Public key file to create (PEM).")],
) -> None:
    """Create an Ed25519 key pair for signing releases (never overwrites a file)."""
    try:
        fingerprint = generate_keys(private, public)
    except ModelError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"key pair written; public key fingerprint {fingerprint}", highlight=False, soft_wrap=True
    )


@model_app.command("train")
def train(
    data: DataDir,
    out: Annotated[Path, typer.Option("--out", "-o", help="The release folder to create.")],
    kind: Annotated[str, typer.Option(help=f"Model kind: {', '.join(KINDS)}.")] = "classifier",
    version: DataVersion = None,
    target: Target = "label",
    name: Annotated[str | None, typer.Option(help="Model name (default: DATA's name).")] = None,
    release_version: Annotated[
        int, typer.Option(min=1, help="The release's version number (only ever grows).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Seeds the split and the training.")] = 0,
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share held out for evaluation.")
    ] = 0.2,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (classifier).")] = 30,
    architecture: Annotated[
        str, typer.Option(help="Classifier network: compact or efficientnet_lite0.")
    ] = "compact",
    pretrained: Annotated[
        str | None,
        typer.Option(help="efficientnet_lite0 start: 'imagenet' or a state-dict file."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="Fixed input window LOW:HIGH (°C, or 0..255 for pictures)."),
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Sign the release with this key.")] = None,
    limit: Annotated[int | None, typer.Option(min=2, help="Use only the first N items.")] = None,
    engine: Annotated[
        EngineChoice,
        typer.Option(help="Classifier training: local (this process) or ray (Ray Train workers)."),
    ] = EngineChoice.local,
    workers: Annotated[int, typer.Option(min=1, help="Ray Train workers (--engine ray).")] = 2,
) -> None:
    """Train a model on labelled data and write a release folder (held-out figures inside)."""
    if kind not in KINDS:
        raise usage(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if engine is EngineChoice.ray and kind != "classifier":
        raise usage("--engine ray trains classifiers only")
    lo_hi = _window(window)
    release_name = name or data.resolve().name
    if kind == "classifier":
        if window is not None or limit is not None:
            raise usage("--window and --limit apply to anomaly, golden and temporal models")
        settings = _classifier_settings(architecture, pretrained, epochs, holdout)
        _train_classifier(
            data,
            out,
            version,
            _target(target),
            release_name,
            release_version,
            seed,
            settings,
            key,
            "ray" if engine is EngineChoice.ray else "local",
            workers,
        )
        return
    labelled = _load(data, version, limit, target)
    counts = ", ".join(f"{k} {n}" for k, n in class_counts(labelled.labels).items())
    console.print(f"{len(labelled)} items: {counts}", highlight=False)
    try:
        with err_console.status(f"Training a {kind} model..."):
            made = train_release(
                labelled,
                out,
                kind=kind,
                name=release_name,
                version=release_version,
                seed=seed,
                holdout=holdout,
                window=lo_hi,
                private_key=key,
            )
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    console.print(f"release {made.manifest.name} v{made.manifest.version} in {made.folder}")
    if made.evaluation is not None:
        console.print("held-out part:")
        _print_evaluation(made.evaluation)


def _classifier_settings(
    architecture: str, pretrained: str | None, epochs: int, holdout: float
) -> Any:
    from thermoscope.models.training import TrainSettings

    try:
        return TrainSettings(
            architecture=architecture, pretrained=pretrained, epochs=epochs, holdout=holdout
        )
    except ModelError as exc:
        raise usage(str(exc)) from None


def _train_classifier(
    data: Path,
    out: Path,
    version: str | None,
    target: Literal["label", "verdict"],
    name: str,
    release_version: int,
    seed: int,
    settings: Any,
    key: Path | None,
    engine: Literal["local", "ray"],
    workers: int,
) -> None:
    """``models.classifier_release.train_classifier`` with a progress bar per epoch (on Ray,
    the epochs are shown once the run is over)."""
    from thermoscope.models.classifier_release import train_classifier

    try:
        with _progress("Training") as report:
            folder = train_classifier(
                data,
                out,
                settings=settings,
                seed=seed,
                ref=version,
                target=target,
                name=name,
                version=release_version,
                private_key=key,
                progress=lambda stage, done, total, info: report(stage, done, total),
                log=lambda line: err_console.print(escape(line), highlight=False),
                engine=engine,
                workers=workers,
            )
        manifest = check_release(folder)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    console.print(f"release {manifest.name} v{manifest.version} in {folder}")
    _print_metrics(manifest.metrics)


def _print_metrics(metrics: Mapping[str, Any]) -> None:
    """The held-out figures a release's manifest records."""
    if "accuracy" not in metrics:
        return
    line = f"held-out accuracy {100 * metrics['accuracy']:.2f} %"
    if "macro_f1" in metrics:
        line += f" · macro-F1 {metrics['macro_f1']:.4f}"
    if metrics.get("binary_accuracy") is not None:
        line += f" · defect vs normal {100 * metrics['binary_accuracy']:.2f} %"
    console.print(line, highlight=False)
    recall = metrics.get("recall") or {}
    if recall:
        table = Table("class", "recall")
        for name, value in recall.items():
            table.add_row(str(name), f"{value:.4f}")
        console.print(table)


@model_app.command("eval")
def eval_command(
    releases: Annotated[
        list[Path],
        typer.Option(
            "--model",
            "-m",
            help="A release folder; repeat it to compare several side by side.",
            show_default=False,
        ),
    ],
    data: DataDir,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the HTML and JSON.")],
    version: DataVersion = None,
    target: Target = "label",
    holdout: Annotated[
        bool, typer.Option(help="Only the part the release's training held out.")
    ] = False,
    public_key: PublicKey = None,
    target_recall: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Defect recall the threshold is picked for.")
    ] = DEFAULT_TARGET_RECALL,
    limit: Annotated[int | None, typer.Option(min=2, help="Use only the first N items.")] = None,
) -> None:
    """Evaluate releases on labelled data: prints accuracy, macro-F1 and per-class recall;
    writes evaluation.html, evaluation.json and model_card.md to OUT (one folder per release
    and comparison.html beside them when several are given)."""
    try:
        models = [(path, load_model(path, public_key=public_key)) for path in releases]
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    labelled = _load(data, version, limit, target)
    compared = []
    for path, model in models:
        label = f"{model.name} v{model.version}"
        folder = out if len(models) == 1 else out / f"{model.name}-v{model.version}"
        try:
            part = held_out_part(path, model.manifest, labelled) if holdout else labelled
            with _progress(f"Evaluating {label}") as report:
                outcomes = predict_data(model, path, part, progress=report)
            evaluation = evaluate_outcomes(model, part, outcomes, target_recall=target_recall)
            card = ModelCard.from_manifest(model.manifest.to_dict())
            files = write_evaluation_report(
                folder,
                evaluation,
                title=f"{label} on {data.name}",
                card=card,
                meta={
                    "data": data.name,
                    "part": "held out" if holdout else "all",
                    "dataset hash": part.dataset_hash[:16],
                },
            )
        except (ThermoscopeError, OSError) as exc:
            raise fail(str(exc)) from None
        if len(models) > 1:
            console.print(f"[bold]{escape(label)}[/bold]")
        _print_evaluation(evaluation)
        console.print(f"report: {files.html} · JSON: {files.json}")
        page = files.html.relative_to(out).as_posix() if len(models) > 1 else None
        compared.append(Compared(label, evaluation, card, page))
    if len(models) > 1:
        try:
            html, _ = write_comparison_report(
                out, compared, title=f"{len(models)} models on {data.name}"
            )
        except OSError as exc:
            raise fail(f"{out}: {exc.strerror or exc}") from None
        console.print(f"side by side: {html}")


@model_app.command("predict")
def predict(
    release: ReleaseDir,
    inputs: Annotated[
        list[str], typer.Argument(help="Files, folders or glob patterns.", metavar="INPUT...")
    ],
    jsonl: Annotated[Path, typer.Option("--jsonl", help="Write one JSON line per input here.")],
    public_key: PublicKey = None,
) -> None:
    """Run a release on files: one JSON line per input (source, label, score, verdict;
    anomaly_score for anomaly models; an error field for a file it cannot judge)."""
    try:
        model = load_model(release, public_key=public_key)
        features = curve_features(release, model.manifest) if model.kind == "temporal" else None
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    files, problems = _inputs(inputs, pictures=model.contract.unit == "intensity")
    with _progress("Predicting") as report:
        records = predict_files(model, files, features=features, progress=report)
    failed = [r for r in records if "error" in r]
    for record in failed:
        err_console.print(f"[red]✗[/red] {escape(record['error'])}", highlight=False)
    text = "".join(json.dumps(r) + "\n" for r in records)
    try:
        write_atomic(jsonl, text.encode("utf-8"))
    except OSError as exc:
        raise fail(f"{jsonl}: {exc.strerror or exc}") from None
    console.print(f"{len(records) - len(failed)} predicted, {len(failed)} failed → {jsonl}")
    if failed or problems:
        raise typer.Exit(code=int(ExitCode.FAILED))


def _inputs(items: list[str], *, pictures: bool) -> tuple[list[Path], list[str]]:
    """Input files; folders also give their 8-bit pictures for intensity models."""
    files, problems = [], []
    for item in items:
        path = Path(item)
        if pictures and path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
            )
            files += found
            if not found:
                problems.append(f"{item}: folder holds no pictures")
            continue
        more, trouble = expand_inputs([item])
        files += more
        problems += trouble
    for problem in problems:
        err_console.print(f"[red]✗[/red] {escape(problem)}", highlight=False)
    return list(dict.fromkeys(files)), problems


@model_app.command("export")
def export(
    release: Annotated[Path, typer.Argument(help="The release folder.")],
    out: Annotated[Path, typer.Argument(help="The ONNX file to write.")],
    public_key: PublicKey = None,
) -> None:
    """Write a release's model as one ONNX file with its manifest (contract, classes,
    thresholds, dataset hash) in the ONNX metadata."""
    try:
        written = export_onnx_file(release, out, public_key=public_key)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    console.print(f"ONNX with its manifest in the metadata: {written}")


@model_app.command("sign")
def sign(
    release: Annotated[Path, typer.Argument(help="The release folder.")],
    key: Annotated[Path, typer.Option("--key", help="The Ed25519 private key (PEM).")],
) -> None:
    """Sign a release: write manifest.sig (Ed25519 over manifest.json)."""
    try:
        signature = sign_release(release, key)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    console.print(f"signed: {signature}")


@model_app.command("verify")
def verify(
    release: Annotated[Path, typer.Argument(help="The release folder.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The Ed25519 public key (PEM).")],
    min_version: Annotated[
        int | None, typer.Option(min=1, help="Refuse releases older than this version.")
    ] = None,
) -> None:
    """Check a release: signed by the key, every file intact, not expired, new enough."""
    try:
        manifest = verify_release(release, public_key, min_version=min_version)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"OK: {manifest.name} v{manifest.version} ({manifest.kind}), "
        f"expires {manifest.expires.isoformat()}, {len(manifest.files)} files intact",
        highlight=False,
    )
