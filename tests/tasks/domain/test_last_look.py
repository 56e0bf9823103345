import pytest

from tasks.domain.last_look import Refusal, last_look

UNAVAILABLE = Refusal("method_unavailable", "The payment method can no longer be used.")


def voided(number):
    return Refusal("invoice_voided", f"Invoice {number} was voided before the payment was made.")


@pytest.mark.parametrize(
    ("invoices", "method_status", "expected"),
    [
        # nothing changed since the payment was accepted: it goes ahead
        ([("INV-1", False), ("INV-2", False)], "active", None),
        # one voided invoice refuses the whole payment, naming it
        ([("INV-1", False), ("INV-2", True)], "active", voided("INV-2")),
        # several voided: the first (in id order) is named
        ([("INV-3", True), ("INV-4", True)], "active", voided("INV-3")),
        # a voided invoice is told before an unusable method
        ([("INV-1", True)], "removed", voided("INV-1")),
        # the customer removed the method meanwhile
        ([("INV-1", False)], "removed", UNAVAILABLE),
        # a bank account whose verification failed cannot be debited
        ([("INV-1", False)], "verification_failed", UNAVAILABLE),
        # nor one still waiting for its verification
        ([("INV-1", False)], "verification_pending", UNAVAILABLE),
        # a deposit pays no invoice: only its method is looked at
        ([], "active", None),
        ([], "removed", UNAVAILABLE),
    ],
)
def test_last_look(invoices, method_status, expected):
    assert last_look(invoices, method_status) == expected


@pytest.mark.parametrize(
    ("method_status", "expected"),
    [
        # a card Stripe has not attached yet: this payment attaches it (setup_future_usage)
        ("verification_pending", None),
        ("active", None),
        # removed or failed meanwhile: still refused
        ("removed", UNAVAILABLE),
        ("verification_failed", UNAVAILABLE),
    ],
)
def test_last_look_of_a_payment_that_saves_its_card(method_status, expected):
    assert last_look([("INV-1", False)], method_status, saves_method=True) == expected
