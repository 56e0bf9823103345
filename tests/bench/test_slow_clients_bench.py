"""The slow-clients bench posts signed events with and without 16 trickling clients and reports both runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_slow_clients_bench_gets_every_delivery_through_and_prints_one_json_report():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.slow_clients",
            "--events",
            "60",
            "--clients",
            "2",
            "--body-timeout",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    for run in (report["baseline"], report["with_slow_clients"]):
        assert run["accepted"] == 60
        assert run["events_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"]
    slow = report["with_slow_clients"]["slow_clients"]
    assert slow["connections"] >= 32 and slow["answered"].get("408", 0) >= 16  # each cut off, then back
    assert (
        set(report) >= {"rate_ratio", "target", "target_met"} and report["target"]["rate_ratio_at_least"] > 0
    )
