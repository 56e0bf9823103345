"""The invoice list bench seeds a small account, times its pages and export, and prints one JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from db.session import libpq_url
from tests.conftest import ROOT


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_reports_pages_export_baseline_and_targets():
    base, name = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    arguments = ["--invoices", "400", "--payments", "100", "--repeats", "3"]
    arguments += ["--database", f"{name}_bench_invoices"]
    arguments += ["--admin-url", f"{base}/postgres", "--redis-url", os.environ["BROKER_URL"]]
    # A subprocess: the bench reads settings once, and this test process has read the suite's already.
    done = subprocess.run(
        [sys.executable, "-m", "bench.invoices", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["invoices"], report["payments"], report["page_size"]) == (400, 100, 50)
    assert report["pages"].keys() == {"first", "deep", "search", "open_multi_site", "owed_desc"}
    for timings in report["pages"].values():
        assert timings.keys() == {"p50_ms", "p95_ms"}
    # Every visible invoice exported once, as many as the plain SELECT reads.
    assert report["export"]["rows"] == 400
    assert report["baseline"]["select_all_invoices"].keys() == {"p50_ms", "p95_ms"}
    assert report["targets"] == {"page_p95_ms": 20.0, "export_rows_per_second": 20_000}
    assert report["target_met"] is (done.returncode == 0)
