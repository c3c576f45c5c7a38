"""The services the tests use are real and come up on their own: a PostgreSQL cluster started
from the installed binaries when no server is configured, and a Mosquitto broker."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import services
from services import PG_ENV, Broker, ServiceError, postgres_cluster


def _query(url: str, sql: str) -> object:
    """The single value a query returns (``None`` for a statement without rows)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(sql))
            return result.scalar_one() if result.returns_rows else None
    finally:
        engine.dispose()


def test_the_session_server_creates_databases(postgres_admin_url: str) -> None:
    assert str(_query(postgres_admin_url, "SELECT version()")).startswith("PostgreSQL")
    _query(postgres_admin_url, 'CREATE DATABASE "services_probe"')
    _query(postgres_admin_url, 'DROP DATABASE "services_probe"')
    if not os.environ.get(PG_ENV):  # none configured: a cluster of our own, in a temp folder
        data = str(_query(postgres_admin_url, "SHOW data_directory"))
        assert Path(data).parent.name.startswith("thermoscope-pg-"), data


def test_a_throwaway_cluster_is_removed_afterwards() -> None:
    with postgres_cluster() as url:
        data = Path(str(_query(url, "SHOW data_directory")))
        port = int(str(_query(url, "SHOW port")))
        assert _query(url, "SHOW fsync") == "off"
        assert data.is_dir()
    assert not data.parent.exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # stopped


def test_without_postgresql_programs_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    with pytest.raises(ServiceError, match="install Debian's postgresql package"):
        services.postgres_bin("initdb")


def _connack(broker: Broker) -> bytes:
    """Send an MQTT 3.1.1 CONNECT; return the broker's answer."""
    client = b"thermoscope-test"
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"  # protocol name, level 4, clean session, 60 s
    payload = len(client).to_bytes(2, "big") + client
    body = variable + payload
    with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        return sock.recv(4)


def test_the_mqtt_broker_accepts_a_client(mqtt_broker: Broker) -> None:
    assert _connack(mqtt_broker) == b"\x20\x02\x00\x00"  # CONNACK, accepted
    if not os.environ.get(services.MQTT_ENV):
        assert mqtt_broker.port != 1883  # our own broker, not the machine's
