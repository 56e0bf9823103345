"""The gateway keeps every process under Stripe's limits as the emulator enforces them: never a 429."""

import gc
import os
import threading

import pytest
import redis

from tasks.domain.rate_limits import StripeLimits
from tasks.gateways.stripe import build_gateway

LIMITS = StripeLimits(global_rps=40, endpoint_rps=8, search_rps=4)


@pytest.fixture()
def limited(emulator, without_collector_pauses):
    namespace = f"{os.environ['BROKER_NAMESPACE']}-limits"
    connection = redis.Redis.from_url(os.environ["BROKER_URL"])
    stale = list(connection.scan_iter(match=f"{namespace}:*"))
    if stale:
        connection.delete(*stale)
    emulator.set_rate_limit(40, endpoint_requests_per_second=8, search_requests_per_second=4)
    yield build_gateway(
        "sk_test_remit_tests",
        emulator.url,
        5.0,
        os.environ["BROKER_URL"],
        LIMITS,
        limiter_namespace=namespace,
    )
    emulator.set_rate_limit(None)


@pytest.fixture()
def without_collector_pauses():
    """No full garbage collection during a burst: the emulator serves from this process, and a
    collection over a whole suite's objects stopped its threads and ours for ~200 ms, so requests spaced
    by the limiter reached it bunched (seen as one 429 in a run of the whole suite), which Stripe's
    own servers would never do to us."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_burst_on_one_endpoint_from_many_threads_never_meets_a_429(emulator, limited):
    def create(n: int) -> None:
        limited.create_customer(
            account_id=n, email=f"c{n}@example.com", name=f"C{n}", idempotency_key=f"c-{n}"
        )

    threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = [r["status"] for r in emulator.requests()]
    assert len(emulator.customers()) == 20
    assert statuses == [200] * 20  # 20 creations at 8/s: spaced by the limiter, none refused


def test_searches_keep_to_the_stricter_search_limit(emulator, limited):
    for n in range(6):
        assert limited.find_payment_intent(n) is None
    assert [r["status"] for r in emulator.requests()] == [200] * 6
