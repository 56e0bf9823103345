"""`remit queues`: each queue's depth and oldest message, and the broker clients alive by their heartbeats."""

from __future__ import annotations

import argparse
import time

from workers.commands.common import CommandError

# Dramatiq beats on every fetch (at least once per poll timeout, 1 s at most here) and on every send; a
# consumer older than this is between polls no longer, and one past the broker's heartbeat timeout (30 s)
# has its messages handed to others.
BEATING_MS = 3_000


def cmd_queues(args: argparse.Namespace) -> int:
    from workers.broker import QUEUES, broker
    from workers.cli import require_broker
    from workers.dashboard.queues import QueuesUnavailable, read_queue_stats

    require_broker()
    now_ms = int(time.time() * 1000)
    try:
        stats = read_queue_stats(broker, QUEUES, now_ms)
        beats = _heartbeats(broker, now_ms)
    except QueuesUnavailable as exc:
        raise CommandError(str(exc)) from None
    print(
        f"{'queue':<12} {'waiting':>8} {'in flight':>10} {'delayed':>8} {'dead (Redis)':>13}  oldest waiting"
    )
    for q in stats:
        age = "-" if q.oldest_age_seconds is None else f"{q.oldest_age_seconds:.1f} s"
        print(f"{q.queue:<12} {q.waiting:>8} {q.in_flight:>10} {q.delayed:>8} {q.dead_letters:>13}  {age}")
    print(
        f"\n{len(beats)} broker client(s) by heartbeat "
        "(workers beat on every poll; a sender beats as it sends):"
    )
    for broker_id, age_ms, busy in beats:
        state = "polling" if age_ms < BEATING_MS else "quiet"
        holding = ", ".join(f"{queue} {count}" for queue, count in busy) or "nothing"
        print(f"  {broker_id}  last beat {age_ms / 1000:.1f} s ago ({state}), holding {holding}")
    return 0


def _heartbeats(broker, now_ms: int) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """(broker id, ms since its last beat, [(queue, messages held)]) for every client, newest first."""
    from workers.dashboard.queues import QueuesUnavailable

    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None:
        raise QueuesUnavailable("heartbeats are only readable on the Redis broker")
    try:
        beats = client.zrevrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True)
        found = []
        for raw_id, beat_ms in beats:
            broker_id = raw_id.decode()
            prefix = f"{namespace}:__acks__.{broker_id}."
            keys = sorted(k.decode() for k in client.scan_iter(match=prefix + "*", count=500))
            held = [(key[len(prefix) :], client.scard(key)) for key in keys]
            found.append((broker_id, max(now_ms - int(beat_ms), 0), held))
    except Exception as exc:  # redis-py raises RedisError and OSError subclasses alike
        raise QueuesUnavailable(f"Redis did not answer: {exc}") from exc
    return found


def register(sub) -> None:
    from workers.cli import BROKER, command

    command(
        sub, "queues", "queue depths and ages, and the workers alive by their heartbeats", cmd_queues, BROKER
    )
