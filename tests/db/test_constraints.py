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
