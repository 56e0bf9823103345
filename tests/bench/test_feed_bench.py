"""The feed bench delivers every event, in order, to the reference receiver, and reports its targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.feed import TARGETS, run
from db.session import libpq_url
from tests.conftest import ROOT


def test_feed_bench_delivers_every_event_in_order_and_times_a_baseline(db, broker):
    report = run(events=120, baseline_sample=5)
    assert report["events"] == 120 and report["received_in_order"] is True
    assert report["targets"] == TARGETS and report["baseline_naive_s"] > 0 and report["deliver_s"] > 0


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_feed_bench_makes_its_own_database_without_a_database_url_and_says_if_its_target_was_met():
    base, db_name = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    arguments = ["--events", "120", "--baseline-sample", "5", "--database", f"{db_name}_bench_feed"]
    arguments += ["--admin-url", f"{base}/postgres", "--redis-url", os.environ["BROKER_URL"]]
    # `make bench` runs it with no DATABASE_URL or BROKER_URL: it must not need them.
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.feed", *arguments],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["events"] == 120 and report["received_in_order"] is True
    assert report["targets"] == TARGETS and report["baseline_naive_s"] > 0 and report["deliver_s"] > 0
    assert report["target_met"] is (done.returncode == 0)
