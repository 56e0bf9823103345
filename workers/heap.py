"""Keep the garbage collector's full passes off the objects every server process holds from start to exit.

A Remit process holds about 100,000 objects from its imports (SQLAlchemy's mappers, the Stripe SDK,
Dramatiq, psycopg) and from opening its connections. CPython's full collection walks all of them while
every thread of the process waits: measured in the webhook receiver under load, 70-130 ms per pass,
and those passes were most of its slowest answers. Objects alive once a process has started are
alive until it exits, so they are collected once and moved out of the collector's generations
(gc.freeze, as CPython's documentation suggests for servers); what the process allocates afterwards
is collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect what start-up left behind, then exempt every object still alive from later passes.

    Returns how many objects are now exempt. Safe to call more than once: each call adds what was
    allocated since.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
