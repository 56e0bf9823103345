"""The pickup bench runs its three phases on a tiny load and prints one JSON report with its target."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from db.session import libpq_url
from tests.conftest import ROOT


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_pickup_bench_times_remit_and_raw_dramatiq_and_prints_one_json_report(tmp_path):
    base, name = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    args = ["--samples", "3", "--idle-seconds", "1", "--gap-seconds", "0.2", "0.4", "--threads", "2"]
    args += ["--admin-url", f"{base}/postgres", "--database", f"{name}_bench_pickup"]
    args += ["--namespace", "remit-bench-pickup-test", "--worker-log", str(tmp_path / "w.log")]
    # A subprocess: the bench reads settings once, and this test process has read the suite's already.
    done = subprocess.run(
        [sys.executable, "-m", "bench.pickup", *args], cwd=ROOT, capture_output=True, text=True, timeout=140
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["target"] == {"remit_money_p50_ms_below": 50.0}
    assert isinstance(report["target_met"], bool)
    for name, timeout_ms in (
        ("remit_money", 100),
        ("raw_dramatiq", 1000),
        ("raw_dramatiq_same_timeout", 100),
    ):
        phase = report[name]
        assert phase["samples"] == 3 and phase["poll_timeout_ms"] == timeout_ms, name
        assert phase["p50_ms"] > 0 and phase["p95_ms"] >= phase["p50_ms"], name
        assert {
            "worker_cpu_percent",
            "redis_round_trips_per_second",
            "redis_commands_per_second",
            "redis_cpu_percent",
        } <= phase["idle"].keys()
        # The private Redis sees the phase's idle workers polling, and nothing else.
        assert phase["idle"]["redis_round_trips_per_second"] > 0, name
    assert report["remit_money"]["queues"] == ["payments", "ach"]
