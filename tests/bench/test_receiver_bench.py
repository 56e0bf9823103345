"""The receiver bench posts signed events to a real receiver (granian), reports latency per sender count."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_receiver_bench_accepts_every_event_and_prints_one_json_report():
    done = subprocess.run(
        [sys.executable, "-m", "bench.receiver", "--events", "60", "--clients", "2", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["target_met"] is (done.returncode == 0)
    assert set(report["by_concurrent_senders"]) == {"2", "4"}
    for run in report["by_concurrent_senders"].values():
        assert run["accepted"] == 60
        assert run["events_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"]
        assert run["p99_under_target"] is (run["p99_ms"] < report["target_p99_ms"])
