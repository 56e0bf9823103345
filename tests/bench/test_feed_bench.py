"""The feed bench delivers every event, in order, to the reference receiver, and reports its targets."""

from __future__ import annotations

import pytest

from bench.feed import TARGETS, run
from tests.bench import run_own_database_bench


def test_feed_bench_delivers_every_event_in_order_and_times_a_baseline(db, broker):
    report = run(events=120, baseline_sample=5)
    assert report["events"] == 120 and report["received_in_order"] is True
    assert report["targets"] == TARGETS and report["baseline_naive_s"] > 0 and report["deliver_s"] > 0


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_feed_bench_makes_its_own_database_without_a_database_url_and_says_if_its_target_was_met():
    # `make bench` runs it with no DATABASE_URL or BROKER_URL: it must not need them.
    status, report = run_own_database_bench("feed", ["--events", "120", "--baseline-sample", "5"])
    assert report["events"] == 120 and report["received_in_order"] is True
    assert report["targets"] == TARGETS and report["baseline_naive_s"] > 0 and report["deliver_s"] > 0
    assert report["target_met"] is (status == 0)
