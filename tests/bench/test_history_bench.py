"""The history bench seeds a small account, times its pages and export, and prints one JSON report."""

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
    arguments = [
        "--payments",
        "300",
        "--invoices",
        "30",
        "--repeats",
        "3",
        "--database",
        f"{name}_bench_history",
    ]
    arguments += ["--admin-url", f"{base}/postgres", "--redis-url", os.environ["BROKER_URL"]]
    # A subprocess: the bench reads settings once, and this test process has read the suite's already.
    done = subprocess.run(
        [sys.executable, "-m", "bench.history", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert (report["payments"], report["invoices"], report["page_size"]) == (300, 30, 50)
    for timings in (report["first_page"], report["deep_page"], *report["baseline"].values()):
        assert timings.keys() >= ({"rows_per_second"} if "rows" in timings else {"p50_ms", "p95_ms"})
    # Every payment exported once, as many as the plain SELECT reads.
    assert report["export"]["rows"] == report["baseline"]["export"]["rows"] == 300
    assert report["targets"] == {"page_p95_ms": 20.0, "export_rows_per_second": 20_000}
    assert report["target_met"] is (done.returncode == 0)
