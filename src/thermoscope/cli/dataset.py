"""``thermoscope dataset``: versioned ground-truth datasets in a local folder.

The lead registers it with ``app.add_typer(dataset_app, name="dataset")``. Every command takes the
dataset folder first; versions are named by id, unique id prefix or tag, and ``working`` is the
uncommitted working state.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.table import Table

from thermoscope.cli.batch import err_console, run_batch
from thermoscope.cli.exits import fail, usage
from thermoscope.cli.inputs import expand_and_report
from thermoscope.core import ThermoscopeError
from thermoscope.datasets.hashing import NEAR_DUPLICATE_BITS
from thermoscope.datasets.splits import (
    DEFAULT_FRACTIONS,
    GROUP_FIELDS,
    GroupField,
    check_fractions,
    split,
)
from thermoscope.datasets.store import WORKING, DatasetStore

dataset_app = typer.Typer(
    name="dataset",
    help="Versioned datasets: frames stored once by content, immutable versions, leak-free splits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

DatasetDir = Annotated[
    Path, typer.Argument(help="The dataset folder.", metavar="DATASET", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    """A dataset or file the command names cannot be used (exit 1, see ``cli.exits``)."""
    return fail(message)


def _open(root: Path) -> DatasetStore:
    try:
        return DatasetStore.open(root)
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


@dataset_app.command()
def create(
    root: DatasetDir,
    name: Annotated[str | None, typer.Option(help="Display name (default: folder name).")] = None,
    schema: Annotated[
        Path | None,
        typer.Option(help="Label schema file, JSON or YAML (LabelSchema.to_dict layout)."),
    ] = None,
) -> None:
    """Create an empty dataset in a folder."""
    try:
        doc = None
        if schema is not None:
            doc = yaml.safe_load(schema.read_text(encoding="utf-8"))
        store = DatasetStore.create(root, name=name, schema=doc)
    except (ThermoscopeError, OSError, yaml.YAMLError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"created dataset {store.name!r} in {root}", highlight=False)


@dataset_app.command()
def add(
    root: DatasetDir,
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Files, folders or glob patterns.", metavar="FILES", show_default=False
        ),
    ],
    product: Annotated[str | None, typer.Option(help="Product the files show.")] = None,
    serial: Annotated[str | None, typer.Option(help="Part serial number of all files.")] = None,
    duplicate_group: Annotated[
        str | None, typer.Option(help="Known duplicate group of all files.")
    ] = None,
    per_frame: Annotated[
        bool, typer.Option("--per-frame", help="One item per frame of a multi-frame file.")
    ] = False,
    key: Annotated[
        str, typer.Option(help="Item ids by frame 'content' or by file 'name'.")
    ] = "content",
    replace: Annotated[
        bool, typer.Option("--replace", help="Update items that exist with other content.")
    ] = False,
) -> None:
    """Add radiometric files to the working state (broken files are reported, the rest added)."""
    if key not in ("content", "name"):
        raise usage(f"--key must be content or name, got {key!r}")
    store = _open(root)
    files, problems = expand_and_report(inputs)
    statuses: Counter[str] = Counter()
    metadata: dict[str, Any] = {
        k: v
        for k, v in (("product", product), ("serial", serial), ("duplicate_group", duplicate_group))
        if v is not None
    }

    def one(path: Path) -> None:
        results = store.add_file(
            path,
            key=cast(Literal["content", "name"], key),
            per_frame=per_frame,
            replace=replace,
            **metadata,
        )
        statuses.update(r.status for r in results)

    with store.batch():
        failures = run_batch(files, one, verb="Adding")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "no items"
    console.print(f"{summary}; {len(store)} items in the working state", highlight=False)
    if failures or problems:
        err_console.print(f"{len(failures) + len(problems)} input(s) failed", highlight=False)
        raise typer.Exit(code=1)


@dataset_app.command()
def version(
    root: DatasetDir,
    tag: Annotated[str | None, typer.Option(help="Name the version (tags never move).")] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="A note for the log.")] = "",
) -> None:
    """Freeze the working state as an immutable version; prints its id."""
    store = _open(root)
    try:
        vid = store.commit(message=message, tag=tag)
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None
    console.print(vid, highlight=False)


@dataset_app.command()
def log(root: DatasetDir, as_json: JsonOption = False) -> None:
    """List committed versions, oldest first."""
    entries = _open(root).log()
    if as_json:
        _print_json([asdict(e) for e in entries])
        return
    table = Table("version", "created", "items", "tag", "message")
    for e in entries:
        table.add_row(e.id[:12], e.created, str(e.items), e.tag or "", e.message)
    console.print(table)


@dataset_app.command()
def diff(
    root: DatasetDir,
    a: Annotated[str, typer.Argument(help="Older version (id, prefix or tag).", metavar="A")],
    b: Annotated[
        str, typer.Argument(help="Newer version (default: the working state).", metavar="B")
    ] = WORKING,
    ids: Annotated[bool, typer.Option("--ids", help="List the item ids too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Items added, removed and changed between two versions, and label-count deltas."""
    store = _open(root)
    try:
        d = store.diff(a, b)
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json(
            {
                "added": list(d.added),
                "removed": list(d.removed),
                "changed": list(d.changed),
                "label_deltas": dict(d.label_deltas),
                "verdict_deltas": dict(d.verdict_deltas),
                "schema_changed": d.schema_changed,
            }
        )
        return
    table = Table("change", "items")
    for name, values in (("added", d.added), ("removed", d.removed), ("changed", d.changed)):
        table.add_row(name, str(len(values)))
    console.print(table)
    deltas = Table("label / verdict", "delta")
    for label, delta in d.label_deltas.items():
        deltas.add_row(label, f"{delta:+d}")
    for verdict, delta in d.verdict_deltas.items():
        deltas.add_row(f"verdict {verdict}", f"{delta:+d}")
    if deltas.row_count:
        console.print(deltas)
    if d.schema_changed:
        console.print("the label schema changed")
    if ids:
        for name, values in (("+", d.added), ("-", d.removed), ("~", d.changed)):
            for item_id in values:
                console.print(f"{name} {item_id}", highlight=False)


