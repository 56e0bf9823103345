"""How disputes end (won, lost, inquiry closed) against real PostgreSQL, in any delivery order."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from db.models import (
    Account,
    Credit,
    Dispute,
    Email,
    ExternalPayment,
    ExternalPaymentLine,
    Invoice,
    Payment,
    PaymentEvent,
)
from tasks.domain.errors import RemitError
from tasks.flows.disputes import reinstate_won_dispute
from tests import factories
from tests.tasks.handlers.support import make_event, snapshot, timeline
from tests.tasks.handlers.test_refunds_disputes import charge, dispute, run, settled


def events_of(intent: str, dispute_id: str, *steps: tuple[str, str]) -> list[dict]:
    return [
        make_event(f"charge.dispute.{kind}", dispute(dispute_id, intent, status)) for kind, status in steps
    ]


WON = (
    ("created", "needs_response"),
    ("funds_withdrawn", "needs_response"),
    ("updated", "under_review"),
    ("closed", "won"),
    ("funds_reinstated", "won"),
)


def credits_of(db, payment_id: int) -> list[tuple[int, str]]:
    with db() as session:
        rows = session.execute(
            select(Credit.amount_minor, Credit.state)
            .where(Credit.payment_id == payment_id)
            .order_by(Credit.id)
        )
        return [tuple(r) for r in rows]


def pay_outside(db, invoice_id: int, amount: int) -> None:
    """The seller's ERP records a check paying the invoice (an external payment line)."""
    with db() as session, session.begin():
        account = session.scalar(select(Account).join(Payment, Payment.account_id == Account.id).limit(1))
        external = ExternalPayment(
            seller_id=account.seller_id,
            account_id=account.id,
            reference=f"check-{invoice_id}",
            kind="check",
            amount_minor=amount,
            currency="usd",
        )
        session.add(external)
        session.flush()
        session.add(
            ExternalPaymentLine(external_payment_id=external.id, invoice_id=invoice_id, amount_minor=amount)
        )


def test_won_dispute_puts_the_money_back_on_the_invoices_and_tells_the_customer(db):
    ids = settled(db, "pi_w")  # 10,000 over invoices of 6,000 and 4,000
    for event in events_of("pi_w", "dp_w", *WON):
        run(db, event)
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("succeeded", False)
    assert [a[1:] for a in state["allocations"]] == [("applied", 6_000), ("applied", 4_000)]
    assert [key.split(":")[0] for key in state["emails"]] == ["dispute_won", "payment_reversed"]
    assert credits_of(db, ids["payment"]) == []
    assert timeline(db, ids["payment"])[-2:] == [
        ("disputed", "succeeded", True),
        ("succeeded", "succeeded", True),
    ]
    with db() as session:
        row = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == "dp_w"))
        assert (row.status, row.reinstated_at is not None, row.closed_at is not None) == ("won", True, True)
        assert session.get(Account, ids["account"]).balance_stale_since is not None


def test_won_dispute_makes_credit_of_what_was_paid_meanwhile(db):
    ids = settled(db, "pi_m")
    run(db, events_of("pi_m", "dp_m", ("created", "needs_response"))[0])
    pay_outside(db, ids["invoices"][0], 6_000)  # the first invoice is paid in full by check
    pay_outside(db, ids["invoices"][1], 1_500)  # the second in part
    run(db, events_of("pi_m", "dp_m", ("closed", "won"))[0])
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("succeeded", True)  # ops: the seller may refund it
    assert [a[1:] for a in state["allocations"]] == [("reversed", 6_000), ("applied", 2_500)]
    assert credits_of(db, ids["payment"]) == [(6_000, "available"), (1_500, "available")]
    with db() as session:
        line = session.scalars(
            select(PaymentEvent.detail)
            .where(PaymentEvent.payment_id == ids["payment"], PaymentEvent.to_status == "succeeded")
            .order_by(PaymentEvent.id.desc())
        ).first()
        email = session.scalars(select(Email).where(Email.kind == "dispute_won")).one()
    assert (line["credit_minor"], line["dispute_status"]) == (7_500, "won")
    assert [(i["amount_minor"], i["reversed_minor"]) for i in email.context["invoices"]] == [
        (6_000, 6_000),
        (4_000, 1_500),
    ]


