"""What the processes count: prometheus_client counters and histograms for /metrics, and per-minute counts in
Redis for the dashboard's charts of the last hour.

prometheus_client keeps each process's values in its own memory, or in files under
PROMETHEUS_MULTIPROC_DIR when that is set before the process starts (then /metrics adds up every
process on the host). The charts cannot wait for a Prometheus server, so the same events also go to
Redis, one key per name and minute, kept two hours. Counting never fails the work it counts.
"""

from __future__ import annotations

import logging
import time

import dramatiq.broker
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import Counter, Histogram

_log = logging.getLogger(__name__)

MESSAGES = Counter(
    "remit_messages",
    "Messages handled per queue, actor and outcome (processed, failed).",
    ["queue", "actor", "outcome"],
)
DURATION = Histogram(
    "remit_message_duration_seconds",
    "Seconds an actor ran per message.",
    ["actor"],
    # Remit's jobs take milliseconds to a minute (the default time limit).
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LATENCY = Histogram(
    "remit_queue_latency_seconds",
    "Seconds from enqueue (or a retry's due time) to a worker starting the message, per queue.",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
STRIPE_REQUESTS = Counter(
    "remit_stripe_requests", "Calls to Stripe's API per outcome (ok, rate_limited, error).", ["outcome"]
)

# The charts show the last hour by minute; two hours of keys leave room for a late read.
MINUTE_KEY_TTL_SECONDS = 2 * 3600
CHART_MINUTES = 60
# Daily totals, as Sidekiq keeps them: a month shown, kept half a year.
HISTORY_DAYS = 30
DAY_KEY_TTL_SECONDS = 180 * 86400
# The per-minute series the charts read (each a count of events in that minute).
SERIES = ("processed", "failed", "stripe_requests", "stripe_rate_limited")


def minute_key(namespace: str, name: str, minute: int) -> str:
    return f"{namespace}:stats:{name}:{minute}"


# INCRBY and EXPIRE of each key in one atomic round trip: KEYS are the counters, ARGV the amount and TTL.
_COUNT = """
for _, key in ipairs(KEYS) do
  redis.call("incrby", key, ARGV[1])
  redis.call("expire", key, ARGV[2])
end
"""


def add(client: redis.Redis, keys: list[str], amount: int, ttl_seconds: int) -> None:
    """Add amount to each key and renew its TTL; raises RedisError."""
    client.eval(_COUNT, len(keys), *keys, amount, ttl_seconds)


# A running message in its process's hash of running messages: HSET with a TTL renewal, or HDEL when the value
# is empty. KEYS[1] is the hash; ARGV the message id, the value and the TTL in seconds.
_RUNNING = """
if ARGV[2] == "" then
  redis.call("hdel", KEYS[1], ARGV[1])
else
  redis.call("hset", KEYS[1], ARGV[1], ARGV[2])
  redis.call("expire", KEYS[1], ARGV[3])
end
"""


def mark_running(client: redis.Redis, key: str, message_id: str, value: str, ttl_seconds: int) -> None:
    """Record a message as running in key's hash (value "" removes it); raises RedisError."""
    client.eval(_RUNNING, 1, key, message_id, value, ttl_seconds)


# One message's end: the overall per-minute counter of its outcome, its actor's per-minute hash (a count per
# outcome and the milliseconds it ran), the per-day counter of its outcome, and (with a fourth key) its entry
# in its process's running hash removed. ARGV: the outcome, ms, the two TTLs and the message id.
_MESSAGE = """
redis.call("incr", KEYS[1])
redis.call("expire", KEYS[1], ARGV[3])
redis.call("hincrby", KEYS[2], ARGV[1], 1)
redis.call("hincrby", KEYS[2], "ms", ARGV[2])
redis.call("expire", KEYS[2], ARGV[3])
redis.call("incr", KEYS[3])
redis.call("expire", KEYS[3], ARGV[4])
if KEYS[4] then redis.call("hdel", KEYS[4], ARGV[5]) end
"""


def day_key(namespace: str, outcome: str, day: int) -> str:
    return f"{namespace}:stats:day:{outcome}:{day}"


def read_days(
    client: redis.Redis, namespace: str, now_s: float, days: int = HISTORY_DAYS
) -> dict[str, list[int]]:
    """Messages processed and failed per UTC day for the last `days` days, oldest first, today last."""
    last = int(now_s // 86400)
    span = range(last - days + 1, last + 1)
    values = client.mget(
        [day_key(namespace, outcome, d) for outcome in ("processed", "failed") for d in span]
    )
    counts = [int(v or 0) for v in values]
    return {"processed": counts[:days], "failed": counts[days:]}


def actor_key(namespace: str, actor: str, minute: int) -> str:
    return f"{namespace}:stats:actor:{actor}:{minute}"


def count_message(
    client: redis.Redis,
    namespace: str,
    actor: str,
    outcome: str,
    ms: int,
    now_s: float | None = None,
    *,
    running: tuple[str, str] | None = None,
) -> None:
    """A message ended (processed or failed) after ms milliseconds: counted for the charts and its actor's
    row, and taken off running (its process's running hash, its message id); a Redis error is logged."""
    now_s = now_s if now_s is not None else time.time()
    minute, day = int(now_s // 60), int(now_s // 86400)
    keys = [minute_key(namespace, outcome, minute), actor_key(namespace, actor, minute)]
    keys += [day_key(namespace, outcome, day), *([running[0]] if running else [])]
    arguments = [outcome, ms, MINUTE_KEY_TTL_SECONDS, DAY_KEY_TTL_SECONDS, running[1] if running else ""]
    try:
        client.eval(_MESSAGE, len(keys), *keys, *arguments)
    except (redis.RedisError, OSError):
        _log.debug("could not count a message of %s in Redis", actor)


def read_actors(
    client: redis.Redis, namespace: str, actors: list[str], now_s: float, minutes: int = CHART_MINUTES
) -> dict[str, dict[str, list[int]]]:
    """Per actor, per minute of the last `minutes` (oldest first): processed, failed and ms run."""
    last = int(now_s // 60)
    span = range(last - minutes + 1, last + 1)
    with client.pipeline(transaction=False) as pipe:
        for actor in actors:
            for minute in span:
                pipe.hmget(actor_key(namespace, actor, minute), ["processed", "failed", "ms"])
        answers = pipe.execute()
    found = {}
    for i, actor in enumerate(actors):
        rows = answers[i * minutes : (i + 1) * minutes]
        found[actor] = {
            name: [int(row[n] or 0) for row in rows] for n, name in enumerate(("processed", "failed", "ms"))
        }
    return found


def count_minute(client: redis.Redis, namespace: str, names: list[str], now_s: float | None = None) -> None:
    """One more of each name in this minute's bucket; a Redis error is logged, never raised."""
    minute = int((now_s if now_s is not None else time.time()) // 60)
    try:
        add(client, [minute_key(namespace, name, minute) for name in names], 1, MINUTE_KEY_TTL_SECONDS)
    except (redis.RedisError, OSError):
        _log.debug("could not count %s in Redis", names)


def read_minutes(
    client: redis.Redis, namespace: str, now_s: float, minutes: int = CHART_MINUTES
) -> dict[str, list[int]]:
    """Each series' counts for the last `minutes` minutes, oldest first, the current minute last."""
    last = int(now_s // 60)
    span = range(last - minutes + 1, last + 1)
    keys = [minute_key(namespace, name, m) for name in SERIES for m in span]
    values = client.mget(keys)
    counts = [int(v or 0) for v in values]
    return {name: counts[i * minutes : (i + 1) * minutes] for i, name in enumerate(SERIES)}


def count_stripe_request(outcome: str) -> None:
    """A call to Stripe's API ended (ok, rate_limited or error): counted for /metrics and the charts."""
    STRIPE_REQUESTS.labels(outcome).inc()
    broker = dramatiq.broker.global_broker  # never get_broker(): it would make a default broker to count in
    if isinstance(broker, RedisBroker):
        names = ["stripe_requests"] + (["stripe_rate_limited"] if outcome == "rate_limited" else [])
        count_minute(broker.client, broker.namespace, names)
