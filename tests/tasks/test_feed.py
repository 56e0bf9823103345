"""The ledger feed on real PostgreSQL: each money fact written with its change, numbered per seller in commit
order with no gap, and read back by the pull API."""

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from db.models import LedgerEvent, Payment, PaymentMethod
from db.queries import payments as payment_rows
from tasks import api
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus as P
from tasks.flows import feed, ledger
from tests import factories
from tests.tasks.handlers.support import make_event

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _events(db, seller_id: int) -> list[tuple[int, str, dict]]:
    with db() as session:
        rows = session.scalars(
            select(LedgerEvent).where(LedgerEvent.seller_id == seller_id).order_by(LedgerEvent.sequence)
        )
        return [(e.sequence, e.type, e.data) for e in rows]


@pytest.fixture()
def paid(db, broker):
    """A seller with a submitting card payment holding two invoices (the method's own event is #1)."""
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account)
        payment = factories.payment(session, account, method, amount_minor=30_000, status="submitting")
        invoices = [factories.invoice(session, account, 10_000), factories.invoice(session, account, 20_000)]
        for invoice in invoices:
            factories.allocation(session, payment, invoice)
        session.commit()
        return account.seller_id, payment.id, [i.id for i in invoices]


def test_a_succeeded_payment_writes_its_event_and_one_applied_allocation_per_invoice(db, paid):
    seller_id, payment_id, invoice_ids = paid
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        ledger.apply_transition(session, payment, P.SUCCEEDED, source="t", now=NOW)
    events = _events(db, seller_id)
    assert [(n, t) for n, t, _ in events] == [
        (1, "payment_method.added"),
        (2, "payment.succeeded"),
        (3, "allocation.applied"),
        (4, "allocation.applied"),
    ]
    succeeded = events[1][2]
    assert (succeeded["payment_id"], succeeded["status"], succeeded["previous_status"]) == (
        payment_id,
        "succeeded",
        "submitting",
    )
    assert (succeeded["amount_minor"], succeeded["currency"]) == (30_000, "usd")
    assert sorted((e[2]["invoice_id"], e[2]["amount_minor"]) for e in events[2:]) == [
        (invoice_ids[0], 10_000),
        (invoice_ids[1], 20_000),
    ]


def test_a_failed_payment_releases_each_invoice_and_an_internal_move_writes_nothing(db, paid):
    seller_id, payment_id, _ = paid
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        ledger.apply_transition(session, payment, P.FAILED, source="t", now=NOW, values={"failure_code": "x"})
    types = [t for _, t, _ in _events(db, seller_id)]
    assert types == ["payment_method.added", "payment.failed", "allocation.released", "allocation.released"]
    assert _events(db, seller_id)[1][2]["failure_code"] == "x"


def test_a_refused_transition_writes_no_event(db, paid):
    seller_id, payment_id, _ = paid
    with db.begin() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        assert not ledger.apply_transition(session, payment, P.REFUNDED, source="t", now=NOW)
    assert [t for _, t, _ in _events(db, seller_id)] == ["payment_method.added"]


def test_a_rolled_back_change_writes_no_event_and_leaves_no_gap(db, paid):
    seller_id, payment_id, _ = paid
    with db() as session:
        payment = payment_rows.lock_payment(session, payment_id)
        ledger.apply_transition(session, payment, P.SUCCEEDED, source="t", now=NOW)
        session.rollback()
    with db.begin() as session:
        feed.emit(session, "test.fact", {"n": 1}, seller_id=seller_id)
    assert [(n, t) for n, t, _ in _events(db, seller_id)] == [(1, "payment_method.added"), (2, "test.fact")]


def test_concurrent_transactions_of_one_seller_get_every_number_once_with_no_gap(db, broker):
    with db() as session:
        seller_id = factories.seller(session).id
        session.commit()
    errors = []

    def commit_facts(worker: int) -> None:
        try:
            for n in range(20):
                with db.begin() as session:
                    feed.emit(session, "test.fact", {"worker": worker, "n": n}, seller_id=seller_id)
                    feed.emit(
                        session, "test.fact", {"worker": worker, "n": n, "second": True}, seller_id=seller_id
                    )
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=commit_facts, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = _events(db, seller_id)
    assert [n for n, _, _ in events] == list(range(1, 241))
    # The two facts of one transaction are numbered one after the other: commits never interleave.
    for first, second in zip(events[::2], events[1::2], strict=True):
        assert first[2]["worker"] == second[2]["worker"] and second[2].get("second")


def test_each_seller_has_its_own_sequence(db, broker):
    with db() as session:
        one, two = factories.seller(session).id, factories.seller(session).id
        session.commit()
    with db.begin() as session:
        for i, seller_id in enumerate((two, one, two)):
            feed.emit(session, "test.fact", {"i": i}, seller_id=seller_id)
    with db.begin() as session:
        for i, seller_id in enumerate((one, two, one), start=3):
            feed.emit(session, "test.fact", {"i": i}, seller_id=seller_id)
    # Numbered in the order emitted, each seller's on from where its last transaction ended.
    assert [(n, data["i"]) for n, _, data in _events(db, one)] == [(1, 1), (2, 3), (3, 5)]
    assert [(n, data["i"]) for n, _, data in _events(db, two)] == [(1, 0), (2, 2), (3, 4)]


