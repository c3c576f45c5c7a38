"""The closed loop on one laptop (``thermoscope demo --loop``): line → edge agent → annotation
server → model → signed release → back to the agent.

On the embedded defaults (SQLite and a blob folder under ``out/server``, the same folder
``thermoscope serve --demo`` serves afterwards), in one process:

1. the annotation server starts on a free loopback port (uvicorn on a thread), trusting the demo
   release key (``out/keys``; made on the first run); a project ``Demo edge line`` with the PCB
   recipe and an edge user with an API token (``ingest`` and ``read`` scopes) are made in it;
2. the edge agent (``thermoscope.edge.agent.Agent``, its configuration written to
   ``out/edge/edge.yaml``) inspects the synthetic PCB line with the recipe and delivers every NG
   frame and half of the OK frames to the server through its outbox, and polls the server for
   model releases (``edge/updates.py``);
3. a golden-statistics model is fitted on the OK frames that arrived (their °C read back over
   the API), written as a release signed with the demo key, uploaded and made active;
4. the agent pulls it, verifies it, runs it in shadow on its recent parts and switches to it;
5. once more frames are in, a second release is fitted on all of them and the agent switches
   to version 2 (keeping version 1 for rollback).

Each stage is reported through ``say``; the whole loop takes some 20 seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import yaml
from numpy.typing import NDArray
from sqlalchemy import select

from thermoscope.core import ThermoscopeError
from thermoscope.edge.agent import Agent
from thermoscope.edge.config import load_config
from thermoscope.models.contract import InputContract
from thermoscope.models.golden import GoldenSettings, fit_golden
from thermoscope.models.release import generate_keys
from thermoscope.models.release_zip import pack_release
from thermoscope.pipeline.demo import example_recipe
from thermoscope.server import Settings, create_app
from thermoscope.server.app import bootstrap_admin, build_context
from thermoscope.server.auth import SCOPES, digest, new_token_text
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import ApiToken, Membership, Project, User, now
from thermoscope.server.demo import DEFECT_LABELS
from thermoscope.server.routers.projects import check_recipe, with_recipe_labels

#: The loop's project on the server.
LOOP_PROJECT = "Demo edge line"
#: The agent's user on the server.
EDGE_USER = "edge-demo"
API = "/api/v1"
#: The demo model's input contract: the PCB line's temperatures, at half resolution.
CONTRACT = InputContract(window_c=(15.0, 95.0), height=60, width=80)
#: How the demo's golden statistics are fitted: sigma at least 0.02 of the window (1.6 °C)
#: and the most unusual OK frame at the threshold: the line warms up over the run, and the
#: statistics of its first minutes must not call the later parts NG.
GOLDEN = GoldenSettings(sigma_floor=0.02, quantile=1.0)
#: OK frames a release is fitted on at least (fewer call a share of OK parts NG).
MIN_OK_FRAMES = 80
#: More OK frames the second release waits for.
MORE_OK_FRAMES = 20
#: Most (newest) OK frames a release is fitted on.
FIT_FRAMES = 150
#: Frames read from the server at once.
PARALLEL_READS = 8


class LoopError(ThermoscopeError):
    """A stage of the loop did not happen in time; names the stage."""


@dataclass
class LoopResult:
    """What the loop did.

    Attributes:
        url: the server's URL while it ran.
        project_id: the loop's project.
        parts: parts the agent inspected, ``verdicts`` by verdict.
        frames: frames of the project on the server by verdict at the end.
        releases: versions published, in order.
        agent_version: the model version the agent runs at the end.
        updates: the agent's model-update status (``ModelUpdater.snapshot``).
        password: the administrator's password when this run created it, else ``None``.
    """

    url: str
    project_id: int
    parts: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    releases: list[int] = field(default_factory=list)
    agent_version: str = ""
    updates: dict[str, Any] = field(default_factory=dict)
    password: str | None = None


def run_loop(
    out: Path,
    *,
    say: Callable[[str], None] = print,
    rate_hz: float = 25.0,
    seed: int = 0,
    timeout_s: float = 60.0,
) -> LoopResult:
    """Run the loop (see the module docstring) with its files under ``out``.

    Args:
        out: the demo folder (``server/``, ``edge/``, ``keys/`` inside).
        say: prints one stage's line.
        rate_hz: parts per second of the synthetic line.
        seed: the line's seed.
        timeout_s: longest wait for any one stage, seconds.

    Raises:
        LoopError: a stage did not happen within ``timeout_s``.
    """
    started = time.monotonic()

    def stage(line: str) -> None:
        say(f"{line} [{time.monotonic() - started:.1f} s]")

    keys = out / "keys"
    private, public = keys / "release.pem", keys / "release.pub"
    if not private.exists():
        keys.mkdir(parents=True, exist_ok=True)
        generate_keys(private, public)
    settings = Settings(data_dir=out / "server", model_public_keys=[public])
    ctx = build_context(settings)
    try:
        if settings.migrate:
            ctx.db.migrate()
        password = bootstrap_admin(ctx)
        project_id, admin_token, edge_token = _prepare(ctx, settings.admin_username)
    finally:
        ctx.db.dispose()
    server = _LiveServer(settings)
    server.start()
    result = LoopResult(server.url, project_id, password=password)
    stage(f"1. annotation server at {server.url}, project {LOOP_PROJECT!r} (id {project_id})")
    try:
        edge = out / "edge"
        shutil.rmtree(edge, ignore_errors=True)  # a fresh agent every run
        edge.mkdir(parents=True)
        token_file = edge / "token"
        token_file.write_text(edge_token, encoding="utf-8")
        token_file.chmod(0o600)
        config = _edge_config(edge, server.url, project_id, public, rate_hz=rate_hz, seed=seed)
        asyncio.run(
            _loop(result, load_config(config), server.url, admin_token, private, stage, timeout_s)
        )
    finally:
        server.stop()
    return result


def _prepare(ctx: ServerContext, admin: str) -> tuple[int, str, str]:
    """The loop's project (made once), the edge user in it, and two new API tokens: the
    administrator's (every scope, an hour) and the edge user's (``ingest`` and ``read``)."""
    recipe_text = example_recipe("pcb").read_text(encoding="utf-8")
    admin_text, edge_text = new_token_text(), new_token_text()
    moment = now()
    with ctx.db.write() as session:
        admin_user = session.scalars(select(User).where(User.username == admin)).one()
        project = session.scalars(select(Project).where(Project.name == LOOP_PROJECT)).first()
        if project is None:
            project = Project(
                name=LOOP_PROJECT,
                label_schema=with_recipe_labels(DEFECT_LABELS.to_dict(), check_recipe(recipe_text)),
                recipe_text=recipe_text,
            )
            session.add(project)
            session.flush()
            session.add(Membership(project_id=project.id, user_id=admin_user.id, role="admin"))
        edge_user = session.scalars(select(User).where(User.username == EDGE_USER)).first()
        if edge_user is None:
            edge_user = User(
                username=EDGE_USER, password_hash=ctx.passwords.hash(secrets.token_urlsafe(24))
            )
            session.add(edge_user)
            session.flush()
        if session.get(Membership, (project.id, edge_user.id)) is None:
            session.add(Membership(project_id=project.id, user_id=edge_user.id, role="annotator"))
        for user, text, scopes in (
            (admin_user, admin_text, list(SCOPES)),
            (edge_user, edge_text, ["ingest", "read"]),
        ):
            session.add(
                ApiToken(
                    user_id=user.id,
                    name="demo loop",
                    token_hash=digest(text),
                    scopes=sorted(scopes),
                    created_at=moment,
                    expires_at=moment + timedelta(hours=1),
                )
            )
        return project.id, admin_text, edge_text


def _edge_config(
    folder: Path, url: str, project_id: int, public_key: Path, *, rate_hz: float, seed: int
) -> Path:
    """The agent's configuration file (``folder/edge.yaml``)."""
    config = {
        "identity": {"site": "demo", "line": "pcb-line", "station": "ir-1"},
        "source": {
            "kind": "synthetic",
            "count": 100_000,
            "rate_hz": rate_hz,
            "defect_rate": 0.05,
            "seed": seed,
        },
        "recipe": str(example_recipe("pcb")),
        "model": {"public_key": str(public_key)},
        "outbox": {"path": "outbox.db", "ok_sample_share": 0.5, "drain_on_exit_s": 10.0},
        "server": {
            "url": url,
            "project_id": project_id,
            "token_file": "token",
            "delivery": {"idle_s": 0.1},
        },
        "status": {"enabled": False},
        "updates": {
            "enabled": True,
            "poll_interval_s": 0.5,
            "folder": "models",
            "health_parts": 40,
            # the demo's bounds: golden statistics of a warming line call ~3 % of OK parts NG,
            # and server, line and agent share one process (and its cores)
            "min_agreement": 0.9,
            "max_ng_rate_jump": 0.2,
            "max_latency_ms": 250.0,
        },
    }
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def _loop(
    result: LoopResult,
    config: Any,
    url: str,
    admin_token: str,
    private_key: Path,
    say: Callable[[str], None],
    timeout_s: float,
) -> None:
    agent = Agent(config)
    running = asyncio.create_task(agent.run())
    headers = {"Authorization": f"Bearer {admin_token}"}
    pid = result.project_id
    try:
        async with httpx.AsyncClient(base_url=url + API, headers=headers, timeout=30) as api:
            await _wait(api, pid, MIN_OK_FRAMES, timeout_s, running)
            ok = await _ok_frames(api, pid)
            counts = dict(agent.summary.verdicts)
            say(
                f"2. edge agent: {agent.summary.parts} parts inspected by the recipe "
                f"({_counts(counts)}); on the server: {await _count(api, pid, 'NG')} NG frames "
                f"and {len(ok)} OK samples"
            )
            for stage in (3, 4):
                version = await _publish(api, pid, ok, private_key, result)
                say(
                    f"{stage}. release v{version}: golden statistics of {len(ok)} OK frames, "
                    "signed, uploaded and made active"
                )
                await _until(
                    partial(_settled, agent, version), f"the agent on v{version}", timeout_s
                )
                updater = agent.updater
                assert updater is not None
                shadow = updater.last_shadow
                assert shadow is not None
                say(
                    f"   agent: v{version} verified, shadow run on {shadow.parts} recent parts "
                    f"(verdicts agree {shadow.agreement:.0%}, p95 {shadow.latency_p95_ms:.1f} ms), "
                    f"switched, healthy after {config.updates.health_parts} parts"
                )
                if stage == 3:
                    await _wait(api, pid, len(ok) + MORE_OK_FRAMES, timeout_s, running)
                    ok = await _ok_frames(api, pid)
            result.frames = {v: await _count(api, pid, v) for v in ("OK", "NG")}
    finally:
        agent.stop()
        await running
    result.parts = agent.summary.parts
    result.verdicts = dict(agent.summary.verdicts)
    model = agent.model
    result.agent_version = model.version if model is not None else ""
    if agent.updater is not None:
        result.updates = agent.updater.snapshot()
    say(
        f"5. agent stopped after {result.parts} parts ({_counts(result.verdicts)}), running "
        f"model v{result.agent_version}; server holds {result.frames.get('NG', 0)} NG and "
        f"{result.frames.get('OK', 0)} OK frames of the line"
    )


