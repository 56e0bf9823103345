"""The mapping of Stripe's answers and Remit's rows onto the calls and results Remit uses."""

from __future__ import annotations

import pytest

from tasks.gateways.stripe import IntentResult


@pytest.mark.parametrize(("status", "error_code", "decline_code", "expected"), [
    # Stripe has been seen to put it in either field; both count.
    ("requires_payment_method", "authentication_required", None, True),
    ("requires_payment_method", "card_declined", "authentication_required", True),
    # 3-D Secure asked for at confirmation, without an error.
    ("requires_action", None, None, True),
    ("requires_payment_method", "card_declined", "insufficient_funds", False),
    ("succeeded", None, None, False),
])
def test_an_intent_needs_authentication_when_stripe_asks_for_it(status, error_code, decline_code, expected):
    result = IntentResult(id="pi_1", status=status, error_code=error_code, decline_code=decline_code)

    assert result.needs_authentication is expected
