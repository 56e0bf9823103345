"""Issue 12, item 5: the last look charges what each invoice owes now, never more, and says what changed."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import Allocation, Credit, Email, Invoice, Payment, PaymentEvent, Seller
from tasks import api
from tasks.domain.attempts import Answered, FailedAtLastLook
from tasks.domain.errors import StripeUnavailable
from tasks.domain.states import PaymentStatus as P
from tasks.flows import payments as execution
from tests.tasks.test_execute_payment import _without_sdk_retries


def _intents_for(emulator, payment_id):
    return [pi for pi in emulator.payment_intents() if pi["metadata"].get("payment_id") == str(payment_id)]


def _change_invoice(shop, invoice_id, **values):
    with shop.db() as session:
        invoice = session.get(Invoice, invoice_id)
        for name, value in values.items():
            setattr(invoice, name, value)
        session.commit()


def _allocations(shop, payment_id):
    with shop.db() as session:
        rows = session.scalars(
            select(Allocation).where(Allocation.payment_id == payment_id).order_by(Allocation.id)
        )
        return [(a.invoice_id, a.amount_minor, a.paid_minor, a.state) for a in rows]


def _emails(shop, payment_id):
    with shop.db() as session:
        return {
            e.kind: e.context for e in session.scalars(select(Email).where(Email.payment_id == payment_id))
        }


def _timeline(shop, payment_id):
    with shop.db() as session:
        statement = (
            select(PaymentEvent).where(PaymentEvent.payment_id == payment_id).order_by(PaymentEvent.id)
        )
        return [e.detail for e in session.scalars(statement)]


def test_an_invoice_lowered_before_the_charge_is_charged_what_it_owes_now(shop, emulator):
    first, second = shop.invoices[0], shop.invoices[1]  # 10,000 and 11,000
    receipt = api.pay_invoices(shop.account_id, [first, second], shop.methods["visa"], "k1", now=shop.now)
    _change_invoice(shop, first, total_minor=2_500)  # the ERP lowered it meanwhile
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    [intent] = _intents_for(emulator, receipt.payment_id)
    assert intent["amount"] == 13_500
    assert _allocations(shop, receipt.payment_id) == [
        (first, 2_500, 2_500, "applied"),
        (second, 11_000, 11_000, "applied"),
    ]
    change = f"Invoice {_number(shop, first)} now owes 2500: paid 2500 instead of 10000."
    assert any(d.get("last_look") == [change] for d in _timeline(shop, receipt.payment_id))
    confirmation = _emails(shop, receipt.payment_id)["payment_confirmation"]
    assert (confirmation["amount_minor"], confirmation["changes"]) == (13_500, [change])
    with shop.db() as session:
        assert session.get(Payment, receipt.payment_id).amount_minor == 13_500


def test_a_hidden_invoice_drops_out_and_the_rest_is_charged(shop, emulator):
    first, second = shop.invoices[0], shop.invoices[1]
    receipt = api.pay_invoices(shop.account_id, [first, second], shop.methods["visa"], "k1", now=shop.now)
    _change_invoice(shop, second, customer_visible=False)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert [pi["amount"] for pi in _intents_for(emulator, receipt.payment_id)] == [10_000]
    assert [a[3] for a in _allocations(shop, receipt.payment_id)] == ["applied", "released"]
    assert api.list_invoices(shop.account_id, now=shop.now)  # the hidden one is simply not listed


def test_nothing_left_to_pay_fails_before_stripe_with_a_clear_code_and_email(shop, emulator):
    receipt = api.pay_invoices(shop.account_id, [shop.invoices[0]], shop.methods["visa"], "k1", now=shop.now)
    _change_invoice(shop, shop.invoices[0], voided=True)
    assert execution.execute_payment(receipt.payment_id, shop.now) == FailedAtLastLook("nothing_owed")
    assert _intents_for(emulator, receipt.payment_id) == []
    failed = _emails(shop, receipt.payment_id)["payment_failed"]
    assert failed["failure_code"] == "nothing_owed"
    assert failed["changes"] == [
        f"Invoice {_number(shop, shop.invoices[0])} was voided: removed from this payment."
    ]


def test_a_custom_amount_above_what_is_owed_now_leaves_the_rest_as_credit(shop, emulator):
    receipt = api.pay_amount(shop.account_id, 21_000, shop.methods["visa"], "k1", now=shop.now)
    _change_invoice(shop, shop.invoices[0], total_minor=4_000)  # 10,000 -> 4,000
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert [pi["amount"] for pi in _intents_for(emulator, receipt.payment_id)] == [21_000]
    with shop.db() as session:
        credits = [
            (c.amount_minor, c.state)
            for c in session.scalars(select(Credit).where(Credit.payment_id == receipt.payment_id))
        ]
    assert credits == [(6_000, "available")]
    assert api.account_overview(shop.account_id, now=shop.now).credit_minor == 6_000


def test_a_custom_amount_above_what_is_owed_now_fails_cleanly_where_the_seller_takes_no_deposits(
    shop, emulator
):
    with shop.db() as session:
        session.get(Seller, shop.seller.id).deposits_enabled = False
        session.commit()
    receipt = api.pay_amount(shop.account_id, 21_000, shop.methods["visa"], "k1", now=shop.now)
    _change_invoice(shop, shop.invoices[0], total_minor=4_000)
    assert execution.execute_payment(receipt.payment_id, shop.now) == FailedAtLastLook("amount_above_owed")
    assert _intents_for(emulator, receipt.payment_id) == []
    assert [a[3] for a in _allocations(shop, receipt.payment_id)] == ["released", "released"]


def test_a_scheduled_payment_charges_on_its_day_what_is_owed_then(shop, emulator):
    day = shop.today + timedelta(days=30)
    receipt = api.pay_invoices(
        shop.account_id, [shop.invoices[0]], shop.methods["visa"], "k1", pay_on=day, now=shop.now
    )
    _change_invoice(shop, shop.invoices[0], total_minor=100)
    that_day = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    execution.dispatch_due_payments(that_day)
    assert execution.execute_payment(receipt.payment_id, that_day) == Answered(P.SUCCEEDED)
    assert [pi["amount"] for pi in _intents_for(emulator, receipt.payment_id)] == [100]


def _number(shop, invoice_id):
    with shop.db() as session:
        return session.get(Invoice, invoice_id).number


def test_a_lost_answer_after_a_changed_charge_is_replayed_with_the_same_key_and_amount(shop, emulator):
    first, second = shop.invoices[0], shop.invoices[1]
    receipt = api.pay_invoices(shop.account_id, [first, second], shop.methods["visa"], "k1", now=shop.now)
    _change_invoice(shop, first, total_minor=2_500)
    _without_sdk_retries(emulator)
    emulator.inject_fault("drop_after_commit", count=1, path="/v1/payment_intents")
    with pytest.raises(StripeUnavailable):
        execution.execute_payment(receipt.payment_id, shop.now)  # charged 13,500 at Stripe, answer lost
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    assert [pi["amount"] for pi in _intents_for(emulator, receipt.payment_id)] == [13_500]
    with shop.db() as session:
        payment = session.get(Payment, receipt.payment_id)
        assert (payment.amount_minor, payment.needs_review, payment.attempt) == (13_500, False, 1)
    changes = [d["last_look"] for d in _timeline(shop, receipt.payment_id) if "last_look" in d]
    assert len(changes) == 1  # the change was recorded once, by the first run
