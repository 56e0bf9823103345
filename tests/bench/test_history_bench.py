"""The history bench seeds a small account, times its pages and export, and prints one JSON report."""

from __future__ import annotations

import pytest

from tests.bench import run_own_database_bench


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_reports_pages_export_baseline_and_targets():
    status, report = run_own_database_bench(
        "history", ["--payments", "300", "--invoices", "30", "--repeats", "3"]
    )
    assert (report["payments"], report["invoices"], report["page_size"]) == (300, 30, 50)
    for timings in (report["first_page"], report["deep_page"], *report["baseline"].values()):
        assert timings.keys() >= ({"rows_per_second"} if "rows" in timings else {"p50_ms", "p95_ms"})
    # Every payment exported once, as many as the plain SELECT reads.
    assert report["export"]["rows"] == report["baseline"]["export"]["rows"] == 300
    assert report["targets"] == {"page_p95_ms": 20.0, "export_rows_per_second": 20_000}
    assert report["target_met"] is (status == 0)
