"""What a record keeps once redacted: ids, kinds, amounts and states; never a name, an email or an address."""

from __future__ import annotations

import pytest

from tasks.domain.retention import redacted

CHARGE_EVENT = {
    "id": "evt_1",
    "object": "event",
    "type": "charge.succeeded",
    "created": 1796485317,
    "livemode": False,
    "data": {
        "object": {
            "id": "ch_1",
            "amount": 64510,
            "currency": "usd",
            "status": "succeeded",
            "customer": "cus_1",
            "payment_intent": "pi_1",
            "metadata": {"payment_id": "42", "account_id": "7", "note": "call Jane on 555 0100"},
            "billing_details": {
                "name": "Jane Roe",
                "email": "jane@roe.example",
                "address": {"line1": "1 Main St", "postal_code": "60601"},
            },
            "payment_method_details": {
                "us_bank_account": {
                    "routing_number": "110000000",
                    "last4": "6789",
                    "bank_name": "STRIPE TEST",
                }
            },
            "outcome": {"network_status": "approved_by_network", "seller_message": "Payment complete."},
            "refunds": {"data": [{"id": "re_1", "amount": 100, "reason": "requested_by_customer"}]},
        }
    },
    "request": {"id": "req_1", "idempotency_key": "remit-payment-42"},
}


@pytest.mark.parametrize(
    "path, kept",
    [
        (("id",), "evt_1"),
        (("type",), "charge.succeeded"),  # the kind of event
        (("created",), 1796485317),
        (("data", "object", "amount"), 64510),  # amounts stay
        (("data", "object", "currency"), "usd"),
        (("data", "object", "status"), "succeeded"),  # states stay
        (("data", "object", "customer"), "cus_1"),  # references to Stripe objects stay
        (("data", "object", "payment_intent"), "pi_1"),
        (("data", "object", "metadata", "payment_id"), "42"),  # our ids stay
        (("data", "object", "outcome", "network_status"), "approved_by_network"),
        (
            ("data", "object", "refunds", "data"),
            [{"id": "re_1", "amount": 100, "reason": "requested_by_customer"}],
        ),
        (("request", "id"), "req_1"),
        (("redacted",), True),  # marked, so it is never taken for a live payload
    ],
)
def test_a_redacted_payload_keeps_ids_kinds_amounts_and_states(path, kept):
    value = redacted(CHARGE_EVENT)
    for key in path:
        value = value[key]
    assert value == kept


@pytest.mark.parametrize(
    "personal",
    [
        "Jane Roe",
        "jane@roe.example",
        "1 Main St",
        "60601",
        "110000000",
        "6789",
        "call Jane",
        "Payment complete.",
    ],
)
def test_a_redacted_payload_holds_no_personal_text(personal):
    assert personal not in repr(redacted(CHARGE_EVENT))


def test_an_email_context_keeps_amounts_and_invoice_numbers_but_no_names():
    context = {
        "seller": {"name": "Acme", "support_email": "ar@acme.test"},
        "account": {"number": "A-00042", "name": "Jane Roe Fabrication"},
        "payment": {
            "amount_minor": 123456,
            "status": "succeeded",
            "transaction_id": "ch_3Q",
            "comment": "short",
        },
        "lines": [{"number": "INV-1", "amount_minor": 100, "site_name": "Jane's yard"}],
    }
    assert redacted(context) == {
        "seller": {},
        "account": {"number": "A-00042"},
        "payment": {"amount_minor": 123456, "status": "succeeded", "transaction_id": "ch_3Q"},
        "lines": [{"number": "INV-1", "amount_minor": 100}],
        "redacted": True,
    }
