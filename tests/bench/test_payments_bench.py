"""The payments bench runs end to end on a tiny load and reports every payment final."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from db.session import libpq_url
from tests.conftest import ROOT

# Its own database, Redis database and namespace: never the suite's, never a real bench run's.
ARGS = [
    "--payments",
    "20",
    "--limited-payments",
    "20",
    "--backlog-payments",
    "20",
    "--endpoint-payments",
    "20",
    "--endpoint-rps",
    "10",
    "--workers",
    "1",
    "--threads",
    "2",
    "--rps",
    "100",
    "--timeout",
    "25",
    "--namespace",
    "remit-bench-test",
    "--warmup",
    "5",
]


def _servers() -> list[str]:
    """The suite's own PostgreSQL server and Redis (local or embedded), a database of the bench's own."""
    database = libpq_url(os.environ["DATABASE_URL"])
    base, name = database.rsplit("/", 1)
    redis_base = os.environ["BROKER_URL"].rsplit("/", 1)[0]
    return [
        "--admin-url",
        f"{base}/postgres",
        "--database",
        f"{name}_bench",
        "--redis-url",
        f"{redis_base}/12",
    ]


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_bench_drives_every_payment_to_a_final_state_and_prints_one_json_report(tmp_path):
    # A subprocess: the bench reads settings once, and this test process has read the suite's already.
    done = subprocess.run(
        [sys.executable, "-m", "bench.payments", *ARGS, *_servers(), "--worker-log", str(tmp_path / "w.log")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert {"payments", "workers", "unthrottled", "rate_limited", "target_met"} <= report.keys()
    for name in ("unthrottled", "rate_limited", "endpoint_limited"):
        phase = report[name]
        assert {
            "payments_per_second",
            "stripe_requests_per_second",
            "p50_ms",
            "p95_ms",
            "final_states",
            "stripe_429s",
            "failed_by_rate_limit",
        } <= phase.keys()
        assert phase["finished"] is True
        assert phase["final_states"] == {"succeeded": 20}
        assert phase["failed_by_rate_limit"] == 0
        assert phase["stripe_requests"] >= 20
    assert report["rate_limited"]["budget_rps"] == 100
    # Under Stripe's shape the endpoint's limit binds; the emulator refused nothing the limiter let through.
    endpoint = report["endpoint_limited"]
    assert (endpoint["budget_rps"], endpoint["account_rps"], endpoint["endpoint_rps"]) == (10, 100, 10)
    assert endpoint["stripe_429s"] == 0
    # Warm-up payments go through the workers first and are not counted in the phase.
    assert report["warmup_payments_per_phase"] == 5
