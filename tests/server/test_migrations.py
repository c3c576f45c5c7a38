"""Migrations: the same ones on SQLite and PostgreSQL, a second run is a no-op, and they
create exactly the tables the models describe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from thermoscope.server.db import Database, alembic_config
from thermoscope.server.db.models import Base, User


def snapshot(db: Database) -> dict[str, Any]:
    """Tables, columns, indexes and the migration revision of a database."""
    found = inspect(db.engine)
    tables = {}
    for name in sorted(found.get_table_names()):
        tables[name] = (
            [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(name)],
            sorted(str(sorted(i.items())) for i in found.get_indexes(name)),
            sorted(str(u["column_names"]) for u in found.get_unique_constraints(name)),
        )
    with db.engine.connect() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    return {"tables": tables, "revision": revision}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database (a new SQLite file, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
        yield db
        db.dispose()
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin_url: str = request.getfixturevalue("postgres_admin_url")
    name = f"{request.node.name.split('[')[0][:20]}_{tmp_path.name[-8:]}".lower()
    name = "".join(ch if ch.isalnum() else "_" for ch in name)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    yield db
    db.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_second_migration_is_a_no_op(fresh: Database) -> None:
    fresh.migrate()
    first = snapshot(fresh)
    assert "frames" in first["tables"]
    assert first["revision"] == ScriptDirectory.from_config(alembic_config()).get_current_head()
    with fresh.write() as session:
        session.add(User(username="keep", password_hash="x", is_admin=False))
    fresh.migrate()
    assert snapshot(fresh) == first
    with fresh.read() as session:
        assert session.scalars(select(User.username)).all() == ["keep"]


def test_migrations_create_what_the_models_describe(fresh: Database) -> None:
    fresh.migrate()
    with fresh.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()
