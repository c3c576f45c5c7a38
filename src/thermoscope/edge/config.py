"""The edge agent's configuration: one pydantic model per area, loaded from YAML or JSON.

Every model forbids unknown keys and every field has a description and bounds (docs/edge.md,
"Configuration", lists them all; a test checks that). ``load_config(path)`` reads a file and
raises ``ConfigError`` naming the file and each wrong field (``outbox.max_bytes: ...``). Relative
paths in the file are resolved against the file's folder.

Areas: ``identity`` (site, line, station: the MQTT topics), ``source`` (a watched folder, the
synthetic line, or a GenICam camera), ``trigger`` (free-run, the PLC, an MQTT command),
``recipe``, ``model`` (a release folder, its public key), ``plc`` (none, an OPC UA client of the
PLC, an OPC 40100 Machine Vision server, or a Modbus TCP server), ``mqtt``, ``webhook``,
``outbox``, ``server`` (the annotation server frames are delivered to), ``status`` (the local
page), ``drift`` (the drift watch over the run) and ``updates`` (model releases pulled from the
server).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from thermoscope.datasets.synthetic import DIFFICULTIES, PRODUCTS
from thermoscope.edge import EdgeError
from thermoscope.edge.plc.machine_vision import MachineVisionSettings
from thermoscope.edge.plc.modbus import ModbusPlcSettings
from thermoscope.edge.plc.opcua import OpcUaPlcSettings
from thermoscope.recipes.watch import WatchSettings

_NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class ConfigError(EdgeError, ValueError):
    """The configuration file cannot be read or is invalid; names the file and every field."""

    def __init__(self, file: str, problems: list[tuple[str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = [f"{path}: {message}" if path else message for path, message in problems]
        super().__init__(f"{file}: " + "; ".join(lines))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityConfig(_Strict):
    """Where the agent stands: the names in its MQTT topics and on the server."""

    site: str = Field(..., pattern=_NAME, description="The plant (letters, digits, _ . -).")
    line: str = Field(..., pattern=_NAME, description="The production line.")
    station: str = Field(..., pattern=_NAME, description="The inspection station on the line.")


class FolderSourceConfig(_Strict):
    """Files as a camera writes them into a folder; each new file is one part's frame."""

    kind: Literal["folder"] = Field(description="A watched folder.")
    path: Path = Field(..., description="The folder the camera writes into.")
    pattern: str = Field(
        default="*", min_length=1, max_length=200, description="Glob of the files to take."
    )
    poll_interval_s: float = Field(
        default=0.05, gt=0.0, le=60.0, description="How often the folder is listed, seconds."
    )
    settle_s: float = Field(
        default=0.2,
        ge=0.0,
        le=60.0,
        description="A file is taken once its size has not changed for this long, seconds.",
    )
    done: Path | None = Field(
        default=None,
        description="Folder taken files are moved to (none: they are deleted once recorded).",
    )


class SyntheticSourceConfig(_Strict):
    """The synthetic production line (``thermoscope.datasets.synthetic``): demos and tests."""

    kind: Literal["synthetic"] = Field(description="The synthetic line.")
    product: str = Field(default="pcb", description=f"One of {', '.join(PRODUCTS)}.")
    difficulty: str = Field(default="normal", description=f"One of {', '.join(DIFFICULTIES)}.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the line's randomness.")
    count: int = Field(
        default=1000,
        ge=1,
        le=100_000_000,
        description="Parts in the run; free-run stops after them. Under a PLC or MQTT trigger "
        "the trigger's id picks the part (id modulo count), so the same id is the same part.",
    )
    rate_hz: float = Field(
        default=10.0,
        ge=0.0,
        le=1000.0,
        description="Parts per second in free-run (0: as fast as the agent goes).",
    )
    defect_rate: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Share of defective parts."
    )
    scale: int = Field(
        default=1, ge=1, le=8, description="Frame size multiplier (1: 160x120 px, 4: 640x480)."
    )
    format: Literal[".fff", ".npy", ".tif"] = Field(
        default=".fff", description="File format the line's camera writes (FLIR FFF, NumPy, TIFF)."
    )

    @model_validator(mode="after")
    def _known(self) -> SyntheticSourceConfig:
        if self.product not in PRODUCTS:
            raise ValueError(f"product {self.product!r}: one of {', '.join(PRODUCTS)}")
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty {self.difficulty!r}: one of {', '.join(DIFFICULTIES)}")
        return self


