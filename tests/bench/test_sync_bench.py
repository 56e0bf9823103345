"""The sync bench applies every invoice once, finds them all unchanged on replay, and reports its targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.sync import TARGETS, run
from db.session import libpq_url
from tests.conftest import ROOT


def test_sync_bench_applies_every_invoice_then_finds_the_replay_unchanged(db, broker):
    report = run(invoices=300, baseline_sample=5)
    assert report["applied"] == report["unchanged_on_replay"] == 300
    assert report["targets"] == TARGETS and report["baseline_one_per_call_s"] > 0


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_sync_bench_makes_its_own_database_without_a_database_url_and_says_if_its_target_was_met():
    base, db_name = libpq_url(os.environ["DATABASE_URL"]).rsplit("/", 1)
    arguments = ["--invoices", "300", "--baseline-sample", "5", "--database", f"{db_name}_bench_sync"]
    arguments += ["--admin-url", f"{base}/postgres", "--redis-url", os.environ["BROKER_URL"]]
    # `make bench` runs it with no DATABASE_URL or BROKER_URL: it must not need them.
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "bench.sync", *arguments],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["applied"] == report["unchanged_on_replay"] == 300
    assert report["targets"] == TARGETS and report["baseline_one_per_call_s"] > 0
    assert report["target_met"] is (done.returncode == 0)
