"""The mutable world the handlers act on: objects, clock, settings and the event hook."""

import json
from dataclasses import dataclass, field

from .clock import Clock
from .store import Store

# The API version the installed SDK pins; events carry it like Stripe's do.
API_VERSION = "2026-10-28.endive"
# ACH debits settle about four business days after they are sent.
DEFAULT_ACH_SETTLE_SECONDS = 4 * 86400
# Stripe gives microdeposit verification ten days before it times out.
MICRODEPOSIT_TIMEOUT_SECONDS = 10 * 86400
# Microdeposits arrive in one to two business days.
MICRODEPOSIT_ARRIVAL_SECONDS = 2 * 86400


def snapshot(obj):
    """A deep copy of a JSON-shaped object; a JSON round trip is several times faster than deepcopy."""
    return json.loads(json.dumps(obj))


@dataclass
class Call:
    """One API request as the handlers see it."""

    method: str
    path: str
    params: dict
    args: tuple = ()
    request_id: str | None = None
    idempotency_key: str | None = None
    # Made with a publishable key (pk_test_...), as Stripe.js in a customer's browser makes it.
    publishable: bool = False


@dataclass
class State:
    """Objects, clock and settings shared by every handler under the emulator's lock."""

    store: Store = field(default_factory=Store)
    clock: Clock = field(default_factory=Clock)
    ach_settle_after_seconds: int = DEFAULT_ACH_SETTLE_SECONDS
    on_event: object = None
    call: Call | None = None
    # Where the test 3-D Secure page is served: Stripe's hooks.stripe.com, the emulator's own address once up.
    hooks_url: str = "https://hooks.stripe.com"

    def now(self):
        """Emulator time in seconds."""
        return self.clock.now()

    def emit(self, type_, obj, previous=None):
        """Record an event with a snapshot of `obj` and hand it to the webhook dispatcher."""
        call = self.call
        event = {
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": {"object": snapshot(obj)},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {
                "id": call.request_id if call else None,
                "idempotency_key": call.idempotency_key if call else None,
            },
            "type": type_,
        }
        if previous:
            event["data"]["previous_attributes"] = previous
        self.store.add("event", event)
        if self.on_event:
            self.on_event(event)
        return event
