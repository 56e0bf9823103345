"""In-memory objects by kind, with the private bookkeeping Stripe keeps off the wire."""

import copy
import itertools

from .errors import no_such
from .ids import new_id

# Stripe's prefix for each kind, so any id can be resolved when expanding.
PREFIXES = {
    "customer": "cus",
    "payment_method": "pm",
    "payment_intent": "pi",
    "setup_intent": "seti",
    "charge": "ch",
    "refund": "re",
    "dispute": "dp",
    "event": "evt",
    "mandate": "mandate",
}


class Store:
    """Every object the emulator created, plus hidden per-object fields such as test behaviour."""

    def __init__(self):
        self.objects = {kind: {} for kind in PREFIXES}
        self.private = {}
        self.order = {}
        # Object id -> emulator time at which the clock must act on it (ACH settlement, timeouts).
        self.timers = {}
        self._counter = itertools.count()

    def add(self, kind, obj, **private):
        """Store a new object, giving it an id if it has none."""
        obj.setdefault("id", new_id(PREFIXES[kind]))
        self.objects[kind][obj["id"]] = obj
        self.private[obj["id"]] = dict(private)
        self.order[obj["id"]] = next(self._counter)
        return obj

    def get(self, kind, object_id, param="id"):
        """The object, or Stripe's 404."""
        obj = self.objects[kind].get(object_id)
        if obj is None:
            raise no_such(kind.replace("_", ""), object_id, param)
        return obj

    def find(self, object_id):
        """Any object by id, or None."""
        for table in self.objects.values():
            if object_id in table:
                return table[object_id]
        return None

    def all(self, kind):
        """Objects of a kind, oldest first."""
        return sorted(self.objects[kind].values(), key=lambda o: self.order[o["id"]])

    def hidden(self, object_id):
        """The private fields of an object."""
        return self.private.setdefault(object_id, {})

    def dump(self):
        """A JSON-ready copy of everything."""
        return {
            "objects": copy.deepcopy(self.objects),
            "private": copy.deepcopy(self.private),
            "order": dict(self.order),
            "timers": dict(self.timers),
        }

    def load(self, data):
        """Replace everything with a dump."""
        self.objects = {kind: dict(data["objects"].get(kind, {})) for kind in PREFIXES}
        self.private = dict(data["private"])
        self.order = {k: int(v) for k, v in data["order"].items()}
        self.timers = dict(data.get("timers", {}))
        self._counter = itertools.count(max(self.order.values(), default=-1) + 1)
