"""Queue depths and ages read straight from Dramatiq's Redis layout, one round trip for every queue.

Per queue, under the broker's namespace: `{q}` is the list of ids waiting, `{q}.msgs` the hash of
every unacknowledged message (waiting and in flight), `{q}.DQ.msgs` the delayed ones (retries
backing off; workers hold them in memory until due), `{q}.XQ` the dead letters scored by time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dramatiq import Message
from dramatiq.errors import DecodeError

# Dramatiq pushes requeued messages to the tail, so the head is not always the oldest; a few suffice.
HEAD_SAMPLE = 10


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int
    in_flight: int
    delayed: int
    dead_letters: int
    oldest_age_seconds: float | None

    @property
    def states(self) -> dict[str, int]:
        return {
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "delayed": self.delayed,
            "dead_letter": self.dead_letters,
        }


class QueuesUnavailable(Exception):
    """The broker cannot be read (down, or not Redis)."""


def read_queue_stats(broker, queues: tuple[str, ...], now_ms: int) -> list[QueueStats]:
    """Stats for each queue; raise QueuesUnavailable when the broker cannot be read."""
    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None or namespace is None:
        raise QueuesUnavailable("queue depths are only readable on the Redis broker")
    try:
        counts = _counts(client, namespace, queues)
        heads = _head_messages(client, namespace, queues, counts)
    except Exception as exc:  # redis-py raises RedisError and OSError subclasses alike
        raise QueuesUnavailable(f"Redis did not answer: {exc}") from exc
    return [
        QueueStats(
            queue=q,
            waiting=waiting,
            in_flight=max(unacked - waiting, 0),
            delayed=delayed,
            dead_letters=dead,
            oldest_age_seconds=_oldest_age(heads[q], now_ms),
        )
        for q, (waiting, unacked, delayed, dead) in zip(queues, counts)
    ]


def _counts(client, namespace: str, queues: tuple[str, ...]) -> list[tuple[int, int, int, int]]:
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        key = f"{namespace}:{queue}"
        pipe.llen(key).hlen(f"{key}.msgs").hlen(f"{key}.DQ.msgs").zcard(f"{key}.XQ")
    flat = pipe.execute()
    return [tuple(flat[i : i + 4]) for i in range(0, len(flat), 4)]


def _head_messages(client, namespace: str, queues, counts) -> dict[str, list[bytes | None]]:
    busy = [q for q, (waiting, *_rest) in zip(queues, counts) if waiting]
    heads: dict[str, list[bytes | None]] = {q: [] for q in queues}
    if not busy:
        return heads
    pipe = client.pipeline(transaction=False)
    for queue in busy:
        pipe.lrange(f"{namespace}:{queue}", 0, HEAD_SAMPLE - 1)
    ids = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for queue, message_ids in zip(busy, ids):
        pipe.hmget(f"{namespace}:{queue}.msgs", message_ids or ["-"])
    for queue, encoded in zip(busy, pipe.execute()):
        heads[queue] = encoded
    return heads


def _oldest_age(encoded_messages: list[bytes | None], now_ms: int) -> float | None:
    stamps = [_timestamp(m) for m in encoded_messages if m]
    stamps = [s for s in stamps if s is not None]
    return max(now_ms - min(stamps), 0) / 1000 if stamps else None


def _timestamp(encoded: bytes) -> int | None:
    try:
        return int(Message.decode(encoded).message_timestamp)
    except DecodeError:  # an undecodable message has no age to report; the count still shows it
        return None


# The retry set shown: the soonest due per queue; the count beside it is the whole set.
DELAYED_SHOWN = 50


@dataclass(frozen=True)
class Delayed:
    """A message waiting in a delay queue: a retry backing off, or a message sent with a delay."""

    queue: str
    message_id: str
    actor: str
    args: list
    retries: int
    due_in_seconds: float | None
    error: str


@dataclass(frozen=True)
class Running:
    """A message a worker process is running now."""

    queue: str
    actor: str
    args: list
    seconds: float


@dataclass(frozen=True)
class Process:
    """A worker process: what it published at boot, its last Dramatiq heartbeat, what it runs now."""

    id: str
    host: str
    pid: str
    queues: str
    threads: int
    running: list[Running]
    started_seconds_ago: float
    heartbeat_seconds_ago: float

    @property
    def busy(self) -> int:
        return len(self.running)


def read_delayed(broker, queues: tuple[str, ...], now_ms: int, limit: int = DELAYED_SHOWN) -> list[Delayed]:
    """The delay queues' messages, soonest due first; raise QueuesUnavailable when Redis cannot be read."""
    client, namespace = _redis(broker)
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.hvals(f"{namespace}:{queue}.DQ.msgs")
        found = [
            _delayed(queue, raw, now_ms) for queue, values in zip(queues, pipe.execute()) for raw in values
        ]
    except Exception as exc:  # redis-py raises RedisError and OSError subclasses alike
        raise QueuesUnavailable(f"Redis did not answer: {exc}") from exc
    found = [d for d in found if d is not None]
    found.sort(key=lambda d: d.due_in_seconds if d.due_in_seconds is not None else float("inf"))
    return found[:limit]


