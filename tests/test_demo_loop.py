"""``thermoscope demo --loop`` closes the loop on the embedded defaults: the synthetic line
through the edge agent, NG frames and OK samples on the annotation server, a golden model fitted
on them, signed, released and pulled back, the agent ending on release version 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from thermoscope.loop_demo import LOOP_PROJECT, MIN_OK_FRAMES, MORE_OK_FRAMES, run_loop
from thermoscope.models.release import verify_release


@pytest.mark.slow
def test_the_loop_ends_with_the_agent_on_release_2(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_loop(tmp_path, say=lines.append, timeout_s=50.0)
    assert [line.split(".", 1)[0] for line in lines if line[0].isdigit()] == list("12345")
    assert LOOP_PROJECT in lines[0]
    # the line through the agent: NG frames and OK samples reached the server
    assert result.verdicts["NG"] >= 1
    assert result.frames["NG"] >= 1
    assert result.frames["OK"] >= MIN_OK_FRAMES + MORE_OK_FRAMES
    assert result.parts > result.frames["OK"]  # a sample of the OK parts, not all
    # two releases, the agent switched to each, running 2 with 1 kept for rollback
    assert result.releases == [1, 2]
    assert result.agent_version == "2"
    updates = result.updates
    assert updates["state"] == "active"
    assert updates["current"]["version"] == 2
    assert updates["previous"]["version"] == 1
    assert updates["refused"] == []
    steps = [(e["step"], e.get("version")) for e in reversed(updates["events"])]
    for step in ("switched", "healthy"):
        assert [v for s, v in steps if s == step] == [1, 2]
    kept = Path(updates["previous"]["folder"])
    assert verify_release(kept, tmp_path / "keys" / "release.pub").version == 1
    assert result.password is not None  # a fresh server: the administrator was made now
    assert (tmp_path / "edge" / "edge.yaml").is_file()
    assert (tmp_path / "server").is_dir()
