"""Webhook delivery on background threads: signing, retries with backoff, duplicates, shuffling, holding."""

import heapq
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPSConnection
from urllib.parse import urlsplit

from .ids import new_id
from .signing import signature_header

# Fast enough for tests; live Stripe backs off over three days.
DEFAULT_RETRY_DELAYS_SECONDS = [0.2, 0.5, 1, 2, 5]
# Receivers must answer quickly; Stripe's own limit is a few seconds longer.
DELIVERY_TIMEOUT_SECONDS = 5
# With shuffling on, each delivery waits up to this long so that events overtake each other.
SHUFFLE_WINDOW_SECONDS = 0.3
# Enough concurrent deliveries to keep up with a benchmark's event rate on localhost.
WORKER_COUNT = 4


@dataclass
class Endpoint:
    """A registered receiver and the secrets it is signed with."""

    id: str
    url: str
    secrets: list


@dataclass(order=True)
class Delivery:
    """One copy of one event on its way to one endpoint."""

    due: float
    seq: int
    event: dict = field(compare=False)
    endpoint: Endpoint = field(compare=False)
    attempt: int = field(default=1, compare=False)
    generation: int = field(default=0, compare=False)


class Dispatcher:
    """Queues events for every endpoint and delivers them with retries."""

    def __init__(self, on_result):
        self.on_result = on_result
        self.endpoints = {}
        self.retry_delays = list(DEFAULT_RETRY_DELAYS_SECONDS)
        self.timeout_seconds = DELIVERY_TIMEOUT_SECONDS
        self.options(duplicates=1, shuffle=False, hold=False, stale_seconds=0)
        self._cond = threading.Condition()
        self._queue, self._held, self._log = [], [], []
        self._busy = 0
        self._generation = 0
        self._seq = itertools.count()
        self._dispatched = itertools.count()
        self._threads = []
        self._stopping = False

    def options(self, duplicates=1, shuffle=False, hold=False, stale_seconds=0):
        """Set the delivery quirks applied to events emitted from now on."""
        self.duplicates, self.shuffle, self.hold, self.stale_seconds = (
            max(1, duplicates),
            shuffle,
            hold,
            stale_seconds,
        )

    def add_endpoint(self, url, secrets):
        """Register a receiver; returns its id, the existing one when the same URL and secrets are known."""
        for known in self.endpoints.values():
            # A demo restarted from a state file registers its endpoint again; deliver once, not twice.
            if (known.url, known.secrets) == (url, list(secrets)):
                return known.id
        endpoint = Endpoint(new_id("we"), url, list(secrets))
        self.endpoints[endpoint.id] = endpoint
        return endpoint.id

    def enqueue(self, event):
        """Queue an event for every endpoint; returns the number of endpoints."""
        fresh = [
            Delivery(0.0, 0, event, endpoint)
            for endpoint in self.endpoints.values()
            for _ in range(self.duplicates)
        ]
        with self._cond:
            if self.hold:
                self._held.extend(fresh)
            else:
                self._push_all(fresh, jitter=self.shuffle)
        return len(self.endpoints)

    def release_held(self):
        """Queue everything held back, in a shuffled order when shuffling is on."""
        with self._cond:
            held, self._held = self._held, []
            if self.shuffle:
                held = _shuffled(held)
            self._push_all(held, jitter=False)
        return len(held)

    def drop_held(self):
        """Forget everything held back, as if Stripe never delivered it; returns how many were dropped."""
        with self._cond:
            dropped, self._held = len(self._held), []
        return dropped

    def _push_all(self, deliveries, jitter):
        now = time.monotonic()
        for delivery in deliveries:
            delivery.due = now + (random.uniform(0, SHUFFLE_WINDOW_SECONDS) if jitter else 0.0)
            delivery.seq, delivery.generation = next(self._seq), self._generation
            heapq.heappush(self._queue, delivery)
        self._busy += len(deliveries)
        self._start_workers()
        self._cond.notify_all()

    def _start_workers(self):
        if self._threads:
            return
        for index in range(WORKER_COUNT):
            thread = threading.Thread(target=self._work, name=f"webhooks-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self):
        while True:
            delivery, order = self._next()
            if delivery is None:
                return
            status, error = self._send(delivery)
            self._record(delivery, order, status, error)

    def _next(self):
        with self._cond:
            while not self._stopping:
                if self._queue and self._queue[0].due <= time.monotonic():
                    return heapq.heappop(self._queue), next(self._dispatched)
                wait = self._queue[0].due - time.monotonic() if self._queue else None
                self._cond.wait(wait)
            return None, None

    def _send(self, delivery):
        payload = json.dumps(delivery.event).encode()
        timestamp = int(time.time()) - self.stale_seconds
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature_header(payload, delivery.endpoint.secrets, timestamp),
        }
        try:
            return _post(delivery.endpoint.url, payload, headers, self.timeout_seconds), None
        except OSError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(self, delivery, order, status, error):
        ok = status is not None and 200 <= status < 300
        with self._cond:
            if delivery.generation != self._generation:
                return
            self._log.append(
                {
                    "event_id": delivery.event["id"],
                    "type": delivery.event["type"],
                    "endpoint": delivery.endpoint.url,
                    "endpoint_id": delivery.endpoint.id,
                    "attempt": delivery.attempt,
                    "status": status,
                    "error": error,
                    "at": time.time(),
                    "order": order,
                }
            )
            retry = not ok and delivery.attempt <= len(self.retry_delays)
            if retry:
                delivery.due = time.monotonic() + self.retry_delays[delivery.attempt - 1]
                delivery.attempt += 1
                delivery.seq = next(self._seq)
                heapq.heappush(self._queue, delivery)
                self._cond.notify_all()
            else:
                self._busy -= 1
                self._cond.notify_all()
        if not retry:
            self.on_result(delivery.event["id"], delivery.endpoint.id, ok)

    def wait(self, timeout):
        """True once nothing is queued or in flight (held deliveries excepted)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    def log(self):
        """Every delivery attempt so far."""
        with self._cond:
            return [dict(entry) for entry in self._log]

    def held_count(self):
        """How many deliveries are held back."""
        with self._cond:
            return len(self._held)

    def reset(self):
        """Forget endpoints, queues, options and the log; late answers of old deliveries are ignored."""
        with self._cond:
            self._generation += 1
            self._queue, self._held, self._log = [], [], []
            self._busy = 0
            self.endpoints = {}
            self.retry_delays = list(DEFAULT_RETRY_DELAYS_SECONDS)
            self.options()
            self._cond.notify_all()

    def stop(self):
        """Stop the worker threads."""
        with self._cond:
            self._stopping = True
            self._threads = []
            self._cond.notify_all()

    def resume(self):
        """Allow deliveries again after `stop` (workers start with the next delivery)."""
        with self._cond:
            self._stopping = False


def _shuffled(items):
    # A permutation that is never the identity, so a test can rely on the order changing.
    if len(items) < 2:
        return items
    order = list(items)
    while [id(item) for item in order] == [id(item) for item in items]:
        random.shuffle(order)
    return order


def _post(url, payload, headers, timeout):
    parts = urlsplit(url)
    connection_class = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()
