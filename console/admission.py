"""Who may try now: login attempts and live streams, in bounded memory.

Logins are slowed three ways. One name from one address is locked for 15 minutes after five
failures in 15 minutes. One name from anywhere waits longer after each failure past five
(1 s, 2 s, 4 s … up to 15 minutes): guessing from many addresses crawls too, and the right
user, who fails rarely, waits little. All names together get at most `rate_per_s` attempts
a second (a token bucket), which also bounds the CPU spent on Argon2. Every table keeps at
most `max_keys` entries, dropping the least recently failed, so a flood of names cannot
fill the memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]


class LoginThrottle:
    """Refuse logins for a while after repeated failures; bound the global attempt rate."""

    LIMIT = 5  # failures of one name from one address ...
    WINDOW_S = 15 * 60  # ... within this long lock that pair for as long
    NAME_FREE = 5  # failures of one name from anywhere before its backoff starts
    NAME_MAX_WAIT_S = 15 * 60

    def __init__(
        self,
        clock: Clock,
        rate_per_s: float = 5.0,
        burst: int = 20,
        max_keys: int = 10_000,
    ) -> None:
        self.clock = clock
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._pairs: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        self._names: OrderedDict[str, tuple[int, float]] = OrderedDict()  # failures, last
        self._tokens = float(burst)
        self._filled_at = clock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LoginThrottle pairs={len(self._pairs)} names={len(self._names)}>"

    def __len__(self) -> int:
        return len(self._pairs) + len(self._names)

    def admit(self) -> bool:
        """Take one attempt from the global budget; False if the console is flooded."""
        with self._lock:
            now = self.clock()
            elapsed = max(0.0, now - self._filled_at)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
            self._filled_at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def wait_s(self, user: str, address: str) -> float:
        """Return how long `user` from `address` must wait before trying (0: try now)."""
        name = user.lower()
        with self._lock:
            now = self.clock()
            recent = [t for t in self._pairs.get((name, address), []) if t > now - self.WINDOW_S]
            pair_wait = recent[0] + self.WINDOW_S - now if len(recent) >= self.LIMIT else 0.0
            failures, last = self._names.get(name, (0, 0.0))
            name_wait = max(0.0, last + self._backoff(failures) - now)
            return max(pair_wait, name_wait)

    def locked(self, user: str, address: str) -> bool:
        """True if `user` from `address` may not try now."""
        return self.wait_s(user, address) > 0

    def failed(self, user: str, address: str) -> None:
        """Count a wrong password."""
        name = user.lower()
        with self._lock:
            now = self.clock()
            recent = [t for t in self._pairs.pop((name, address), []) if t > now - self.WINDOW_S]
            self._pairs[(name, address)] = [*recent[-(self.LIMIT - 1) :], now]
            failures, last = self._names.pop(name, (0, 0.0))
            if now - last > self.WINDOW_S + self._backoff(failures):
                failures = 0  # quiet for long enough: start again
            self._names[name] = (failures + 1, now)
            for table in (self._pairs, self._names):
                while len(table) > self.max_keys:
                    table.popitem(last=False)

    def succeeded(self, user: str, address: str) -> None:
        """Forget the failures of `user` (the right password was given)."""
        name = user.lower()
        with self._lock:
            self._pairs.pop((name, address), None)
            self._names.pop(name, None)

    def _backoff(self, failures: int) -> float:
        if failures < self.NAME_FREE:
            return 0.0
        return float(min(2 ** (failures - self.NAME_FREE), self.NAME_MAX_WAIT_S))


class StreamSlots:
    """Count open live streams, per session and in total; refuse one past either limit."""

    def __init__(self, per_session: int, total: int) -> None:
        self.per_session = per_session
        self.total = total
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<StreamSlots open={sum(self._open.values())}/{self.total}>"

    def take(self, session: str) -> str | None:
        """Take a slot for `session`; return why not (None: taken)."""
        with self._lock:
            if self._open.get(session, 0) >= self.per_session:
                return f"this session has {self.per_session} live streams open already"
            if sum(self._open.values()) >= self.total:
                return f"the console serves {self.total} live streams already"
            self._open[session] = self._open.get(session, 0) + 1
            return None

    def release(self, session: str) -> None:
        """Give a slot back."""
        with self._lock:
            left = self._open.get(session, 0) - 1
            if left > 0:
                self._open[session] = left
            else:
                self._open.pop(session, None)