def _delayed(queue: str, raw: bytes, now_ms: int) -> Delayed | None:
    try:
        message = Message.decode(raw)
    except DecodeError:
        return None
    eta = message.options.get("eta")
    traceback = message.options.get("traceback") or ""
    return Delayed(
        queue=queue,
        message_id=message.message_id,
        actor=message.actor_name,
        args=list(message.args),
        retries=int(message.options.get("retries", 0) or 0),
        due_in_seconds=(eta - now_ms) / 1000 if eta else None,
        error=traceback.strip().splitlines()[-1] if traceback.strip() else "",
    )


def read_processes(broker, now_ms: int, alive_ms: int) -> list[Process]:
    """Worker processes whose Dramatiq heartbeat is younger than alive_ms and that published themselves."""
    client, namespace = _redis(broker)
    try:
        beats = client.zrangebyscore(
            f"{namespace}:__heartbeats__", now_ms - alive_ms, "+inf", withscores=True
        )
        pipe = client.pipeline(transaction=False)
        for worker_id, _ in beats:
            key = f"{namespace}:remit:process:{_text(worker_id)}"
            pipe.hgetall(key).hvals(key + ":running")
        answers = pipe.execute()
    except Exception as exc:  # as above
        raise QueuesUnavailable(f"Redis did not answer: {exc}") from exc
    found = [
        _process(_text(worker_id), beat, {_text(k): _text(v) for k, v in info.items()}, running, now_ms)
        for (worker_id, beat), info, running in zip(beats, answers[::2], answers[1::2])
        if info
    ]
    return sorted(found, key=lambda p: (p.host, int(p.pid) if p.pid.isdigit() else 0))


def _process(worker_id: str, beat: float, info: dict[str, str], running: list, now_ms: int) -> Process:
    return Process(
        id=worker_id,
        host=info.get("host", "?"),
        pid=info.get("pid", "?"),
        queues=info.get("queues", ""),
        threads=int(info.get("threads", 0) or 0),
        running=sorted(filter(None, (_running(raw, now_ms) for raw in running)), key=lambda r: -r.seconds),
        started_seconds_ago=max(now_ms / 1000 - int(info.get("started_at", 0) or 0), 0),
        heartbeat_seconds_ago=max(now_ms - beat, 0) / 1000,
    )


def _running(raw: bytes, now_ms: int) -> Running | None:
    try:
        found = json.loads(raw)
        return Running(
            found["queue"], found["actor"], found["args"], max(now_ms / 1000 - found["started_at"], 0)
        )
    except (ValueError, KeyError, TypeError):  # not written by Telemetry: nothing to show
        return None


def _redis(broker):
    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None or namespace is None:
        raise QueuesUnavailable("workers and delayed messages are only readable on the Redis broker")
    return client, namespace


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Waiting messages a queue's page shows, from its head.
WAITING_SHOWN = 50


@dataclass(frozen=True)
class Waiting:
    """A message waiting in a queue for a worker."""

    message_id: str
    actor: str
    args: list
    age_seconds: float | None


def read_waiting(broker, queue: str, now_ms: int, limit: int = WAITING_SHOWN) -> list[Waiting]:
    """The first `limit` messages waiting in the queue, head first; raise QueuesUnavailable."""
    client, namespace = _redis(broker)
    try:
        ids = client.lrange(f"{namespace}:{queue}", 0, limit - 1)
        encoded = client.hmget(f"{namespace}:{queue}.msgs", ids) if ids else []
    except Exception as exc:  # as above
        raise QueuesUnavailable(f"Redis did not answer: {exc}") from exc
    return [w for w in (_waiting(raw, now_ms) for raw in encoded if raw) if w is not None]


def _waiting(raw: bytes, now_ms: int) -> Waiting | None:
    try:
        message = Message.decode(raw)
    except DecodeError:
        return None
    stamp = message.message_timestamp
    return Waiting(
        message.message_id, message.actor_name, list(message.args), (now_ms - stamp) / 1000 if stamp else None
    )
