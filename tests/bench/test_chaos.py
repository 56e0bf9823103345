"""The chaos run: the real stack under every fault kind ends with no violation; a planted defect is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.chaos.kinds import FAULT_KINDS
from tests.conftest import ROOT

# The workload's length in CI: long enough for every fault kind to fire once among live traffic.
CI_SECONDS = 100
# Start-up, the workload, then quiescence (a killed worker's messages return after Dramatiq's 60 s heartbeat
# timeout) on a loaded machine; past this the run is stuck, not slow.
CI_TIMEOUT_S = 600


def chaos(tmp_path, *args: str, settle_timeout_s: int = 300) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos", *args, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "CHAOS_SETTLE_TIMEOUT_S": str(settle_timeout_s)},
        capture_output=True,
        text=True,
        timeout=CI_TIMEOUT_S - 20,
    )
    assert out.exists(), done.stderr[-3000:]
    return done, json.loads(out.read_text())


@pytest.mark.e2e
@pytest.mark.timeout(CI_TIMEOUT_S)
def test_every_fault_kind_under_load_leaves_no_violation(tmp_path):
    done, report = chaos(tmp_path, "--seconds", str(CI_SECONDS), "--seed", "17")
    broken = {name: c for name, c in report["invariants"].items() if c["violations"]}
    assert done.returncode == 0 and not broken and report["settle"]["quiet"], json.dumps(
        {"broken": broken, "settle": report["settle"]}, indent=1, default=str
    )[:6000]
    assert report["faults_by_kind"] == {kind: 1 for kind in FAULT_KINDS}
    assert [f for f in report["faults"] if "injection_error" in f] == []
    assert report["requests"]["accepted"] > 100 and report["requests"]["refused"] > 0
    assert {"succeeded", "failed", "refunded", "disputed", "canceled"} <= set(report["payments_by_status"])
    # Credit is spent with a card for the rest and alone, and the checker held both to its rules.
    ops = report["requests_by_op"]
    assert ops["pay_with_credit"]["accepted"] > 0 and ops["apply_credit"]["accepted"] > 0, ops
    assert "credit_spent_once" in report["invariants"]


@pytest.mark.e2e
@pytest.mark.timeout(CI_TIMEOUT_S)
def test_a_charge_sent_without_its_idempotency_key_is_caught_as_a_second_payment_intent(tmp_path):
    planted = ["--faults", "stripe_hang", "--repeats", "6", "--plant", "no_idempotency_key"]
    # The second intents' events never settle: a minute of settling is enough to see the damage.
    done, report = chaos(tmp_path, "--seconds", "30", "--seed", "5", *planted, settle_timeout_s=60)
    assert done.returncode == 1
    assert report["invariants"]["one_intent_and_charge_per_payment"]["violations"] > 0
