"""Injected faults (500, a 500 kept for its key, 429, hang, drop after commit) and the request rate limit."""

import collections
import time
from dataclasses import dataclass

# "500": refused before the endpoint ran, so a retry with the key runs it. "500_stored": the endpoint
# started and failed having done nothing; Stripe keeps that 500 for the key and replays it to every retry.
KINDS = ("500", "500_stored", "429", "429_retry", "hang", "drop_after_commit")


@dataclass
class Fault:
    """Answer the next `count` matching requests with `kind`."""

    kind: str
    count: int
    path: str | None
    method: str | None

    def matches(self, method, path):
        """Whether this fault applies to a request."""
        return (self.method in (None, "*", method)) and (self.path is None or path.startswith(self.path))


class Faults:
    """Pending faults, consumed in the order they were injected; callers hold the emulator lock."""

    def __init__(self):
        self.pending = []

    def add(self, kind, count=1, path=None, method="POST"):
        """Queue a fault."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        self.pending.append(Fault(kind, int(count), path, method.upper() if method else None))

    def take(self, method, path):
        """The kind of fault this request gets, or None."""
        for fault in self.pending:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                return fault.kind
        return None

    def clear(self):
        """Drop every pending fault."""
        self.pending.clear()


class RateLimit:
    """A sliding one-second window; None means unlimited."""

    def __init__(self):
        self.per_second = None
        self._recent = collections.deque()

    def allow(self):
        """Whether one more request fits in the last second."""
        if self.per_second is None:
            return True
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.per_second:
            return False
        self._recent.append(now)
        return True

    def set(self, per_second):
        """Change the limit and start a fresh window."""
        self.per_second = per_second
        self._recent.clear()
