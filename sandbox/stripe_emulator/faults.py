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


class _Window:
    """A sliding one-second window of admitted requests."""

    def __init__(self, per_second):
        self.per_second = per_second
        self._recent = collections.deque()

    def fits(self, now):
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        return len(self._recent) < self.per_second

    def add(self, now):
        self._recent.append(now)


class RateLimit:
    """Stripe's limiters: one for the account and one per endpoint; a request must fit both.

    None for a limit means unlimited. An endpoint is a named operation ("POST /v1/payment_intents",
    "GET /v1/payment_intents/{id}"); one without a limit of its own gets `endpoint_per_second`, a search
    `search_per_second`. A refused request counts against neither.
    """

    def __init__(self):
        self.set(None)

    def allow(self, endpoint=None):
        """Whether one more request to endpoint fits in the last second of every limit it meets."""
        now = time.monotonic()
        windows = [self._global] if self._global else []
        limit = self._endpoint_limit(endpoint) if endpoint else None
        if limit is not None:
            windows.append(self._endpoints.setdefault(endpoint, _Window(limit)))
        if not all(window.fits(now) for window in windows):
            return False
        for window in windows:
            window.add(now)
        return True

    def set(self, per_second, endpoint_per_second=None, search_per_second=None, endpoints=None):
        """Change the limits and start fresh windows."""
        self.per_second = per_second
        self.endpoint_per_second = endpoint_per_second
        self.search_per_second = search_per_second if search_per_second is not None else endpoint_per_second
        self.endpoint_limits = dict(endpoints or {})
        self._global = _Window(per_second) if per_second is not None else None
        self._endpoints = {}

    def describe(self):
        """The limits in force, as the control API reports them."""
        return {
            "requests_per_second": self.per_second,
            "endpoint_requests_per_second": self.endpoint_per_second,
            "search_requests_per_second": self.search_per_second,
            "endpoints": dict(self.endpoint_limits),
        }

    def _endpoint_limit(self, endpoint):
        if endpoint in self.endpoint_limits:
            return self.endpoint_limits[endpoint]
        return self.search_per_second if endpoint.endswith("/search") else self.endpoint_per_second
