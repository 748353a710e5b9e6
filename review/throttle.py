"""Login throttling: per-account and per-client lockouts with a doubling back-off, kept in the database.

After ``login_failures_per_account`` failed logins for one name (known or not, so the answer tells
nothing about which names exist), or ``login_failures_per_client`` from one client address, every
further attempt is refused with 429 until the lock ends; each failure past the threshold doubles the
lock (1 s, 2 s, 4 s, ... up to ``login_lockout_max_seconds``). A successful login clears the account's
and the client's counts; counts older than an hour start again from zero. The state is the
``login_throttle`` table of the project database, so several server processes share it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from pipeline.store import Store
from pipeline.store.schema import LoginThrottleRow

log = logging.getLogger("qualflow.review.login")

RESET_AFTER_SECONDS = 3600.0
KEY_MAX = 320


@dataclass(frozen=True)
class ThrottlePolicy:
    """When to lock: failures per account and per client, and the longest lock in seconds."""

    per_account: int = 5
    per_client: int = 20
    max_lock_seconds: float = 900.0


def account_key(name: str) -> str:
    return ("account:" + name.strip().casefold())[:KEY_MAX]


def client_key(address: str) -> str:
    return ("client:" + address)[:KEY_MAX]


def lock_seconds(failures: int, threshold: int, max_lock: float) -> float:
    """The lock after ``failures`` failures: none below ``threshold``, then 1 s doubling to ``max_lock``.

    >>> [lock_seconds(n, 5, 900) for n in (4, 5, 6, 7, 40)]
    [0.0, 1.0, 2.0, 4.0, 900]
    """
    if failures < threshold:
        return 0.0
    return min(2.0 ** min(failures - threshold, 30), max_lock)


class LoginThrottle:
    """Check, record and clear failed logins in the project database."""

    def __init__(self, store: Store, policy: ThrottlePolicy) -> None:
        self.store = store
        self.policy = policy
        self.log = log

    def wait_seconds(self, name: str, client: str, now: float | None = None) -> int:
        """Seconds until a login for ``name`` from ``client`` may be tried (0: now)."""
        now = time.time() if now is None else now
        with self.store.transaction() as s:
            rows = [s.get(LoginThrottleRow, k) for k in (account_key(name), client_key(client))]
        until = max((r.locked_until for r in rows if r is not None), default=0.0)
        return max(int(until - now + 0.999), 0)

    def failed(self, name: str, client: str, now: float | None = None) -> None:
        """Count a failed login for the account and the client (and lock either past its threshold)."""
        now = time.time() if now is None else now
        for key, threshold in (
            (account_key(name), self.policy.per_account),
            (client_key(client), self.policy.per_client),
        ):
            failures = self._bump(key, now)
            lock = lock_seconds(failures, threshold, self.policy.max_lock_seconds)
            if lock:
                with self.store.transaction() as s:
                    s.execute(
                        update(LoginThrottleRow)
                        .where(LoginThrottleRow.key == key)
                        .values(locked_until=now + lock)
                    )
                log.warning(
                    "login throttled: %s locked for %.0f s after %d failed logins", key, lock, failures
                )

    def succeeded(self, name: str, client: str) -> None:
        """Clear the counts of the account and the client."""
        with self.store.transaction() as s:
            s.execute(
                delete(LoginThrottleRow).where(
                    LoginThrottleRow.key.in_([account_key(name), client_key(client)])
                )
            )

    def _bump(self, key: str, now: float) -> int:
        """Add one failure to ``key`` atomically (an UPDATE, or an INSERT for the first) and return the count."""
        t = LoginThrottleRow
        for _ in range(3):
            try:
                with self.store.transaction() as s:
                    s.execute(
                        update(t)
                        .where(t.key == key, t.last_failure < now - RESET_AFTER_SECONDS)
                        .values(failures=0, locked_until=0.0)
                    )
                    done = s.execute(
                        update(t).where(t.key == key).values(failures=t.failures + 1, last_failure=now)
                    )
                    if not getattr(done, "rowcount", 0):
                        s.add(LoginThrottleRow(key=key, failures=1, last_failure=now, locked_until=0.0))
                        s.flush()
                    row = s.get(t, key)
                    return row.failures if row is not None else 1
            except IntegrityError:  # another process inserted the same key first: count again
                continue
        return 1
