"""Log-in throttling: failed log-ins counted per user name and per client address, with a lock
that doubles with each failure past the free ones.

The counts live in the database (``login_throttle``), so every server process in front of one
database sees the same locks. A user name is throttled whether or not it exists, so a lock
reveals nothing about which names are real. A successful log-in clears its user name's count
(not its address's: logging in to one's own account must not reset a guesser's budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, bindparam, select, text
from sqlalchemy.orm import Session

from thermoscope.server.db.models import LoginThrottle, utc

#: Failures older than this are forgotten (the count starts again).
FORGET_AFTER = timedelta(days=1)

_COUNT_FAILURE = (
    text(
        "INSERT INTO login_throttle (key, failures, locked_until, updated_at) "
        "VALUES (:key, 1, NULL, :at) "
        "ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN login_throttle.updated_at < :forget "
        "THEN 1 ELSE login_throttle.failures + 1 END, updated_at = :at "
        "RETURNING failures"
    )
    .bindparams(
        bindparam("at", type_=DateTime(timezone=True)),
        bindparam("forget", type_=DateTime(timezone=True)),
    )
    .columns(failures=Integer)
)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures are free and how long the locks after them last.

    Attributes:
        free_per_account: failures of one user name before each further one locks it.
        free_per_address: failures from one address before each further one locks it.
        backoff_s: the first lock, seconds (doubling with each further failure).
        backoff_max_s: the longest lock, seconds.
    """

    free_per_account: int
    free_per_address: int
    backoff_s: float
    backoff_max_s: float

    def lock_s(self, failures: int, free: int) -> float:
        """Seconds of lock after the ``failures``-th failure (0 within the free ones)."""
        over = failures - free
        if over <= 0:
            return 0.0
        return min(self.backoff_max_s, self.backoff_s * 2.0 ** min(over - 1, 60))


def account_key(username: str) -> str:
    """The throttle key of a user name (as typed, lower-cased)."""
    return f"user:{username.lower()}"


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return f"addr:{address}"


def locked_for(session: Session, keys: list[str], at: datetime) -> float:
    """Seconds until none of ``keys`` is locked (0 when none is)."""
    rows = session.scalars(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.key.in_(keys), LoginThrottle.locked_until.is_not(None)
        )
    )
    remaining = [(utc(until) - at).total_seconds() for until in rows if until is not None]
    return max([0.0, *remaining])


def record_failure(
    session: Session, policy: ThrottlePolicy, keys: dict[str, int], at: datetime
) -> float:
    """Count a failed log-in against each key (``key -> free failures``); lock the keys past
    their free failures; returns the longest lock set, seconds (0 for none)."""
    longest = 0.0
    for key, free in keys.items():
        failures = session.execute(
            _COUNT_FAILURE, {"key": key, "at": at, "forget": at - FORGET_AFTER}
        ).scalar_one()
        lock = policy.lock_s(failures, free)
        if lock > 0:
            row = session.get(LoginThrottle, key)
            assert row is not None
            row.locked_until = at + timedelta(seconds=lock)
            longest = max(longest, lock)
    return longest


def clear(session: Session, key: str) -> None:
    """Forget the failures of ``key`` (after a successful log-in)."""
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)


__all__ = [
    "ThrottlePolicy",
    "account_key",
    "address_key",
    "clear",
    "locked_for",
    "record_failure",
]
