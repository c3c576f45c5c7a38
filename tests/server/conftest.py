"""Fixtures of the server tests: the app on SQLite and on a throwaway PostgreSQL database,
logged-in clients, users with roles, and small radiometric files to ingest.

The PostgreSQL database (``thermoscope_test_<random>``) is created once per test session on the
server of ``postgres_admin_url`` (``THERMOSCOPE_TEST_PG``, else a throwaway cluster started for
the session: see ``tests/services.py``), migrated, emptied before each test and dropped at the
end. The PostgreSQL cases never skip: without a server they fail, saying what to install.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_support import ADMIN_PASSWORD, API, Server, make_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from thermoscope.server import create_app
from thermoscope.server.db.models import Base


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (dropped afterwards)."""
    name = f"thermoscope_test_{secrets.token_hex(4)}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
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