def test_a_refund_after_the_win_takes_back_the_credit_it_left_first(db):
    ids = settled(db, "pi_c")
    run(db, events_of("pi_c", "dp_c", ("created", "needs_response"))[0])
    pay_outside(db, ids["invoices"][1], 4_000)
    run(db, events_of("pi_c", "dp_c", ("closed", "won"))[0])
    run(db, make_event("charge.refunded", charge("pi_c", ids["payment"], 4_000)))
    state = snapshot(db, ids["payment"])
    assert (state["status"], [a[1:] for a in state["allocations"]]) == (
        "partially_refunded",
        [("applied", 6_000), ("reversed", 4_000)],
    )
    assert credits_of(db, ids["payment"]) == [(4_000, "reversed")]


def test_won_dispute_never_overfills_an_invoice_another_payment_now_holds(db):
    ids = settled(db, "pi_h")
    run(db, events_of("pi_h", "dp_h", ("created", "needs_response"))[0])
    other = settled(db, "pi_other")  # a second payment, on invoices of its own
    with db() as session, session.begin():
        payment = session.get(Payment, ids["payment"])
        holder = factories.payment(
            session, payment.account, payment.method, amount_minor=6_000, status="pending"
        )
        factories.allocation(session, holder, session.get(Invoice, ids["invoices"][0]))
    run(db, events_of("pi_h", "dp_h", ("closed", "won"))[0])
    state = snapshot(db, ids["payment"])
    assert [a[1] for a in state["allocations"]] == ["reversed", "applied"]
    assert credits_of(db, ids["payment"]) == [(6_000, "available")]
    assert snapshot(db, other["payment"])["status"] == "succeeded"


ORDERS = {
    "in order": (0, 1, 2, 3, 4),
    "funds reinstated before closed": (0, 1, 2, 4, 3),
    "withdrawn after created": (1, 0, 2, 3, 4),
    "updated late": (0, 1, 3, 4, 2),
    "won first": (3, 4, 0, 1, 2),
}


def test_won_dispute_ends_alike_in_any_order_and_with_duplicates(db):
    outcomes = {}
    for n, (name, order) in enumerate(ORDERS.items()):
        intent = f"pi_o{n}"
        ids = settled(db, intent)
        events = events_of(intent, f"dp_o{n}", *WON)
        for index in order:
            run(db, events[index])
        run(db, events[0])  # a redelivered created after the win changes nothing
        run(db, events[3])
        state = snapshot(db, ids["payment"])
        emails = [key.split(":")[0] for key in state["emails"]]
        allocations = [a[1:] for a in state["allocations"]]
        outcomes[name] = (state["status"], state["needs_review"], allocations, emails, state["disputes"])
    first = outcomes["in order"]
    assert all(outcome == first for outcome in outcomes.values()), outcomes
    assert first[0] == "succeeded" and first[3] == ["dispute_won", "payment_reversed"]


def test_dispute_first_seen_won_ends_as_in_order(db):
    ids = settled(db, "pi_f")
    for kind, status in (
        ("closed", "won"),
        ("created", "needs_response"),
        ("funds_withdrawn", "needs_response"),
    ):
        run(db, events_of("pi_f", "dp_f", (kind, status))[0])
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("succeeded", False)
    assert [key.split(":")[0] for key in state["emails"]] == ["dispute_won", "payment_reversed"]
    assert [a[1] for a in state["allocations"]] == ["applied", "applied"]
    assert timeline(db, ids["payment"])[-4:-2] == [
        ("succeeded", "disputed", True),
        ("disputed", "succeeded", True),
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(range(2))))
def test_lost_dispute_stays_reversed_and_clears_the_flag(db, order):
    ids = settled(db, "pi_l")
    events = events_of("pi_l", "dp_l", ("created", "needs_response"), ("closed", "lost"))
    for index in order:
        run(db, events[index])
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("disputed", False)
    assert [a[1] for a in state["allocations"]] == ["reversed", "reversed"]
    assert state["disputes"] == [("lost", "fraudulent")]


