"""The authentication window, the web tier's next step, readable failures and the customer's timeline."""

from datetime import UTC, datetime, timedelta

import pytest

from tasks.domain import authentication as rules
from tasks.domain.intents import target_for_intent
from tasks.domain.payment_view import CUSTOMER_NOTE, customer_timeline, readable_failure
from tasks.domain.states import PaymentStatus as P

T0 = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
DEFAULTS = rules.Windows(24, 72)


@pytest.mark.parametrize(
    "seller_on, seller_off, off_session, hours",
    [
        (None, None, False, 24),  # the deployment's on-session default
        (None, None, True, 72),  # a scheduled charge gets longer: the customer hears by email
        (2, None, False, 2),  # the seller's own on-session window
        (2, None, True, 72),  # ...leaves the off-session default alone
        (None, 5, True, 5),
    ],
)
def test_deadline_takes_the_sellers_window_else_the_default(seller_on, seller_off, off_session, hours):
    windows = rules.window_for(seller_on, seller_off, DEFAULTS)
    assert rules.deadline(T0, off_session, windows) == T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    "status, next_action, error_code, step",
    [
        ("requires_action", "use_stripe_sdk", None, "use_stripe_sdk"),  # 3-D Secure in the browser
        ("requires_action", "redirect_to_url", None, "redirect_to_url"),
        (
            "requires_payment_method",
            None,
            "authentication_required",
            "confirm_on_session",
        ),  # off-session decline
        (
            "requires_payment_method",
            None,
            "card_declined",
            None,
        ),  # a decline the customer cannot confirm away
        ("succeeded", None, None, None),  # Stripe moved on: nothing to hand out
        ("canceled", None, "authentication_required", None),
    ],
)
def test_next_step_for_the_web_tier(status, next_action, error_code, step):
    assert rules.next_step(status, next_action, error_code) == step


def test_a_canceled_intent_keeping_its_authentication_error_means_canceled():
    assert target_for_intent("canceled", "authentication_required", "authentication_required") == P.CANCELED
    assert target_for_intent("requires_payment_method", "authentication_required") == P.REQUIRES_ACTION


def test_portal_link_and_cancel_key_come_from_our_row():
    assert rules.portal_link("https://portal.example/pay/{payment_id}", 42) == "https://portal.example/pay/42"
    assert rules.portal_link(None, 42) is None
    assert rules.cancel_key(42, "pi_1") == "remit-payment-42-cancel-pi_1"


@pytest.mark.parametrize(
    "code, message, reason",
    [
        (None, None, None),
        (
            "insufficient_funds",
            "Your card has insufficient funds.",
            "The card or account did not have enough funds.",
        ),
        (
            "lost_card",
            "Your card was declined.",
            "The card was declined. Use another card or contact your bank.",
        ),
        ("generic_decline", None, "The card was declined. Use another card or contact your bank."),
        ("authentication_window_expired", None, "The payment was not confirmed in time, so it was canceled."),
        ("something_new", "Stripe's own words.", "Stripe's own words."),  # unknown: the stored message
        ("something_new", None, "The payment was not completed."),
    ],
)
def test_readable_failure(code, message, reason):
    assert readable_failure(code, message) == reason


def test_customer_timeline_shows_statuses_once_and_notes_but_no_machinery():
    at = [T0 + timedelta(minutes=n) for n in range(7)]
    rows = [
        (at[0], None, "pending", True, {}),
        (at[1], "pending", "submitting", True, {"attempt": 1}),  # still "requested" to the customer
        (at[2], "submitting", "requires_action", True, {}),
        (at[3], "requires_action", "requires_action", False, {"ignored": "already in this state"}),
        (at[4], "requires_action", "succeeded", True, {}),
        (at[5], "succeeded", "succeeded", True, {"cancel_refused": "x", CUSTOMER_NOTE: "Too late."}),
        (at[6], "succeeded", "succeeded", True, {"event_type": "payment_intent.succeeded"}),
    ]
    assert [(e.at, e.status, e.text) for e in customer_timeline(rows)] == [
        (at[0], "pending", "Payment requested"),
        (at[2], "requires_action", "Waiting for you to confirm the payment with your bank"),
        (at[4], "succeeded", "Paid"),
        (at[5], "succeeded", "Too late."),
    ]
