"""Issue 12, item 3: available credit pays invoices, with a payment (use_credit) and alone (apply_credit)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import Allocation, Credit, Email, Invoice, Payment, PaymentEvent
from db.queries import payments as payment_rows
from tasks import api
from tasks.domain.attempts import Answered
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus as P
from tasks.flows import ledger
from tasks.flows import payments as execution
from tests import factories
from tests.helpers import queued_messages


def _deposit(shop, amount: int, key: str) -> int:
    """A card deposit paid at the emulator: its credit is available."""
    receipt = api.make_deposit(shop.account_id, amount, shop.methods["visa"], key, now=shop.now)
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    return receipt.payment_id


def _credits(shop):
    """(origin payment, amount, state, spending payment, invoice) of every credit row, oldest first."""
    with shop.db() as session:
        rows = session.scalars(select(Credit).order_by(Credit.created_at, Credit.id))
        return [
            (c.payment_id, c.amount_minor, c.state, c.used_by_payment_id, c.applied_invoice_id) for c in rows
        ]


def _intents_for(emulator, payment_id):
    return [pi for pi in emulator.payment_intents() if pi["metadata"].get("payment_id") == str(payment_id)]


def _payment(shop, payment_id) -> Payment:
    with shop.db() as session:
        return session.get(Payment, payment_id)


def _allocations(shop, payment_id):
    with shop.db() as session:
        rows = session.scalars(
            select(Allocation).where(Allocation.payment_id == payment_id).order_by(Allocation.id)
        )
        return [(a.invoice_id, a.amount_minor, a.state) for a in rows]


def test_use_credit_spends_the_credit_first_and_charges_stripe_only_the_rest(shop, emulator):
    deposit = _deposit(shop, 4_000, "d1")
    invoice = shop.invoices[0]  # 10,000
    receipt = api.pay_invoices(
        shop.account_id, [invoice], shop.methods["visa"], "k1", now=shop.now, use_credit=True
    )
    assert (receipt.amount_minor, receipt.credit_used_minor, receipt.status) == (6_000, 4_000, "pending")
    assert _credits(shop) == [(deposit, 4_000, "reserved", receipt.payment_id, invoice)]
    assert api.account_overview(shop.account_id, now=shop.now).credit_minor == 0  # held by the payment
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.SUCCEEDED)
    [intent] = _intents_for(emulator, receipt.payment_id)
    assert intent["amount"] == 6_000
    assert _allocations(shop, receipt.payment_id) == [(invoice, 10_000, "applied")]
    assert _credits(shop) == [(deposit, 4_000, "applied", receipt.payment_id, invoice)]


def test_credit_covering_everything_pays_at_once_and_nothing_reaches_stripe(shop, emulator, broker):
    deposit = _deposit(shop, 25_000, "d1")
    first, second = shop.invoices[0], shop.invoices[1]  # 10,000 and 11,000, oldest first
    receipt = api.pay_invoices(
        shop.account_id, [second, first], shop.methods["visa"], "k1", now=shop.now, use_credit=True
    )
    assert (receipt.status, receipt.amount_minor, receipt.credit_used_minor) == ("succeeded", 0, 21_000)
    assert receipt.payment_id not in [m.args[0] for m in queued_messages(broker, "payments")]
    assert _intents_for(emulator, receipt.payment_id) == []
    assert _credits(shop) == [
        (deposit, 10_000, "applied", receipt.payment_id, first),
        (deposit, 11_000, "applied", receipt.payment_id, second),
        (deposit, 4_000, "available", None, None),
    ]
    overview = api.account_overview(shop.account_id, now=shop.now)
    owed = sum(10_000 + n * 1_000 for n in range(2, 5))
    assert (overview.balance_minor, overview.credit_minor, overview.net_owed_minor) == (
        owed,
        4_000,
        owed - 4_000,
    )
    with shop.db() as session:
        [email] = session.scalars(select(Email).where(Email.payment_id == receipt.payment_id))
    assert (email.kind, email.context["credit_used_minor"], email.context["amount_minor"]) == (
        "payment_confirmation",
        21_000,
        0,
    )


def test_apply_credit_pays_named_invoices_from_credit_alone_once_per_key(shop, emulator):
    deposit = _deposit(shop, 12_000, "d1")
    invoice = shop.invoices[0]
    receipt = api.apply_credit(shop.account_id, invoice_ids=[invoice], idempotency_key="c1", now=shop.now)
    assert (receipt.kind, receipt.status, receipt.amount_minor, receipt.credit_used_minor) == (
        "credit",
        "succeeded",
        0,
        10_000,
    )
    again = api.apply_credit(shop.account_id, invoice_ids=[invoice], idempotency_key="c1", now=shop.now)
    assert (again.payment_id, again.replayed) == (receipt.payment_id, True)
    with pytest.raises(RemitError) as reused:
        api.apply_credit(shop.account_id, amount=500, idempotency_key="c1", now=shop.now)
    assert reused.value.code == "idempotency_key_reused"
    assert _credits(shop) == [
        (deposit, 10_000, "applied", receipt.payment_id, invoice),
        (deposit, 2_000, "available", None, None),
    ]
    assert _intents_for(emulator, receipt.payment_id) == []
    assert [
        row.status for row in api.list_invoices(shop.account_id, now=shop.now) if row.invoice_id == invoice
    ] == ["paid"]


def test_apply_credit_with_an_amount_pays_oldest_invoices_first_from_the_oldest_credit(shop):
    older = _deposit(shop, 3_000, "d1")
    newer = _deposit(shop, 9_000, "d2")
    receipt = api.apply_credit(shop.account_id, amount=11_000, idempotency_key="c1", now=shop.now)
    oldest, next_one = shop.invoices[0], shop.invoices[1]
    assert [(line.invoice_id, line.amount_minor) for line in receipt.lines] == [
        (oldest, 10_000),
        (next_one, 1_000),
    ]
    assert _credits(shop) == [
        (older, 3_000, "applied", receipt.payment_id, oldest),
        (newer, 7_000, "applied", receipt.payment_id, oldest),
        (newer, 1_000, "applied", receipt.payment_id, next_one),
        (newer, 1_000, "available", None, None),
    ]


def test_get_payment_shows_the_credit_each_invoice_took_and_no_method_when_nothing_was_charged(shop):
    _deposit(shop, 3_000, "d1")
    _deposit(shop, 9_000, "d2")
    receipt = api.apply_credit(shop.account_id, amount=11_000, idempotency_key="c1", now=shop.now)
    seen = api.get_payment(shop.account_id, receipt.payment_id)
    assert [(line.invoice_id, line.credit_used_minor) for line in seen.lines] == [
        (shop.invoices[0], 10_000),
        (shop.invoices[1], 1_000),
    ]
    assert (seen.credit_used_minor, seen.amount_minor, seen.method) == (11_000, 0, None)
    assert receipt.lines == seen.lines  # what apply_credit answered is what get_payment shows


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (dict(invoice_ids=[0]), "insufficient_credit"),  # 10,000 owed, 5,000 of credit
        (dict(amount=6_000), "insufficient_credit"),
        (dict(amount=70_000), "amount_exceeds_balance"),  # 60,000 owed: credit never becomes credit again
        (dict(), "invoices_or_amount"),
        (dict(invoice_ids=[0], amount=100), "invoices_or_amount"),
        (dict(amount=0), "invalid_amount"),
    ],
)
def test_apply_credit_refuses_what_credit_cannot_pay_and_changes_nothing(shop, call, code):
    deposit = _deposit(shop, 5_000, "d1")
    if "invoice_ids" in call:
        call = {**call, "invoice_ids": [shop.invoices[i] for i in call["invoice_ids"]]}
    with pytest.raises(RemitError) as refused:
        api.apply_credit(shop.account_id, idempotency_key="c1", now=shop.now, **call)
    assert refused.value.code == code
    assert _credits(shop) == [(deposit, 5_000, "available", None, None)]


def test_credit_is_held_like_any_payment_an_invoice_in_flight_cannot_take_it(shop):
    _deposit(shop, 50_000, "d1")
    api.pay_invoices(shop.account_id, [shop.invoices[0]], shop.methods["visa"], "k1", now=shop.now)
    with pytest.raises(RemitError) as refused:
        api.apply_credit(shop.account_id, invoice_ids=[shop.invoices[0]], idempotency_key="c1", now=shop.now)
    assert refused.value.code == "invoice_unavailable"
    assert api.account_overview(shop.account_id, now=shop.now).credit_minor == 50_000


def test_a_declined_payment_gives_the_credit_it_held_back(shop):
    deposit = _deposit(shop, 4_000, "d1")
    invoice = shop.invoices[0]
    receipt = api.pay_invoices(
        shop.account_id, [invoice], shop.methods["declined"], "k1", now=shop.now, use_credit=True
    )
    assert execution.execute_payment(receipt.payment_id, shop.now) == Answered(P.FAILED)
    assert _credits(shop) == [(deposit, 4_000, "available", receipt.payment_id, invoice)]
    assert api.account_overview(shop.account_id, now=shop.now).credit_minor == 4_000


def test_a_scheduled_payment_credit_covers_succeeds_on_its_day_without_stripe(shop, emulator):
    deposit = _deposit(shop, 10_000, "d1")
    invoice = shop.invoices[0]
    day = shop.today + timedelta(days=3)
    receipt = api.pay_invoices(
        shop.account_id, [invoice], shop.methods["visa"], "k1", pay_on=day, now=shop.now, use_credit=True
    )
    assert (receipt.status, receipt.amount_minor) == ("scheduled", 0)
    that_day = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    assert execution.dispatch_due_payments(that_day)["dispatched"] == 1
    assert execution.execute_payment(receipt.payment_id, that_day) == Answered(P.SUCCEEDED)
    assert _intents_for(emulator, receipt.payment_id) == []
    assert _credits(shop) == [(deposit, 10_000, "applied", receipt.payment_id, invoice)]


def test_a_refund_of_a_payment_that_spent_credit_gives_that_credit_back(shop):
    deposit = _deposit(shop, 4_000, "d1")
    invoice = shop.invoices[0]
    receipt = api.pay_invoices(
        shop.account_id, [invoice], shop.methods["visa"], "k1", now=shop.now, use_credit=True
    )
    execution.execute_payment(receipt.payment_id, shop.now)
    with shop.db.begin() as session:
        payment = payment_rows.lock_payment(session, receipt.payment_id)
        ledger.apply_transition(session, payment, P.REFUNDED, source="t", now=shop.now)
    assert _allocations(shop, receipt.payment_id) == [(invoice, 10_000, "reversed")]
    assert _credits(shop) == [(deposit, 4_000, "available", receipt.payment_id, invoice)]


@pytest.mark.parametrize("target", [P.REFUNDED, P.DISPUTED])
def test_a_refund_or_dispute_of_a_deposit_whose_credit_was_spent_leaves_the_invoices_paid_and_flags_it(
    shop, target
):
    deposit = _deposit(shop, 15_000, "d1")
    spent = api.apply_credit(
        shop.account_id, invoice_ids=[shop.invoices[0]], idempotency_key="c1", now=shop.now
    )
    with shop.db.begin() as session:
        payment = payment_rows.lock_payment(session, deposit)
        ledger.apply_transition(session, payment, target, source="stripe:evt_1", now=shop.now)
    assert _credits(shop) == [
        (deposit, 10_000, "applied", spent.payment_id, shop.invoices[0]),
        (deposit, 5_000, "reversed", None, None),
    ]
    assert _payment(shop, deposit).needs_review is True
    with shop.db() as session:
        notes = [
            e.detail
            for e in session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == deposit))
            if e.detail.get("needs_review")
        ]
    assert notes == [{"needs_review": "credit_already_spent", "spent_credit_minor": 10_000}]
    statuses = {row.invoice_id: row.status for row in api.list_invoices(shop.account_id, now=shop.now)}
    assert statuses[shop.invoices[0]] == "paid"


def test_a_refund_of_a_deposit_whose_credit_is_unspent_flags_nothing(shop):
    deposit = _deposit(shop, 15_000, "d1")
    with shop.db.begin() as session:
        payment = payment_rows.lock_payment(session, deposit)
        ledger.apply_transition(session, payment, P.REFUNDED, source="stripe:evt_1", now=shop.now)
    assert _payment(shop, deposit).needs_review is False
    assert _credits(shop) == [(deposit, 15_000, "reversed", None, None)]


def test_preview_shows_the_credit_a_payment_would_use(shop):
    _deposit(shop, 4_000, "d1")
    preview = api.preview_payment(shop.account_id, [shop.invoices[0]], use_credit=True, now=shop.now)
    assert (preview.total_minor, preview.credit_used_minor) == (10_000, 4_000)
    assert _credits(shop)[0][2] == "available"


def test_a_payment_without_use_credit_leaves_the_credit_alone(db, broker):
    with db() as session:
        account = factories.account(session)
        card = factories.method(session, account)
        invoice = factories.invoice(session, account, 10_000, due_on=date(2026, 12, 1))
        origin = factories.payment(session, account, card, 5_000, kind="deposit", status="succeeded")
        session.add(
            Credit(
                account_id=account.id,
                payment_id=origin.id,
                amount_minor=5_000,
                currency="usd",
                state="available",
            )
        )
        session.commit()
        ids = (account.id, card.id, invoice.id)
    receipt = api.pay_invoices(ids[0], [ids[2]], ids[1], "k1")
    assert (receipt.amount_minor, receipt.credit_used_minor) == (10_000, 0)
    with db() as session:
        assert session.scalar(select(Credit.state)) == "available"
        assert session.get(Invoice, ids[2]).total_minor == 10_000


@pytest.mark.parametrize(("refunded", "flagged"), [(5_000, False), (5_001, True)])
def test_a_partial_refund_of_a_deposit_is_flagged_only_once_it_reaches_the_spent_credit(
    shop, refunded, flagged
):
    deposit = _deposit(shop, 15_000, "d1")
    api.apply_credit(shop.account_id, invoice_ids=[shop.invoices[0]], idempotency_key="c1", now=shop.now)
    with shop.db.begin() as session:
        payment = payment_rows.lock_payment(session, deposit)
        values = {"refunded_minor": refunded}
        ledger.apply_transition(
            session, payment, P.PARTIALLY_REFUNDED, source="t", now=shop.now, values=values
        )
    assert _payment(shop, deposit).needs_review is flagged


def test_the_history_lists_a_payment_credit_paid_without_a_method(shop):
    _deposit(shop, 15_000, "d1")
    receipt = api.apply_credit(
        shop.account_id, invoice_ids=[shop.invoices[0]], idempotency_key="c1", now=shop.now
    )
    page = api.list_payments(shop.account_id, status="succeeded")
    [summary] = [item for item in page.items if item.payment_id == receipt.payment_id]
    assert (summary.kind, summary.amount_minor, summary.method.kind) == ("credit", 0, None)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_use_credit_must_be_true_or_false(shop, flag):
    with pytest.raises(RemitError) as refused:
        api.pay_invoices(shop.account_id, [shop.invoices[0]], shop.methods["visa"], "k1", use_credit=flag)
    assert refused.value.code == "invalid_use_credit"
    with pytest.raises(RemitError):
        api.preview_payment(shop.account_id, [shop.invoices[0]], use_credit=flag)


def test_two_requests_at_once_never_spend_the_same_credit_twice(shop):
    import threading

    _deposit(shop, 12_000, "d1")
    barrier, outcomes, guard = threading.Barrier(2), [], threading.Lock()

    def spend(n):
        barrier.wait()
        try:
            receipt = api.apply_credit(
                shop.account_id, invoice_ids=[shop.invoices[n]], idempotency_key=f"c{n}", now=shop.now
            )
            outcome = receipt.status
        except RemitError as refused:
            outcome = refused.code
        with guard:
            outcomes.append(outcome)

    threads = [threading.Thread(target=spend, args=(n,)) for n in (0, 1)]  # 10,000 and 11,000
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["insufficient_credit", "succeeded"]
    spent = sum(amount for _, amount, state, _, _ in _credits(shop) if state == "applied")
    assert spent in (10_000, 11_000)
    assert spent + api.account_overview(shop.account_id, now=shop.now).credit_minor == 12_000
