"""The demo: its deposit applied, its 3-D Secure round against the seeded demo data, a real worker
and the emulator; and the states its round waits for."""

from datetime import date

from db.session import transaction
from sandbox import demo, seed
from sandbox.demo import FINAL, run_demo
from tasks.domain.transitions import FINAL_STATUSES, IN_FLIGHT


def test_the_demo_completes_one_3ds_payment_and_cancels_the_other(db, gateway, emulator, worker):
    with db() as session:
        seller_id, _ = seed._seed(session, gateway)
        session.commit()
    seed._sync_invoices(seller_id, date.today())
    said = []
    ended = demo._authentication_round(emulator, demo._accounts()["A-1002"], "test", said.append, 30.0)
    assert sorted(ended.values()) == ["canceled", "succeeded"]
    assert any("completed 3-D Secure in the browser: succeeded" in line for line in said)
    assert any("canceled it instead: canceled" in line for line in said)


def test_the_demo_waits_for_every_final_state_and_stops_at_requires_action():
    assert {str(status) for status in FINAL_STATUSES} <= FINAL
    assert "partially_refunded" in FINAL and "requires_action" in FINAL
    assert not FINAL & ({str(status) for status in IN_FLIGHT} - {"requires_action"})


def test_the_demo_applies_the_deposit_to_an_invoice_and_prints_how_it_ended(db, gateway, emulator, worker):
    with transaction() as session:
        seller_id, _ = seed._seed(session, gateway)
    seed._sync_invoices(seller_id, date.today())
    lines: list[str] = []
    # No webhook receiver runs here, so the ACH debit stays processing: the wait is cut short.
    statuses = run_demo(emulator, say=lines.append, timeout_s=10)
    [applied] = [line for line in lines if "of deposit credit" in line]
    assert "applies 250.00 of deposit credit" in applied
    assert "succeeded, charged 0.00 at Stripe; paid A-1003-" in applied
    [figures] = [line for line in lines if line.startswith("demo: A-1003 balance")]
    assert "available credit 250.00 -> 0.00" in figures
    assert "succeeded" in statuses.values()
