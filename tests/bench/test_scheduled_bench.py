"""The scheduled-burst bench drains a tiny burst at two budgets and prints one JSON report with its target."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from db.session import libpq_url
from tests.conftest import ROOT


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_scheduled_bench_drives_every_due_payment_final_at_each_budget(tmp_path):
    base, name = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    redis_base = os.environ["BROKER_URL"].rsplit("/", 1)[0]
    args = ["--payments", "30", "--budgets", "100", "25", "--admin-url", f"{base}/postgres"]
    args += ["--database", f"{name}_bench_scheduled", "--redis-url", f"{redis_base}/12"]
    args += ["--namespace", "remit-bench-scheduled-test", "--worker-log", str(tmp_path / "w.log")]
    # A subprocess: the bench reads settings once, and this test process has read the suite's already.
    done = subprocess.run(
        [sys.executable, "-m", "bench.scheduled", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["target"] == {"ratio_to_floor_at_most": 1.1, "failed_by_rate_limit": 0}
    assert isinstance(report["target_met"], bool)
    assert report["workers"]["worker-money"]["group"] == "money"
    assert [burst["budget_rps"] for burst in report["bursts"]] == [100, 25]
    for burst in report["bursts"]:
        # Every payment scheduled for today was dispatched by the clock and executed by the workers.
        assert burst["finished"] is True
        assert burst["final_states"] == {"succeeded": 30} and burst["not_final"] == {}
        assert burst["floor_seconds"] == round(30 / burst["budget_rps"], 1)
        floor = 30 / burst["budget_rps"]
        # seconds_to_final is rounded to 0.1 s in the report, the ratio is not.
        assert burst["ratio_to_floor"] == pytest.approx(burst["seconds_to_final"] / floor, abs=0.06 / floor)
        assert burst["seconds_to_dispatched"] <= burst["seconds_to_final"]
        assert burst["stripe_requests"] >= 30 and burst["failed_by_rate_limit"] == 0