class GenICamSourceConfig(_Strict):
    """A GenICam camera through ``harvesters`` and a vendor's GenTL producer (a ``.cti`` file).

    Needs ``pip install harvesters`` and the producer; the agent refuses to start without them.
    The camera must stream radiometric 16-bit pixels that map linearly to temperature.
    """

    kind: Literal["genicam"] = Field(description="A GenICam camera.")
    producer: Path = Field(..., description="The GenTL producer file (.cti) of the camera vendor.")
    serial: str | None = Field(
        default=None, max_length=64, description="The camera's serial number (none: the first)."
    )
    kelvin_per_count: float = Field(
        default=0.01,
        gt=0.0,
        le=1.0,
        description="Temperature step of one count (0.01 for a 10 mK linear radiometric mode), K.",
    )
    offset_k: float = Field(
        default=0.0, ge=-1000.0, le=1000.0, description="Kelvin at count 0 (linear mode)."
    )
    timeout_s: float = Field(
        default=2.0, gt=0.0, le=60.0, description="Wait for one frame at most, seconds."
    )


SourceConfig = Annotated[
    FolderSourceConfig | SyntheticSourceConfig | GenICamSourceConfig,
    Field(discriminator="kind"),
]


class TriggerConfig(_Strict):
    """What starts a part: free-run (every frame the source gives), the PLC's trigger, or the
    ``trigger`` command on the MQTT command topic."""

    kind: Literal["free-run", "plc", "mqtt"] = Field(
        default="free-run", description="free-run, plc or mqtt."
    )


class ModelConfig(_Strict):
    """The active model: a release folder (``thermoscope.models`` format)."""

    release: Path | None = Field(
        default=None, description="The release folder (none: the recipe alone decides)."
    )
    public_key: Path | None = Field(
        default=None,
        description="Ed25519 public key the release must be signed with (none: unsigned "
        "releases are accepted, hashes and expiry still checked).",
    )
    min_version: int | None = Field(
        default=None, ge=0, le=2**31, description="Refuse releases older than this version."
    )
    threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime intra-op threads.")


class PlcConfig(_Strict):
    """The PLC link; the settings object of the chosen kind (the others must be absent)."""

    kind: Literal["none", "opcua-client", "opcua-machine-vision", "modbus"] = Field(
        default="none", description="none, opcua-client, opcua-machine-vision or modbus."
    )
    opcua: OpcUaPlcSettings | None = Field(
        default=None, description="The PLC's OPC UA server and tags (kind opcua-client)."
    )
    machine_vision: MachineVisionSettings | None = Field(
        default=None, description="The agent's OPC 40100 server (kind opcua-machine-vision)."
    )
    modbus: ModbusPlcSettings | None = Field(
        default=None, description="The agent's Modbus TCP server (kind modbus)."
    )

    @model_validator(mode="after")
    def _one(self) -> PlcConfig:
        wanted = {
            "opcua-client": "opcua",
            "opcua-machine-vision": "machine_vision",
            "modbus": "modbus",
        }.get(self.kind)
        for name in ("opcua", "machine_vision", "modbus"):
            if name != wanted and getattr(self, name) is not None:
                raise ValueError(f"{name} settings given but kind is {self.kind}")
        if self.kind == "opcua-client" and self.opcua is None:
            raise ValueError("kind opcua-client needs opcua settings (at least endpoint)")
        if self.kind == "opcua-machine-vision" and self.machine_vision is None:
            self.machine_vision = MachineVisionSettings()
        if self.kind == "modbus" and self.modbus is None:
            self.modbus = ModbusPlcSettings()
        return self


def _one_way(value: str | None, file: Path | None, env: str | None, what: str) -> None:
    if sum(x is not None for x in (value, file, env)) > 1:
        raise ValueError(f"give {what} one way only (inline, _file or _env)")


