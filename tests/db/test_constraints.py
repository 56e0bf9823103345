"""The rules that protect money are enforced by PostgreSQL itself."""

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from db.models import Email, ScheduleRun, StripeEvent
from tests import factories


@pytest.fixture()
def world(db):
    session = db()
    account = factories.account(session)
    method = factories.method(session, account)
    invoice = factories.invoice(session, account)
    session.commit()
    yield session, account, method, invoice
    session.close()


def _refused(session, build, constraint: str):
    with pytest.raises(IntegrityError) as caught:
        build()
        session.flush()
    session.rollback()
    assert constraint in str(caught.value)


def test_second_reserved_allocation_for_one_invoice_is_refused(world):
    session, account, method, invoice = world
    first = factories.payment(session, account, method)
    factories.allocation(session, first, invoice)
    second = factories.payment(session, account, method)
    session.commit()
    _refused(
        session,
        lambda: factories.allocation(session, second, invoice),
        "uq_allocations_one_reserved_per_invoice",
    )


def test_released_allocation_frees_the_invoice_for_a_new_reservation(world):
    session, account, method, invoice = world
    first = factories.payment(session, account, method)
    factories.allocation(session, first, invoice, state="released")
    second = factories.payment(session, account, method)
    factories.allocation(session, second, invoice)
    session.commit()


@pytest.mark.parametrize("amount", [0, -100])
def test_payment_amount_must_be_positive(world, amount):
    session, account, method, _ = world
    _refused(
        session,
        lambda: factories.payment(session, account, method, amount_minor=amount),
        "ck_payments_amount_positive",
    )


def test_allocation_amount_must_be_positive(world):
    session, account, method, invoice = world
    payment = factories.payment(session, account, method)
    _refused(
        session,
        lambda: factories.allocation(session, payment, invoice, amount_minor=0),
        "ck_allocations_amount_positive",
    )


def test_invoice_total_must_be_positive(world):
    session, account, _, _ = world
    _refused(
        session, lambda: factories.invoice(session, account, total_minor=0), "ck_invoices_total_positive"
    )


def test_idempotency_key_is_unique_per_account(world):
    session, account, method, _ = world
    factories.payment(session, account, method, idempotency_key="checkout-1")
    session.commit()
    _refused(
        session,
        lambda: factories.payment(session, account, method, idempotency_key="checkout-1"),
        "uq_payments_account_idempotency_key",
    )


def test_same_idempotency_key_on_another_account_is_allowed(world):
    session, account, method, _ = world
    other = factories.account(session)
    other_method = factories.method(session, other)
    factories.payment(session, account, method, idempotency_key="checkout-1")
    factories.payment(session, other, other_method, idempotency_key="checkout-1")
    session.commit()


def test_stripe_payment_intent_id_is_unique(world):
    session, account, method, _ = world
    factories.payment(session, account, method, stripe_payment_intent_id="pi_1")
    session.commit()
    _refused(
        session,
        lambda: factories.payment(session, account, method, stripe_payment_intent_id="pi_1"),
        "uq_payments_stripe_payment_intent_id",
    )


def test_unknown_payment_status_is_refused(world):
    session, account, method, _ = world
    _refused(
        session,
        lambda: factories.payment(session, account, method, status="paid-ish"),
        "ck_payments_status_known",
    )


def test_scheduled_payment_needs_a_date(world):
    session, account, method, _ = world
    _refused(
        session,
        lambda: factories.payment(session, account, method, status="scheduled"),
        "ck_payments_scheduled_has_date",
    )


def test_email_dedupe_key_is_unique(world):
    session, account, _, _ = world

    def email():
        session.add(
            Email(
                kind="receipt",
                recipient="ap@customer.test",
                context={},
                dedupe_key="receipt:payment:1",
                seller_id=account.seller_id,
                status="queued",
                attempts=0,
            )
        )
        session.flush()

    email()
    session.commit()
    _refused(session, email, "uq_emails_dedupe_key")


def test_stripe_event_id_is_the_primary_key(world):
    session, _, _, _ = world

    def event():
        session.add(
            StripeEvent(
                id="evt_1", type="payment_intent.succeeded", payload={}, status="received", attempts=0
            )
        )
        session.flush()

    event()
    session.commit()
    _refused(session, event, "pk_stripe_events")


