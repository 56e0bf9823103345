"""Every (from, to) payment status pair: refused, or exactly what the transition moves, owes and finishes."""

from datetime import UTC, datetime
from itertools import product

import pytest

from tasks.domain.states import AllocationState as A
from tasks.domain.states import CreditState as C
from tasks.domain.states import EmailKind as E
from tasks.domain.states import PaymentStatus as P
from tasks.domain.transitions import FINAL_STATUSES, can_transition, email_for, plan_transition

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RESERVED_TO_APPLIED, RESERVED_TO_RELEASED, APPLIED_TO_REVERSED = (
    (A.RESERVED, A.APPLIED),
    (A.RESERVED, A.RELEASED),
    (A.APPLIED, A.REVERSED),
)
CREDIT_AVAILABLE, CREDIT_DROPPED, CREDIT_TAKEN_BACK = (
    (C.PENDING, C.AVAILABLE),
    (C.PENDING, C.REVERSED),
    (C.AVAILABLE, C.REVERSED),
)

# (from, to): (allocation move, credit move, email for a card invoice payment, for a bank debit,
#              for a card deposit, finishes the payment)
ALLOWED = {
    # The clock sends a scheduled payment on its day: nothing moves, nobody is emailed.
    (P.SCHEDULED, P.PENDING): (None, None, None, None, None, False),
    # The customer cancels before the day: invoices freed, credit never existed.
    (P.SCHEDULED, P.CANCELED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.SCHEDULED_CANCELED,
        E.SCHEDULED_CANCELED,
        E.SCHEDULED_CANCELED,
        True,
    ),
    # The attempt's key is recorded before Stripe is called.
    (P.PENDING, P.SUBMITTING): (None, None, None, None, None, False),
    # The last look refused it before any Stripe call.
    (P.PENDING, P.FAILED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.PAYMENT_FAILED,
        E.PAYMENT_FAILED,
        E.PAYMENT_FAILED,
        True,
    ),
    (P.PENDING, P.CANCELED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.SCHEDULED_CANCELED,
        E.SCHEDULED_CANCELED,
        E.SCHEDULED_CANCELED,
        True,
    ),
    # A card paid at once: invoices applied, the remainder becomes usable credit.
    (P.SUBMITTING, P.SUCCEEDED): (
        RESERVED_TO_APPLIED,
        CREDIT_AVAILABLE,
        E.PAYMENT_CONFIRMATION,
        E.ACH_SETTLED,
        E.DEPOSIT_RECEIVED,
        True,
    ),
    # A bank debit started: money not there yet, the invoices stay held.
    (P.SUBMITTING, P.PROCESSING): (None, None, E.ACH_INITIATED, E.ACH_INITIATED, E.ACH_INITIATED, False),
    (P.SUBMITTING, P.REQUIRES_ACTION): (
        None,
        None,
        E.AUTHENTICATION_REQUIRED,
        E.AUTHENTICATION_REQUIRED,
        E.AUTHENTICATION_REQUIRED,
        False,
    ),
    (P.SUBMITTING, P.FAILED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.PAYMENT_FAILED,
        E.PAYMENT_FAILED,
        E.PAYMENT_FAILED,
        True,
    ),
    # A bank debit settled days later.
    (P.PROCESSING, P.SUCCEEDED): (
        RESERVED_TO_APPLIED,
        CREDIT_AVAILABLE,
        E.PAYMENT_CONFIRMATION,
        E.ACH_SETTLED,
        E.DEPOSIT_RECEIVED,
        True,
    ),
    # A bank debit that bounced has its own email.
    (P.PROCESSING, P.FAILED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.PAYMENT_FAILED,
        E.ACH_FAILED,
        E.PAYMENT_FAILED,
        True,
    ),
    (P.REQUIRES_ACTION, P.SUCCEEDED): (
        RESERVED_TO_APPLIED,
        CREDIT_AVAILABLE,
        E.PAYMENT_CONFIRMATION,
        E.ACH_SETTLED,
        E.DEPOSIT_RECEIVED,
        True,
    ),
    (P.REQUIRES_ACTION, P.FAILED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.PAYMENT_FAILED,
        E.PAYMENT_FAILED,
        E.PAYMENT_FAILED,
        True,
    ),
    (P.REQUIRES_ACTION, P.CANCELED): (
        RESERVED_TO_RELEASED,
        CREDIT_DROPPED,
        E.SCHEDULED_CANCELED,
        E.SCHEDULED_CANCELED,
        E.SCHEDULED_CANCELED,
        True,
    ),
    (P.REQUIRES_ACTION, P.PROCESSING): (None, None, E.ACH_INITIATED, E.ACH_INITIATED, E.ACH_INITIATED, False),
    # A full refund takes back every invoice and any unspent credit.
    (P.SUCCEEDED, P.REFUNDED): (
        APPLIED_TO_REVERSED,
        CREDIT_TAKEN_BACK,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        True,
    ),
    # A partial refund reduces single allocations itself (tasks/handlers/refunds.py), not by state.
    (P.SUCCEEDED, P.PARTIALLY_REFUNDED): (
        None,
        None,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        False,
    ),
    # A chargeback takes everything back; the payment may still come back if the seller wins.
    (P.SUCCEEDED, P.DISPUTED): (
        APPLIED_TO_REVERSED,
        CREDIT_TAKEN_BACK,
        E.PAYMENT_REVERSED,
        E.PAYMENT_REVERSED,
        E.PAYMENT_REVERSED,
        False,
    ),
    (P.PARTIALLY_REFUNDED, P.REFUNDED): (
        APPLIED_TO_REVERSED,
        CREDIT_TAKEN_BACK,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        True,
    ),
    (P.PARTIALLY_REFUNDED, P.PARTIALLY_REFUNDED): (
        None,
        None,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        E.REFUND_ISSUED,
        False,
    ),
    (P.PARTIALLY_REFUNDED, P.DISPUTED): (
        APPLIED_TO_REVERSED,
        CREDIT_TAKEN_BACK,
        E.PAYMENT_REVERSED,
        E.PAYMENT_REVERSED,
        E.PAYMENT_REVERSED,
        False,
    ),
    # The seller won the dispute: the money is back; tasks.domain.disputes decides what goes where.
    (P.DISPUTED, P.SUCCEEDED): (None, None, E.DISPUTE_WON, E.DISPUTE_WON, E.DISPUTE_WON, True),
    (P.DISPUTED, P.PARTIALLY_REFUNDED): (None, None, E.DISPUTE_WON, E.DISPUTE_WON, E.DISPUTE_WON, False),
}
PAIRS = list(product(P, P))


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_every_pair_is_refused_or_does_exactly_what_the_table_says(source, target):
    expected = ALLOWED.get((source, target))
    assert can_transition(source, target) is (expected is not None)
    plan = plan_transition(source, "amount", "card", target, now=NOW, values={"failure_code": "x"})
    if expected is None or source == target:
        # Refused (or already there): only the given columns are stored, and the refusal is on the timeline.
        assert (plan.applied, plan.columns, plan.allocation_move, plan.credit_move, plan.email) == (
            False,
            {"failure_code": "x"},
            None,
            None,
            None,
        )
        assert plan.detail["ignored"] == (
            "already in this state" if source == target else "transition not allowed"
        )
        return
    allocations, credits, card_email, ach_email, deposit_email, finishes = expected
    assert (plan.applied, plan.allocation_move, plan.credit_move, plan.email) == (
        True,
        allocations,
        credits,
        card_email,
    )
    assert plan.columns == {
        "failure_code": "x",
        "status": target,
        "updated_at": NOW,
        **({"finished_at": NOW} if finishes else {}),
    }
    assert email_for("card", "invoices", source, target) == card_email
    assert email_for("us_bank_account", "invoices", source, target) == ach_email
    assert email_for("card", "deposit", source, target) == deposit_email


