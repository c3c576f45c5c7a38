"""Server settings: pydantic, read from ``THERMOSCOPE_*`` environment variables and a file.

Sources, strongest first: keyword arguments (``Settings(data_dir=...)``), environment variables
(``THERMOSCOPE_DATA_DIR``, ``THERMOSCOPE_DATABASE_URL`` ...), then the YAML or JSON file named by
``THERMOSCOPE_CONFIG``, then the defaults. The defaults are the embedded deployment: SQLite (WAL)
at ``<data_dir>/thermoscope.db``, blobs in ``<data_dir>/blobs``, an in-process job worker.
PostgreSQL and S3-compatible storage are a matter of two URLs::

    THERMOSCOPE_DATABASE_URL=postgresql+psycopg://user@db.example/thermoscope
    THERMOSCOPE_BLOB_URL=s3://bucket/prefix
    THERMOSCOPE_S3_ENDPOINT_URL=https://s3.example   # for non-AWS stores
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from thermoscope.io.limits import DecodeLimits

#: Environment variable naming the settings file (YAML or JSON).
CONFIG_ENV = "THERMOSCOPE_CONFIG"

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class Settings(BaseSettings):
    """Everything the server is configured by (every field has an environment variable
    ``THERMOSCOPE_<FIELD NAME IN CAPITALS>``)."""

    model_config = SettingsConfigDict(
        env_prefix="THERMOSCOPE_", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(
        default=Path("thermoscope-data"),
        description="folder of the embedded defaults: the SQLite database and the blob folder",
    )
    database_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/thermoscope.db (WAL mode), "
        "PostgreSQL as postgresql+psycopg://user:password@host/db",
    )
    blob_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="where files and decoded frames are kept: a folder (path or file:// URL) or "
        "s3://bucket/prefix; default <data_dir>/blobs",
    )
    s3_endpoint_url: str | None = Field(
        default=None, max_length=2000, description="endpoint of an S3-compatible store"
    )
    s3_region: str = Field(default="us-east-1", max_length=64, description="S3 region")
    s3_access_key_id: str | None = Field(
        default=None, max_length=256, description="S3 access key (default: boto3's own lookup)"
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key (default: boto3's own lookup)"
    )
    admin_username: str = Field(
        default="admin",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the first site administrator, created when no user exists",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="its password; when unset a random one is generated and printed once",
    )
    argon2_memory_kib: int = Field(
        default=65536,
        ge=8,
        le=4 * 1024 * 1024,
        description="memory cost of a password hash (argon2id; lower it only for tests)",
    )
    argon2_time_cost: int = Field(
        default=3, ge=1, le=100, description="passes of a password hash (argon2id)"
    )
    session_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, le=365 * 24 * 3600, description="browser session lifetime"
    )
    cookie_secure: bool = Field(
        default=False, description="mark the session cookie Secure (serve over HTTPS)"
    )
    login_failures_per_account: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="failed log-ins of one user name before each further failure locks it for "
        "a back-off time",
    )
    login_failures_per_address: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="failed log-ins from one client address before each further failure locks "
        "the address for a back-off time",
    )
    login_backoff_s: float = Field(
        default=1.0,
        ge=0.001,
        le=3600.0,
        description="the first lock after the free failures, seconds; it doubles with each "
        "further failure",
    )
    login_backoff_max_s: float = Field(
        default=900.0, ge=0.001, le=86400.0, description="the longest lock, seconds"
    )
    max_upload_bytes: int = Field(
        default=2 * GIB, ge=KIB, le=1024 * GIB, description="largest file accepted for ingest"
    )
    max_chunk_bytes: int = Field(
        default=64 * MIB, ge=KIB, le=GIB, description="largest chunk of a resumable upload"
    )
    max_request_bytes: int = Field(
        default=16 * MIB,
        ge=KIB,
        le=GIB,
        description="largest request body of any route but the two file uploads (whose "
        "limits are max_upload_bytes and max_chunk_bytes); counted as it streams in",
    )
    max_frame_pixels: int = Field(
        default=16 * MIB,
        ge=1,
        le=256 * MIB,
        description="largest frame (width x height pixels) an uploaded file may declare; "
        "checked from the file's headers before anything is decoded",
    )
    max_frames: int = Field(
        default=10_000, ge=1, le=10_000_000, description="most frames one uploaded file may hold"
    )
    max_decoded_bytes: int = Field(
        default=8 * GIB,
        ge=MIB,
        le=1024 * GIB,
        description="most bytes the frames of one uploaded file may decode to (6 per pixel: "
        "°C float32 and counts uint16); frames are decoded one at a time",
    )
    max_model_bytes: int = Field(
        default=1 * GIB,
        ge=KIB,
        le=64 * GIB,
        description="largest model release zip accepted by POST /projects/{pid}/models (and "
        "most bytes its files may unpack to)",
    )
    model_public_keys: list[Path] = Field(
        default_factory=list,
        max_length=64,
        description="Ed25519 public key files (PEM) a model release must be signed with, any "
        "one of them; none: every uploaded release is refused",
    )
    model_signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key file (PEM) that signs the releases the server's "
        "training jobs make (its public key is trusted too); unset: they are stored unsigned "
        "and stay inactive until a project admin activates one",
    )
    ingest_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="uploads one server process decodes, inspects and stores at the same time; "
        "more wait their turn, leaving the CPU to annotators' requests",
    )
    worker_threads: int = Field(
        default=1, ge=0, le=32, description="in-process background job workers (0: none)"
    )
    job_lease_s: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="a running job not heard of for this long is taken up again",
    )
    upload_max_age_s: float = Field(
        default=24 * 3600.0,
        ge=60.0,
        le=365 * 24 * 3600.0,
        description="a resumable upload without a new chunk for this long, seconds, is expired "
        "and its chunks are deleted",
    )
    housekeeping_s: float = Field(
        default=300.0,
        ge=1.0,
        le=86400.0,
        description="seconds between two housekeeping sweeps (abandoned uploads) of a process",
    )
    gzip_level: int = Field(
        default=1, ge=0, le=9, description="gzip level of responses (0: no compression)"
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="FULL",
        description="SQLite fsync policy; FULL keeps every acknowledged write through a power "
        "cut, NORMAL through a process crash",
    )
    fsync_blobs: bool = Field(
        default=True, description="fsync local blob files before they are acknowledged"
    )
    database_pool_size: int = Field(
        default=10, ge=1, le=200, description="connections kept open to a PostgreSQL server"
    )
    migrate: bool = Field(
        default=True, description="run the database migrations when the server starts"
    )
    serve_web: bool = Field(
        default=True, description="serve the browser UI at / (when the package ships it)"
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then the ``THERMOSCOPE_CONFIG`` file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(CONFIG_ENV)
        if path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{CONFIG_ENV} names {path}, which is not a file")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(path)))
        return tuple(sources)

    @property
    def decode_limits(self) -> DecodeLimits:
        """The io layer's decode limits these settings describe (for uploaded files)."""
        return DecodeLimits(
            max_frame_pixels=self.max_frame_pixels,
            max_frames=self.max_frames,
            max_decoded_bytes=self.max_decoded_bytes,
        )

    @property
    def resolved_database_url(self) -> str:
        """The database URL (the embedded SQLite file unless one is configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'thermoscope.db').resolve()}"

    @property
    def resolved_blob_url(self) -> str:
        """The blob store URL (the embedded folder unless one is configured)."""
        return self.blob_url or str((self.data_dir / "blobs").resolve())
