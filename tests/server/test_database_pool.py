"""The PostgreSQL connection handling of ``Database``: read sessions hold no transaction open,
writes stay atomic, and a pooled connection the server ended is replaced at its next checkout
instead of failing the request that drew it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from thermoscope.server.db import Database


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    """A ``Database`` on the session's PostgreSQL database with one pooled connection."""
    database = Database(postgres_url, pool_size=1)
    yield database
    database.dispose()


def _backend_state(url: str, pid: int) -> str:
    """``pg_stat_activity.state`` of backend ``pid``, seen from another connection."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        state: str = conn.execute(
            text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar_one()
    admin.dispose()
    return state


def test_a_read_session_leaves_no_transaction_open(db: Database, postgres_url: str) -> None:
    with db.read() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert _backend_state(postgres_url, pid) == "idle"
    with db.write() as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
        assert _backend_state(postgres_url, pid) == "idle in transaction"


def _insert_then_fail(db: Database) -> None:
    with db.write() as session:
        session.execute(text("INSERT INTO pool_probe VALUES (1)"))
        raise RuntimeError("the request failed")


def test_a_failed_write_session_keeps_nothing(db: Database) -> None:
    with db.write() as session:
        session.execute(text("CREATE TEMPORARY TABLE pool_probe (n int)"))
    with pytest.raises(RuntimeError):
        _insert_then_fail(db)
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM pool_probe")).scalar_one() == 0


def test_a_connection_the_server_ended_is_replaced_at_checkout(
    db: Database, postgres_url: str
) -> None:
    with db.read() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # waits (up to 10 s) until the backend is gone
        ended = conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        assert ended.scalar_one() is True
    admin.dispose()
    with db.read() as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