def test_open_chargeback_keeps_the_payment_flagged_until_it_ends(db):
    ids = settled(db, "pi_u")
    for event in events_of("pi_u", "dp_u", ("created", "needs_response"), ("updated", "under_review")):
        run(db, event)
    assert snapshot(db, ids["payment"])["needs_review"] is True


def test_inquiry_closed_without_chargeback_clears_its_flag(db):
    ids = settled(db, "pi_q")
    run(db, events_of("pi_q", "dp_q", ("created", "warning_needs_response"))[0])
    assert snapshot(db, ids["payment"])["needs_review"] is True
    run(db, events_of("pi_q", "dp_q", ("closed", "warning_closed"))[0])
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"], state["emails"]) == ("succeeded", False, [])


def test_won_after_a_partial_refund_reinstates_only_what_the_dispute_reversed(db):
    ids = settled(db, "pi_p")  # a refund of 3,000 reduces the 4,000 invoice (latest due) to 1,000 first
    run(db, make_event("charge.refunded", charge("pi_p", ids["payment"], 3_000)))
    for event in events_of("pi_p", "dp_p", ("created", "needs_response"), ("closed", "won")):
        run(db, event)
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["refunded_minor"]) == ("partially_refunded", 3_000)
    assert [a[1:] for a in state["allocations"]] == [("applied", 6_000), ("applied", 1_000)]


def legacy_won(db, intent: str, refunded: int = 0) -> dict:
    """A payment an earlier release left disputed after its dispute was won (no reversal recorded)."""
    ids = settled(db, intent)
    run(db, events_of(intent, f"dp_{intent}", ("created", "needs_response"))[0])
    with db() as session, session.begin():
        row = session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == f"dp_{intent}"))
        row.reversal, row.status = None, "won"
        payment = session.get(Payment, ids["payment"])
        payment.needs_review, payment.refunded_minor = True, refunded
    return ids


def test_ops_reinstate_a_won_dispute_through_the_webhook_path(db):
    ids = legacy_won(db, "pi_ops")
    pay_outside(db, ids["invoices"][1], 4_000)
    result = reinstate_won_dispute(ids["payment"], "alice")
    assert result == {
        "payment_id": ids["payment"],
        "status": "succeeded",
        "reinstated_minor": 6_000,
        "credit_minor": 4_000,
    }
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("succeeded", True)
    assert [a[1] for a in state["allocations"]] == ["applied", "reversed"]
    with db() as session:
        source = session.scalars(
            select(PaymentEvent.source)
            .where(PaymentEvent.payment_id == ids["payment"])
            .order_by(PaymentEvent.id.desc())
        ).first()
    assert source == "ops:alice"
    with pytest.raises(RemitError) as again:
        reinstate_won_dispute(ids["payment"], "alice")
    assert again.value.code == "no_won_dispute"


def test_ops_reinstate_refuses_what_it_cannot_tell_apart_and_changes_nothing(db):
    ids = legacy_won(db, "pi_amb", refunded=1_000)
    before = snapshot(db, ids["payment"])
    for payment_id, operator, code in (
        (ids["payment"], "", "invalid_operator"),
        (ids["payment"] + 1_000, "bob", "payment_not_found"),
        (ids["payment"], "bob", "reversal_unknown"),
    ):
        with pytest.raises(RemitError) as refused:
            reinstate_won_dispute(payment_id, operator)
        assert refused.value.code == code
    assert snapshot(db, ids["payment"]) == before
    # The webhook path leaves it flagged for ops the same way.
    run(db, events_of("pi_amb", "dp_pi_amb", ("closed", "won"))[0])
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("disputed", True)