def test_a_method_added_verified_and_removed_each_write_an_event(db, broker):
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account, kind="us_bank_account", status="verification_pending")
        session.commit()
    with db.begin() as session:
        session.get(PaymentMethod, method.id).status = "active"
    with db.begin() as session:
        row = session.get(PaymentMethod, method.id)
        row.last4 = "0000"  # no status change: no event
    with db.begin() as session:
        session.get(PaymentMethod, method.id).status = "removed"
    events = _events(db, account.seller_id)
    assert [t for _, t, _ in events] == [
        "payment_method.added",
        "payment_method.verified",
        "payment_method.removed",
    ]
    assert events[1][2]["payment_method_id"] == method.id and events[1][2]["previous_status"] == (
        "verification_pending"
    )


def test_a_payment_accepted_through_the_api_writes_its_event_with_its_invoices(db, broker):
    with db() as session:
        account = factories.account(session)
        method = factories.method(session, account)
        invoice = factories.invoice(session, account, 12_345)
        session.commit()
    receipt = api.pay_invoices(account.id, [invoice.id], method.id, "key-feed-1")
    events = _events(db, account.seller_id)
    assert [t for _, t, _ in events] == ["payment_method.added", "payment.accepted"]
    data = events[1][2]
    assert data["payment_id"] == receipt.payment_id and data["status"] == "pending"
    assert data["invoices"] == [{"invoice_id": invoice.id, "amount_minor": 12_345, "discount_minor": 0}]


def test_the_pull_api_returns_events_after_a_sequence_in_pages(db, broker):
    with db() as session:
        seller_id = factories.seller(session).id
        session.commit()
    with db.begin() as session:
        for n in range(5):
            feed.emit(session, "test.fact", {"n": n, "at": NOW}, seller_id=seller_id)
    page = api.list_ledger_events(seller_id, after_sequence=1, limit=3)
    assert [(e.sequence, e.data["n"]) for e in page] == [(2, 1), (3, 2), (4, 3)]
    assert page[0].data["at"] == NOW.isoformat()
    assert [e.sequence for e in api.list_ledger_events(seller_id, after_sequence=4)] == [5]
    assert api.list_ledger_events(seller_id, after_sequence=5) == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((0, 0, 10), "seller_not_found"),
        ((True, 0, 10), "seller_not_found"),
        ((987654, 0, 10), "seller_not_found"),
        ((1, -1, 10), "invalid_sequence"),
        ((1, "3", 10), "invalid_sequence"),
        ((1, 0, 0), "invalid_limit"),
        ((1, 0, 1001), "invalid_limit"),
    ],
)
def test_the_pull_api_refuses_bad_input(db, broker, args, code):
    with db() as session:
        factories.seller(session)
        session.commit()
    with pytest.raises(RemitError) as refused:
        api.list_ledger_events(*args)
    assert refused.value.code == code


def _types_after(db, seller_id: int, first: int) -> list[tuple[str, dict]]:
    return [(t, d) for n, t, d in _events(db, seller_id) if n > first]


def test_a_partial_refund_writes_the_refund_and_each_invoice_slice_it_took_back(db, broker):
    from tests.tasks.handlers.test_refunds_disputes import charge, run, succeeded

    ids = succeeded(db)  # invoices 6,000 (due first) and 4,000 (due later)
    with db() as session:
        seller_id = session.get(Payment, ids["payment"]).account.seller_id
    before = len(_events(db, seller_id))
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 5_000)))
    events = _types_after(db, seller_id, before)
    # One transaction: the slices are written before the payment's transition, all numbered together.
    assert sorted(t for t, _ in events) == ["allocation.reduced", "allocation.reversed", "payment.refunded"]
    refunded = next(d for t, d in events if t == "payment.refunded")
    assert (refunded["status"], refunded["refunded_minor"]) == ("partially_refunded", 5_000)
    slices = {t: (d["amount_minor"], d["state"]) for t, d in events if t.startswith("allocation")}
    assert slices == {"allocation.reduced": (5_000, "applied"), "allocation.reversed": (4_000, "reversed")}


def test_a_dispute_writes_the_reversal_and_its_closing_writes_lost(db, broker):
    from tests.tasks.handlers.test_refunds_disputes import dispute, run, succeeded

    ids = succeeded(db)
    with db() as session:
        seller_id = session.get(Payment, ids["payment"]).account.seller_id
    before = len(_events(db, seller_id))
    run(db, make_event("charge.dispute.created", dispute("dp_1", "pi_r", "needs_response")))
    run(db, make_event("charge.dispute.closed", dispute("dp_1", "pi_r", "lost")))
    types = [t for t, _ in _types_after(db, seller_id, before)]
    assert types == ["payment.disputed", "allocation.reversed", "allocation.reversed", "dispute.lost"]


def test_a_dispute_delivered_closed_at_once_writes_the_reversal_before_the_outcome(db, broker):
    from tests.tasks.handlers.test_refunds_disputes import dispute, run, succeeded

    ids = succeeded(db)
    with db() as session:
        seller_id = session.get(Payment, ids["payment"]).account.seller_id
    before = len(_events(db, seller_id))
    run(db, make_event("charge.dispute.closed", dispute("dp_2", "pi_r", "won")))
    events = _types_after(db, seller_id, before)
    assert [t for t, _ in events][0] == "payment.disputed" and [t for t, _ in events][-1] == "dispute.won"
    assert events[-1][1]["status"] == "succeeded" and events[-1][1]["dispute"] == "dp_2"