def _parse_fractions(text: str) -> dict[str, float]:
    """``"train=0.7,val=0.15,test=0.15"`` -> mapping."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise usage(f"--fractions wants NAME=SHARE,..., got {text!r}") from None
    try:
        return check_fractions(out)
    except ThermoscopeError as exc:
        raise usage(f"--fractions: {exc}") from None


@dataset_app.command("split")
def split_command(
    root: DatasetDir,
    ref: Annotated[
        str, typer.Argument(help="Version to split (id, prefix or tag).", metavar="VERSION")
    ],
    fractions: Annotated[
        str, typer.Option(help="Parts and their shares, NAME=SHARE,... adding up to 1.")
    ] = ",".join(f"{k}={v:g}" for k, v in DEFAULT_FRACTIONS.items()),
    group_by: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Keep items with equal values together: {', '.join(GROUP_FIELDS)} "
            "(repeatable; default: all of them)."
        ),
    ] = None,
    no_groups: Annotated[
        bool, typer.Option("--no-groups", help="Group by shared frames and near-duplicates only.")
    ] = False,
    stratify_by: Annotated[
        str | None, typer.Option(help="Spread classes over the parts: 'verdict' or 'label'.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same split).")] = 0,
    near_bits: Annotated[
        int,
        typer.Option(
            min=-1,
            max=63,
            help="Perceptual-hash distance (bits) of near-identical frames; -1: exact only.",
        ),
    ] = NEAR_DUPLICATE_BITS,
    as_json: JsonOption = False,
) -> None:
    """Split a version into parts without leakage and save the split in the dataset."""
    shares = _parse_fractions(fractions)
    fields: tuple[str, ...] = () if no_groups else tuple(group_by or GROUP_FIELDS)
    if stratify_by not in (None, "verdict", "label"):
        raise usage(f"--stratify-by must be verdict or label, got {stratify_by!r}")
    store = _open(root)
    try:
        vid = store.resolve(ref)
        result = split(
            store.version(vid),
            rng=np.random.default_rng(seed),
            fractions=shares,
            group_by=cast(tuple[GroupField, ...], fields),
            stratify_by=cast(Literal["label", "verdict"] | None, stratify_by),
            near_duplicate_bits=None if near_bits < 0 else near_bits,
        )
        sid = store.save_split(
            vid,
            result.parts,
            seed=seed,
            fractions=shares,
            group_by=list(fields),
            stratify_by=stratify_by,
            near_duplicate_bits=near_bits,
        )
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json(
            {"split": sid, "version": vid, "parts": {k: list(v) for k, v in result.parts.items()}}
        )
        return
    total = sum(len(v) for v in result.parts.values()) or 1
    table = Table("part", "items", "share", "target", "strata")
    for name, ids in result.parts.items():
        strata = ", ".join(f"{k}={n}" for k, n in result.strata[name].items())
        table.add_row(name, str(len(ids)), f"{len(ids) / total:.3f}", f"{shares[name]:.3f}", strata)
    console.print(table)
    merged = sum(1 for g in result.groups if len(g) > 1)
    console.print(
        f"split {sid} of version {vid[:12]}: {len(result.groups)} leakage groups "
        f"({merged} with more than one item)",
        highlight=False,
    )


@dataset_app.command()
def stats(
    root: DatasetDir,
    ref: Annotated[
        str, typer.Argument(help="Version (id, prefix, tag) or 'working'.", metavar="VERSION")
    ] = WORKING,
    as_json: JsonOption = False,
) -> None:
    """Counts per label, per verdict (OK/NG) and per product."""
    store = _open(root)
    try:
        s = store.stats(ref)
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json(s.to_dict())
        return
    console.print(
        f"{s.items} items, {s.frames} distinct frames, {s.annotated} annotated", highlight=False
    )
    for title, counts in (("label", s.labels), ("verdict", s.verdicts)):
        table = Table(title, "count")
        for k, n in counts.items():
            table.add_row(k, str(n))
        console.print(table)
    table = Table("product", "items", "OK", "NG", "no verdict", "golden")
    for product, n in s.products.items():
        pv = s.product_verdicts[product]
        table.add_row(
            product or "(none)",
            str(n),
            str(pv.get("OK", 0)),
            str(pv.get("NG", 0)),
            str(pv.get("none", 0)),
            str(s.golden.get(product, 0)),
        )
    console.print(table)


FormatArgument = Annotated[
    str,
    typer.Option(
        "--format", "-f", help="coco, yolo-detect, yolo-segment, cvat-images, ...", metavar="FORMAT"
    ),
]


def _check_format(name: str) -> None:
    """Exit 2 (a bad command line) for a format name no importer/exporter has."""
    from thermoscope.annotations.formats import FORMATS

    if name not in FORMATS:
        raise usage(f"--format: unknown format {name!r}; choose from {', '.join(FORMATS)}")


@dataset_app.command("export")
def export_command(
    root: DatasetDir,
    ref: Annotated[str, typer.Argument(help="Version id, prefix or tag.", metavar="VERSION")],
    out: Annotated[Path, typer.Argument(help="The export folder to write.", metavar="OUT")],
    fmt: FormatArgument = "coco",
    sidecar: Annotated[
        str, typer.Option(help="Radiometric side-car per frame: tiff or npy.")
    ] = "tiff",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export folder.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Refuse (and write nothing) when the format would lose data.")
    ] = False,
) -> None:
    """Export a version to an interchange format, with °C side-cars; warns what the format loses."""
    from thermoscope.datasets.interchange import export_version

    if sidecar not in ("tiff", "npy"):
        raise usage(f"--sidecar must be tiff or npy, got {sidecar!r}")
    _check_format(fmt)
    store = _open(root)
    try:
        with err_console.status(f"Exporting {ref} as {fmt}..."):
            report = export_version(
                store,
                ref,
                fmt,
                out,
                sidecar=cast(Literal["tiff", "npy"], sidecar),
                overwrite=overwrite,
                strict=strict,
            )
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None
    for warning in report.warnings:
        err_console.print(f"[yellow]![/yellow] {warning}", highlight=False)
    console.print(f"exported {store.resolve(ref)[:12]} as {fmt} to {out}")


@dataset_app.command("import")
def import_command(
    root: DatasetDir,
    path: Annotated[Path, typer.Argument(help="An export folder or file.", metavar="EXPORT")],
    fmt: FormatArgument = "coco",
    skip_invalid: Annotated[
        bool, typer.Option(help="Leave malformed entries out and report them, instead of failing.")
    ] = False,
    replace: Annotated[
        bool, typer.Option(help="Take the export's annotations for items the dataset holds.")
    ] = False,
    originals: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the radiometric files the annotated pictures were rendered from "
            "(matched by file name and size); then EXPORT needs no °C side-cars.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Import an export (with its °C side-cars), or annotations made on rendered pictures
    together with their radiometric originals, into the dataset's working state."""
    from thermoscope.datasets.interchange import import_export, import_onto_originals

    _check_format(fmt)
    store = _open(root)
    try:
        if originals is not None:
            summary = import_onto_originals(
                store, fmt, path, originals, skip_invalid=skip_invalid, replace=replace
            )
        else:
            summary = import_export(store, fmt, path, skip_invalid=skip_invalid, replace=replace)
    except ThermoscopeError as exc:
        raise _fail(str(exc)) from None
    for message in summary.skipped:
        err_console.print(f"[yellow]skipped[/yellow] {message}", highlight=False)
    console.print(
        f"{len(summary.added)} items added, {len(summary.unchanged)} unchanged, "
        f"{len(summary.skipped)} skipped"
    )
