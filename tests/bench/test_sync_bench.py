"""The sync bench applies every invoice once, finds them all unchanged on replay, and reports its targets."""

from __future__ import annotations

import pytest

from bench.sync import TARGETS, run
from tests.bench import run_own_database_bench


def test_sync_bench_applies_every_invoice_then_finds_the_replay_unchanged(db, broker):
    report = run(invoices=300, baseline_sample=5)
    assert report["applied"] == report["unchanged_on_replay"] == 300
    assert report["targets"] == TARGETS and report["baseline_one_per_call_s"] > 0


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_sync_bench_makes_its_own_database_without_a_database_url_and_says_if_its_target_was_met():
    # `make bench` runs it with no DATABASE_URL or BROKER_URL: it must not need them.
    status, report = run_own_database_bench("sync", ["--invoices", "300", "--baseline-sample", "5"])
    assert report["applied"] == report["unchanged_on_replay"] == 300
    assert report["targets"] == TARGETS and report["baseline_one_per_call_s"] > 0
    assert report["target_met"] is (status == 0)
