"""What every dashboard process must agree on, kept in the broker's Redis: open sessions and failed sign-ins.

Counters in one process's memory would give each gunicorn worker its own allowance of guesses and
forget them on restart, and a session ended in one process would live on in the others.
"""

from __future__ import annotations

import time

import redis


class RedisState:
    """Keys under `<broker namespace>:dashboard:`, each with a TTL so nothing outlives its purpose."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client, self._prefix = client, prefix

    def open_session(self, session_id: str, seconds: int, operator: str) -> None:
        self._client.set(self._key("session", session_id), operator, ex=seconds)

    def session_operator(self, session_id: str) -> str | None:
        """The name of the operator whose open session this is, or None."""
        name = self._client.get(self._key("session", session_id))
        return name.decode() if isinstance(name, bytes) else name

    def close_session(self, session_id: str) -> None:
        self._client.delete(self._key("session", session_id))

    def count(self, name: str, window_seconds: int) -> None:
        """One more in the fixed window that starts with this name's first count."""
        key = self._key("count", name)
        with self._client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=window_seconds, nx=True)  # starts a window; INCR keeps its TTL (any Redis)
            pipe.incr(key)
            pipe.execute()

    def counted(self, name: str) -> tuple[int, int]:
        """(count in the current window, seconds until the window ends)."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.get(self._key("count", name))
            pipe.ttl(self._key("count", name))
            raw, ttl = pipe.execute()
        return int(raw or 0), max(int(ttl), 1)

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"


class MemoryState:
    """The same in one process, for a RabbitMQ broker: run a single dashboard process then."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._operators: dict[str, str] = {}

    def open_session(self, session_id: str, seconds: int, operator: str) -> None:
        self._expiry["session:" + session_id] = self._clock() + seconds
        self._operators[session_id] = operator

    def session_operator(self, session_id: str) -> str | None:
        return self._operators.get(session_id) if self._live("session:" + session_id) else None

    def close_session(self, session_id: str) -> None:
        self._expiry.pop("session:" + session_id, None)

    def count(self, name: str, window_seconds: int) -> None:
        if not self._live("count:" + name):
            self._expiry["count:" + name], self._counts[name] = self._clock() + window_seconds, 0
        self._counts[name] += 1

    def counted(self, name: str) -> tuple[int, int]:
        if not self._live("count:" + name):
            return 0, 1
        return self._counts[name], max(int(self._expiry["count:" + name] - self._clock()), 1)

    def _live(self, key: str) -> bool:
        return self._expiry.get(key, 0.0) > self._clock()


def state_for(broker) -> RedisState | MemoryState:
    """Redis when the broker has it, else this process's memory."""
    client = getattr(broker, "client", None)
    if isinstance(client, redis.Redis):
        return RedisState(client, f"{broker.namespace}:dashboard")
    return MemoryState()
