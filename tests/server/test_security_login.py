"""Log-in hardening (issue 10): failed log-ins throttled per account and per address with a
back-off kept in the database, and the same password-hash work for unknown users."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from server_support import ADMIN_PASSWORD, API, PASSWORD, Server, make_settings
from sqlalchemy import select, update

from thermoscope.server import create_app
from thermoscope.server.auth.throttle import ThrottlePolicy
from thermoscope.server.db.models import LoginThrottle, now
from thermoscope.server.routers.auth import throttle_policy


def _login(client: TestClient, username: str, password: str) -> int:
    response = client.post(f"{API}/auth/login", json={"username": username, "password": password})
    return response.status_code


def _unlock(server: Server) -> None:
    """Let every back-off pass (as if its time had gone by)."""
    with server.app.state.ctx.db.write() as session:
        session.execute(update(LoginThrottle).values(locked_until=now() - timedelta(seconds=1)))


def test_fifty_wrong_passwords_lock_the_account(server: Server) -> None:
    server.user("alice")
    client = server.client()
    codes = [_login(client, "alice", f"guess-{i}") for i in range(50)]
    assert codes[:5] == [401] * 5  # the free failures
    assert codes[5] == 401  # the sixth fails and locks
    assert set(codes[6:]) == {429}  # locked: not even checked
    locked = client.post(f"{API}/auth/login", json={"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "try again in" in locked.json()["detail"]
    _unlock(server)
    assert _login(client, "alice", PASSWORD) == 200
    with server.app.state.ctx.db.read() as session:  # success clears the account's count
        keys = set(session.scalars(select(LoginThrottle.key)))
    assert "user:alice" not in keys


def test_back_off_doubles_and_is_capped(server: Server) -> None:
    server.user("bob")
    client = server.client()
    locks = []
    for i in range(9):
        _unlock(server)
        assert _login(client, "bob", f"guess-{i}") == 401
        with server.app.state.ctx.db.read() as session:
            row = session.get(LoginThrottle, "user:bob")
            assert row is not None
            seconds = (row.locked_until - row.updated_at).total_seconds() if row.locked_until else 0
            locks.append(max(0, round(seconds)))
    assert locks[:5] == [0] * 5
    assert locks[5:] == [1, 2, 4, 8]
    policy = throttle_policy(server.app.state.ctx.settings)
    assert policy.lock_s(5 + 30, 5) == 900.0  # capped at login_backoff_max_s
    assert policy.lock_s(10**6, 5) == 900.0


def test_unknown_user_is_throttled_like_a_known_one(server: Server) -> None:
    client = server.client()
    codes = [_login(client, "nobody-here", f"guess-{i}") for i in range(8)]
    assert codes == [401] * 6 + [429] * 2


def test_the_address_is_throttled_across_accounts(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, login_failures_per_address=10)
    with TestClient(create_app(settings)) as client:
        codes = [_login(client, f"user{i}", "wrong-password") for i in range(12)]
        assert codes == [401] * 11 + [429]
        assert _login(client, "admin", ADMIN_PASSWORD) == 429  # the address is locked


def test_the_lock_is_shared_by_server_processes(tmp_path: Path) -> None:
    """Two apps on one database (as two server processes): one's failures lock the other."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = create_app(make_settings(tmp_path / "a", url))
    second = create_app(make_settings(tmp_path / "b", url))
    with TestClient(first) as one, TestClient(second) as two:
        for i in range(6):
            assert _login(one, "admin", f"guess-{i}") == 401
        assert _login(two, "admin", ADMIN_PASSWORD) == 429


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification made (the work a log-in costs)."""
    calls: list[str] = []
    original = PasswordHasher.verify

    def counted(self: PasswordHasher, stored: str | bytes, password: str | bytes) -> bool:
        calls.append("verify")
        return original(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    return calls


def test_unknown_users_cost_the_same_hash_work(server: Server, hash_calls: list[str]) -> None:
    server.user("carol")
    client = server.client()
    hash_calls.clear()
    assert _login(client, "carol", "wrong-password") == 401
    known = len(hash_calls)
    hash_calls.clear()
    assert _login(client, "not-a-user", "wrong-password") == 401
    unknown = len(hash_calls)
    assert known == unknown == 1
    # and the unknown user's check is a real argon2 hash with the configured cost
    nobody = server.app.state.ctx.passwords._nobody
    assert nobody.startswith("$argon2id$")
    assert "m=64,t=1" in nobody


@given(
    free=st.integers(1, 100),
    failures=st.integers(0, 10_000),
    backoff=st.floats(0.001, 3600),
    cap=st.floats(0.001, 86400),
)
def test_lock_grows_with_failures_and_stays_capped(
    free: int, failures: int, backoff: float, cap: float
) -> None:
    policy = ThrottlePolicy(
        free_per_account=free, free_per_address=free, backoff_s=backoff, backoff_max_s=cap
    )
    lock = policy.lock_s(failures, free)
    assert (lock == 0) == (failures <= free)
    assert 0 <= lock <= cap
    assert policy.lock_s(failures + 1, free) >= lock