class MqttConfig(_Strict):
    """The MQTT broker results, events and status go to (QoS 1) and commands come from."""

    host: str = Field(..., min_length=1, max_length=253, description="The broker's host.")
    port: int = Field(default=1883, ge=1, le=65535, description="The broker's port.")
    client_id: str = Field(
        default="",
        max_length=128,
        description="MQTT client id (empty: thermoscope-<site>-<line>-<station>).",
    )
    username: str | None = Field(default=None, max_length=256, description="User name, if any.")
    password: str | None = Field(default=None, max_length=1024, description="Password inline.")
    password_file: Path | None = Field(default=None, description="File holding the password.")
    keepalive_s: int = Field(
        default=15, ge=1, le=3600, description="Keep-alive; the will fires after 1.5x this, s."
    )
    timeout_s: float = Field(
        default=10.0, gt=0.0, le=120.0, description="Connect and publish time-out, seconds."
    )

    @model_validator(mode="after")
    def _password(self) -> MqttConfig:
        _one_way(self.password, self.password_file, None, "the password")
        return self


class DeliveryConfig(_Strict):
    """How a sink is drained: back-off, batch and parallel sends."""

    initial_backoff_s: float = Field(
        default=0.5, gt=0.0, le=600.0, description="Wait after the first failure, seconds."
    )
    max_backoff_s: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="Longest wait between retries, seconds: a sink back after an outage is "
        "retried within this.",
    )
    batch: int = Field(default=32, ge=1, le=1000, description="Entries taken per pass.")
    parallel: int = Field(default=4, ge=1, le=64, description="Deliveries in flight at once.")
    idle_s: float = Field(
        default=0.5, gt=0.0, le=60.0, description="Wait when nothing is pending, seconds."
    )

    @model_validator(mode="after")
    def _order(self) -> DeliveryConfig:
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError("initial_backoff_s must not exceed max_backoff_s")
        return self


class WebhookConfig(_Strict):
    """A URL that gets every result and event as a signed JSON POST."""

    url: str = Field(..., pattern=r"^https?://", max_length=2000, description="The receiver.")
    secret: str | None = Field(
        default=None, min_length=16, max_length=1024, description="Shared HMAC secret inline."
    )
    secret_file: Path | None = Field(default=None, description="File holding the secret.")
    timeout_s: float = Field(default=10.0, gt=0.0, le=120.0, description="Time-out, seconds.")
    delivery: DeliveryConfig = Field(default=DeliveryConfig(), description="Retries.")

    @model_validator(mode="after")
    def _given(self) -> WebhookConfig:
        _one_way(self.secret, self.secret_file, None, "the secret")
        if self.secret is None and self.secret_file is None:
            raise ValueError("give secret or secret_file")
        return self


class OutboxConfig(_Strict):
    """The durable outbox on the agent's disk."""

    path: Path = Field(
        default=Path("outbox.db"), description="The SQLite file (created with its folder)."
    )
    max_bytes: int = Field(
        default=2 << 30,
        ge=0,
        le=1 << 44,
        description="Budget of frame files held, bytes (oldest OK samples go first; never NG).",
    )
    min_free_bytes: int = Field(
        default=256 << 20,
        ge=0,
        le=1 << 44,
        description="Bytes always left free on the file system, bytes.",
    )
    ok_sample_share: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="Share of OK (and WARN) parts whose frame is sent to the server.",
    )
    live_window_s: float = Field(
        default=10.0, ge=0.0, le=3600.0, description="Entries this young go before the backlog."
    )
    purge_after_s: float = Field(
        default=86400.0,
        ge=0.0,
        le=365 * 86400.0,
        description="Delivered entries are deleted after this long, seconds.",
    )
    drain_on_exit_s: float = Field(
        default=5.0,
        ge=0.0,
        le=3600.0,
        description="On a clean stop, keep delivering this long before exiting, seconds.",
    )