def _settled(agent: Agent, version: int) -> bool:
    updater = agent.updater
    if updater is None or updater.current is None:
        return False
    for (refused, _), reason in updater.refused.items():
        if refused == version:
            raise LoopError(f"the agent refused release v{version}: {reason}")
    return updater.current.version == version and updater.state == "active"


async def _publish(
    api: httpx.AsyncClient,
    pid: int,
    frames: list[NDArray[np.float32]],
    private_key: Path,
    result: LoopResult,
) -> int:
    """Fit, sign, upload and activate a golden release of ``frames``; its version."""
    listed = (await api.get(f"/projects/{pid}/models", params={"limit": 1})).json()
    version = int(listed["items"][0]["version"]) + 1 if listed["items"] else 1

    def build() -> bytes:
        stats = fit_golden(frames, CONTRACT, settings=GOLDEN)
        folder = private_key.parent.parent / "releases" / f"line-golden-v{version}"
        shutil.rmtree(folder, ignore_errors=True)  # left by an earlier run on a server since reset
        folder = stats.write_release(
            folder,
            name="line-golden",
            version=version,
            private_key=private_key,
            metrics={"ok_frames": len(frames)},
        )
        return pack_release(folder)

    data = await asyncio.to_thread(build)
    made = await api.post(
        f"/projects/{pid}/models", content=data, headers={"Content-Type": "application/zip"}
    )
    if made.status_code != 201:
        raise LoopError(f"upload of release v{version}: HTTP {made.status_code} {made.text}")
    (await api.post(f"/projects/{pid}/models/{version}/activate")).raise_for_status()
    result.releases.append(version)
    return version


