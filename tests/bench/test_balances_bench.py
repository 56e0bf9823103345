"""The balances bench seeds a small ledger, times the pass and a recompute, and checks figures against SQL."""

from __future__ import annotations

import pytest

from tests.bench import run_own_database_bench


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_reports_the_pass_its_baseline_equal_figures_and_targets():
    arguments = ["--accounts", "30", "--invoices-per-account", "20", "--big-account-invoices", "50"]
    status, report = run_own_database_bench("balances", [*arguments, "--repeats", "3"])
    # Every account recomputed (the 30 and the big one), each equal to the one-statement baseline.
    assert (report["accounts"], report["full_pass"]["recomputed"]) == (31, 31)
    assert report["figures_equal_baseline"] is True and report["differing_accounts"] == []
    assert report["invoices"] == 30 * 20 + 50
    for timings in (report["recompute_one_account"], report["account_overview"]):
        assert timings.keys() == {"p50_ms", "p95_ms"}
    assert report["targets"] == {"full_pass_seconds": 10.0, "recompute_p95_ms": 5.0, "overview_p95_ms": 10.0}
    assert report["target_met"] is (status == 0)
