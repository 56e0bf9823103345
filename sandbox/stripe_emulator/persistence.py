"""Saving state to a JSON file on stop and loading it on start, so a demo survives a restart."""

import json
import os

from .idempotency import Record
from .webhooks import Endpoint


def save(emu, path):
    """Write objects, clock offset, idempotency keys, endpoints and settings to `path`."""
    with emu.lock:
        data = {
            "store": emu.state.store.dump(),
            "clock_offset": emu.clock.offset,
            "ach_settle_after_seconds": emu.ach_settle_after_seconds,
            "key_ttl_seconds": emu.key_ttl_seconds,
            "keys": {k: _record(r) for k, r in emu._keys.records.items() if r.status is not None},
            "endpoints": [vars(e) for e in emu.dispatcher.endpoints.values()],
        }
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        json.dump(data, handle)
    # Replace atomically so a crash mid-write never leaves half a file behind.
    os.replace(temporary, path)


def _record(record):
    saved = dict(vars(record))
    saved["body"] = record.body.decode()
    return saved


def load(emu, path):
    """Restore what `save` wrote; a missing file means a fresh start."""
    if not os.path.exists(path):
        return
    with open(path) as handle:
        data = json.load(handle)
    with emu.lock:
        emu.state.store.load(data["store"])
        emu.clock.offset = data["clock_offset"]
        emu.ach_settle_after_seconds = data["ach_settle_after_seconds"]
        emu.key_ttl_seconds = data["key_ttl_seconds"]
        for key, saved in data["keys"].items():
            emu._keys.records[key] = Record(**dict(saved, body=saved["body"].encode()))
        for saved in data["endpoints"]:
            emu.dispatcher.endpoints[saved["id"]] = Endpoint(**saved)
