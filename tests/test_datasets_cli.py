"""``thermoscope dataset ...`` through Typer's test runner on the sub-app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import thermoscope.io as tio
from synthetic_frames import planck_frame
from thermoscope.annotations import LabelSchema, LabelSpec
from thermoscope.cli.dataset import dataset_app
from thermoscope.datasets.store import DatasetStore

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(dataset_app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    for i in range(4):
        tio.save(planck_frame(seed=i), folder / f"part{i}.tif")
    tio.save([planck_frame(seed=10 + i, index=i) for i in range(3)], folder / "heating.seq")
    return folder


def test_create_add_version_diff_stats_split(tmp_path: Path, inputs: Path) -> None:
    ds = tmp_path / "ds"
    schema = tmp_path / "schema.yaml"
    schema.write_text("labels:\n  - name: hot_spot\n", encoding="utf-8")
    code, out = run("create", ds, "--name", "boards", "--schema", schema)
    assert code == 0, out
    assert DatasetStore.open(ds).schema == LabelSchema((LabelSpec("hot_spot"),)).to_dict()

    code, out = run("add", ds, inputs, "--product", "pcb", "--serial", "S1")
    assert code == 0, out
    assert "5 added" in out
    code, out = run("add", ds, inputs / "part0.tif", "--product", "pcb", "--serial", "S1")
    assert "1 unchanged" in out

    code, out = run("version", ds, "--tag", "v1", "-m", "first")
    assert code == 0, out
    v1 = out.strip()
    assert len(v1) == 64

    code, out = run("add", ds, inputs / "heating.seq", "--per-frame", "--key", "name")
    assert code == 0, out
    code, out = run("diff", ds, "v1", "--json")
    assert code == 0, out
    d = json.loads(out)
    assert d["added"] == ["heating.seq#0", "heating.seq#1", "heating.seq#2"]
    assert (d["removed"], d["changed"]) == ([], [])
    code, out = run("diff", ds, "v1", "--ids")
    assert "+ heating.seq#1" in out

    code, out = run("version", ds, "--tag", "v2")
    v2 = out.strip()
    code, out = run("log", ds, "--json")
    assert [e["id"] for e in json.loads(out)] == [v1, v2]

    code, out = run("stats", ds, "v2", "--json")
    assert code == 0, out
    s = json.loads(out)
    assert (s["items"], s["products"]) == (8, {"": 3, "pcb": 5})

    code, out = run("split", ds, "v2", "--fractions", "train=0.5,test=0.5", "--json")
    assert code == 0, out
    doc = json.loads(out)
    parts = doc["parts"]
    assert sorted(parts) == ["test", "train"]
    assert sum(len(v) for v in parts.values()) == 8
    # the per-frame items share frames with the sequence item: all on one side
    side = {i: name for name, ids in parts.items() for i in ids}
    seq_item = next(i.id for i in DatasetStore.open(ds).version(v2) if i.frame_count == 3)
    assert len({side[seq_item], *(side[f"heating.seq#{k}"] for k in range(3))}) == 1
    saved = DatasetStore.open(ds).load_split(doc["split"])
    assert saved["parts"] == parts
    assert saved["parameters"]["seed"] == 0

    code, out = run("split", ds, "v2", "--stratify-by", "verdict", "--no-groups", "--seed", "3")
    assert code == 0, out
    assert "train" in out
    assert "leakage groups" in out


def test_broken_files_are_reported_and_the_rest_added(tmp_path: Path, inputs: Path) -> None:
    ds = tmp_path / "ds"
    run("create", ds)
    (inputs / "broken.tif").write_bytes(b"II*\x00 not really a TIFF")
    code, out = run("add", ds, inputs, str(inputs / "*.nothing"))
    assert code == 1
    assert "broken.tif" in out
    assert "pattern matches no files" in out
    assert "5 added" in out
    assert len(DatasetStore.open(ds)) == 5


def test_errors_are_clear(tmp_path: Path, inputs: Path) -> None:
    code, out = run("stats", tmp_path / "nope")
    assert code == 1  # a missing dataset: exit 1 like any missing input (docs/cli.md)
    assert "holds no dataset" in out
    ds = tmp_path / "ds"
    run("create", ds)
    code, out = run("create", ds)
    assert code == 1
    assert "already holds a dataset" in out
    code, out = run("diff", ds, "v9")
    assert code == 1
    assert "no version or tag 'v9'" in out
    run("add", ds, inputs / "part0.tif")
    run("version", ds, "--tag", "v1")
    code, out = run("version", ds, "--tag", "v1")
    assert code == 1
    assert "never move" in out
    code, out = run("split", ds, "v1", "--fractions", "train=0.9,test=0.2")
    assert code == 2
    assert "add up to 1" in out
    code, out = run("split", ds, "v1", "--fractions", "train")
    assert code == 2
    code, out = run("add", ds, inputs, "--key", "colour")
    assert code == 2


def test_every_dataset_command_and_option_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text("utf-8")
    commands = typer.main.get_command(dataset_app).commands  # type: ignore[attr-defined]
    for name, command in commands.items():
        assert f"thermoscope dataset {name} " in doc, name
        for param in command.params:
            if param.param_type_name == "option":
                flags = [f for f in param.opts if f.startswith("--")]
                assert any(f in doc for f in flags), (name, flags)
            else:
                assert (param.metavar or param.name.upper()) in doc, (name, param.name)
