"""Issue 14, item 2: ERP changes meet payments in flight: each status a holding payment can be in, for a
changed invoice (sync_invoices) and for one paid outside Remit (record_external_payment)."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, update

from db.models import Account, Allocation, Credit, Email, ExternalPaymentLine, Payment, PaymentEvent
from tasks import api
from tasks.domain.states import PaymentStatus as P
from tests import factories

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture()
def erp(db, broker):
    """A synced account with invoices I-1 (10,000) and I-2 (5,000), and a card."""
    with db() as session:
        seller = factories.seller(session, timezone="UTC")
        session.commit()
        seller_id = seller.id
    api.sync_accounts(
        seller_id,
        [dict(external_id="C-1", version=1, number="N-1", name="Acme", billing_email="ap@acme.test")],
    )
    api.sync_invoices(seller_id, [_invoice("I-1", 10_000), _invoice("I-2", 5_000)], NOW)
    with db() as session:
        account = session.scalar(select(Account).where(Account.external_id == "C-1"))
        card = factories.method(session, account).id
        session.commit()
    w = type("Erp", (), {})()
    w.db, w.seller_id, w.account_id, w.card = db, seller_id, account.id, card
    return w


def _invoice(external_id, total, version=1, **changes):
    record = dict(
        external_id=external_id,
        version=version,
        account_external_id="C-1",
        number=f"INV-{external_id}",
        total_minor=total,
        issued_on="2026-11-01",
        due_on="2026-12-01",
    )
    return {**record, **changes}


def _invoice_ids(erp):
    return [v.invoice_id for v in sorted(api.list_invoices(erp.account_id, now=NOW), key=lambda v: v.number)]


def _hold(erp, status, invoices=None, pay_on=None):
    """A payment of the invoices, moved to status as the worker and Stripe would (in flight statuses)."""
    ids = invoices or _invoice_ids(erp)
    receipt = api.pay_invoices(erp.account_id, ids, erp.card, f"k-{status}", pay_on=pay_on, now=NOW)
    if status not in (P.SCHEDULED, P.PENDING):
        with erp.db() as session:
            session.execute(update(Payment).where(Payment.id == receipt.payment_id).values(status=status))
            session.commit()
    return receipt.payment_id


def _payment(erp, payment_id):
    with erp.db() as session:
        return session.get(Payment, payment_id)


def _allocation_states(erp, payment_id):
    with erp.db() as session:
        statement = (
            select(Allocation.state).where(Allocation.payment_id == payment_id).order_by(Allocation.id)
        )
        return list(session.scalars(statement))


def _timeline(erp, payment_id):
    with erp.db() as session:
        statement = (
            select(PaymentEvent).where(PaymentEvent.payment_id == payment_id).order_by(PaymentEvent.id)
        )
        return [e.detail for e in session.scalars(statement)]


def _emails(erp, payment_id):
    with erp.db() as session:
        return [
            (e.kind, e.context) for e in session.scalars(select(Email).where(Email.payment_id == payment_id))
        ]


@pytest.mark.parametrize(
    ("status", "flagged"),
    [
        (P.SCHEDULED, False),  # its last look, on its day, decides
        (P.PENDING, False),  # its last look, in a moment, decides
        (P.SUBMITTING, True),  # the charge may be at Stripe already: only ops can decide
        (P.PROCESSING, True),
        (P.REQUIRES_ACTION, True),
    ],
)
def test_a_change_to_a_held_invoice_is_accepted_and_recorded_on_the_payment(erp, status, flagged):
    payment_id = _hold(erp, status, pay_on=date(2026, 12, 20) if status == P.SCHEDULED else None)
    [result] = api.sync_invoices(erp.seller_id, [_invoice("I-1", 2_500, version=2)], NOW)
    assert result.outcome.value == "applied"
    assert {"erp_changed_invoices": ["INV-I-1"]}.items() <= _timeline(erp, payment_id)[-1].items()
    assert _payment(erp, payment_id).needs_review is flagged
    assert _allocation_states(erp, payment_id) == ["reserved", "reserved"]


def test_a_check_on_an_invoice_a_scheduled_payment_holds_takes_it_out_before_its_day_and_tells_the_customer(
    erp,
):
    first, second = _invoice_ids(erp)
    payment_id = _hold(erp, P.SCHEDULED, pay_on=date(2026, 12, 20))
    receipt = api.record_external_payment(erp.seller_id, "C-1", "CHK-1", "check", [("I-1", 10_000)], NOW)
    assert receipt.credited == ()
    payment = _payment(erp, payment_id)
    assert (payment.status, payment.amount_minor, payment.needs_review) == ("scheduled", 5_000, False)
    assert _allocation_states(erp, payment_id) == ["released", "reserved"]
    changes = [
        "Invoice INV-I-1 was paid outside the portal (CHK-1).",
        "Invoice INV-I-1 is already paid: removed from this payment.",
    ]
    assert payment.last_look_changes == changes
    [(kind, context)] = [e for e in _emails(erp, payment_id) if e[1]["changes"]]
    assert (kind, context["amount_minor"], context["changes"]) == ("scheduled_confirmed", 5_000, changes)
    statuses = {v.invoice_id: v.status for v in api.list_invoices(erp.account_id, now=NOW)}
    assert statuses == {first: "paid", second: "scheduled"}


def test_a_partial_check_on_an_invoice_a_scheduled_payment_holds_lowers_what_it_charges(erp):
    payment_id = _hold(erp, P.SCHEDULED, pay_on=date(2026, 12, 20))
    api.record_external_payment(erp.seller_id, "C-1", "CHK-1", "check", [("I-1", 4_000)], NOW)
    payment = _payment(erp, payment_id)
    assert (payment.status, payment.amount_minor) == ("scheduled", 11_000)
    with erp.db() as session:
        statement = select(Allocation.amount_minor, Allocation.state).where(
            Allocation.payment_id == payment_id
        )
        assert sorted(session.execute(statement).all()) == [(5_000, "reserved"), (6_000, "reserved")]
    assert {v.number: v.owed_minor for v in api.list_invoices(erp.account_id, now=NOW)}["INV-I-1"] == 6_000


def test_a_check_on_every_invoice_of_a_scheduled_payment_cancels_it(erp):
    payment_id = _hold(erp, P.SCHEDULED, invoices=_invoice_ids(erp)[:1], pay_on=date(2026, 12, 20))
    api.record_external_payment(erp.seller_id, "C-1", "CHK-1", "check", [("I-1", 10_000)], NOW)
    assert _payment(erp, payment_id).status == "canceled"
    assert [kind for kind, _ in _emails(erp, payment_id)] == ["scheduled_confirmed", "scheduled_canceled"]


def test_a_check_on_an_invoice_a_pending_payment_holds_takes_it_out_before_it_is_charged(erp):
    payment_id = _hold(erp, P.PENDING)
    api.record_external_payment(erp.seller_id, "C-1", "CHK-1", "check", [("I-2", 5_000)], NOW)
    payment = _payment(erp, payment_id)
    assert (payment.status, payment.amount_minor) == ("pending", 10_000)
    assert _allocation_states(erp, payment_id) == ["reserved", "released"]


@pytest.mark.parametrize("status", [P.SUBMITTING, P.PROCESSING, P.REQUIRES_ACTION])
def test_a_check_beside_a_payment_whose_charge_may_be_at_stripe_becomes_credit_and_flags_it(erp, status):
    payment_id = _hold(erp, status)
    receipt = api.record_external_payment(erp.seller_id, "C-1", "CHK-1", "check", [("I-1", 10_000)], NOW)
    assert receipt.credited == ("I-1",)
    payment = _payment(erp, payment_id)
    assert (payment.status, payment.needs_review, payment.amount_minor) == (status, True, 15_000)
    assert _allocation_states(erp, payment_id) == ["reserved", "reserved"]  # never paid twice
    with erp.db() as session:
        assert session.scalar(select(ExternalPaymentLine.as_credit)) is True
        [(amount, state)] = session.execute(select(Credit.amount_minor, Credit.state)).all()
    assert (amount, state) == (10_000, "available")
    assert api.account_overview(erp.account_id, now=NOW).credit_minor == 10_000
    assert _timeline(erp, payment_id)[-1]["needs_review"] == "paid_outside_in_flight"


def test_a_check_on_an_invoice_no_payment_holds_settles_it_as_before(erp):
    receipt = api.record_external_payment(erp.seller_id, "C-1", "CHK-1", "check", [("I-1", 10_000)], NOW)
    assert receipt.credited == ()
    with erp.db() as session:
        assert session.scalar(select(func.count()).select_from(Credit)) == 0