def test_schedule_run_is_unique_per_job_and_period(world):
    session, _, _, _ = world

    def run():
        session.add(ScheduleRun(job="nightly-balances", period="2026-11-22"))
        session.flush()

    run()
    session.commit()
    _refused(session, run, "uq_schedule_runs_job_period")


def test_allocation_must_point_at_a_real_invoice(world):
    session, account, method, _ = world
    payment = factories.payment(session, account, method)
    from db.models import Allocation

    _refused(
        session,
        lambda: session.add(
            Allocation(
                payment_id=payment.id, invoice_id=999_999, amount_minor=1, discount_minor=0, state="reserved"
            )
        ),
        "fk_allocations_invoice_id_invoices",
    )


def test_only_one_default_method_per_account(world):
    session, account, method, _ = world
    method.is_default = True
    session.commit()
    _refused(
        session, lambda: factories.method(session, account, is_default=True), "uq_payment_methods_one_default"
    )


def test_bank_account_needs_a_mandate(world):
    session, account, _, _ = world
    _refused(
        session,
        lambda: factories.method(session, account, kind="us_bank_account", mandate_accepted_at=None),
        "ck_payment_methods_ach_needs_mandate",
    )


def test_discount_must_be_below_total(world):
    session, account, _, _ = world
    _refused(
        session,
        lambda: factories.invoice(
            session,
            account,
            total_minor=100,
            discount_minor=100,
            discount_until=datetime.now(UTC).date(),
        ),
        "ck_invoices_discount_range",
    )


def _insert_allocation(session, payment_id: int, invoice_id: int, amount: int, state: str) -> None:
    from sqlalchemy import text

    session.execute(
        text(
            "INSERT INTO allocations (payment_id, invoice_id, amount_minor, paid_minor, discount_minor,"
            " state)"
            " VALUES (:p, :i, :a, :a, 0, :s)"
        ),
        {"p": payment_id, "i": invoice_id, "a": amount, "s": state},
    )


def test_an_applied_allocation_beyond_what_the_invoice_owes_is_refused_by_postgresql(world):
    # Issue 12: an applied allocation of 99,999,999 on a 70.05 invoice was accepted.
    session, account, method, _ = world
    invoice = factories.invoice(session, account, total_minor=7_005)
    payment = factories.payment(session, account, method, status="succeeded")
    session.commit()
    _refused(
        session,
        lambda: _insert_allocation(session, payment.id, invoice.id, 99_999_999, "applied"),
        "invoice_claims_within_total",
    )


def test_claims_up_to_the_total_are_accepted_and_one_cent_more_is_not(world):
    session, account, method, _ = world
    invoice = factories.invoice(session, account, total_minor=10_000)
    paid, more = (factories.payment(session, account, method, status="succeeded") for _ in range(2))
    session.commit()
    _insert_allocation(session, paid.id, invoice.id, 6_000, "applied")
    _insert_allocation(session, more.id, invoice.id, 4_000, "reserved")
    session.commit()
    extra = factories.payment(session, account, method, status="succeeded")
    session.commit()
    _refused(
        session,
        lambda: _insert_allocation(session, extra.id, invoice.id, 1, "applied"),
        "invoice_claims_within_total",
    )


def test_a_claim_moving_state_after_the_invoice_was_lowered_is_still_recorded(world):
    # Stripe took the money already: the success must be recordable; the last look decides what is charged.
    from sqlalchemy import text

    session, account, method, _ = world
    invoice = factories.invoice(session, account, total_minor=10_000)
    payment = factories.payment(session, account, method, status="submitting")
    session.commit()
    _insert_allocation(session, payment.id, invoice.id, 10_000, "reserved")
    session.execute(text("UPDATE invoices SET total_minor = 2500 WHERE id = :i"), {"i": invoice.id})
    session.execute(text("UPDATE allocations SET state = 'applied' WHERE invoice_id = :i"), {"i": invoice.id})
    session.commit()
    reversed_again = text("UPDATE allocations SET state = 'reversed' WHERE invoice_id = :i")
    session.execute(reversed_again, {"i": invoice.id})
    session.commit()
    reinstated = text("UPDATE allocations SET state = 'applied' WHERE invoice_id = :i")
    _refused(session, lambda: session.execute(reinstated, {"i": invoice.id}), "invoice_claims_within_total")
