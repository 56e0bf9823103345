"""The shared Stripe limiter books slots in Redis with Stripe's shape: the account and each endpoint."""

import os

import pytest
import redis

from tasks.domain.rate_limits import StripeLimits, endpoint_name, parse_endpoint_limits
from tasks.gateways.limiter import RateLimitBacklog, StripeRateLimiter

KEY = f"test:limiter:{os.getpid()}"
CREATE, RETRIEVE = "POST /v1/payment_intents", "GET /v1/payment_intents/{id}"


@pytest.fixture()
def client():
    connection = redis.Redis.from_url(os.environ["BROKER_URL"])
    _forget(connection)
    yield connection
    _forget(connection)


def _forget(connection) -> None:
    keys = list(connection.scan_iter(match=f"{KEY}*"))
    if keys:
        connection.delete(*keys)


def _book(limiter: StripeRateLimiter, endpoint: str = CREATE) -> float:
    """Book a slot without sleeping for it: the seconds from now until it comes."""
    limits = limiter.limits
    args = [
        int(1e6 / limits.for_endpoint(endpoint)),
        int(1e6 / limits.global_rps),
        60_000,
        os.urandom(8).hex(),
    ]
    return int(limiter._reserve(keys=[f"{KEY}:endpoint:{endpoint}", f"{KEY}:account"], args=args)) / 1_000_000


def test_slots_are_spaced_one_interval_apart_across_limiters(client):
    first = StripeRateLimiter(client, 10, key=KEY)
    second = StripeRateLimiter(redis.Redis.from_url(os.environ["BROKER_URL"]), 10, key=KEY)
    waits = [_book(first if n % 2 else second) for n in range(6)]
    # Each booking is 0.1 s after the previous one, whichever process made it.
    for n, wait in enumerate(waits):
        assert wait == pytest.approx(n * 0.1, abs=0.05)


def test_an_endpoint_is_held_to_its_own_limit_below_the_global_one(client):
    limiter = StripeRateLimiter(client, StripeLimits(global_rps=100, endpoint_rps=10), key=KEY)
    waits = [_book(limiter, CREATE) for _ in range(5)]
    for n, wait in enumerate(waits):
        assert wait == pytest.approx(n * 0.1, abs=0.05)


def test_a_backlog_on_one_endpoint_does_not_hold_back_another(client):
    limiter = StripeRateLimiter(client, StripeLimits(global_rps=100, endpoint_rps=10), key=KEY)
    for _ in range(20):  # two seconds of creations booked ahead
        _book(limiter, CREATE)
    # A retrieve fits in the global timeline's first gap, not after the creations' backlog.
    assert _book(limiter, RETRIEVE) < 0.05


def test_every_endpoint_shares_the_global_limit(client):
    limiter = StripeRateLimiter(client, StripeLimits(global_rps=10, endpoint_rps=100), key=KEY)
    endpoints = [CREATE, RETRIEVE, "GET /v1/events", "POST /v1/refunds"]
    waits = sorted(_book(limiter, endpoints[n % 4]) for n in range(8))
    # Eight calls to four endpoints still take eight global slots 0.1 s apart.
    for earlier, later in zip(waits, waits[1:]):
        assert later - earlier == pytest.approx(0.1, abs=0.02)


def test_search_has_its_own_default_and_exceptions_override_defaults():
    limits = StripeLimits(global_rps=100, endpoint_rps=25, search_rps=20, endpoints={CREATE: 80})
    assert limits.for_endpoint("GET /v1/payment_intents/search") == 20
    assert limits.for_endpoint(CREATE) == 80
    assert limits.for_endpoint(RETRIEVE) == 25
    assert limits.scaled(0.5).for_endpoint(CREATE) == 40


def test_a_backlog_beyond_the_maximum_wait_is_refused_not_slept(client, monkeypatch):
    from tasks.gateways import limiter as module

    monkeypatch.setattr(module, "MAX_WAIT_SECONDS", 0.25)
    limited = StripeRateLimiter(client, 10, key=KEY)
    for _ in range(4):
        _book(limited)
    with pytest.raises(RateLimitBacklog, match="POST /v1/payment_intents"):
        limited.acquire(CREATE)


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("post", "/v1/payment_intents", "POST /v1/payment_intents"),
        ("GET", "/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa", RETRIEVE),
        ("POST", "/v1/payment_intents/pi_1/confirm", "POST /v1/payment_intents/{id}/confirm"),
        ("GET", "/v1/payment_intents/search?query=x", "GET /v1/payment_intents/search"),
        ("GET", "/v1/customers/cus_1/payment_methods", "GET /v1/customers/{id}/payment_methods"),
        ("GET", "/v1/events", "GET /v1/events"),
    ],
)
def test_an_endpoint_is_the_method_and_the_path_with_ids_as_placeholders(method, path, name):
    assert endpoint_name(method, path) == name


def test_endpoint_limits_parse_from_text_and_refuse_what_is_not_one():
    assert parse_endpoint_limits(" POST /v1/payment_intents=100, GET  /v1/payment_intents/{id}=50 ,") == {
        CREATE: 100.0,
        RETRIEVE: 50.0,
    }
    assert parse_endpoint_limits("") == {}
    for bad in ("POST /v1/payment_intents", "PUT /v1/x=3", "GET /v1/payment_intents/pi_1=3", f"{CREATE}=0"):
        with pytest.raises(ValueError, match="endpoint limit|positive"):
            parse_endpoint_limits(bad)
