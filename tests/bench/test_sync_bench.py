"""The sync bench applies every invoice once, finds them all unchanged on replay, and reports its targets."""

from bench.sync import TARGETS, run


def test_sync_bench_applies_every_invoice_then_finds_the_replay_unchanged(db, broker):
    report = run(invoices=300, baseline_sample=5)
    assert report["applied"] == report["unchanged_on_replay"] == 300
    assert report["targets"] == TARGETS and report["baseline_one_per_call_s"] > 0
