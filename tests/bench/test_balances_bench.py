"""The balances bench seeds a small ledger, times the pass and a recompute, and checks figures against SQL."""

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
def test_bench_reports_the_pass_its_baseline_equal_figures_and_targets():
    base, name = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    arguments = ["--accounts", "30", "--invoices-per-account", "20", "--big-account-invoices", "50"]
    arguments += ["--repeats", "3", "--database", f"{name}_bench_balances"]
    arguments += ["--admin-url", f"{base}/postgres", "--redis-url", os.environ["BROKER_URL"]]
    # A subprocess: the bench reads settings once, and this test process has read the suite's already.
    done = subprocess.run(
        [sys.executable, "-m", "bench.balances", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    # Every account recomputed (the 30 and the big one), each equal to the one-statement baseline.
    assert (report["accounts"], report["full_pass"]["recomputed"]) == (31, 31)
    assert report["figures_equal_baseline"] is True and report["differing_accounts"] == []
    assert report["invoices"] == 30 * 20 + 50
    for timings in (report["recompute_one_account"], report["account_overview"]):
        assert timings.keys() == {"p50_ms", "p95_ms"}
    assert report["targets"] == {"full_pass_seconds": 10.0, "recompute_p95_ms": 5.0, "overview_p95_ms": 10.0}
    assert report["target_met"] is (done.returncode == 0)
