"""The feed bench delivers every event, in order, to the reference receiver, and reports its targets."""

from bench.feed import TARGETS, run


def test_feed_bench_delivers_every_event_in_order_and_times_a_baseline(db, broker):
    report = run(events=120, baseline_sample=5)
    assert report["events"] == 120 and report["received_in_order"] is True
    assert report["targets"] == TARGETS and report["baseline_naive_s"] > 0 and report["deliver_s"] > 0
