"""The edge agent: the per-part loop beside the line, on asyncio.

For each part: (trigger) → acquire → decode → align, recipe + the active model (one
``thermoscope.pipeline.Pipeline``) → verdict → record → actuate:

- **record**: the part's result, its NG change-feed events, any drift alarm (the drift watch,
  ``recipes.watch.RunWatch``, runs over the whole run) and its flagged frame (every NG and every
  RETAKE part, drift alarms, a ``ok_sample_share`` of the other parts) go into the outbox in one
  durable transaction, *before* the PLC hears of the part: a verdict the PLC got is never lost,
  even to a SIGKILL;
- **actuate**: the PLC result (``InspectionResult``: trigger id echoed, pass/fail, error and
  warning codes, processing time from trigger to result in ms); MQTT and the webhook get the
  result and events from the outbox through their ``Drainer`` (live before backlog), as does the
  annotation server the flagged frames. A slow or absent consumer never holds up the PLC: sinks
  are drained by their own tasks, and only the PLC result waits for the part.

Decoding, inspecting and recording run on the event loop itself, one part at a time in trigger
order: a part holds the loop for its processing time (about 10 ms for a 640x512 frame), and the
drainers, the broker and the PLC link catch up between parts. Handing the part to a worker thread
instead was measured slower on one core (``benchmarks/bench_edge.py``: p50 26 ms against 17 ms
on the same loaded machine): the thread and the loop take turns at the GIL in 5 ms slices.

Model updates (``edge/updates.py``) use two seams: ``swap_model`` makes a new model active from the
next part on (atomically: a part is inspected by one pipeline from start to end), and
``recent_parts`` gives the last frames with their inspections for a candidate's shadow run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from thermoscope.core import Inspection, ThermoscopeError, Verdict
from thermoscope.edge import EdgeError
from thermoscope.edge.config import AgentConfig, DeliveryConfig, read_secret
from thermoscope.edge.delivery import (
    SERVER_SINK,
    Backoff,
    Drainer,
    ServerSink,
    flagged_frame,
    sampled,
)
from thermoscope.edge.messaging import (
    MQTT_SINK,
    CommandRouter,
    PartOutcome,
    PartReporter,
    Topics,
    utc_now,
)
from thermoscope.edge.mqtt import BrokerAddress, MqttSink, StationLink
from thermoscope.edge.outbox import Depth, Kind, Outbox, OutboxError, Record, content_key
from thermoscope.edge.parts import (
    JOURNAL_SINK,
    WARNING_FRAME_REFUSED,
    WARNING_NOT_RECORDED,
    JournalSink,
    PartDone,
    RecentPart,
    RunSummary,
    alarm_detail,
    frame_meta,
    judge,
    overrun_event,
    plc_verdict,
)
from thermoscope.edge.plc.handshake import Delivery, InspectionResult, recipe_checksum
from thermoscope.edge.plc.link import HandshakeLink, PlcLink
from thermoscope.edge.sources import Capture, FrameSource, make_source
from thermoscope.edge.status import EdgeMetrics, StatusServer
from thermoscope.edge.triggers import FreeRun, MqttTrigger, PartTrigger, PlcTrigger, TriggerSource
from thermoscope.edge.webhook import WEBHOOK_SINK, WebhookSink
from thermoscope.pipeline import PartModel, Pipeline
from thermoscope.recipes import Recipe, load_recipe
from thermoscope.recipes.watch import DriftAlarm, RunWatch

if TYPE_CHECKING:
    from thermoscope.edge.updates import ModelUpdater

#: The agent, and the part records of ``edge.parts`` it hands out (re-exported for callers).
__all__ = ["Agent", "PartDone", "RecentPart", "RunSummary"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How the MQTT sink is drained: one message at a time, so results and the NG change feed
#: (``end`` before ``new``) arrive in ``seq`` order (live before backlog after an outage); the
#: broker is near: retry soon, never long.
MQTT_DELIVERY = DeliveryConfig(initial_backoff_s=0.2, max_backoff_s=5.0, batch=64, parallel=1)


def _backoff(config: DeliveryConfig) -> Backoff:
    return Backoff(initial_s=config.initial_backoff_s, max_s=config.max_backoff_s)


class Agent:
    """The edge agent (see the module docstring).

    Args:
        config: the configuration.
        source: the frame source (default: the configured one).
        plc: the PLC link, already open (default: the configured one, opened by ``start``).
        on_part: called with every part's ``PartDone`` once its PLC result is out.

    Raises:
        EdgeError: the recipe or model cannot be loaded (names which and why).
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        source: FrameSource | None = None,
        plc: PlcLink | None = None,
        on_part: Callable[[PartDone], None] | None = None,
    ) -> None:
        self.config = config
        self.on_part = on_part
        self.recipe: Recipe | None = None
        self.recipe_checksum = 0
        if config.recipe is not None:
            try:
                self.recipe = load_recipe(config.recipe)
                text = config.recipe.read_text(encoding="utf-8")
            except (ThermoscopeError, OSError, UnicodeDecodeError) as exc:
                raise EdgeError(f"recipe {config.recipe}: {exc}") from None
            self.recipe_checksum = recipe_checksum(text)
        model = self._load_model() if config.model.release is not None else None
        try:
            self.pipeline = Pipeline(self.recipe, model)
        except ThermoscopeError as exc:
            raise EdgeError(f"recipe {config.recipe}: {exc}") from None
        self.topics = Topics(config.identity.site, config.identity.line, config.identity.station)
        self.name = f"{config.identity.site}/{config.identity.line}/{config.identity.station}"
        self.plc = plc
        self._plc_given = plc is not None
        self.source = source
        self.outbox: Outbox | None = None
        self.station: StationLink | None = None
        self.commands = CommandRouter()
        self.metrics = EdgeMetrics(self.name, depth=self._depth)
        self.status: StatusServer | None = None
        self.watch = (
            RunWatch(config.drift.settings)
            if config.drift.enabled and self.recipe is not None
            else None
        )
        self.summary = RunSummary()
        self.drainers: list[Drainer] = []
        self._sinks: list[Any] = []
        self._recent: deque[RecentPart] = deque(maxlen=config.recent_frames or 1)
        self._stop = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self.commands.on("pause", self._pause)
        self.commands.on("resume", self._resume)
        self._tasks: list[asyncio.Task[None]] = []
        self._trigger: TriggerSource | None = None
        self._reporter: PartReporter | None = None
        self._frame_sinks: tuple[str, ...] = ()
        #: The model updater (made by ``start`` when ``updates.enabled``; a test may set its own).
        self.updater: ModelUpdater | None = None

    # ------------------------------------------------------------------ the model seam

    def _load_model(self) -> PartModel:
        try:
            from thermoscope.models.errors import ModelError
            from thermoscope.models.runtime import load_model
        except ImportError as exc:  # the models extra (ONNX Runtime) is not installed
            raise EdgeError(f"model release: install thermoscope[models] ({exc})") from None
        settings = self.config.model
        assert settings.release is not None
        try:
            return load_model(
                settings.release,
                public_key=settings.public_key,
                min_version=settings.min_version,
                threads=settings.threads,
            )
        except (ModelError, OSError) as exc:
            raise EdgeError(f"model release {settings.release}: {exc}") from None

    @property
    def model(self) -> PartModel | None:
        """The active model."""
        return self.pipeline.model

    def swap_model(self, model: PartModel | None) -> PartModel | None:
        """Make ``model`` the active model from the next part on; returns the one it replaces.

        Atomic between parts: a part is inspected by the pipeline it started with, and the next
        one by the new pipeline (same recipe plan, not compiled again).
        """
        previous = self.pipeline.model
        self.pipeline = Pipeline(self.recipe, model, plan=self.pipeline.plan)
        self._announce_versions()
        log.info(
            "active model: %s %s (was %s)",
            model.name if model else "none",
            model.version if model else "",
            previous.name if previous else "none",
        )
        return previous

    def recent_parts(self) -> list[RecentPart]:
        """The last ``recent_frames`` parts (oldest first) for a candidate model's shadow run."""
        return list(self._recent) if self.config.recent_frames else []

    def _versions(self) -> dict[str, Any]:
        model = self.pipeline.model
        return {
            "agent": self.name,
            "model": model.name if model else "",
            "model_version": model.version if model else "",
            "recipe": self.recipe.name if self.recipe else "",
            "recipe_checksum": self.recipe_checksum,
        }

    def _announce_versions(self) -> None:
        info = self._versions()
        self.metrics.set_versions(
            model=info["model"],
            model_version=info["model_version"],
            recipe=info["recipe"],
            recipe_checksum=info["recipe_checksum"],
        )
        if self.station is not None:
            self.station.info.update(info)
            with contextlib.suppress(RuntimeError):  # no running loop: announced on connect
                asyncio.get_running_loop().create_task(self.station.announce())

    # ------------------------------------------------------------------ lifecycle

    def _depth(self) -> Depth:
        """The outbox's depth (all zero while it is not open)."""
        if self.outbox is None:
            return Depth({}, {}, 0, 0, self.config.outbox.max_bytes, False, 0, 0, 0)
        return self.outbox.depth()

    def stop(self) -> None:
        """Finish the part in hand, then stop (drain for ``outbox.drain_on_exit_s``, close)."""
        self._stop.set()

    async def start(self) -> None:
        """Open the outbox, the links, the sinks and the status page.

        Raises:
            EdgeError: something cannot be opened (names what and why).
        """
        config = self.config
        box = config.outbox
        self.outbox = Outbox(
            box.path,
            max_bytes=box.max_bytes,
            min_free_bytes=box.min_free_bytes,
            live_window_s=box.live_window_s,
        )
        result_sinks: list[str] = []
        if config.mqtt is not None:
            mqtt = config.mqtt
            address = BrokerAddress(
                mqtt.host,
                mqtt.port,
                client_id=mqtt.client_id
                or f"thermoscope-{self.topics.site}-{self.topics.line}-{self.topics.station}",
                username=mqtt.username,
                password=read_secret(mqtt.password, mqtt.password_file, None, "mqtt.password"),
                keepalive_s=mqtt.keepalive_s,
                timeout_s=mqtt.timeout_s,
            )
            self.station = StationLink(
                address, self.topics, self.outbox, info=self._versions(), commands=self.commands
            )
            sink = MqttSink(self.station.bus, self.topics)
            self.drainers.append(self._drainer(sink, MQTT_DELIVERY))
            result_sinks.append(MQTT_SINK)
        if config.webhook is not None:
            hook = config.webhook
            secret = read_secret(hook.secret, hook.secret_file, None, "webhook.secret")
            assert secret is not None
            web = WebhookSink(hook.url, secret.encode("utf-8"), timeout_s=hook.timeout_s)
            self._sinks.append(web)
            self.drainers.append(self._drainer(web, hook.delivery))
            result_sinks.append(WEBHOOK_SINK)
        if not result_sinks:
            journal = JournalSink(box.path.with_name(box.path.stem + ".results.jsonl"))
            in_order = DeliveryConfig(idle_s=0.2, parallel=1)  # the journal's lines in seq order
            self.drainers.append(self._drainer(journal, in_order))
            result_sinks.append(JOURNAL_SINK)
        if config.server is not None:
            server = config.server
            token = read_secret(server.token, server.token_file, server.token_env, "server.token")
            assert token is not None
            ingest = ServerSink(server.url, token, server.project_id, timeout_s=server.timeout_s)
            self._sinks.append(ingest)
            self.drainers.append(self._drainer(ingest, server.delivery))
            self._frame_sinks = (SERVER_SINK,)
        self._reporter = PartReporter(self.topics, tuple(result_sinks))
        self._trigger = await self._open_trigger()
        if self.source is None:
            self.source = make_source(config.source, free_run=config.trigger.kind == "free-run")
        await self.source.open()
        if self.station is not None:
            await self.station.start()
        if config.status.enabled:
            self.status = StatusServer(self.metrics, config.status.host, config.status.port)
            self.status.start()
        self._announce_versions()
        for drainer in self.drainers:
            self._tasks.append(asyncio.create_task(drainer.run(self._stop), name=drainer.sink.name))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        if self.updater is None and config.updates.enabled:
            self.updater = self._make_updater()
        if self.updater is not None:
            self._tasks.append(asyncio.create_task(self.updater.run(self._stop), name="updates"))

    def _make_updater(self) -> ModelUpdater:
        try:
            from thermoscope.edge.updates import ModelUpdater
        except ImportError as exc:  # the models extra (ONNX Runtime) is not installed
            raise EdgeError(f"updates: install thermoscope[models] ({exc})") from None
        return ModelUpdater(self)

    def _drainer(self, sink: Any, delivery: DeliveryConfig) -> Drainer:
        assert self.outbox is not None
        return Drainer(
            self.outbox,
            sink,
            backoff=_backoff(delivery),
            batch=delivery.batch,
            parallel=delivery.parallel,
            idle_s=delivery.idle_s,
            purge_after_s=self.config.outbox.purge_after_s,
        )

    async def _open_trigger(self) -> TriggerSource:
        config = self.config
        if config.plc.kind != "none" and self.plc is None:
            self.plc = self._make_plc()
        if self.plc is not None and not self._plc_given:
            opener = getattr(self.plc, "open", None)
            if opener is not None:
                await opener()
        if isinstance(self.plc, HandshakeLink):
            self.plc.handshake.set_recipe_checksum(self.recipe_checksum)
        if self.plc is not None:
            prepare = getattr(self.plc, "prepare_recipe", None)
            if prepare is not None:
                await prepare(self.recipe.name if self.recipe else "", self.recipe_checksum)
            self.metrics.set_link("plc", True)
        if config.trigger.kind == "plc":
            assert self.plc is not None
            return PlcTrigger(self.plc)
        if config.trigger.kind == "mqtt":
            return MqttTrigger(self.commands)
        return FreeRun()

    def _make_plc(self) -> PlcLink:
        settings = self.config.plc
        checksum = self.recipe_checksum
        if settings.kind == "modbus":
            from thermoscope.edge.plc.modbus import ModbusPlcLink

            assert settings.modbus is not None
            return ModbusPlcLink(settings.modbus, recipe_checksum=checksum)
        if settings.kind == "opcua-client":
            from thermoscope.edge.plc.opcua import OpcUaPlcLink

            assert settings.opcua is not None
            return OpcUaPlcLink(settings.opcua, recipe_checksum=checksum)
        from thermoscope.edge.plc.machine_vision import MachineVisionServer

        assert settings.machine_vision is not None
        return MachineVisionServer(settings.machine_vision)

    async def _housekeeping(self) -> None:
        """Links on the status page every second."""
        while not self._stop.is_set():
            if self.station is not None:
                self.metrics.set_link("mqtt", self.station.bus.connected)
            for drainer in self.drainers:
                if drainer.sink.name != MQTT_SINK:
                    self.metrics.set_link(drainer.sink.name, drainer.failures == 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    async def close(self) -> None:
        """Stop the sinks (after draining up to ``drain_on_exit_s``) and let go of everything."""
        self._stop.set()
        # the drainers end their pass in hand; then whatever is left goes out one pass at a time
        done, running = await asyncio.wait(self._tasks, timeout=30.0) if self._tasks else ((), ())
        for task in running:
            task.cancel()
        for task in (*done, *running):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.outbox is not None and self.drainers:
            deadline = time.monotonic() + self.config.outbox.drain_on_exit_s
            pending = self.outbox.depth().pending
            while pending and time.monotonic() < deadline:
                for drainer in self.drainers:
                    if pending.get(drainer.sink.name):
                        with contextlib.suppress(EdgeError):
                            await drainer.drain_once()
                await asyncio.sleep(0.01)
                pending = self.outbox.depth().pending
        if self.plc is not None:
            await self.plc.close()
        if self.station is not None:
            with contextlib.suppress(EdgeError):
                await self.station.close()
        for sink in self._sinks:
            await sink.close()
        if self.source is not None:
            await self.source.close()
        if self.status is not None:
            self.status.stop()
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None

    async def run(self) -> RunSummary:
        """Start, inspect parts until the trigger or source ends or ``stop`` is called, close."""
        await self.start()
        try:
            await self.loop()
        finally:
            await self.close()
        return self.summary

    # ------------------------------------------------------------------ the per-part loop

    async def loop(self) -> None:
        """Inspect parts until the trigger or the source has no more, or ``stop``."""
        assert self._trigger is not None
        while not self._stop.is_set():
            await self._unless_stopped(self._running.wait())
            trigger = await self._unless_stopped(self._trigger.next())
            if trigger is None or not await self.part(trigger):
                break

    async def _pause(self, arguments: dict[str, Any]) -> None:
        """The ``pause`` command: take no trigger until ``resume``."""
        self._running.clear()
        if self.station is not None:
            await self.station.update(state="paused")

    async def _resume(self, arguments: dict[str, Any]) -> None:
        """The ``resume`` command: take triggers again."""
        self._running.set()
        if self.station is not None:
            await self.station.update(state="online")

    async def _unless_stopped(self, waited: Awaitable[T]) -> T | None:
        """``waited``'s result, or ``None`` (``waited`` cancelled) once ``stop`` is called."""
        task = asyncio.ensure_future(waited)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def part(self, trigger: PartTrigger) -> bool:
        """One part from its trigger to its PLC result; ``False`` when the source is done."""
        assert self._trigger is not None
        assert self.source is not None
        hint = trigger.number if self._trigger.hinted else None
        try:
            capture = await self._unless_stopped(self.source.acquire(hint))
        except EdgeError as exc:
            log.error("part %d: no frame: %s", trigger.number, exc)
            capture = None
            if not trigger.plc:
                raise
        if capture is None and (not trigger.plc or self._stop.is_set()):
            return False
        if trigger.plc and self.plc is not None:
            await self.plc.acquisition_done()
        pipeline = self.pipeline
        done = self._decide(pipeline, trigger, capture)
        delivery = None
        if trigger.plc and self.plc is not None:
            elapsed_ms = (time.monotonic_ns() - trigger.accepted_ns) / 1e6
            result = InspectionResult(
                done.result.result_id,
                done.result.passed,
                done.result.error_code,
                done.result.warning_code,
                round(elapsed_ms, 3),
                done.result.part_id,
            )
            delivery = await self.plc.publish_result(result)
            if delivery is Delivery.OVERRUN:
                await self._overrun(trigger, result)
        self._finish(done, delivery)
        if capture is not None:
            await self.source.done(capture)
        return True

    def _decide(
        self, pipeline: Pipeline, trigger: PartTrigger, capture: Capture | None
    ) -> PartDone:
        """Decode, inspect, watch and record one part (holding the event loop)."""
        name = capture.filename if capture is not None else f"part-{trigger.number}"
        inspection, error, frame, content_id = judge(pipeline, capture, name)
        alarms: tuple[DriftAlarm, ...] = ()
        if self.watch is not None and not error:
            alarms = tuple(self.watch.update(inspection))
        if frame is not None and not error and self.config.recent_frames:
            self._recent.append(RecentPart(trigger.number, frame, inspection))
        verdict = inspection.verdict
        flagged = ""
        if capture is not None and not error and self._frame_sinks:
            if verdict in (Verdict.NG, Verdict.RETAKE):
                flagged = verdict.value
            elif alarms:
                flagged = "drift"
            elif sampled(content_id, self.config.outbox.ok_sample_share):
                flagged = "sample"
        passed, warning = plc_verdict(verdict)
        warning |= self._record(trigger, capture, pipeline, inspection, alarms, flagged, content_id)
        part_id = trigger.part_id or (capture.part_id if capture is not None else "")
        result = InspectionResult(
            trigger.number,
            passed,
            error,
            warning,
            0.0,
            part_id[:200],
        )
        return PartDone(trigger, inspection, result, None, flagged, alarms, content_id)

    def _record(
        self,
        trigger: PartTrigger,
        capture: Capture | None,
        pipeline: Pipeline,
        inspection: Inspection,
        alarms: Sequence[DriftAlarm],
        flagged: str,
        content_id: str,
    ) -> int:
        """Write the part's records in one durable transaction; the warning bits it earned."""
        assert self.outbox is not None
        assert self._reporter is not None
        model = pipeline.model
        body = inspection.to_json()
        outcome = PartOutcome(
            part=str(trigger.number),
            inspection=body,
            processing_ms=(time.monotonic_ns() - trigger.accepted_ns) / 1e6,
            recipe=self.recipe.name if self.recipe else "",
            recipe_checksum=self.recipe_checksum,
            model=model.name if model else "",
            model_version=model.version if model else "",
            frame_id=content_id,
        )
        details = [alarm_detail(alarm) for alarm in alarms]
        records: list[Record] = self._reporter.records(outcome, details)
        if flagged and capture is not None:
            meta = frame_meta(trigger, capture, self.topics, flagged, outcome)
            records.append(
                flagged_frame(
                    content_id=content_id,
                    data=capture.data,
                    filename=capture.filename,
                    inspection={
                        **body,
                        "model": outcome.model or outcome.recipe,
                        "model_version": outcome.model_version
                        or (self.recipe.version if self.recipe else ""),
                    },
                    meta=meta,
                    sample=flagged == "sample",
                    sinks=self._frame_sinks,
                )
            )
        try:
            stored = self.outbox.record(records)
        except OutboxError as exc:
            log.error("part %d not recorded: %s", trigger.number, exc)
            self.summary.unrecorded += 1
            return WARNING_NOT_RECORDED
        if flagged and flagged != "sample" and stored[-1].refused:
            log.error("part %d: its %s frame was refused: %s", trigger.number, flagged, "disk full")
            return WARNING_FRAME_REFUSED
        return 0

    async def _overrun(self, trigger: PartTrigger, result: InspectionResult) -> None:
        """Record that the PLC's result buffer was full (the PLC never saw this result)."""
        assert self.outbox is not None
        assert self._reporter is not None
        self.summary.overruns += 1
        event = overrun_event(str(trigger.number), result.passed)
        record = Record(
            Kind.EVENT,
            content_key(event),
            event,
            self._reporter.sinks,
            sequence=self.topics.event,
        )
        log.warning("PLC result buffer full: result %d not delivered to the PLC", trigger.number)
        with contextlib.suppress(OutboxError):
            await asyncio.to_thread(self.outbox.record, [record])

    def _finish(self, done: PartDone, delivery: Delivery | None) -> None:
        verdict = done.inspection.verdict.value
        self.summary.parts += 1
        self.summary.verdicts[verdict] += 1
        if done.result.error_code:
            self.summary.errors += 1
        latency_ms = (time.monotonic_ns() - done.trigger.accepted_ns) / 1e6
        self.metrics.observe(str(done.trigger.number), verdict, latency_ms, ts=utc_now())
        for drainer in self.drainers:
            if not drainer.failures:  # a sink that is away keeps its back-off
                drainer.wake()
        if self.on_part is not None:
            self.on_part(dataclasses.replace(done, delivery=delivery))
