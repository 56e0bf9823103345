"""A Redis-backed rate limiter with Stripe's shape, shared by every process that calls Stripe.

Stripe limits requests per second twice: once for the whole account (the global limit) and once per
endpoint, where an endpoint is one named API operation (`POST /v1/payment_intents` and
`GET /v1/payment_intents/{id}` are two; every PaymentIntent id counts against the same one). A call
must fit both. Each endpoint's bucket is a queue of evenly spaced slots (a generic cell rate
algorithm); the global bucket is a timeline of booked slots that a call may fill anywhere it fits,
so a backlog on one endpoint never holds back calls to the others.
"""

from __future__ import annotations

import secrets
import time

import redis

from tasks.domain.errors import TransientError
from tasks.domain.rate_limits import StripeLimits

# KEYS[1]: the endpoint's next free slot (microseconds); KEYS[2]: the global timeline (a sorted set
# of booked slots). ARGV: endpoint interval, global interval (both microseconds), key TTL (ms), and a
# unique member name. The slot is the endpoint's next one, moved past any global booking closer
# than one global interval; both are booked and the wait returned.
_RESERVE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local endpoint_interval = tonumber(ARGV[1])
local global_interval = tonumber(ARGV[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
-- Lua writes big numbers as 1.7e+15 when concatenating: every bound is formatted as an integer.
local function exclusive(x) return string.format('(%.0f', x) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', exclusive(now - global_interval))
-- Each step moves past a later booking, so the walk ends; the cap only guards the server.
for _ = 1, 100000 do
  local near = redis.call('ZRANGEBYSCORE', KEYS[2], exclusive(slot - global_interval),
                          exclusive(slot + global_interval), 'WITHSCORES', 'LIMIT', 0, 1)
  if #near == 0 then
    redis.call('SET', KEYS[1], string.format('%.0f', slot + endpoint_interval), 'PX', ARGV[3])
    redis.call('ZADD', KEYS[2], string.format('%.0f', slot), ARGV[4])
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    return slot - now
  end
  slot = tonumber(near[2]) + global_interval
end
return slot - now
"""

# A slot further away than this means a huge backlog: give the worker back and retry later.
MAX_WAIT_SECONDS = 30.0


class RateLimitBacklog(TransientError):
    """The shared Stripe budget is booked further ahead than MAX_WAIT_SECONDS."""


class StripeRateLimiter:
    """Spaces calls so that all processes together stay under the global and each endpoint's limit."""

    def __init__(self, client: redis.Redis, limits: StripeLimits | float, key: str = "remit:stripe:limiter"):
        """key: the prefix of the bookings, "<key>:account" (a sorted set) and "<key>:endpoint:<endpoint>".

        (Before endpoints had buckets, "<key>" itself held one string: a deploy mixing both versions
        books the two shapes under different names, and the old one expires.)
        """
        self._reserve = client.register_script(_RESERVE_SLOT)
        self._limits = limits if isinstance(limits, StripeLimits) else StripeLimits(limits, limits, limits)
        self._key = key

    @property
    def limits(self) -> StripeLimits:
        return self._limits

    def acquire(self, endpoint: str = "GET /v1") -> float:
        """Block until this call's slot comes; return the seconds waited."""
        ttl_ms = int(MAX_WAIT_SECONDS * 1000) + 60_000
        args = [
            int(1_000_000 / self._limits.for_endpoint(endpoint)),
            int(1_000_000 / self._limits.global_rps),
            ttl_ms,
            secrets.token_hex(8),
        ]
        waited_us = self._reserve(
            keys=[f"{self._key}:endpoint:{endpoint}", f"{self._key}:account"], args=args
        )
        wait_s = int(waited_us) / 1_000_000
        if wait_s > MAX_WAIT_SECONDS:
            raise RateLimitBacklog(f"Stripe budget for {endpoint} booked {wait_s:.1f}s ahead")
        if wait_s > 0:
            time.sleep(wait_s)
        return wait_s
