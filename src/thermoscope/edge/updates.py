"""Model updates: signed releases pulled from the annotation server, tried in shadow, switched
to, and rolled back when the new model turns out unhealthy.

Every ``updates.poll_interval_s`` the ``ModelUpdater`` reports its station's status to the
server and reads the release the station should run from the answer
(``POST /api/v1/projects/{pid}/stations/{station}/status`` with the agent's API token, ``ingest``
scope; ``station`` is ``identity.station``): the staged roll-out's target for this station, or the
project's active release before any roll-out (see docs/fleet.md). The report holds the release
and recipe version it runs, whether it is healthy (not just rolled back), the releases it
refused or rolled back and the last reason; it is sent again at once when a probation ends, so
a roll-out moves on without waiting for the next poll. A release it does not run yet goes
through, in order:

1. **version**: it must be newer than every release the agent has switched to (and at least
   ``model.min_version``); an older one is refused without being downloaded;
2. **download**: ``GET .../models/{version}/release.zip`` (``read`` scope; at most
   ``max_download_bytes``); its SHA-256 must be the one the server named;
3. **unpack**: into a staging folder beside the kept releases (safe names only, bounded size),
   renamed into place only once verified: a release folder is never half there;
4. **verify**: ``models.release.verify_release`` with the agent's trusted key
   (``model.public_key``): signed by that key, every file's hash, nothing added, not expired;
5. **load**: ``models.runtime.load_model`` (verified again, ONNX graph checked);
6. **shadow**: the candidate runs on the agent's recent parts (``Agent.recent_parts``, at least
   ``shadow_frames``; it waits for them) beside the verdicts the running pipeline gave: the share
   of parts whose pass/fail verdict agrees must reach ``min_agreement``, the mean |score
   difference| to the running model must stay within ``max_score_delta`` (when one runs), the
   95th percentile of its inference time within ``max_latency_ms``, and it must not fail on a
   frame more than ``max_inference_errors`` times;
7. **switch**: ``Agent.swap_model`` from the next part on; the previous release stays on disk
   and in memory;
8. **probation**: the next ``health_parts`` parts: more than ``max_inference_errors`` inference
   errors (at once), the 95th percentile latency over budget, or the NG share rising more than
   ``max_ng_rate_jump`` over the run's NG share before the switch rolls back to the previous
   release (or to the recipe alone) and the release is refused for good. (With 5 % NG parts,
   50 parts and a bound of 0.1, a healthy model is rolled back by chance about once in a
   thousand switches: the bound is 3.2 standard deviations of the window's NG share.)

A refused release is refused once, with its reason, and the running model stays; it is not
downloaded again. Every step is a structured log record (``extra={"model_update": {...}}``,
``step``, ``version``, ...) and shows in the status document's ``updates``. The state (current
and previous release, highest version switched to) survives restarts in ``folder/state.json``:
the agent restarts on the release it last switched to. The shadow run, its bound and the
probation's health check are ``thermoscope.edge.shadow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from thermoscope.core import Verdict
from thermoscope.edge import EdgeError
from thermoscope.edge.config import read_secret
from thermoscope.edge.delivery import API_PREFIX
from thermoscope.edge.shadow import (
    Health,
    ShadowReport,
    WatchedModel,
    health_failure,
    ng_baseline,
    shadow_failure,
    shadow_run,
)
from thermoscope.models.errors import ModelError, ReleaseError
from thermoscope.models.release import verify_release
from thermoscope.models.release_zip import unpack_release
from thermoscope.models.runtime import LoadedModel, load_model

if TYPE_CHECKING:
    from thermoscope.edge.agent import Agent

log = logging.getLogger(__name__)

#: How often a model on probation is checked, seconds.
HEALTH_TICK_S = 0.2
#: Events and refusals kept for the status document.
KEPT_EVENTS = 20
#: The state file inside ``updates.folder``.
STATE_FILE = "state.json"


class RefusedError(EdgeError):
    """A release the agent will not run; ``reason`` says why."""

    def __init__(self, version: int, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(f"release v{version} refused: {reason}")


@dataclass(frozen=True)
class ReleaseRef:
    """A release the updater holds: version, name, the zip's SHA-256 and its folder."""

    version: int
    name: str
    sha256: str
    folder: str