@pytest.mark.parametrize(("source", "target"), list(ALLOWED))
def test_an_invoice_payment_carries_no_credit_so_its_transitions_move_none(source, target):
    if source != target:
        assert plan_transition(source, "invoices", "card", target, now=NOW).credit_move is None


@pytest.mark.parametrize(
    ("source", "target", "moves_balance"),
    [
        (P.PENDING, P.SUBMITTING, False),  # both count as pending in the figures
        (P.SUBMITTING, P.PROCESSING, False),
        (P.SCHEDULED, P.PENDING, True),  # scheduled leaves the scheduled figure for the pending one
        (P.SUBMITTING, P.SUCCEEDED, True),
        (P.SUCCEEDED, P.DISPUTED, True),
    ],
)
def test_only_leaving_or_entering_the_in_flight_statuses_moves_a_balance_figure(
    source, target, moves_balance
):
    assert plan_transition(source, "invoices", "card", target, now=NOW).balance_moves is moves_balance


def test_final_statuses_are_the_ones_nothing_leaves():
    assert FINAL_STATUSES == {P.FAILED, P.CANCELED, P.REFUNDED}


# The credit a payment spends on its invoices: held while it is in flight, applied once it succeeds,
# available again when no money moved or when what it paid is taken back (a refund or a chargeback
# reopens those invoices).
SPENT = {
    (P.SCHEDULED, P.CANCELED): (C.RESERVED, C.AVAILABLE),
    (P.PENDING, P.FAILED): (C.RESERVED, C.AVAILABLE),
    (P.SUBMITTING, P.SUCCEEDED): (C.RESERVED, C.APPLIED),
    (P.PROCESSING, P.FAILED): (C.RESERVED, C.AVAILABLE),
    (P.SUCCEEDED, P.REFUNDED): (C.APPLIED, C.AVAILABLE),
    (P.SUCCEEDED, P.DISPUTED): (C.APPLIED, C.AVAILABLE),
    (P.SUBMITTING, P.PROCESSING): None,
    (P.SUCCEEDED, P.PARTIALLY_REFUNDED): None,
}


@pytest.mark.parametrize(("source", "target"), list(SPENT))
def test_the_credit_a_payment_spends_moves_with_it(source, target):
    assert plan_transition(source, "invoices", "card", target, now=NOW).spent_move == SPENT[(source, target)]


def test_an_invoice_payment_the_last_look_left_credit_makes_it_available_when_paid():
    plan = plan_transition(P.SUBMITTING, "invoices", "card", P.SUCCEEDED, now=NOW, leaves_credit=True)
    assert plan.credit_move == CREDIT_AVAILABLE


def test_only_a_payment_that_charges_nothing_succeeds_straight_from_pending():
    assert not plan_transition(P.PENDING, "invoices", "card", P.SUCCEEDED, now=NOW).applied
    plan = plan_transition(P.PENDING, "credit", "card", P.SUCCEEDED, now=NOW, nothing_charged=True)
    assert (plan.applied, plan.allocation_move, plan.spent_move, plan.credit_move, plan.email) == (
        True,
        RESERVED_TO_APPLIED,
        (C.RESERVED, C.APPLIED),
        None,
        E.PAYMENT_CONFIRMATION,
    )
