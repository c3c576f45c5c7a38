"""The database: engine set-up for SQLite (WAL) and PostgreSQL, sessions, and migrations.

Code paths are the same on both; what differs is configuration. SQLite allows one writer at a
time, so ``Database.write`` serialises write transactions in the process with a lock instead of
letting them collide and wait in SQLite's busy handler (whose back-off would add tens of
milliseconds of latency); PostgreSQL writes run concurrently.

Round trips to PostgreSQL cost both processes CPU, so the hot paths avoid the ones that carry
nothing: read sessions run in autocommit (no ``BEGIN`` / ``ROLLBACK`` around their statements;
under PostgreSQL's READ COMMITTED every statement takes its own snapshot anyway), and a pooled
connection is pinged only when it may have gone stale (``_stale_check``), not at every checkout.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from thermoscope.storage.files import private_dir, private_file

MIGRATIONS = Path(__file__).parent / "migrations"
#: Seconds a pooled PostgreSQL connection may sit idle before its next checkout pings it.
IDLE_PING_S = 10.0


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return on_connect


def _stale_check(engine: Engine) -> None:
    """Check a pooled server connection at checkout without a round trip while it is busy:
    one that has bytes waiting (a server that restarted or ended the backend sends its error
    and closes) is replaced, and one idle for ``IDLE_PING_S`` seconds or more is pinged first
    (``SELECT 1``); a replaced connection is transparent to the caller."""

    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None:  # a fresh connection
            return
        try:
            sock = dbapi_connection.fileno()
            waiting = bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError) as exc:  # closed: no socket any more
            raise DisconnectionError(str(exc)) from exc
        if waiting:
            raise DisconnectionError("the server sent something to an idle connection")
        if time.monotonic() - returned >= IDLE_PING_S:
            try:
                cursor = dbapi_connection.cursor()
                cursor.execute("SELECT 1")
                cursor.close()
            except engine.dialect.loaded_dbapi.Error as exc:
                raise DisconnectionError(str(exc)) from exc

    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "checkout", on_checkout)


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
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 4)
            _stale_check(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # pysqlite opens no transaction for a SELECT; PostgreSQL reads skip BEGIN / ROLLBACK
        reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reads = (
            self._sessions if self.is_sqlite else sessionmaker(reads, expire_on_commit=False)
        )
        self._write_lock = threading.Lock() if self.is_sqlite else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only: it must not write (on PostgreSQL each of its statements
        runs on its own, in autocommit; on SQLite it is rolled back at the end)."""
        with self._reads() as session:
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
