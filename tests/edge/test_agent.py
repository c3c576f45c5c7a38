"""The agent's per-part loop in process: free-run on the synthetic line (verdicts as the pipeline
gives them, results journalled), the PLC handshake through the in-memory link (ids echoed,
processing time, overrun, the status page), an MQTT trigger command, a watched folder, results
to a signed webhook, and the model seam (a model swapped between parts; recent frames for shadow
runs), and a sequence part decoded once (its frames' ids and its inspection from one pass)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import thermoscope.io as tio
from thermoscope.core import Finding, ThermalFrame, ThermalSequence, Verdict
from thermoscope.datasets.synthetic import ProductLine
from thermoscope.edge.agent import Agent
from thermoscope.edge.config import TriggerConfig, parse_config
from thermoscope.edge.parts import (
    ERROR_RULE,
    ERROR_UNREADABLE,
    WARNING_RETAKE,
    WARNING_WARN_VERDICT,
    PartDone,
    plc_verdict,
)
from thermoscope.edge.plc import Delivery, MemoryPlcLink
from thermoscope.edge.sources import ReplaySource, SyntheticSource, encode_frames
from thermoscope.pipeline import Pipeline, decode_bytes
from thermoscope.recipes import load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "pcb.yaml"
SEAL = ROOT / "examples" / "seal.yaml"


def config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "identity": {"site": "s1", "line": "l1", "station": "st1"},
        "source": {"kind": "synthetic", "count": 40, "rate_hz": 0, "defect_rate": 0.2},
        "recipe": str(RECIPE),
        "outbox": {"path": str(tmp_path / "outbox.db"), "min_free_bytes": 0},
        "status": {"enabled": False},
    }
    base.update(overrides)
    return base


def expected(source: SyntheticSource, index: int) -> str:
    """The verdict the pipeline gives part ``index`` when called directly."""
    capture = source.capture(index)
    with decode_bytes(capture.data, capture.filename) as part:
        inspection = Pipeline(load_recipe(RECIPE)).inspect_part(part, source=capture.filename)
    return inspection.verdict.value


def test_free_run_gives_the_pipelines_verdicts_and_journals_every_result(tmp_path: Path) -> None:
    settings = parse_config(config(tmp_path))
    done: list[PartDone] = []
    agent = Agent(settings, on_part=done.append)
    summary = asyncio.run(agent.run())
    assert summary.parts == 40
    assert summary.errors == 0
    reference = SyntheticSource(settings.source)  # type: ignore[arg-type]
    got = [d.inspection.verdict.value for d in done]
    assert got == [expected(reference, i) for i in range(40)]
    assert got.count("NG") >= 8  # the 8 defective parts (and maybe a borderline one)
    truth = [bool(reference.part(i).defects) for i in range(40)]
    assert [v == "NG" for v in got] == truth  # normal difficulty: the recipe is right
    journal = tmp_path / "outbox.results.jsonl"
    lines = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    results = [x for x in lines if x["kind"] == "result"]
    assert [r["seq"] for r in results] == list(range(1, 41))
    assert [r["verdict"] for r in results] == got
    assert all(r["recipe_checksum"] == agent.recipe_checksum for r in results)


def test_the_synthetic_source_makes_the_lines_own_run(tmp_path: Path) -> None:
    settings = parse_config(config(tmp_path))
    source = SyntheticSource(settings.source)  # type: ignore[arg-type]
    line = ProductLine("pcb", rng=np.random.default_rng(0))
    for part in line.run(40, defect_rate=0.2):
        mine = source.part(part.index)
        assert [d.kind for d in mine.defects] == [d.kind for d in part.defects]
        assert np.array_equal(mine.frame.celsius, part.frame.celsius)


class CountedReader:
    """A format reader whose sequences count how often each frame is decoded."""

    def __init__(self, reader: Any, decodes: Counter[tuple[int, int]]) -> None:
        self.reader = reader
        self.decodes = decodes

    def parse(self, data: bytes, limits: tio.DecodeLimits) -> ThermalSequence:
        seq = self.reader.parse(data, limits)
        part = len({p for p, _ in self.decodes})

        def read(index: int) -> ThermalFrame:
            self.decodes[(part, index)] += 1
            return seq[index]

        return ThermalSequence(len(seq), read, source=seq.source, close=seq.close)


@pytest.mark.parametrize("sequence_rule", [False, True], ids=["named-frame", "sequence-rule"])
def test_a_sequence_part_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sequence_rule: bool
) -> None:
    # the seal line's parts recorded as sequences; its recipe inspects the last frame, and a
    # cooling rate rule makes it inspect every frame
    text = SEAL.read_text(encoding="utf-8")
    if sequence_rule:
        rule = "{name: seam cooling, type: cooling_rate, region: seam_top, limits: {max: 99}}"
        text += f"  - {rule}\n"
    recipe = tmp_path / "seal.yaml"
    recipe.write_text(text, encoding="utf-8")
    settings = parse_config(config(tmp_path, recipe=str(recipe)))
    line = ProductLine("seal", rng=np.random.default_rng(3))
    parts = [line.part(i, defect="seal_gap" if i == 1 else None, sequence=True) for i in range(3)]
    files = [(f"{p.serial}.npy", encode_frames(p.frames, ".npy")) for p in parts]
    pipeline = Pipeline(load_recipe(recipe))
    want = [
        pipeline.inspect_part(p.frames, source=name)
        for p, (name, _) in zip(parts, files, strict=True)
    ]
    decodes: Counter[tuple[int, int]] = Counter()
    detect = tio.detect
    monkeypatch.setattr(tio, "detect", lambda *a: CountedReader(detect(*a), decodes))
    done: list[PartDone] = []
    agent = Agent(settings, source=ReplaySource(files, count=3), on_part=done.append)
    asyncio.run(agent.run())
    monkeypatch.undo()
    frames = len(parts[0].frames)
    assert frames > 1
    assert set(decodes) == {(part, index) for part in range(3) for index in range(frames)}
    assert set(decodes.values()) == {1}  # each frame of each part decoded once
    assert [d.inspection for d in done] == want
    rules = {f.rule for f in done[0].inspection.findings}
    assert ("seam cooling" in rules) == sequence_rule


async def plc_cycle(link: MemoryPlcLink, trigger_id: int, *, ack: bool = True) -> Any:
    """Play the PLC for one part: trigger, wait for the ack, release; wait for its result."""
    await link.plc_wait(lambda o: o.trigger_ready)
    link.plc_write(trigger_id=trigger_id, trigger=True)
    await link.plc_wait(lambda o: o.trigger_ack)
    link.plc_write(trigger=False)
    if not ack:
        await link.plc_wait(lambda o: o.accepted_trigger_id == trigger_id and not o.acquiring)
        return None
    out = await link.plc_wait(lambda o: o.result_valid and o.result_id == trigger_id)
    link.plc_write(result_ack=True)
    await link.plc_wait(lambda o: not o.result_valid)
    link.plc_write(result_ack=False)
    return out


def test_plc_trigger_echoes_ids_and_reports_overrun(tmp_path: Path) -> None:
    settings = parse_config(
        config(
            tmp_path,
            trigger={"kind": "plc"},
            plc={"kind": "modbus", "modbus": {"depth": 2}},
            status={"port": 0},
        )
    )
    reference = SyntheticSource(settings.source)  # type: ignore[arg-type]

    async def go() -> tuple[list[Any], list[PartDone], Any]:
        link = MemoryPlcLink(depth=2)
        done: list[PartDone] = []
        agent = Agent(settings, plc=link, on_part=done.append)
        await agent.start()
        runner = asyncio.create_task(agent.loop())
        outputs = [await plc_cycle(link, tid) for tid in (7, 3, 45)]
        # the PLC stops acknowledging: two results fill the buffer, the third overruns
        for tid in (11, 12, 13):
            await plc_cycle(link, tid, ack=False)
        await link.plc_wait(lambda o: o.overrun)
        final = link.outputs
        assert agent.status is not None
        url = f"http://127.0.0.1:{agent.status.port}/status.json"
        async with httpx.AsyncClient() as client:
            status = (await client.get(url)).json()
        assert status["parts"] == 6
        assert status["versions"]["recipe"] == "synthetic-pcb"
        assert status["versions"]["recipe_checksum"] == str(agent.recipe_checksum)
        assert status["links"]["plc"] is True
        assert status["latency_ms"]["p50"] > 0
        agent.stop()
        await runner
        await agent.close()
        return outputs, done, final

    outputs, done, final = asyncio.run(go())
    for out, tid in zip(outputs, (7, 3, 45), strict=True):
        assert out.result_id == tid
        assert out.job_pass == (expected(reference, tid % 40) != "NG")
        assert out.processing_time_ms > 0
        assert out.recipe_checksum != 0
    assert [d.trigger.number for d in done] == [7, 3, 45, 11, 12, 13]
    assert [d.delivery for d in done][3:] == [Delivery.PRESENTED, Delivery.QUEUED, Delivery.OVERRUN]
    assert final.overrun_count == 1
    assert final.last_overrun_result_id == 13
    journal = tmp_path / "outbox.results.jsonl"
    events = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
    assert any(e.get("change") == "overrun" and e["part"] == "13" for e in events)


class Stub:
    """A model that finds one thing everywhere (a ``PartModel``)."""

    name = "stub"
    version = "9"

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        return [Finding("model:stub", "anomaly", 0.9, 0.5, Verdict.NG, "stub", 1, 1, unit="score")]


def test_a_swapped_model_judges_from_the_next_part_and_recent_frames_are_kept(
    tmp_path: Path,
) -> None:
    # the trigger command comes through the command table (the broker's part is in
    # test_agent_line.py); skip the config check that mqtt settings are given
    settings = parse_config(config(tmp_path, recent_frames=5))
    settings = settings.model_copy(update={"trigger": TriggerConfig(kind="mqtt")})

    async def go() -> list[PartDone]:
        done: list[PartDone] = []
        agent = Agent(settings, on_part=done.append)
        await agent.start()
        runner = asyncio.create_task(agent.loop())
        for tid in (1, 2):
            await agent.commands("t", json.dumps({"command": "trigger", "id": tid}).encode())
        while len(done) < 2:
            await asyncio.sleep(0.01)
        assert agent.swap_model(Stub()) is None
        await agent.commands("t", json.dumps({"command": "trigger", "id": 3}).encode())
        while len(done) < 3:
            await asyncio.sleep(0.01)
        recent = agent.recent_parts()
        assert [r.number for r in recent] == [1, 2, 3]
        assert recent[0].frame.shape == (120, 160)
        agent.stop()
        await runner
        await agent.close()
        return done

    done = asyncio.run(go())
    rules = [{f.rule for f in d.inspection.findings} for d in done]
    assert "model:stub" not in rules[0] | rules[1]
    assert "model:stub" in rules[2]
    assert done[2].inspection.verdict is Verdict.NG


class RetakeStub(Stub):
    """A model whose one finding says the capture must be repeated."""

    def findings(self, frame: ThermalFrame, *, ambient_c: float | None = None) -> list[Finding]:
        return [Finding("model:stub", "focus", 0.1, 0.5, Verdict.RETAKE, "blurred", unit="score")]


@pytest.mark.parametrize(
    ("verdict", "want"),
    [
        (Verdict.OK, (True, 0)),
        (Verdict.WARN, (True, WARNING_WARN_VERDICT)),
        (Verdict.NG, (False, 0)),
        (Verdict.RETAKE, (False, WARNING_RETAKE)),
    ],
)
def test_every_verdict_has_a_plc_result(verdict: Verdict, want: tuple[bool, int]) -> None:
    assert plc_verdict(verdict) == want


def test_a_retake_part_fails_at_the_plc_with_the_retake_warning(tmp_path: Path) -> None:
    settings = parse_config(
        config(tmp_path, trigger={"kind": "plc"}, plc={"kind": "modbus", "modbus": {"depth": 2}})
    )

    async def go() -> tuple[Any, list[PartDone]]:
        link = MemoryPlcLink(depth=2)
        done: list[PartDone] = []
        agent = Agent(settings, plc=link, on_part=done.append)
        await agent.start()
        assert agent.swap_model(RetakeStub()) is None
        runner = asyncio.create_task(agent.loop())
        out = await plc_cycle(link, 21)
        agent.stop()
        await runner
        await agent.close()
        return out, done

    out, done = asyncio.run(go())
    assert done[0].inspection.verdict is Verdict.RETAKE
    assert (out.job_pass, out.job_fail, out.error_code) == (False, True, 0)
    assert out.warning_code & WARNING_RETAKE
    journal = tmp_path / "outbox.results.jsonl"
    results = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines()]
    assert [r["verdict"] for r in results if "verdict" in r] == ["RETAKE"]


def test_a_watched_folder_is_inspected_file_by_file(tmp_path: Path) -> None:
    inbox, done_dir = tmp_path / "in", tmp_path / "done"
    inbox.mkdir()
    settings = parse_config(config(tmp_path))
    source = SyntheticSource(settings.source)  # type: ignore[arg-type]
    for index in range(3):
        capture = source.capture(index)
        (inbox / capture.filename).write_bytes(capture.data)
    (inbox / "broken.fff").write_bytes(b"FFF\x00" + b"\xff" * 30)
    folder = {"kind": "folder", "path": str(inbox), "settle_s": 0, "done": str(done_dir)}
    settings = parse_config(config(tmp_path, source=folder))

    async def go() -> list[PartDone]:
        done: list[PartDone] = []
        agent = Agent(settings, on_part=done.append)
        await agent.start()
        runner = asyncio.create_task(agent.loop())
        while len(done) < 4 and not runner.done():
            await asyncio.sleep(0.01)
        agent.stop()
        await runner
        await agent.close()
        return done

    done = asyncio.run(go())
    assert sorted(p.name for p in done_dir.iterdir()) == sorted(
        ["broken.fff", *(source.capture(i).filename for i in range(3))]
    )
    assert list(inbox.iterdir()) == []
    broken = next(d for d in done if d.inspection.source == "broken.fff")
    assert broken.result.error_code == ERROR_UNREADABLE
    assert broken.inspection.findings[0].rule == ERROR_RULE
    assert broken.inspection.verdict is Verdict.NG
    assert sum(d.result.error_code == 0 for d in done) == 3


def test_a_missing_recipe_is_an_edge_error(tmp_path: Path) -> None:
    from thermoscope.edge import EdgeError

    settings = parse_config(config(tmp_path, recipe=str(tmp_path / "nope.yaml")))
    with pytest.raises(EdgeError, match=r"nope\.yaml"):
        Agent(settings)


def test_results_go_to_a_webhook_signed_instead_of_the_journal(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from thermoscope.edge.webhook import verify

    secret = "a-webhook-secret-of-32-characters"
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        source = {"kind": "synthetic", "count": 12, "rate_hz": 0, "defect_rate": 0.25}
        settings = parse_config(
            config(tmp_path, source=source, webhook={"url": url, "secret": secret})
        )
        asyncio.run(Agent(settings).run())
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert not (tmp_path / "outbox.results.jsonl").exists()
    bodies = [json.loads(body) for _, body in received]
    assert all(verify(secret.encode(), headers, body) for headers, body in received)
    results = {b["part"]: b for b in bodies if b["kind"] == "result"}
    assert sorted(results, key=int) == [str(n) for n in range(1, 13)]
    assert sum(r["verdict"] == "NG" for r in results.values()) == 3
    events = [b for b in bodies if b["kind"] == "event"]
    assert {e["change"] for e in events} <= {"new", "update", "end"}
    assert any(e["change"] == "new" for e in events)