def unpack(data: bytes, parent: Path, *, limit: int) -> Path:
    """A release zip unpacked by ``models.release_zip.unpack_release`` into a new staging
    folder under ``parent`` (files at the zip's root, or in one top-level folder).

    Raises:
        EdgeError: not a zip, an unsafe name, too many or too large files (nothing left).
    """
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    try:
        unpack_release(data, staging, limit=limit)
    except ReleaseError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise EdgeError(str(exc)) from None
    return staging


class ModelUpdater:
    """Pulls, verifies, shadows, switches and rolls back releases for one agent.

    Args:
        agent: the agent (its ``swap_model``, ``recent_parts``, ``summary`` and ``metrics``).
        transport: an httpx transport (default: the network).
        clock: the current UTC time (the expiry check).
    """

    def __init__(
        self,
        agent: Agent,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        config = agent.config
        if config.server is None or config.model.public_key is None:
            raise EdgeError("updates need server settings and model.public_key")
        self.agent = agent
        self.settings = config.updates
        self.server = config.server
        self.public_key = config.model.public_key
        self.min_version = config.model.min_version or 0
        self.threads = config.model.threads
        self.folder = Path(self.settings.folder)
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self.state = "idle"
        running = agent.model
        self.current: ReleaseRef | None = None
        self.highest = int(running.version) if isinstance(running, LoadedModel) else 0
        self.previous: ReleaseRef | None = None
        self._previous_model: Any = running
        self.candidate: ReleaseRef | None = None
        self._candidate_model: LoadedModel | None = None
        self._watched: WatchedModel | None = None
        self._baseline_ng = 0.0
        self._since: tuple[int, int] = (0, 0)
        self.refused: dict[tuple[int, str], str] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=KEPT_EVENTS)
        self.last_shadow: ShadowReport | None = None
        self.last_error = ""
        self.last_check = ""

    # ------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Restore the last switched-to release, then check until ``stop`` is set."""
        await asyncio.to_thread(self.restore)
        try:
            while not stop.is_set():
                try:
                    await self.check_once()
                except (EdgeError, OSError) as exc:  # a token file gone, a full disk: go on
                    self.last_error = str(exc)
                    self._event("error", logging.ERROR, reason=str(exc))
                wait = HEALTH_TICK_S if self._watched is not None else self.settings.poll_interval_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def check_once(self) -> str:
        """One step: the probation check while a new model is on probation (its end reported to
        the server at once), else report to the server and take the release it names for this
        station as far as it goes. Returns what happened (``none``, ``current``, ``refused``,
        ``waiting``, ``switched``, ``probation``, ``healthy``, ``rolled_back``,
        ``unreachable``)."""
        self.last_check = _now_iso()
        if self._watched is not None:
            outcome = self._check_health()
            if outcome != "probation":
                await self._reach()
        else:
            outcome = await self._pull()
        self._publish()
        return outcome

    async def _reach(self) -> dict[str, Any] | None:
        """Report to the server; the release it names (``None`` also when unreachable)."""
        try:
            offer = await self._report()
        except EdgeError as exc:
            if self.last_error != str(exc):
                self._event("unreachable", logging.WARNING, reason=str(exc))
            self.last_error = str(exc)
            raise
        self.last_error = ""
        return offer

    async def _pull(self) -> str:
        try:
            offer = await self._reach()
        except EdgeError:
            return "unreachable"
        if offer is None:
            return "none"
        version, sha, name = offer["version"], offer["sha256"], str(offer["name"] or "")
        current = self.current
        if current is not None and (version, sha) == (current.version, current.sha256):
            return "current"
        if self.current is None and self._is_running(version):
            return "current"
        if (version, sha) in self.refused:
            return "refused"
        try:
            if self.candidate is None or (version, sha) != (
                self.candidate.version,
                self.candidate.sha256,
            ):
                await self._fetch(version, sha, name)
            return await self._try_candidate()
        except RefusedError as exc:
            self._refuse(version, sha, exc.reason)
            return "refused"
        except EdgeError as exc:  # the download failed: try again at the next poll
            self._event("unreachable", logging.WARNING, version=version, reason=str(exc))
            self.last_error = str(exc)
            return "unreachable"

    def _is_running(self, version: int) -> bool:
        model = self.agent.model
        return model is not None and str(model.version) == str(version)

    async def _fetch(self, version: int, sha: str, name: str) -> None:
        """Download, unpack, verify and load a release as the candidate."""
        self._drop_candidate()
        floor = max(self.highest + 1, self.min_version)
        self._event("offered", version=version, name=name, sha256=sha)
        if version < floor:
            raise RefusedError(
                version,
                f"older than v{floor} (a release is never rolled back to; running v{self.highest})",
            )
        data = await self._download(version)
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha:
            raise RefusedError(version, "the download's SHA-256 differs from the server's listing")
        self._event("downloaded", version=version, bytes=len(data))
        ref, model = await asyncio.to_thread(self._install, data, version, name, sha, floor)
        self.candidate, self._candidate_model = ref, model
        self._event("loaded", version=version, folder=ref.folder)

    def _install(
        self, data: bytes, version: int, name: str, sha: str, floor: int
    ) -> tuple[ReleaseRef, LoadedModel]:
        releases = self.folder / "releases"
        try:
            staging = unpack(data, releases, limit=self.settings.max_download_bytes)
        except EdgeError as exc:
            raise RefusedError(version, str(exc)) from None
        try:
            manifest = verify_release(
                staging, self.public_key, min_version=floor, now=self._clock()
            )
            if manifest.version != version:
                raise RefusedError(version, f"its manifest says v{manifest.version}")
            self._event("verified", version=version, key=self.public_key.name)
            final = releases / f"v{version:08d}-{sha[:12]}"
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        except ReleaseError as exc:  # unsigned, bad signature, altered, expired, older
            where = Path(exc.path)
            inside = where.relative_to(staging).as_posix() if where.is_relative_to(staging) else ""
            raise RefusedError(version, f"{inside or where.name}: {exc.reason}") from None
        except ModelError as exc:
            raise RefusedError(version, str(exc)) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        try:
            model = load_model(final, public_key=self.public_key, threads=self.threads)
        except (ModelError, OSError) as exc:
            shutil.rmtree(final, ignore_errors=True)
            raise RefusedError(version, f"load error: {exc}") from None
        return ReleaseRef(version, name or manifest.name, sha, str(final)), model

    async def _try_candidate(self) -> str:
        assert self.candidate is not None
        assert self._candidate_model is not None
        ref, model = self.candidate, self._candidate_model
        parts = self.agent.recent_parts()
        if len(parts) < self.settings.shadow_frames:
            self.state = "waiting"
            return "waiting"
        self.state = "shadow"
        report = await asyncio.to_thread(shadow_run, model, parts)
        self.last_shadow = report
        self._event("shadow", version=ref.version, **asdict(report))
        failure = shadow_failure(report, self.settings)
        if failure:
            raise RefusedError(ref.version, failure)
        self._switch(ref, model, report)
        return "switched"

    def _switch(self, ref: ReleaseRef, model: LoadedModel, report: ShadowReport) -> None:
        watched = WatchedModel(model)
        self._previous_model = self.agent.swap_model(watched)
        if isinstance(self._previous_model, WatchedModel):
            self._previous_model = self._previous_model.model
        self.previous, self.current = self.current, ref
        self.highest = max(self.highest, ref.version)
        self.candidate, self._candidate_model = None, None
        self._watched = watched
        summary = self.agent.summary
        self._since = (summary.parts, summary.verdicts[Verdict.NG.value])
        self._baseline_ng = ng_baseline(self._since[0], self._since[1], report)
        self.state = "probation"
        self._save()
        self._event(
            "switched",
            version=ref.version,
            previous=_version(self.previous),
            baseline_ng_share=round(self._baseline_ng, 4),
        )

    def _check_health(self) -> str:
        assert self._watched is not None
        assert self.current is not None
        calls, errors, p95 = self._watched.record()
        summary = self.agent.summary
        parts = summary.parts - self._since[0]
        ng = summary.verdicts[Verdict.NG.value] - self._since[1]
        health = Health(calls, errors, p95, ng / parts if parts else None)
        failure = health_failure(health, self._baseline_ng, self.settings)
        if failure:
            self._rollback(failure, health)
            return "rolled_back"
        if calls < self.settings.health_parts:
            return "probation"
        self._watched = None
        self.state = "active"
        self._event("healthy", version=self.current.version, **asdict(health))
        return "healthy"

    def _rollback(self, reason: str, health: Health) -> None:
        assert self.current is not None
        failed = self.current
        self.agent.swap_model(self._previous_model)
        self._watched = None
        self.current, self.previous = self.previous, None
        self.refused[(failed.version, failed.sha256)] = f"health check failed: {reason}"
        self.state = "rolled_back"
        self._save()
        shutil.rmtree(failed.folder, ignore_errors=True)
        self._event(
            "rolled_back",
            logging.ERROR,
            version=failed.version,
            to=_version(self.current),
            reason=reason,
            **asdict(health),
        )

    def _refuse(self, version: int, sha: str, reason: str) -> None:
        self._drop_candidate()
        self.refused[(version, sha)] = reason
        while len(self.refused) > 4 * KEPT_EVENTS:
            del self.refused[next(iter(self.refused))]
        self.state = "active" if self.current is not None else "idle"
        running = self.agent.model
        self._event(
            "refused",
            logging.ERROR,
            version=version,
            sha256=sha,
            reason=reason,
            running=running.version if running is not None else "",
        )

    def _drop_candidate(self) -> None:
        if self.candidate is not None:
            shutil.rmtree(self.candidate.folder, ignore_errors=True)
        self.candidate, self._candidate_model = None, None

    # ------------------------------------------------------------------ the server

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            token = read_secret(
                self.server.token, self.server.token_file, self.server.token_env, "server.token"
            )
            self._client = httpx.AsyncClient(
                base_url=self.server.url.rstrip("/") + API_PREFIX,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.settings.timeout_s,
                transport=self._transport,
            )
        return self._client

    def status_report(self) -> dict[str, Any]:
        """What this station reports (the server's ``StatusIn``): the release and recipe
        version it runs, whether it is healthy (false from a rollback until its next refusal or
        switch), the versions it refused or rolled back, and the last reason."""
        model, recipe = self.agent.model, self.agent.recipe
        last = next(reversed(self.refused.items()), None)
        detail = self.last_error or (f"v{last[0][0]}: {last[1]}" if last else "")
        version = str(model.version) if model is not None else ""
        return {
            "model_version": int(version) if version.isdigit() and int(version) > 0 else None,
            "recipe_version": recipe.version if recipe is not None else None,
            "healthy": self.state != "rolled_back",
            "refused": sorted({v for v, _ in self.refused}),
            "detail": detail[:500],
        }

    async def _report(self) -> dict[str, Any] | None:
        """Post the status; the release the answer names (version, sha256, name) or ``None``."""
        station = self.agent.config.identity.station
        path = f"/projects/{self.server.project_id}/stations/{station}/status"
        try:
            answer = await self._http().post(path, json=self.status_report())
        except httpx.HTTPError as exc:
            raise EdgeError(f"{self.server.url}: {type(exc).__name__} {exc}".strip()) from None
        if answer.status_code != 200:
            raise EdgeError(f"POST {path}: HTTP {answer.status_code} {answer.text[:200]}")
        try:
            body = answer.json()
            version, sha = body["target_model"], body["target_sha256"]
            if version is None:
                return None
            offer = {"version": int(version), "sha256": str(sha), "name": body["target_name"]}
        except (ValueError, KeyError, TypeError):
            raise EdgeError(f"POST {path}: not a station status") from None
        if sha is None:
            raise EdgeError(f"POST {path}: release v{version} has no SHA-256")
        return offer

    async def _download(self, version: int) -> bytes:
        path = f"/projects/{self.server.project_id}/models/{version}/release.zip"
        limit = self.settings.max_download_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            async with self._http().stream("GET", path) as answer:
                if answer.status_code != 200:
                    raise EdgeError(f"GET {path}: HTTP {answer.status_code}")
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise RefusedError(version, f"the zip is larger than {limit} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise EdgeError(f"GET {path}: {type(exc).__name__} {exc}".strip()) from None
        return b"".join(chunks)

    # ------------------------------------------------------------------ state

    def restore(self) -> None:
        """Switch to the release the agent last switched to (from ``state.json``) when it is
        newer than the configured one and still verifies; keep the configured one otherwise."""
        path = self.folder / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self._event("state_unreadable", logging.WARNING, reason=f"{path}: {exc}")
            return
        self.highest = max(self.highest, int(state.get("highest", 0)))
        current = state.get("current")
        if not current:
            return
        ref = ReleaseRef(**current)
        if self._is_running(ref.version):
            self.current = ref
            return
        try:
            model = load_model(Path(ref.folder), public_key=self.public_key, threads=self.threads)
        except (ModelError, OSError) as exc:
            self._event("restore_refused", logging.ERROR, version=ref.version, reason=str(exc))
            return
        self.agent.swap_model(model)
        self.current = ref
        previous = state.get("previous")
        self.previous = ReleaseRef(**previous) if previous else None
        self.state = "active"
        self._event("restored", version=ref.version)
        self._publish()

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {
            "current": asdict(self.current) if self.current else None,
            "previous": asdict(self.previous) if self.previous else None,
            "highest": self.highest,
        }
        tmp = self.folder / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        os.replace(tmp, self.folder / STATE_FILE)
        keep = {Path(r.folder).name for r in (self.current, self.previous, self.candidate) if r}
        for folder in (self.folder / "releases").glob("v*"):
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _event(self, step: str, level: int = logging.INFO, **fields: Any) -> None:
        record = {"ts": _now_iso(), "step": step, **fields}
        self.events.appendleft(record)
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        log.log(level, "model update %s: %s", step, text, extra={"model_update": record})

    def snapshot(self) -> dict[str, Any]:
        """The status document's ``updates`` object (see docs/edge.md)."""
        return {
            "state": self.state,
            "current": asdict(self.current) if self.current else None,
            "previous": asdict(self.previous) if self.previous else None,
            "candidate": asdict(self.candidate) if self.candidate else None,
            "highest_version": self.highest,
            "last_check": self.last_check,
            "last_error": self.last_error,
            "shadow": asdict(self.last_shadow) if self.last_shadow else None,
            "refused": [
                {"version": v, "sha256": s, "reason": r} for (v, s), r in self.refused.items()
            ][-KEPT_EVENTS:],
            "events": list(self.events),
        }

    def _publish(self) -> None:
        self.agent.metrics.set_updates(self.snapshot())


def _version(ref: ReleaseRef | None) -> int | None:
    return None if ref is None else ref.version


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = [
    "ModelUpdater",
    "RefusedError",
    "ReleaseRef",
    "unpack",
]
