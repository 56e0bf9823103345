"""charge.refunded, refund.* and charge.dispute.* handlers against real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import event as sa_event
from sqlalchemy import select

from db.models import Allocation, Email, Payment, Refund, StripeEvent
from db.session import get_engine
from emails import render
from tasks.domain.events import WAIT_FOR_PAYMENT_S
from tasks.flows.webhooks import process_event
from tasks.webhooks import process_stripe_event
from tests.tasks.handlers.support import make_event, snapshot, store_event, timeline, world

# What any delivery order of a payment's events must agree on (reversed allocations keep the amount
# they had when reversed, which depends on the order and counts nowhere).
SETTLED_FIELDS = ("status", "refunded_minor", "needs_review", "emails", "refunds", "disputes")


def charge(intent_id: str, payment_id: int, refunded: int = 0, amount: int = 10_000) -> dict:
    return {
        "id": f"ch_{intent_id}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": intent_id,
        "metadata": {"payment_id": str(payment_id)},
        "status": "succeeded",
        "refunded": refunded == amount,
    }


def dispute(dispute_id: str, intent_id: str, status: str, reason: str = "fraudulent") -> dict:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": 10_000,
        "currency": "usd",
        "charge": f"ch_{intent_id}",
        "payment_intent": intent_id,
        "reason": reason,
        "status": status,
    }


def run(db, event: dict) -> str:
    store_event(db, event)
    process_stripe_event(event["id"])
    with db() as session:
        return session.get(StripeEvent, event["id"]).status


def succeeded(db, **kwargs) -> dict:
    ids = world(db, status="succeeded", intent_id="pi_r", **kwargs)
    with db() as session, session.begin():
        session.get(Payment, ids["payment"]).stripe_charge_id = "ch_pi_r"
        for allocation in session.scalars(select(Allocation).where(Allocation.payment_id == ids["payment"])):
            allocation.state = "applied"
    return ids


def test_full_refund_reverses_every_allocation_and_emails_once(db):
    ids = succeeded(db)
    assert run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 10_000))) == "processed"
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["refunded_minor"]) == ("refunded", 10_000)
    assert [a[1] for a in state["allocations"]] == ["reversed", "reversed"]
    assert state["emails"] == [f"refund_issued:payment:{ids['payment']}"]


def test_partial_refunds_reverse_latest_due_first_and_reduce_the_next(db):
    ids = succeeded(db)  # invoices 6,000 (due first) and 4,000 (due later)
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 5_000)))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["refunded_minor"]) == ("partially_refunded", 5_000)
    assert [a[1:] for a in state["allocations"]] == [("applied", 5_000), ("reversed", 4_000)]
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 3_000)))  # late, smaller total
    assert snapshot(db, ids["payment"])["refunded_minor"] == 5_000
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 10_000)))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["refunded_minor"]) == ("refunded", 10_000)
    assert [a[1] for a in state["allocations"]] == ["reversed", "reversed"]
    assert state["emails"] == sorted(
        [f"refund_issued:payment:{ids['payment']}", f"refund_issued:payment:{ids['payment']}:refunded:10000"]
    )


def refund_email_contexts(db, payment_id: int) -> list[dict]:
    with db() as session:
        return list(
            session.scalars(
                select(Email.context)
                .where(Email.payment_id == payment_id, Email.kind == "refund_issued")
                .order_by(Email.id)
            )
        )


def test_refund_emails_list_what_each_invoice_was_paid_and_what_was_refunded_adding_up_to_the_total(db):
    ids = succeeded(db)  # invoices 6,000 (due first) and 4,000 (due later)
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 5_000)))
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 10_000)))
    partial, full = refund_email_contexts(db, ids["payment"])
    assert [(line["amount_minor"], line["reversed_minor"]) for line in partial["invoices"]] == [
        (6_000, 1_000),
        (4_000, 4_000),
    ]
    assert [(line["amount_minor"], line["reversed_minor"]) for line in full["invoices"]] == [
        (6_000, 6_000),
        (4_000, 4_000),
    ]
    text = render("refund_issued", partial).text
    assert "$50.00 of your payment of $100.00 has been refunded" in text
    assert ": $60.00, $10.00 refunded" in text and ": $40.00, $40.00 refunded" in text
    assert "Total: $100.00" in text


def test_refund_before_success_settles_the_payment_first(db):
    ids = world(db, status="submitting", intent_id="pi_r")
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 10_000)))
    state = snapshot(db, ids["payment"])
    assert state["status"] == "refunded"
    assert len(state["emails"]) == 2  # confirmation, then refund


def test_refund_objects_are_stored_once_and_a_failed_one_is_flagged(db):
    ids = succeeded(db)
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 2_000,
        "currency": "usd",
        "charge": "ch_pi_r",
        "payment_intent": "pi_r",
        "status": "pending",
        "reason": None,
    }
    run(db, make_event("refund.created", refund))
    run(db, make_event("refund.created", refund))
    run(
        db,
        make_event(
            "refund.failed", {**refund, "status": "failed", "failure_reason": "expired_or_canceled_card"}
        ),
    )
    run(db, make_event("refund.updated", {**refund, "status": "succeeded"}))  # late: failed stays
    with db() as session:
        rows = session.scalars(select(Refund)).all()
        assert [(r.stripe_refund_id, r.status, r.amount_minor) for r in rows] == [("re_1", "failed", 2_000)]
        assert session.get(Payment, ids["payment"]).needs_review is True


def test_late_refund_created_leaves_a_succeeded_refund_succeeded(db):
    succeeded(db)
    refund = {
        "id": "re_9",
        "object": "refund",
        "amount": 2_000,
        "currency": "usd",
        "charge": "ch_pi_r",
        "payment_intent": "pi_r",
        "status": "pending",
        "reason": None,
    }
    run(db, make_event("refund.updated", {**refund, "status": "succeeded"}))
    run(db, make_event("refund.created", refund))  # delivered late
    run(db, make_event("refund.updated", {**refund, "status": "requires_action"}))  # late too
    with db() as session:
        assert session.scalars(select(Refund.status)).all() == ["succeeded"]


def test_succeeded_refund_that_fails_later_is_stored_failed(db):
    succeeded(db)
    refund = {
        "id": "re_8",
        "object": "refund",
        "amount": 2_000,
        "currency": "usd",
        "charge": "ch_pi_r",
        "payment_intent": "pi_r",
        "status": "succeeded",
        "reason": None,
    }
    run(db, make_event("refund.updated", refund))
    run(db, make_event("refund.failed", {**refund, "status": "failed"}))
    run(db, make_event("refund.created", {**refund, "status": "pending"}))  # late
    with db() as session:
        assert session.scalars(select(Refund.status)).all() == ["failed"]


def test_canceled_refund_is_flagged_for_ops_like_a_failed_one(db):
    # charge.refunded reopened the invoices; the refund is then canceled (the money never left).
    ids = succeeded(db)
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 10_000)))
    refund = {
        "id": "re_c",
        "object": "refund",
        "amount": 10_000,
        "currency": "usd",
        "charge": "ch_pi_r",
        "payment_intent": "pi_r",
        "status": "canceled",
        "reason": None,
    }
    run(db, make_event("refund.updated", refund))
    state = snapshot(db, ids["payment"])
    assert (state["needs_review"], state["refunds"]) == (True, [(10_000, "canceled")])


def test_card_dispute_reverses_allocations_flags_and_emails(db):
    ids = succeeded(db)
    run(db, make_event("charge.dispute.created", dispute("dp_1", "pi_r", "needs_response")))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("disputed", True)
    assert [a[1] for a in state["allocations"]] == ["reversed", "reversed"]
    assert state["emails"] == [f"payment_reversed:payment:{ids['payment']}"]
    assert state["disputes"] == [("needs_response", "fraudulent")]


def test_closed_before_created_ends_like_in_order(db):
    ids = succeeded(db)
    run(db, make_event("charge.dispute.closed", dispute("dp_3", "pi_r", "lost")))
    run(db, make_event("charge.dispute.created", dispute("dp_3", "pi_r", "needs_response")))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["disputes"]) == ("disputed", [("lost", "fraudulent")])


def test_ach_return_on_a_settled_payment_is_a_reversal(db):
    ids = succeeded(db, kind="us_bank_account")
    run(
        db,
        make_event("charge.dispute.created", dispute("dp_4", "pi_r", "needs_response", "insufficient_funds")),
    )
    run(db, make_event("charge.dispute.closed", dispute("dp_4", "pi_r", "lost", "insufficient_funds")))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"]) == ("disputed", False)  # lost: nothing left to answer
    assert [a[1] for a in state["allocations"]] == ["reversed", "reversed"]
    assert state["emails"] == [f"payment_reversed:payment:{ids['payment']}"]


def test_dispute_on_an_unknown_charge_waits_for_its_payment_then_is_ignored(db):
    young = make_event("charge.dispute.created", dispute("dp_5", "pi_nobody", "needs_response"))
    assert run(db, young) == "received"  # the sweeper brings it back while its payment may still record it
    day_old = make_event(
        "charge.dispute.created",
        dispute("dp_6", "pi_nobody", "needs_response"),
        created=int(time.time()) - WAIT_FOR_PAYMENT_S - 60,
    )
    assert run(db, day_old) == "ignored"


def test_partial_refund_takes_back_unapplied_credit_before_reopening_invoices(db):
    from db.models import Credit

    ids = succeeded(db)
    with db() as session, session.begin():
        payment = session.get(Payment, ids["payment"])
        payment.kind, payment.amount_minor = "amount", 12_000
        session.add(
            Credit(
                account_id=payment.account_id,
                payment_id=payment.id,
                amount_minor=2_000,
                currency="usd",
                state="available",
            )
        )
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 1_500, amount=12_000)))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["refunded_minor"]) == ("partially_refunded", 1_500)
    assert [a[1:] for a in state["allocations"]] == [("applied", 6_000), ("applied", 4_000)]
    with db() as session:
        [credit] = session.scalars(select(Credit)).all()
    assert (credit.amount_minor, credit.state) == (500, "available")

    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 5_000, amount=12_000)))
    state = snapshot(db, ids["payment"])
    assert [a[1:] for a in state["allocations"]] == [("applied", 6_000), ("applied", 1_000)]
    with db() as session:
        assert session.scalars(select(Credit.state)).all() == ["reversed"]


def settled(db, intent_id: str) -> dict:
    """A succeeded card payment of invoices 6,000 and 4,000 on charge ch_<intent_id>."""
    ids = world(db, status="succeeded", intent_id=intent_id)
    with db() as session, session.begin():
        session.get(Payment, ids["payment"]).stripe_charge_id = f"ch_{intent_id}"
        for allocation in session.scalars(select(Allocation).where(Allocation.payment_id == ids["payment"])):
            allocation.state = "applied"
    return ids


def outcome(db, payment_id: int) -> tuple:
    state = snapshot(db, payment_id)
    emails = [key.replace(f":payment:{payment_id}", "") for key in state["emails"]]
    return tuple(emails if field == "emails" else state[field] for field in SETTLED_FIELDS) + (
        [a[1] for a in state["allocations"]],
    )


def test_partial_refunds_delivered_after_the_dispute_end_as_in_order(db):
    # Refunds of 3,000 then 5,000 in all, then a chargeback; each order of delivery.
    orders = {
        "in order": ("r3", "r5", "dp"),
        "refunds late": ("dp", "r3", "r5"),
        "second refund late": ("r3", "dp", "r5"),
    }
    outcomes = {}
    for n, (name, order) in enumerate(orders.items()):
        intent = f"pi_o{n}"
        ids = settled(db, intent)
        events = {
            "r3": make_event("charge.refunded", charge(intent, ids["payment"], 3_000)),
            "r5": make_event("charge.refunded", charge(intent, ids["payment"], 5_000)),
            "dp": make_event("charge.dispute.created", dispute(f"dp_o{n}", intent, "needs_response")),
        }
        for key in order:
            run(db, events[key])
        run(db, events["r3"])  # a redelivery changes nothing
        outcomes[name] = outcome(db, ids["payment"])
    assert (
        outcomes["refunds late"]
        == outcomes["second refund late"]
        == outcomes["in order"]
        == (
            "disputed",
            5_000,
            True,
            ["payment_reversed", "refund_issued", "refund_issued:refunded:5000"],
            [],
            [("needs_response", "fraudulent")],
            ["reversed", "reversed"],
        )
    )


def test_a_refund_email_after_the_chargeback_does_not_call_what_the_dispute_took_back_refunded(db):
    from sqlalchemy import select

    from db.models import Email
    from emails import render

    ids = settled(db, "pi_late")  # 10,000 over invoices of 6,000 and 4,000
    run(db, make_event("charge.dispute.created", dispute("dp_late", "pi_late", "needs_response")))
    run(db, make_event("charge.refunded", charge("pi_late", ids["payment"], 3_000)))
    with db() as session:
        email = session.scalars(
            select(Email).where(Email.payment_id == ids["payment"], Email.kind == "refund_issued")
        ).one()
    lines = [(line["amount_minor"], line["reversed_minor"]) for line in email.context["invoices"]]
    assert lines == [(6_000, 0), (4_000, 0)]  # as paid, adding up to the payment
    text = render(email.kind, email.context).text
    assert "$30.00 of your payment of $100.00 has been refunded" in text
    assert not [line for line in text.splitlines() if line.startswith("- ") and "refunded" in line]


def test_inquiry_moves_no_money_and_is_flagged_only_until_it_closes(db):
    # A card network inquiry: no funds withdrawn, usually closed as warning_closed.
    ids = succeeded(db)
    run(db, make_event("charge.dispute.created", dispute("dp_i", "pi_r", "warning_needs_response")))
    run(db, make_event("charge.dispute.updated", dispute("dp_i", "pi_r", "warning_under_review")))
    run(db, make_event("charge.dispute.closed", dispute("dp_i", "pi_r", "warning_closed")))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["needs_review"], state["emails"]) == ("succeeded", False, [])  # answered
    assert [a[1] for a in state["allocations"]] == ["applied", "applied"]
    assert state["disputes"] == [("warning_closed", "fraudulent")]
    assert timeline(db, ids["payment"])[-3:] == [("succeeded", "succeeded", True)] * 3


def test_inquiry_escalated_to_a_chargeback_reverses_the_payment_in_any_order(db):
    outcomes = []
    for n, late in enumerate((False, True)):
        intent = f"pi_e{n}"
        ids = settled(db, intent)
        inquiry = make_event("charge.dispute.created", dispute(f"dp_e{n}", intent, "warning_needs_response"))
        chargeback = make_event(
            "charge.dispute.funds_withdrawn", dispute(f"dp_e{n}", intent, "needs_response")
        )
        for event in (chargeback, inquiry) if late else (inquiry, chargeback):
            run(db, event)
        outcomes.append(outcome(db, ids["payment"]))
    assert (
        outcomes[0]
        == outcomes[1]
        == (
            "disputed",
            0,
            True,
            ["payment_reversed"],
            [],
            [("needs_response", "fraudulent")],
            ["reversed", "reversed"],
        )
    )


def test_refund_during_an_inquiry_is_an_ordinary_refund(db):
    ids = succeeded(db)
    run(db, make_event("charge.dispute.created", dispute("dp_j", "pi_r", "warning_needs_response")))
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 4_000)))
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["refunded_minor"]) == ("partially_refunded", 4_000)
    assert [a[1:] for a in state["allocations"]] == [("applied", 6_000), ("reversed", 4_000)]
    assert state["emails"] == [f"refund_issued:payment:{ids['payment']}"]


def _refund_object(refund_id: str, amount: int, status: str = "succeeded") -> dict:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "currency": "usd",
        "charge": "ch_pi_r",
        "payment_intent": "pi_r",
        "status": status,
        "reason": None,
    }


def test_each_refund_email_is_about_its_own_refund_with_its_id_when_stripe_told_it_first(db):
    ids = succeeded(db)
    run(db, make_event("refund.created", _refund_object("re_first", 3_000)))
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 3_000)))
    # The second refund's charge.refunded comes before its refund.created: the amount is known, the id not.
    run(db, make_event("charge.refunded", charge("pi_r", ids["payment"], 5_000)))
    run(db, make_event("refund.created", _refund_object("re_second", 2_000)))
    first, second = refund_email_contexts(db, ids["payment"])
    assert (first["refund_minor"], first["refund_id"], first["refunded_minor"]) == (3_000, "re_first", 3_000)
    assert (second["refund_minor"], second["refund_id"], second["refunded_minor"]) == (2_000, None, 5_000)
    assert render("refund_issued", first).subject.startswith("Refund of $30.00 issued by ")
    assert "Stripe refund ID:  re_first" in render("refund_issued", first).text


def test_the_reversal_email_is_headed_by_the_disputed_amount_with_the_dispute_id(db):
    ids = succeeded(db)
    run(db, make_event("charge.dispute.created", dispute("dp_head", "pi_r", "needs_response")))
    with db() as session:
        [context] = session.scalars(
            select(Email.context).where(Email.payment_id == ids["payment"], Email.kind == "payment_reversed")
        )
    assert (context["reversed_minor"], context["dispute_id"]) == (10_000, "dp_head")
    assert "Stripe dispute ID: dp_head" in render("payment_reversed", context).text


def test_a_batch_of_charge_refunded_events_reads_the_recorded_refunds_once(db):
    """Each refund email names its refund when its refund.* event came first: the batch reads the recorded
    refunds of all its payments in one statement, not one per payment."""
    payments = []
    for n in range(3):
        ids = world(db, status="succeeded", intent_id=f"pi_rb{n}")
        with db() as session, session.begin():
            session.get(Payment, ids["payment"]).stripe_charge_id = f"ch_pi_rb{n}"
            held = select(Allocation).where(Allocation.payment_id == ids["payment"])
            for allocation in session.scalars(held):
                allocation.state = "applied"
        payments.append(ids["payment"])
    told_first = {**_refund_object("re_batch", 4_000), "charge": "ch_pi_rb1", "payment_intent": "pi_rb1"}
    run(db, make_event("refund.created", told_first))
    events = [
        store_event(db, make_event("charge.refunded", charge(f"pi_rb{n}", payment_id, 4_000), f"evt_rb{n}"))
        for n, payment_id in enumerate(payments)
    ]
    reads = []

    def count_refund_reads(connection, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("SELECT") and "FROM refunds" in statement:
            reads.append(statement)

    sa_event.listen(get_engine(), "before_cursor_execute", count_refund_reads)
    try:
        assert process_event(events[0], datetime.now(UTC), batch_size=10) == "processed"
    finally:
        sa_event.remove(get_engine(), "before_cursor_execute", count_refund_reads)
    contexts = [refund_email_contexts(db, payment_id) for payment_id in payments]
    assert [[(c["refund_minor"], c["refund_id"]) for c in found] for found in contexts] == [
        [(4_000, None)],
        [(4_000, "re_batch")],
        [(4_000, None)],
    ]
    assert len(reads) == 1
