"""A Redis-backed rate limiter shared by every process that calls Stripe."""

from __future__ import annotations

import time

import redis

from tasks.domain.errors import TransientError

# Generic cell rate algorithm: each call reserves the next free slot spaced 1/rate apart and
# returns how long to wait for it. Evenly spaced slots never exceed the rate in any window.
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[1], tat + interval, 'PX', ARGV[2])
return tat - now
"""

# A slot further away than this means a huge backlog: give the worker back and retry later.
MAX_WAIT_SECONDS = 30.0


class RateLimitBacklog(TransientError):
    """The shared Stripe budget is booked further ahead than MAX_WAIT_SECONDS."""


class StripeRateLimiter:
    """Spaces calls so that all processes together stay under requests_per_second."""

    def __init__(self, client: redis.Redis, requests_per_second: float, key: str = "remit:stripe:limiter"):
        self._reserve = client.register_script(_RESERVE_SLOT)
        self._interval_us = int(1_000_000 / requests_per_second)
        self._key = key

    def acquire(self) -> float:
        """Block until this call's slot comes; return the seconds waited."""
        ttl_ms = int(MAX_WAIT_SECONDS * 1000) + 60_000
        wait_s = int(self._reserve(keys=[self._key], args=[self._interval_us, ttl_ms])) / 1_000_000
        if wait_s > MAX_WAIT_SECONDS:
            raise RateLimitBacklog(f"Stripe budget booked {wait_s:.1f}s ahead")
        if wait_s > 0:
            time.sleep(wait_s)
        return wait_s
