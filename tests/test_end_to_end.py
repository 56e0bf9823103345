"""End to end: the web tier's call, the real Redis broker, a real worker process, the emulated Stripe."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC

import pytest
from sqlalchemy import select

from db.models import Allocation, Email, Payment
from tasks import api

pytestmark = pytest.mark.e2e


def _start_worker(emulator) -> subprocess.Popen:
    env = {**os.environ, "STRIPE_API_BASE": emulator.url, "dramatiq_queue_prefetch": "2"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "workers.actors",
            "--processes",
            "1",
            "--threads",
            "2",
            "--queues",
            "payments",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    process.wait(15)


@pytest.fixture()
def worker_process(shop, emulator):
    process = _start_worker(emulator)
    yield process
    _kill(process)


def _wait_final(db, payment_ids, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db() as session:
            statuses = dict(
                session.execute(select(Payment.id, Payment.status).where(Payment.id.in_(payment_ids))).all()
            )
        if all(s not in ("pending", "submitting") for s in statuses.values()):
            return statuses
        time.sleep(0.1)
    raise AssertionError(f"payments not final after {timeout}s: {statuses}")


def test_requests_become_stripe_charges_through_a_real_worker(shop, emulator, worker_process):
    paid = api.pay_invoices(shop.account_id, shop.invoices[:2], shop.methods["visa"], "e2e-1")
    declined = api.pay_invoices(shop.account_id, shop.invoices[2:3], shop.methods["declined"], "e2e-2")
    ach = api.pay_invoices(shop.account_id, shop.invoices[3:4], shop.methods["ach"], "e2e-3")
    again = api.pay_invoices(shop.account_id, shop.invoices[:2], shop.methods["visa"], "e2e-1")
    assert again.replayed and again.payment_id == paid.payment_id

    statuses = _wait_final(shop.db, [paid.payment_id, declined.payment_id, ach.payment_id])
    assert statuses == {
        paid.payment_id: "succeeded",
        declined.payment_id: "failed",
        ach.payment_id: "processing",
    }
    intents = emulator.payment_intents()
    assert sorted(int(pi["metadata"]["payment_id"]) for pi in intents) == sorted(statuses)
    with shop.db() as session:
        applied = session.scalars(select(Allocation.invoice_id).where(Allocation.state == "applied")).all()
        kinds = sorted(session.scalars(select(Email.kind)).all())
    assert sorted(applied) == sorted(shop.invoices[:2])
    assert kinds == ["ach_initiated", "payment_confirmation", "payment_failed"]


def test_worker_killed_mid_charge_ends_with_exactly_one_charge(shop, emulator):
    from datetime import datetime, timedelta

    from tasks.flows import payments as sweeps

    emulator.inject_fault("hang", count=1, path="/v1/payment_intents")
    first = _start_worker(emulator)
    try:
        receipt = api.pay_invoices(shop.account_id, shop.invoices[:1], shop.methods["visa"], "crash-1")
        deadline = time.monotonic() + 20
        while not any(r["fault"] == "hang" for r in emulator.requests()):
            assert time.monotonic() < deadline, "the worker never reached Stripe"
            time.sleep(0.05)
    finally:
        _kill(first, signal.SIGKILL)  # the worker dies while Stripe is still working on the charge
    emulator.release_hangs()  # Stripe finishes the charge; nobody hears the answer
    with shop.db() as session:
        assert session.get(Payment, receipt.payment_id).status == "submitting"

    second = _start_worker(emulator)
    try:
        later = datetime.now(UTC) + timedelta(minutes=10)
        assert sweeps.sweep_payments(later)["submitting"] == 1
        assert _wait_final(shop.db, [receipt.payment_id]) == {receipt.payment_id: "succeeded"}
    finally:
        _kill(second)
    intents = [
        pi for pi in emulator.payment_intents() if pi["metadata"]["payment_id"] == str(receipt.payment_id)
    ]
    assert len(intents) == 1
