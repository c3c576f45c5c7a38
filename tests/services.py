"""The real services the tests use: PostgreSQL and Mosquitto, configured or started here.

PostgreSQL: ``THERMOSCOPE_TEST_PG`` names a server (``postgresql+psycopg://user@host:port``,
optionally with the maintenance database as its path, default ``postgres``) whose user may
create databases. Without it a throwaway cluster is started from Debian's ``postgresql``
binaries (``/usr/lib/postgresql/<version>/bin`` or ``PATH``): ``initdb`` into a temp folder,
``pg_ctl start`` on a free loopback port with trust authentication and no fsync, removed at the
end. PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user
(or ``nobody``) through ``runuser``, in a temp folder that user owns.

Mosquitto: ``THERMOSCOPE_TEST_MQTT`` (``host:port``) names a broker; without it ``mosquitto``
is started on a free loopback port with a config of its own (anonymous, no persistence; as root
with ``user root`` so that it keeps running as root instead of switching users).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_ENV = "THERMOSCOPE_TEST_PG"
MQTT_ENV = "THERMOSCOPE_TEST_MQTT"


class ServiceError(RuntimeError):
    """A service the tests need can neither be found nor started (the message says what to do)."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout_s: float = 30.0, alive: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive.poll() is not None:
            raise ServiceError(f"the service exited with code {alive.returncode} while starting")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


def postgres_bin(name: str) -> Path:
    """A PostgreSQL server program, newest version first (Debian keeps them off ``PATH``)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise ServiceError(
        f"no PostgreSQL server programs ({name}) found: install Debian's postgresql package "
        f"(`make test` does) or set {PG_ENV} to a server the tests may use"
    )


def _service_user() -> str | None:
    """The unprivileged user to run PostgreSQL as when we are root (``None``: run as we are)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServiceError("running as root and neither user postgres nor nobody exists")


def _run(command: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run(
        [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yield its maintenance URL; remove it afterwards."""
    user = _service_user()
    root = Path(tempfile.mkdtemp(prefix="thermoscope-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, log = root / "data", root / "server.log"
    started = False
    try:
        initdb = [str(postgres_bin("initdb")), "-D", str(data), "-U", "postgres", "-A", "trust"]
        init = _run([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"], user)
        if init.returncode != 0:
            raise ServiceError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            port = free_port()
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            pg_ctl = [str(postgres_bin("pg_ctl")), "-D", str(data), "-l", str(log), "-o", options]
            start = _run([*pg_ctl, "-w", "-t", "60", "start"], user)
            if start.returncode == 0:
                started = True
                break
        if not started:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else start.stderr
            raise ServiceError(f"pg_ctl start failed: {text.strip()}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run([str(postgres_bin("pg_ctl")), "-D", str(data), "-m", "immediate", "stop"], user)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The maintenance URL of the configured PostgreSQL server, else of a throwaway cluster."""
    configured = os.environ.get(PG_ENV)
    if configured:
        from sqlalchemy.engine import make_url

        url = make_url(configured)
        yield str(url if url.database else url.set(database="postgres"))
        return
    with postgres_cluster() as url:
        yield url


@dataclass(frozen=True)
class Broker:
    """An MQTT broker's loopback address."""

    host: str
    port: int


@contextmanager
def mosquitto_broker(*, port: int | None = None, data_dir: Path | None = None) -> Iterator[Broker]:
    """The configured MQTT broker, else a ``mosquitto`` started here on a free port.

    With ``port``, always a ``mosquitto`` started here on that port (a test that stops and
    restarts a broker starts it again on the same port); with ``data_dir``, that broker keeps
    retained messages, persistent sessions and their queued messages in ``data_dir`` (saved
    when it stops, read when it starts again).
    """
    configured = os.environ.get(MQTT_ENV)
    if configured and port is None and data_dir is None:
        host, _, port = configured.rpartition(":")
        yield Broker(host or "127.0.0.1", int(port))
        return
    program = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).is_file()), None
    )
    if program is None:
        raise ServiceError(
            f"mosquitto not found: install Debian's mosquitto package (`make test` does) or set "
            f"{MQTT_ENV}=host:port"
        )
    root = Path(tempfile.mkdtemp(prefix="thermoscope-mqtt-"))
    port = free_port() if port is None else port
    config = root / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true"]
    if data_dir is None:
        lines.append("persistence false")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        lines += ["persistence true", f"persistence_location {data_dir}/", "autosave_interval 1"]
    if os.geteuid() == 0:
        lines.append("user root")
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (root / "mosquitto.log").open("wb") as log:
        process = subprocess.Popen([program, "-c", str(config)], stdout=log, stderr=log)
    try:
        wait_for_port(port, alive=process)
        yield Broker("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
