"""The database: engine set-up for SQLite (WAL) and PostgreSQL, sessions, and migrations.

Code paths are the same on both; what differs is configuration. SQLite allows one writer at a
time, so ``Database.write`` serialises write transactions in the process with a lock instead of
letting them collide and wait in SQLite's busy handler (whose back-off would add tens of
milliseconds of latency); PostgreSQL writes run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from thermoscope.storage.files import private_dir, private_file

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return on_connect


class Database:
    """An engine with a session factory; ``read()`` and ``write()`` give sessions.

    Args:
        url: SQLAlchemy URL (``sqlite:///file.db`` or ``postgresql+psycopg://...``).
        pool_size: connections kept to a server database.
        sqlite_synchronous: ``PRAGMA synchronous`` for SQLite (``FULL`` or ``NORMAL``).
    """

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:" and not path.startswith("file:"):
                # the database holds password and token hashes: only the server's user reads it
                private_dir(Path(path).parent)
                private_file(Path(path))
            # one connection per worker thread that may need one: the request thread pool is
            # larger than SQLAlchemy's default pool of 5 + 10
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=pool_size,
                max_overflow=100,
            )
            event.listen(self.engine, "connect", _sqlite_pragmas(sqlite_synchronous))
        else:
            self.engine = create_engine(
                url, pool_size=pool_size, max_overflow=pool_size * 4, pool_pre_ping=True
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading (rolled back at the end)."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a transaction, committed at the end unless an exception leaves it."""
        with self._write_lock or nullcontext(), self._sessions() as session, session.begin():
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        migrate(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config() -> Config:
    """An Alembic configuration for the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision``; running it twice is a no-op."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