class ServerConfig(_Strict):
    """The annotation server flagged frames are delivered to (its ingest route)."""

    url: str = Field(..., pattern=r"^https?://", max_length=2000, description="Its base URL.")
    project_id: int = Field(..., ge=1, le=2**31, description="The project frames go to.")
    token: str | None = Field(
        default=None, min_length=8, max_length=1024, description="API token (ingest scope)."
    )
    token_file: Path | None = Field(default=None, description="File holding the API token.")
    token_env: str | None = Field(
        default=None, min_length=1, max_length=128, description="Environment variable with it."
    )
    timeout_s: float = Field(default=30.0, gt=0.0, le=600.0, description="Time-out, seconds.")
    delivery: DeliveryConfig = Field(default=DeliveryConfig(), description="Retries.")

    @model_validator(mode="after")
    def _given(self) -> ServerConfig:
        _one_way(self.token, self.token_file, self.token_env, "the token")
        if self.token is None and self.token_file is None and self.token_env is None:
            raise ValueError("give token, token_file or token_env")
        return self


class StatusConfig(_Strict):
    """The local status page, JSON document and Prometheus metrics."""

    enabled: bool = Field(default=True, description="Serve the status page.")
    host: str = Field(
        default="127.0.0.1", min_length=1, max_length=253, description="Address to listen on."
    )
    port: int = Field(default=8710, ge=0, le=65535, description="Port (0: any free one).")


class DriftConfig(_Strict):
    """The drift watch over the run (control charts on every rule value)."""

    enabled: bool = Field(default=True, description="Watch the run for drift.")
    settings: WatchSettings = Field(
        default=WatchSettings(), description="The watch's settings (docs/drift-watch.md)."
    )


class UpdatesConfig(_Strict):
    """Model updates pulled from the annotation server (``thermoscope.edge.updates``): signed
    releases verified with ``model.public_key``, run in shadow on the recent frames, switched to
    when they agree with the running model, rolled back when the health check after the switch
    fails. Needs ``server`` (its token with the ``read`` scope too) and ``model.public_key``."""

    enabled: bool = Field(default=False, description="Pull and switch to new releases.")
    poll_interval_s: float = Field(
        default=60.0, gt=0.0, le=86400.0, description="How often the server is asked, seconds."
    )
    folder: Path = Field(
        default=Path("models"),
        description="Where releases are unpacked and kept (the current one and the previous "
        "one, for rollback) with the update state.",
    )
    shadow_frames: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Recent parts a candidate must be run on in shadow before it may switch "
        "(at most recent_frames).",
    )
    min_agreement: float = Field(
        default=0.95,
        ge=0.0,
        le=1.0,
        description="Share of shadow parts whose pass/fail verdict must match the running one.",
    )
    max_score_delta: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Largest mean |score difference| to the running model on the shadow parts "
        "(unchecked while no model runs).",
    )
    max_latency_ms: float = Field(
        default=50.0,
        gt=0.0,
        le=60_000.0,
        description="Budget of the model's inference per frame (95th percentile), ms; checked "
        "in shadow and after the switch.",
    )
    health_parts: int = Field(
        default=50,
        ge=1,
        le=1_000_000,
        description="Parts inspected by a new model before its health check passes.",
    )
    max_ng_rate_jump: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Largest rise of the NG share after the switch over the NG share before "
        "it (the run's, or the running model's over the shadow's parts where higher; absolute).",
    )
    max_inference_errors: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Inference errors a new model may make before it is rolled back.",
    )
    max_download_bytes: int = Field(
        default=1 << 30,
        ge=1024,
        le=1 << 40,
        description="Largest release zip (and unpacked size) taken, bytes.",
    )
    timeout_s: float = Field(
        default=60.0, gt=0.0, le=3600.0, description="Time-out of one request, seconds."
    )