async def _ok_frames(api: httpx.AsyncClient, pid: int) -> list[NDArray[np.float32]]:
    """The °C of the project's newest ``FIT_FRAMES`` OK frames (the agent's OK samples: the
    line drifts, the newest fit it best), read ``PARALLEL_READS`` at a time."""
    page = await api.get(f"/projects/{pid}/frames", params={"verdict": "OK", "limit": FIT_FRAMES})
    page.raise_for_status()
    gate = asyncio.Semaphore(PARALLEL_READS)

    async def read(item: dict[str, Any]) -> NDArray[np.float32]:
        async with gate:
            raw = await api.get(f"/frames/{item['id']}/celsius")
        raw.raise_for_status()
        shape = (int(item["height"]), int(item["width"]))
        return np.frombuffer(raw.content, dtype="<f4").reshape(shape)

    return list(await asyncio.gather(*(read(item) for item in page.json()["items"])))


async def _count(api: httpx.AsyncClient, pid: int, verdict: str) -> int:
    page = await api.get(f"/projects/{pid}/frames", params={"verdict": verdict, "limit": 1})
    page.raise_for_status()
    return int(page.json()["total"])


async def _wait(
    api: httpx.AsyncClient, pid: int, at_least: int, timeout_s: float, running: asyncio.Task[Any]
) -> None:
    """Return once the project holds ``at_least`` OK frames."""
    deadline = time.monotonic() + timeout_s
    while (got := await _count(api, pid, "OK")) < at_least:
        if running.done() or time.monotonic() > deadline:
            raise LoopError(f"only {got} OK frames reached the server (wanted {at_least})")
        await asyncio.sleep(0.25)


async def _until(check: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise LoopError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _counts(verdicts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())) or "none"


class _LiveServer:
    """The server's app served by uvicorn on a thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_level="warning", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise LoopError("the annotation server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


__all__ = [
    "CONTRACT",
    "EDGE_USER",
    "LOOP_PROJECT",
    "MIN_OK_FRAMES",
    "MORE_OK_FRAMES",
    "LoopError",
    "LoopResult",
    "run_loop",
]
