"""Shared fixtures: where the third-party sample files are (tests marked ``samples`` skip with
the reason where they are absent), and the real services: a PostgreSQL server and an MQTT
broker, configured or started for the test session (see ``services.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sample_data import SKIP_REASON, samples_dir
from services import Broker, ServiceError, mosquitto_broker, postgres_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every test marked ``samples`` when the shared sample folder is absent."""
    if samples_dir() is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("samples") is not None:
            item.add_marker(skip)


@pytest.fixture
def samples() -> Path:
    """The shared sample folder; skips the test when it is absent."""
    found = samples_dir()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL maintenance database URL whose user may create databases (session-wide)."""
    try:
        with postgres_server() as url:
            yield url
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    """A running MQTT broker (Mosquitto) for the test session."""
    try:
        with mosquitto_broker() as broker:
            yield broker
    except ServiceError as exc:
        pytest.fail(str(exc), pytrace=False)
