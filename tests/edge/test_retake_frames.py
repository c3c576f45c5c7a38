"""RETAKE frames on the edge: a part whose capture broke the recipe's protocol has its frame kept
and delivered to the annotation server for review like an NG frame, never evicted under disk
pressure (the OK samples go first), against the real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_server import LiveServer
from line_plc import RECIPE, source_of, synthetic

from services import free_port
from thermoscope.core import Finding, ThermalFrame, Verdict
from thermoscope.edge.agent import Agent, PartDone
from thermoscope.edge.config import parse_config
from thermoscope.edge.outbox import DeliveryState
from thermoscope.pipeline import Pipeline, decode_bytes
from thermoscope.recipes import load_recipe
from thermoscope.storage.identity import frame_id


class FocusCheck:
    """A model (``PartModel``) that calls every third frame, by content, out of focus: RETAKE."""

    name = "focus-check"
    version = "1"

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        if int(frame_id(frame)[:8], 16) % 3:
            return []
        return [
            Finding("model:focus-check", "focus", 0.1, 0.5, Verdict.RETAKE, "blurred", unit="score")
        ]


def test_retake_frames_are_kept_under_disk_pressure_and_reach_the_server(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "server", free_port())
    live.start()
    project = live.project()
    token = live.edge_token(project)
    live.stop()  # away while the parts are made
    config = {
        "identity": {"site": "plant", "line": "l1", "station": "thermal"},
        "source": synthetic(45),
        "trigger": {"kind": "free-run"},
        "recipe": str(RECIPE),
        "outbox": {
            "path": str(tmp_path / "outbox.db"),
            "min_free_bytes": 0,
            "ok_sample_share": 1.0,
            "drain_on_exit_s": 60,
        },
        "server": {
            "url": live.url,
            "project_id": project,
            "token": token,
            "delivery": {"initial_backoff_s": 0.05, "max_backoff_s": 0.5, "idle_s": 0.05},
        },
        "status": {"enabled": False},
        "drift": {"enabled": False},
    }
    source = source_of(config)
    captures = [source.capture(i) for i in range(45)]
    pipeline = Pipeline(load_recipe(RECIPE), FocusCheck())
    verdicts: dict[str, Verdict] = {}
    for capture in captures:
        with decode_bytes(capture.data, capture.filename) as part:
            verdicts[part.content_id] = pipeline.inspect_part(part, source="").verdict
    kept = {cid for cid, v in verdicts.items() if v in (Verdict.NG, Verdict.RETAKE)}
    retakes = {cid for cid, v in verdicts.items() if v is Verdict.RETAKE}
    assert len(retakes) >= 8
    frame_bytes = max(len(c.data) for c in captures)
    budget = (len(kept) + 4) * frame_bytes  # every kept frame fits; the 45 OK samples do not
    config["outbox"]["max_bytes"] = budget  # type: ignore[index]

    async def go() -> list[PartDone]:
        done: list[PartDone] = []
        agent = Agent(parse_config(config), on_part=done.append)
        agent.swap_model(FocusCheck())
        await agent.start()
        await agent.loop()  # free-run: the 45 parts, then the source is done
        box = agent.outbox
        assert box is not None
        depth = box.depth()
        assert depth.evicted_samples > 0  # the disk budget was spent on OK samples ...
        assert depth.refused_frames == 0  # ... never on a RETAKE or NG frame
        assert not depth.disk_full
        for cid in retakes:
            assert box.delivery_state(cid, "server") is DeliveryState.PENDING
        await asyncio.to_thread(live.start)
        await agent.close()  # drains to the server (drain_on_exit_s)
        return done

    try:
        done = asyncio.run(go())
        frames = live.frames(project)
    finally:
        live.stop()
    assert [d.inspection.verdict for d in done] == [verdicts[d.content_id] for d in done]
    flagged = {d.content_id: d.flagged for d in done}
    assert {cid for cid, flag in flagged.items() if flag == "RETAKE"} == retakes
    assert all(d.result.passed is False for d in done if d.content_id in retakes)
    hashes = [str(f["content_hash"]) for f in frames]
    assert len(hashes) == len(set(hashes)), "a frame is on the server twice"
    assert kept <= set(hashes)  # every RETAKE and NG frame, whatever the OK samples did
    on_server = {str(f["content_hash"]): f for f in frames}
    for cid in retakes:
        meta = on_server[cid]["meta"]
        assert isinstance(meta, dict)
        assert meta["flag"] == "RETAKE"