class AgentConfig(_Strict):
    """The whole agent (see the module docstring)."""

    identity: IdentityConfig = Field(..., description="Site, line and station.")
    source: SourceConfig = Field(..., description="Where frames come from.")
    trigger: TriggerConfig = Field(default=TriggerConfig(), description="What starts a part.")
    recipe: Path | None = Field(default=None, description="The recipe file (YAML or JSON).")
    model: ModelConfig = Field(default=ModelConfig(), description="The active model.")
    plc: PlcConfig = Field(default=PlcConfig(), description="The PLC link.")
    mqtt: MqttConfig | None = Field(default=None, description="The MQTT broker (none: off).")
    webhook: WebhookConfig | None = Field(default=None, description="A webhook (none: off).")
    outbox: OutboxConfig = Field(default=OutboxConfig(), description="The durable outbox.")
    server: ServerConfig | None = Field(
        default=None, description="The annotation server (none: frames stay in the outbox)."
    )
    status: StatusConfig = Field(default=StatusConfig(), description="The status page.")
    drift: DriftConfig = Field(default=DriftConfig(), description="The drift watch.")
    updates: UpdatesConfig = Field(
        default=UpdatesConfig(), description="Model updates from the server."
    )
    recent_frames: int = Field(
        default=32,
        ge=0,
        le=10_000,
        description="Recent frames kept in memory for a candidate model's shadow run.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        if self.recipe is None and self.model.release is None:
            raise ValueError("give a recipe, a model release, or both")
        if self.trigger.kind == "plc" and self.plc.kind == "none":
            raise ValueError("trigger kind plc needs a plc link (plc.kind)")
        if self.trigger.kind != "plc" and self.plc.kind != "none":
            raise ValueError("a plc link gets results only for its own triggers: trigger kind plc")
        if self.trigger.kind == "mqtt" and self.mqtt is None:
            raise ValueError("trigger kind mqtt needs mqtt settings")
        if self.updates.enabled:
            if self.server is None:
                raise ValueError("updates need server settings (releases come from the server)")
            if self.model.public_key is None:
                raise ValueError("updates need model.public_key (unsigned releases are refused)")
            if self.recent_frames < self.updates.shadow_frames:
                raise ValueError("recent_frames must be at least updates.shadow_frames")
        return self


def read_secret(value: str | None, file: Path | None, env: str | None, what: str) -> str | None:
    """A secret given inline, in a file (stripped) or in an environment variable.

    Raises:
        ConfigError: the file cannot be read or the variable is unset.
    """
    if value is not None:
        return value
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(str(file), [(what, f"cannot read: {exc.strerror}")]) from None
    if env is not None:
        found = os.environ.get(env)
        if not found:
            raise ConfigError("environment", [(what, f"variable {env} is not set")])
        return found
    return None


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("folder", "synthetic", "genicam") and out == "source":
            continue  # the discriminator's tag pydantic puts into the path
        else:
            out += f".{part}" if out else str(part)
    return out


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        path = _loc(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            message = f"unknown key {str(err['loc'][-1])!r}"
        else:
            message = err["msg"].removeprefix("Value error, ")
        problems.append((path, message))
    return problems


def _resolve(data: Any, base: Path) -> Any:
    """``data`` with the known path fields made absolute against ``base``."""
    if not isinstance(data, dict):
        return data
    keys = {"path", "done", "producer", "recipe", "release", "public_key", "folder"}
    keys |= {"password_file", "secret_file", "token_file"}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in keys and isinstance(value, str) and value and not Path(value).is_absolute():
            out[key] = str(base / value)
        else:
            out[key] = _resolve(value, base)
    return out


def parse_config(data: Any, *, file: str = "<config>", base_dir: Path | None = None) -> AgentConfig:
    """Validate an already-parsed configuration (paths relative to ``base_dir``).

    Raises:
        ConfigError: names ``file`` and each wrong field.
    """
    if not isinstance(data, dict):
        got = "nothing" if data is None else type(data).__name__
        raise ConfigError(file, [("", f"the configuration must be a mapping, got {got}")])
    if base_dir is not None:
        data = _resolve(data, base_dir)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, _problems(exc)) from None


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a configuration file (YAML or JSON).

    Raises:
        ConfigError: the file cannot be read, is not YAML/JSON, or is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError(str(path), [("", f"cannot read: {reason}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), [("", f"not valid YAML/JSON{where}")]) from None
    return parse_config(data, file=str(path), base_dir=path.parent)
