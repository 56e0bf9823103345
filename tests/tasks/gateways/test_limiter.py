"""The shared Stripe limiter books evenly spaced slots in Redis, across every client."""

import os

import pytest
import redis

from tasks.gateways.limiter import RateLimitBacklog, StripeRateLimiter


@pytest.fixture()
def client():
    connection = redis.Redis.from_url(os.environ["BROKER_URL"])
    connection.delete("test:limiter")
    yield connection
    connection.delete("test:limiter")


def _book(limiter) -> float:
    return int(limiter._reserve(keys=[limiter._key], args=[limiter._interval_us, 60_000])) / 1_000_000


def test_slots_are_spaced_one_interval_apart_across_limiters(client):
    first = StripeRateLimiter(client, 10, key="test:limiter")
    second = StripeRateLimiter(redis.Redis.from_url(os.environ["BROKER_URL"]), 10, key="test:limiter")
    waits = [_book(first if n % 2 else second) for n in range(6)]
    # Each booking is 0.1 s after the previous one, whichever process made it.
    for n, wait in enumerate(waits):
        assert wait == pytest.approx(n * 0.1, abs=0.05)


def test_a_backlog_beyond_the_maximum_wait_is_refused_not_slept(client, monkeypatch):
    from tasks.gateways import limiter as module

    monkeypatch.setattr(module, "MAX_WAIT_SECONDS", 0.25)
    limited = StripeRateLimiter(client, 10, key="test:limiter")
    for _ in range(4):
        _book(limited)
    with pytest.raises(RateLimitBacklog):
        limited.acquire()
