"""Fixtures of the server tests: the app on SQLite and on a throwaway PostgreSQL database,
logged-in clients, users with roles, and small radiometric files to ingest.

The PostgreSQL database (``thermoscope_test_<random>`` on ``THERMOSCOPE_TEST_PG``, default
127.0.0.1:5432 as user postgres) is created once per test session, migrated, emptied before
each test and dropped at the end; the PostgreSQL cases skip with the reason when the server
cannot be reached.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_support import (
    ADMIN_PASSWORD,
    API,
    PG_SERVER,
    Server,
    make_settings,
    pg_admin_url,
)
from sqlalchemy import create_engine, text

from thermoscope.server import create_app
from thermoscope.server.db.models import Base


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    name = f"thermoscope_test_{secrets.token_hex(4)}"
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection failure means: no PostgreSQL here
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER} ({type(exc).__name__}: {exc})")
    url = f"{PG_SERVER}/{name}"
    try:
        from thermoscope.server.db import Database

        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty(url: str) -> None:
    """Delete every row (children first); much faster than TRUNCATE on small tables."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of one test: a new SQLite file, or the emptied PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'thermoscope.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _empty(url)
    return url


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    """The app on the test's database with a logged-in administrator client."""
    app = create_app(make_settings(tmp_path, database_url))
    with TestClient(app) as client:
        response = client.post(
            f"{API}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield Server(app, client)
