"""The invoice list bench seeds a small account, times its pages and export, and prints one JSON report."""

from __future__ import annotations

import pytest

from tests.bench import run_own_database_bench


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_reports_pages_export_baseline_and_targets():
    status, report = run_own_database_bench(
        "invoices", ["--invoices", "400", "--payments", "100", "--repeats", "3"]
    )
    assert (report["invoices"], report["payments"], report["page_size"]) == (400, 100, 50)
    assert report["pages"].keys() == {"first", "deep", "search", "open_multi_site", "owed_desc"}
    for timings in report["pages"].values():
        assert timings.keys() == {"p50_ms", "p95_ms"}
    # Every visible invoice exported once, as many as the plain SELECT reads.
    assert report["export"]["rows"] == 400
    assert report["baseline"]["select_all_invoices"].keys() == {"p50_ms", "p95_ms"}
    assert report["targets"] == {"page_p95_ms": 20.0, "export_rows_per_second": 20_000}
    assert report["target_met"] is (status == 0)
