"""The `make run` demo round, against the emulator and an in-process worker."""

from datetime import date

from db.session import transaction
from sandbox.demo import run_demo
from sandbox.seed import _seed


def test_the_demo_applies_the_deposit_to_an_invoice_and_prints_how_it_ended(db, gateway, emulator, worker):
    with transaction() as session:
        _seed(session, gateway, date.today())
    lines: list[str] = []
    # No webhook receiver runs here, so the ACH debit stays processing: the wait is cut short.
    statuses = run_demo(emulator, say=lines.append, timeout_s=10)
    [applied] = [line for line in lines if "of deposit credit" in line]
    assert "applies 250.00 of deposit credit" in applied
    assert "succeeded, charged 0.00 at Stripe; paid A-1003-" in applied
    [figures] = [line for line in lines if line.startswith("demo: A-1003 balance")]
    assert "available credit 250.00 -> 0.00" in figures
    assert "succeeded" in statuses.values()
