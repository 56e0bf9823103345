"""The ingest bench posts signed events through the real receiver and workers and reports one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TEST_DATABASE


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_ingest_bench_processes_every_event_once_and_reports_against_the_targets():
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--events", "70", "--clients", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "REMIT_BENCH_DB": f"{TEST_DATABASE}_bench"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["events"] == report["accepted"] == 70
    assert report["processed"] == {"processed": 70}  # every mix event applied, none failed or left waiting
    assert report["events_per_s"] > 0 and report["noop_messages_per_s"] > 0
    assert 0 < report["receiver_p50_ms"] <= report["receiver_p99_ms"]
    assert report["targets"] == {"events_per_s": 1000, "receiver_p99_ms": 25.0, "ratio_to_noop": 0.25}
    assert report["targets_met"] == {
        "events_per_s": report["events_per_s"] >= 1000,
        "receiver_p99_ms": report["receiver_p99_ms"] < 25.0,
        "ratio_to_noop": report["ratio_to_noop"] >= 0.25,
    }
    assert (report["worker_processes"], report["worker_threads"], report["prefetch"]) == (2, 2, 32)
