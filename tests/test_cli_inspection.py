"""The inspection commands: synth, inspect (report, JSON lines, drift), recipe check and schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thermoscope.cli.main import app
from thermoscope.core import Inspection
from thermoscope.core.findings import FINDING_KEYS, INSPECTION_KEYS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    code, output = invoke(
        "synth", "pcb", "--out", str(out), "--parts", "40", "--defect-rate", "0.1", "--seed", "5"
    )
    assert code == 0, output
    return out


def test_synth_then_inspect_finds_the_defective_parts(run: Path, tmp_path: Path) -> None:
    report, jsonl = tmp_path / "report.html", tmp_path / "parts.jsonl"
    code, output = invoke(
        "inspect",
        str(run),
        "--recipe",
        str(EXAMPLES / "pcb.yaml"),
        "--report",
        str(report),
        "--jsonl",
        str(jsonl),
    )
    assert code == 0, output
    assert "40 parts inspected" in output
    truth = [json.loads(line) for line in (run / "ground_truth.jsonl").read_text().splitlines()]
    defective = {Path(t["file"]).stem for t in truth if t["defects"]}
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 40
    assert list(records[0]) == list(INSPECTION_KEYS)
    assert list(records[0]["findings"][0]) == list(FINDING_KEYS)
    assert [Inspection.from_json(r).to_json() for r in records] == records
    rejected = {Path(r["source"]).stem for r in records if r["verdict"] == "NG"}
    assert rejected == defective
    assert "<svg" in report.read_text(encoding="utf-8")


def test_inspect_reports_a_broken_file_and_goes_on(run: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.seq"
    broken.write_bytes(b"FFF\x00" + b"\x00" * 50)
    code, output = invoke(
        "inspect", str(broken), str(run / "PCB-000001.seq"), "--recipe", str(EXAMPLES / "pcb.yaml")
    )
    assert code == 1
    assert "broken.seq" in output
    assert "1 parts inspected" in output
    assert "Traceback" not in output


def test_inspect_with_a_malformed_recipe_names_the_field(run: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        (EXAMPLES / "pcb.yaml").read_text().replace("rules:", "rulez:"), encoding="utf-8"
    )
    code, output = invoke("inspect", str(run), "--recipe", str(recipe))
    assert code == 1  # the recipe file is invalid: an input failure
    assert "rulez" in output


def test_recipe_check_and_schema() -> None:
    code, output = invoke("recipe", "check", str(EXAMPLES / "seal.yaml"))
    assert code == 0
    assert "ok" in output
    code, output = invoke("recipe", "schema")
    assert code == 0
    assert "properties" in json.loads(output)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["toaster"], "unknown product"), (["pcb", "--drift", "Q1"], "--drift")],
)
def test_synth_rejects_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = invoke("synth", *args, "--out", str(tmp_path / "x"))
    assert code == 2
    assert message in output
