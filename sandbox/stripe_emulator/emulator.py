"""The `Emulator` facade: server lifecycle, clock, webhooks, faults and inspection for tests and demos."""

import threading

from . import persistence, settlement
from .faults import Faults, RateLimit
from .idempotency import Keys
from .inspection import Inspection
from .server import Server
from .state import State
from .webhooks import Dispatcher

# How often the background ticker lets real time settle ACH payments and prune keys.
TICK_SECONDS = 0.25
# Pruning walks every key, so real-time pruning runs only every few seconds.
PRUNE_EVERY_TICKS = 20
# A hung request must outlast any sensible client timeout.
DEFAULT_HANG_SECONDS = 30


class Emulator(Inspection):
    """A Stripe the real SDK cannot tell apart, served on 127.0.0.1."""

    def __init__(self, api_key="sk_test_emulator", state_file=None):
        self.api_key = api_key
        self.state_file = state_file
        self.lock = threading.RLock()
        self.hang_seconds = DEFAULT_HANG_SECONDS
        self._server = None
        self._stopped = threading.Event()
        self._generation = 0
        self.dispatcher = Dispatcher(self._delivery_result)
        self._fresh_state()

    def _fresh_state(self):
        self.state = State(on_event=self._on_event)
        if getattr(self, "_server", None) is not None:
            self.state.hooks_url = self.url
        self.clock = self.state.clock
        self._keys, self._faults, self._rate = Keys(), Faults(), RateLimit()
        self._requests, self.crashes = [], []
        self._wake = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port=0, host="127.0.0.1"):
        """Serve on a background thread; returns self."""
        if self.state_file:
            persistence.load(self, self.state_file)
        self._server = Server((host, port), self)
        self.state.hooks_url = self.url
        self._stopped.clear()
        self.dispatcher.resume()
        threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="stripe-emulator", daemon=True
        ).start()
        threading.Thread(target=self._tick, name="stripe-emulator-clock", daemon=True).start()
        return self

    @property
    def url(self):
        """The base address to give the SDK."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self):
        """Stop serving, saving state first when a state file was given."""
        self._stopped.set()
        self._wake.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self.dispatcher.stop()
        if self.state_file:
            persistence.save(self, self.state_file)

    def reset(self):
        """Forget all objects, keys, faults, endpoints and logs; hung requests are dropped."""
        with self.lock:
            self._generation += 1
            self._wake.set()
            settle, ttl = self.ach_settle_after_seconds, self.key_ttl_seconds
            self._fresh_state()
            self.state.ach_settle_after_seconds, self._keys.ttl_seconds = settle, ttl
            self.dispatcher.reset()

    def _tick(self):
        ticks = 0
        while not self._stopped.wait(TICK_SECONDS):
            ticks += 1
            self.settle(prune=ticks % PRUNE_EVERY_TICKS == 0)

    # -- clock -----------------------------------------------------------------------------------

    def now(self):
        """Emulator time in unix seconds."""
        return self.clock.now()

    def advance(self, seconds):
        """Move the clock, then settle what became due; returns the number of timers fired."""
        with self.lock:
            self.clock.advance(seconds)
            return self.settle()

    def settle(self, prune=True):
        """Fire due timers and prune old idempotency keys; returns the number of timers fired."""
        with self.lock:
            fired = settlement.settle_due(self.state)
            if prune:
                self._keys.prune(self.clock.time())
            return fired

    @property
    def ach_settle_after_seconds(self):
        """Seconds from sending an ACH debit (or bank refund) to its settlement."""
        return self.state.ach_settle_after_seconds

    @ach_settle_after_seconds.setter
    def ach_settle_after_seconds(self, seconds):
        self.state.ach_settle_after_seconds = seconds

    @property
    def key_ttl_seconds(self):
        """Age after which idempotency keys are pruned."""
        return self._keys.ttl_seconds

    @key_ttl_seconds.setter
    def key_ttl_seconds(self, seconds):
        self._keys.ttl_seconds = seconds

    # -- webhooks --------------------------------------------------------------------------------

    def add_webhook_endpoint(self, url, secrets):
        """Register a receiver signed with one `v1` per secret; returns its `we_...` id."""
        return self.dispatcher.add_endpoint(url, secrets)

    def webhook_options(self, duplicates=1, shuffle=False, hold=False, stale_seconds=0):
        """Delivery quirks for events created from now on."""
        self.dispatcher.options(duplicates, shuffle, hold, stale_seconds)

    @property
    def webhook_retry_delays(self):
        """Seconds to wait before each retry of a failed delivery."""
        return self.dispatcher.retry_delays

    @webhook_retry_delays.setter
    def webhook_retry_delays(self, delays):
        self.dispatcher.retry_delays = list(delays)

    def release_held(self):
        """Deliver everything held back; returns how many deliveries were released."""
        return self.dispatcher.release_held()

    def drop_held(self):
        """Never deliver what is held back (the events stay undelivered); returns how many were dropped."""
        return self.dispatcher.drop_held()

    def wait_for_deliveries(self, timeout=10.0):
        """True once every queued delivery got a 2xx or ran out of retries."""
        return self.dispatcher.wait(timeout)

    def deliveries(self):
        """Every delivery attempt and the answer it got, in the order they were made."""
        return self.dispatcher.log()

    def events(self):
        """Every event created, oldest first."""
        return self._inspect("event")

    def _on_event(self, event):
        count = self.dispatcher.enqueue(event)
        event["pending_webhooks"] = count
        hidden = self.state.store.hidden(event["id"])
        hidden["pending_endpoints"] = list(self.dispatcher.endpoints)
        hidden["undelivered"] = count > 0

    def _delivery_result(self, event_id, endpoint_id, ok):
        with self.lock:
            event = self.state.store.objects["event"].get(event_id)
            if event is None or not ok:
                return
            hidden = self.state.store.hidden(event_id)
            pending = hidden.setdefault("pending_endpoints", [])
            if endpoint_id in pending:
                pending.remove(endpoint_id)
            event["pending_webhooks"] = len(hidden["pending_endpoints"])
            hidden["undelivered"] = bool(hidden["pending_endpoints"])

    # -- faults ----------------------------------------------------------------------------------

    def inject_fault(self, kind, count=1, path=None, method="POST"):
        """Make the next `count` matching requests fail with `kind`."""
        with self.lock:
            self._faults.add(kind, count, path, method)

    def clear_faults(self):
        """Drop pending faults."""
        with self.lock:
            self._faults.clear()

    def set_rate_limit(
        self,
        requests_per_second,
        endpoint_requests_per_second=None,
        search_requests_per_second=None,
        endpoints=None,
    ):
        """Answer 429 as Stripe does above the account's limit or an endpoint's (None: unlimited).

        endpoints: {"POST /v1/payment_intents": 100, ...} for endpoints with a limit of their own.
        """
        with self.lock:
            self._rate.set(
                requests_per_second, endpoint_requests_per_second, search_requests_per_second, endpoints
            )
            return self._rate.describe()

    def release_hangs(self):
        """Let requests hung by the `hang` fault finish now instead of after `hang_seconds`."""
        with self.lock:
            self._wake.set()
            self._wake = threading.Event()

    def _hang(self):
        """Sleep a hung request; False when a reset or stop means it should be dropped instead."""
        wake, generation = self._wake, self._generation
        wake.wait(self.hang_seconds)
        return generation == self._generation and not self._stopped.is_set()

    def in_flight_keys(self):
        """Idempotency keys whose first request is still running."""
        with self.lock:
            return self._keys.in_flight()

    def _log_request(self, method, path, key):
        record = {
            "method": method,
            "path": path,
            "idempotency_key": key,
            "status": None,
            "replayed": False,
            "fault": None,
            "at": self.clock.time(),
        }
        with self.lock:
            self._requests.append(record)
        return record
