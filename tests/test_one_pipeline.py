"""One file, one pipeline: the CLI, the server and ``Pipeline`` itself give identical findings.

Each case is a radiometric file and a recipe fitted to it; every path's inspection is compared
in full (core's lossless JSON: every finding field, the verdict and the frame looked at; only
``source`` differs, since each path names the part its own way). The edge agent is the fourth
caller of the same pipeline: the file dropped into its watched folder.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sample_data import SKIP_REASON, samples_dir
from thermoscope.cli.main import app as cli_app
from thermoscope.core import Inspection
from thermoscope.edge.agent import Agent, PartDone
from thermoscope.edge.config import parse_config
from thermoscope.pipeline import Pipeline, decode_path
from thermoscope.recipes import parse_recipe
from thermoscope.server import Settings, create_app

ADMIN_PASSWORD = "admin-password-1"
API = "/api/v1"

#: FLIR files of the shared samples: an R-JPEG (one frame) and a SEQ recording (7 frames).
SAMPLE_FILES = ("flir/FLIR_E40.jpg", "flir/test.seq")


def fitted_recipe(path: Path) -> str:
    """A recipe (JSON text) for the file's frame size whose limits sit inside its °C range, so
    the rules give NG, WARN and OK findings with pixels, margins and rule details."""
    with decode_path(path) as part:
        height, width = part.shape
        assert part.min_c is not None
        assert part.max_c is not None
        low, high = part.min_c, part.max_c
        count = part.frame_count
    span = high - low
    centre = {"x": width // 4, "y": height // 4, "width": width // 2, "height": height // 2}
    left = {"x": 0, "y": 0, "width": max(1, width // 3), "height": height}
    recipe = {
        "name": "fitted",
        "version": "1",
        "frame": {"width": width, "height": height},
        "sequence": {"frame": count // 2},
        "regions": [{"name": "centre", "box": centre}, {"name": "left", "box": left}],
        "rules": [
            {"type": "max", "region": "centre", "limits": {"max": low + 0.6 * span}},
            {
                "type": "mean",
                "region": "left",
                "limits": {"warn_max": low + 0.1 * span, "max": high + span},
            },
            {"type": "min", "region": "left", "limits": {"min": low - span}},
            {
                "type": "hot_spot_area",
                "region": "centre",
                "above_median_c": 0.1 * span,
                "limits": {"max": 5},
            },
            {"type": "delta_t", "region": "centre", "reference": "left", "limits": {"max": span}},
        ],
    }
    return json.dumps(recipe)


def synthetic_case(folder: Path) -> tuple[Path, str]:
    """A 3-frame ``.npy`` recording with a hot spot growing in its middle (no samples needed)."""
    rng = np.random.default_rng(7)
    frames = 25.0 + rng.normal(0.0, 0.3, (3, 48, 64))
    for index in range(3):
        frames[index, 20:26, 30:38] += 10.0 * (index + 1)
    path = folder / "synthetic.npy"
    np.save(path, frames.astype(np.float32))
    return path, fitted_recipe(path)


# --------------------------------------------------------------------------- the paths


def through_pipeline(path: Path, recipe: str, folder: Path) -> dict[str, Any]:
    """``Pipeline`` directly, as the edge agent calls it."""
    with decode_path(path) as part:
        return Pipeline(parse_recipe(recipe)).inspect_part(part, source=path.name).to_json()


def through_cli(path: Path, recipe: str, folder: Path) -> dict[str, Any]:
    """``thermoscope inspect --jsonl``."""
    recipe_file = folder / "recipe.json"
    recipe_file.write_text(recipe, encoding="utf-8")
    out = folder / "cli.jsonl"
    result = CliRunner().invoke(
        cli_app, ["inspect", str(path), "--recipe", str(recipe_file), "--jsonl", str(out)]
    )
    assert result.exit_code == 0, result.output
    (line,) = out.read_text(encoding="utf-8").splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


def through_server(path: Path, recipe: str, folder: Path) -> dict[str, Any]:
    """Ingest into a project with the recipe (the app in-process, SQLite); the frame's
    machine findings."""
    settings = Settings(
        data_dir=folder / "server",
        admin_password=ADMIN_PASSWORD,
        argon2_memory_kib=64,
        argon2_time_cost=1,
        fsync_blobs=False,
        worker_threads=1,
    )
    with TestClient(create_app(settings)) as client:
        login = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        project = client.post(f"{API}/projects", json={"name": "line", "recipe": recipe})
        assert project.status_code == 201, project.text
        answer = client.post(
            f"{API}/projects/{project.json()['id']}/frames",
            files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
        )
        assert answer.status_code == 201, answer.text
        frame = client.get(f"{API}/frames/{answer.json()['frame_id']}").json()
    record: dict[str, Any] = frame["machine_findings"]
    return record


def through_edge(path: Path, recipe: str, folder: Path) -> dict[str, Any]:
    """The edge agent's per-part loop: the file dropped into its watched folder (free-run)."""
    inbox = folder / "edge-in"
    inbox.mkdir()
    shutil.copy(path, inbox / path.name)
    recipe_file = folder / "edge-recipe.json"
    recipe_file.write_text(recipe, encoding="utf-8")
    settings = parse_config(
        {
            "identity": {"site": "s", "line": "l", "station": "t"},
            "source": {"kind": "folder", "path": str(inbox), "settle_s": 0},
            "recipe": str(recipe_file),
            "outbox": {"path": str(folder / "edge-outbox.db"), "min_free_bytes": 0},
            "status": {"enabled": False},
        }
    )
    done: list[PartDone] = []

    async def run() -> None:
        agent = Agent(settings, on_part=done.append)
        await agent.start()
        loop = asyncio.create_task(agent.loop())
        while not done and not loop.done():
            await asyncio.sleep(0.01)
        agent.stop()
        await loop
        await agent.close()

    asyncio.run(run())
    (part,) = done
    return part.inspection.to_json()


PATHS: dict[str, Callable[[Path, str, Path], dict[str, Any]]] = {
    "cli": through_cli,
    "server": through_server,
    "edge": through_edge,
}


def cases() -> Iterator[Any]:
    yield pytest.param(None, id="synthetic")
    root = samples_dir()
    for name in SAMPLE_FILES:
        marks = [] if root is not None else [pytest.mark.skip(reason=SKIP_REASON)]
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("sample", list(cases()))
def test_a_file_gives_identical_findings_through_every_path(
    sample: str | None, tmp_path: Path
) -> None:
    if sample is None:
        path, recipe = synthetic_case(tmp_path)
    else:
        root = samples_dir()
        assert root is not None
        path = root / sample
        recipe = fitted_recipe(path)
    reference = through_pipeline(path, recipe, tmp_path)
    inspection = Inspection.from_json(reference)
    verdicts = {f.verdict.value for f in inspection.findings}
    assert len(inspection.findings) == 5
    assert {"NG", "OK"} <= verdicts  # the recipe exercises both sides
    assert any(f.x is not None and f.margin is not None for f in inspection.findings)
    assert any(f.extra for f in inspection.findings)
    for name, through in PATHS.items():
        got = through(path, recipe, tmp_path)
        assert got == {**reference, "source": got["source"]}, name
        assert Path(got["source"]).name == path.name
