"""Every command keeps the exit-code table of docs/cli.md, for each class of failure.

0 done; 1 a file/folder the command names is missing, unreadable or invalid (or a value does not
fit it); 2 the command line is wrong on its own; 3 a resource outside the files is unavailable.
A command added without rows here fails ``test_every_command_has_rows``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.cli.main import app
from thermoscope.datasets.store import DatasetStore

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "examples" / "pcb.yaml"
OK, FAILED, USAGE, UNAVAILABLE = 0, 1, 2, 3


@dataclass(frozen=True)
class World:
    """Files of every kind a failure class needs."""

    good: Path  # a radiometric file
    broken: Path  # a file no reader can read
    missing: Path  # nothing there
    recipe: Path
    bad_recipe: Path  # YAML with an unknown key
    dataset: Path  # a dataset with one item and version v1
    bad_dataset: Path  # a folder whose dataset.json is garbage
    export: Path  # a coco export of the dataset
    bad_export: Path  # an export whose annotations.json is not JSON
    file: Path  # a regular file where a folder is wanted
    out: Path  # a fresh output location
    port: int  # a loopback port another socket listens on
    site: Path  # a twin site file naming its recipes


# (command, failure class, expected exit code, arguments with {World field} placeholders)
ROWS: list[tuple[str, str, int, str]] = [
    ("info", "missing file", FAILED, "info {missing}"),
    ("info", "broken file", FAILED, "info {broken}"),
    ("temp", "missing file", FAILED, "temp {missing} 1 1"),
    ("temp", "broken file", FAILED, "temp {broken} 1 1"),
    ("temp", "value does not fit", FAILED, "temp {good} 999 1"),
    ("temp", "frame past the end", FAILED, "temp {good} 1 1 -f 5"),
    ("temp", "bad value", USAGE, "temp {good} x 1"),
    ("temp", "negative frame", USAGE, "temp {good} 1 1 -f -1"),
    ("render", "missing file", FAILED, "render {missing} {out}"),
    ("render", "broken file", FAILED, "render {broken} {out}"),
    ("render", "bad value", USAGE, "render {good} {out} --range a"),
    ("render", "unwritable output", FAILED, "render {good} {file}/x.png"),
    ("convert", "missing file", FAILED, "convert {missing} {out}"),
    ("convert", "broken file", FAILED, "convert {broken} {out}"),
    ("convert", "bad value", USAGE, "convert {good} {out}/x.xyz"),
    ("inspect", "missing file", FAILED, "inspect {missing} -r {recipe}"),
    ("inspect", "broken file", FAILED, "inspect {broken} -r {recipe}"),
    ("inspect", "missing recipe", FAILED, "inspect {good} -r {missing}"),
    ("inspect", "broken recipe", FAILED, "inspect {good} -r {bad_recipe}"),
    ("inspect", "bad value", USAGE, "inspect {good} -r {recipe} --ambient warm"),
    ("inspect-record", "missing file", FAILED, "inspect-record {missing} -r {recipe}"),
    ("inspect-record", "broken file", FAILED, "inspect-record {broken} -r {recipe}"),
    ("inspect-record", "missing recipe", FAILED, "inspect-record {missing} -r {missing}"),
    ("inspect-record", "broken recipe", FAILED, "inspect-record {broken} -r {bad_recipe}"),
    ("inspect-record", "missing option", USAGE, "inspect-record {missing}"),
    ("batch reinspect", "missing file", FAILED, "batch reinspect {missing} -r {recipe}"),
    ("batch reinspect", "broken file", FAILED, "batch reinspect {broken} -r {recipe}"),
    ("batch reinspect", "missing recipe", FAILED, "batch reinspect {good} -r {missing}"),
    ("batch reinspect", "bad value", USAGE, "batch reinspect {good} -r {recipe} --engine spark"),
    ("recipe check", "missing file", FAILED, "recipe check {missing}"),
    ("recipe check", "broken file", FAILED, "recipe check {bad_recipe}"),
    ("fuse", "missing file", FAILED, "fuse {missing} -o {out}"),
    ("fuse", "broken file", FAILED, "fuse {broken} -o {out}"),
    ("fuse", "no visual photo", FAILED, "fuse {good} -o {out}"),
    ("fuse", "missing photo", FAILED, "fuse {good} --visual {missing} -o {out}"),
    ("fuse", "bad value", USAGE, "fuse {good} -o {out} --mode x-ray"),
    ("synth", "unwritable output", FAILED, "synth pcb --out {file} --parts 2"),
    ("synth", "bad value", USAGE, "synth toaster --out {out}"),
    ("synth", "bad suffix", USAGE, "synth pcb --out {out} --suffix .xyz"),
    ("demo", "unwritable output", FAILED, "demo --out {file} --parts 2"),
    ("demo", "bad value", USAGE, "demo --parts 0"),
    ("serve", "port taken", UNAVAILABLE, "serve --port {port} --data-dir {out}"),
    ("serve", "bad value", USAGE, "serve --port 70000"),
    ("edge run", "missing file", FAILED, "edge run --config {missing}"),
    ("edge run", "broken file", FAILED, "edge run --config {bad_recipe}"),
    ("edge run", "bad value", USAGE, "edge run --config"),
    ("edge check-config", "missing file", FAILED, "edge check-config --config {missing}"),
    ("edge check-config", "broken file", FAILED, "edge check-config --config {bad_recipe}"),
    ("twin export", "missing file", FAILED, "twin export {missing}"),
    ("twin export", "broken file", FAILED, "twin export {bad_recipe}"),
    ("twin export", "unwritable output", FAILED, "twin export {site} --out {file}/x.json"),
    ("twin export", "bad value", USAGE, "twin export {site} --format xml"),
    ("dataset create", "missing file", FAILED, "dataset create {out} --schema {missing}"),
    ("dataset create", "broken file", FAILED, "dataset create {dataset}"),
    ("dataset add", "missing dataset", FAILED, "dataset add {missing} {good}"),
    ("dataset add", "broken dataset", FAILED, "dataset add {bad_dataset} {good}"),
    ("dataset add", "missing file", FAILED, "dataset add {dataset} {missing}"),
    ("dataset add", "broken file", FAILED, "dataset add {dataset} {broken}"),
    ("dataset add", "bad value", USAGE, "dataset add {dataset} {good} --key x"),
    ("dataset version", "missing dataset", FAILED, "dataset version {missing}"),
    ("dataset version", "broken dataset", FAILED, "dataset version {bad_dataset}"),
    ("dataset version", "value does not fit", FAILED, "dataset version {dataset} --tag v1"),
    ("dataset log", "missing dataset", FAILED, "dataset log {missing}"),
    ("dataset log", "broken dataset", FAILED, "dataset log {bad_dataset}"),
    ("dataset diff", "missing dataset", FAILED, "dataset diff {missing} v1"),
    ("dataset diff", "broken dataset", FAILED, "dataset diff {bad_dataset} v1"),
    ("dataset diff", "value does not fit", FAILED, "dataset diff {dataset} v9"),
    ("dataset split", "missing dataset", FAILED, "dataset split {missing} v1"),
    ("dataset split", "broken dataset", FAILED, "dataset split {bad_dataset} v1"),
    ("dataset split", "bad value", USAGE, "dataset split {missing} v1 --fractions a=0.5"),
    ("dataset stats", "missing dataset", FAILED, "dataset stats {missing}"),
    ("dataset stats", "broken dataset", FAILED, "dataset stats {bad_dataset}"),
    ("dataset export", "missing dataset", FAILED, "dataset export {missing} v1 {out}"),
    ("dataset export", "broken dataset", FAILED, "dataset export {bad_dataset} v1 {out}"),
    ("dataset export", "bad value", USAGE, "dataset export {dataset} v1 {out} -f nope"),
    ("dataset import", "missing file", FAILED, "dataset import {dataset} {missing}"),
    ("dataset import", "broken file", FAILED, "dataset import {dataset} {bad_export}"),
    ("dataset import", "missing dataset", FAILED, "dataset import {missing} {export}"),
    ("dataset import", "bad value", USAGE, "dataset import {dataset} {export} -f nope"),
    ("model keygen", "unwritable output", FAILED, "model keygen {file}/k.pem {file}/p.pem"),
    ("model train", "missing file", FAILED, "model train {missing} --out {out}"),
    ("model train", "dataset without labels", FAILED, "model train {dataset} -V v1 --out {out}"),
    ("model train", "bad value", USAGE, "model train {dataset} --out {out} --kind magic"),
    ("model eval", "missing release", FAILED, "model eval -m {missing} {dataset} --out {out}"),
    ("model eval", "broken release", FAILED, "model eval -m {dataset} {dataset} --out {out}"),
    ("model eval", "bad value", USAGE, "model eval -m {out} {dataset} --out {out} --limit 0"),
    ("model predict", "missing release", FAILED, "model predict -m {missing} {good} --jsonl {out}"),
    ("model predict", "broken release", FAILED, "model predict -m {dataset} {good} --jsonl {out}"),
    ("model export", "missing release", FAILED, "model export {missing} {out}"),
    ("model sign", "missing release", FAILED, "model sign {missing} --key {missing}"),
    ("model verify", "missing release", FAILED, "model verify {missing} --public-key {missing}"),
    ("model verify", "bad value", USAGE, "model verify {out} --public-key {good} --min-version 0"),
]


def _command_names() -> set[str]:
    names = set()
    for name, group in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        subs = getattr(group, "commands", None)
        names.update(f"{name} {sub}" for sub in subs) if subs else names.add(name)
    return names


COMMANDS = sorted(_command_names())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    good = tio.save(planck_frame(), tmp_path / "good.fff")
    broken = tmp_path / "broken.fff"
    broken.write_bytes(b"FFF\x00" + b"\xff" * 30)
    bad_recipe = tmp_path / "bad.yaml"
    bad_recipe.write_text(RECIPE.read_text().replace("rules:", "rulez:"), encoding="utf-8")
    dataset = tmp_path / "ds"
    store = DatasetStore.create(dataset)
    store.add_file(good)
    store.commit(tag="v1")
    bad_dataset = tmp_path / "bad-ds"
    bad_dataset.mkdir()
    (bad_dataset / "dataset.json").write_text("{garbage", encoding="utf-8")
    export = tmp_path / "export"
    assert runner.invoke(app, ["dataset", "export", str(dataset), "v1", str(export)]).exit_code == 0
    bad_export = tmp_path / "bad-export"
    bad_export.mkdir()
    (bad_export / "annotations.json").write_text("{not json", encoding="utf-8")
    file = tmp_path / "a-file"
    file.write_text("not a folder", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield World(
            good=good,
            broken=broken,
            missing=tmp_path / "nothing-here",
            recipe=RECIPE,
            bad_recipe=bad_recipe,
            dataset=dataset,
            bad_dataset=bad_dataset,
            export=export,
            bad_export=bad_export,
            file=file,
            out=tmp_path / "out",
            port=taken.getsockname()[1],
            site=ROOT / "examples" / "site.yaml",
        )


runner = CliRunner()


def test_every_command_has_rows() -> None:
    assert {row[0] for row in ROWS} | {"formats", "recipe schema"} == set(COMMANDS)


@pytest.mark.parametrize(
    ("command", "failure", "expected", "args"),
    ROWS,
    ids=[f"{command}: {failure}" for command, failure, _, _ in ROWS],
)
def test_each_failure_class_has_its_exit_code(
    world: World, command: str, failure: str, expected: int, args: str
) -> None:
    fields = {name: str(getattr(world, name)) for name in World.__dataclass_fields__}
    result = runner.invoke(app, [word.format(**fields) for word in args.split()])
    assert not isinstance(result.exception, AssertionError | TypeError | AttributeError), result
    assert result.exit_code == expected, result.output
    assert "Traceback" not in result.output
    if expected in (FAILED, UNAVAILABLE):
        assert re.search(r"error:|✗", result.output), result.output  # a message, not silence


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_a_usage_error_everywhere(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--no-such-option"])
    assert result.exit_code == USAGE, result.output
    assert "No such option" in result.output
