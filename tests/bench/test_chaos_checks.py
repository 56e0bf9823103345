"""The chaos checker's credit rules on hand-made worlds: a payment credit paid is no violation;
credit spent twice or never released is."""

from __future__ import annotations

from bench.chaos import invariants
from bench.chaos.invariants import World


def world(payments, credits=(), intents=(), timeline=(), allocations=(), invoices=(), external=()) -> World:
    db = {
        "payments": list(payments),
        "credits": list(credits),
        "timeline": list(timeline),
        "allocations": list(allocations),
        "invoices": list(invoices),
        "external_lines": list(external),
    }
    return World(db=db, stripe={"payment_intents": list(intents)}, mail=[], answers=[], faults=[], figures=[])


def payment(pid, status="succeeded", amount=0, credit_used=0, intent=None, kind="credit", method_kind=None):
    return {
        "id": pid,
        "status": status,
        "amount_minor": amount,
        "credit_used_minor": credit_used,
        "stripe_payment_intent_id": intent,
        "kind": kind,
        "method_kind": method_kind,
    }


def credit(cid, amount, state, used_by=None, invoice=None):
    return {
        "id": cid,
        "amount_minor": amount,
        "state": state,
        "used_by_payment_id": used_by,
        "applied_invoice_id": invoice,
    }


def test_a_payment_credit_paid_in_full_needs_no_payment_intent():
    paid = world([payment(1, credit_used=500)], credits=[credit(7, 500, "applied", 1, 3)])
    assert invariants.stripe_agrees_with_ledger(paid) == []
    assert invariants.credit_spent_once(paid) == []


def test_a_credit_paid_payment_with_an_intent_at_stripe_is_a_violation():
    charged = world(
        [payment(1, credit_used=500, intent="pi_1")],
        credits=[credit(7, 500, "applied", 1, 3)],
        intents=[{"id": "pi_1", "status": "succeeded", "metadata": {"payment_id": "1"}}],
    )
    assert invariants.stripe_agrees_with_ledger(charged) == [
        {"payment_id": 1, "credit_only_but_charged": "pi_1"}
    ]


def test_credit_another_payment_took_over_is_caught_as_spent_twice():
    # Two payments each say they spent 500; the one credit row names only the second.
    twice = world(
        [payment(1, credit_used=500), payment(2, credit_used=500)],
        credits=[credit(7, 500, "applied", 2, 3)],
    )
    assert invariants.credit_spent_once(twice) == [{"payment_id": 1, "spent": 500, "credit_rows": {}}]


def test_credit_still_reserved_by_a_failed_payment_is_caught():
    stuck = world(
        [payment(1, status="failed", amount=700, credit_used=300, kind="invoices", method_kind="card")],
        credits=[credit(7, 300, "reserved", 1, 3)],
    )
    assert invariants.credit_spent_once(stuck) == [
        {"payment_id": 1, "status": "failed", "credit_rows": {"reserved": 300}}
    ]


def test_credit_a_payment_spent_is_counted_once_on_its_invoice():
    # The allocation carries the whole line; the credit row only says where 400 of it came from.
    paid = world(
        [payment(1, amount=600, credit_used=400, intent="pi_1", kind="invoices", method_kind="card")],
        credits=[credit(7, 400, "applied", 1, 3)],
        allocations=[{"invoice_id": 3, "state": "applied", "amount_minor": 1000, "discount_minor": 0}],
        invoices=[{"id": 3, "total_minor": 1000}],
        external=[{"invoice_id": 3, "amount_minor": 250, "as_credit": True}],
    )
    assert invariants.invoices_not_overpaid(paid) == []
