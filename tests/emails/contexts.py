"""Realistic email contexts, shaped exactly like the writers' (tasks.flows.ledger, tasks.handlers.common)."""

from __future__ import annotations

from typing import Any

from tasks.domain.states import EmailKind

HOSTILE_NAME = "<script>alert('owned')</script> Fabrication & Sons"
HOSTILE_COMMENT = "<script>steal()</script> short by 2 crates"
SELLER = {
    "name": "Acme <Industrial> Supply",
    "logo_url": "https://cdn.acme.test/logo.png",
    "brand_color": "#0a7d45",
    "support_email": "ar@acme.test",
    "support_phone": "+1 312 555 0100",
}
ACCOUNT = {"number": "A-00042", "name": HOSTILE_NAME}
CARD = {"kind": "card", "brand": "visa", "bank_name": None, "last4": "4242"}
BANK = {"kind": "us_bank_account", "brand": None, "bank_name": "STRIPE TEST BANK", "last4": "6789"}

BANK_KINDS = {EmailKind.ACH_INITIATED, EmailKind.ACH_SETTLED, EmailKind.ACH_FAILED}
METHOD_KINDS = {
    EmailKind.BANK_VERIFICATION_NEEDED,
    EmailKind.BANK_VERIFIED,
    EmailKind.BANK_VERIFICATION_FAILED,
}
# What each payment kind's writer leaves in status, transaction and failure fields.
PAYMENT_STATES: dict[str, dict[str, Any]] = {
    EmailKind.PAYMENT_CONFIRMATION: {"status": "succeeded"},
    EmailKind.ACH_INITIATED: {"status": "processing", "transaction_id": "pi_3QachPending"},
    EmailKind.ACH_SETTLED: {"status": "succeeded"},
    EmailKind.ACH_FAILED: {
        "status": "failed",
        "failure_code": "insufficient_funds",
        "failure_message": "The customer's account has insufficient funds.",
    },
    EmailKind.PAYMENT_FAILED: {
        "status": "failed",
        "transaction_id": None,
        "failure_code": "card_declined",
        "failure_message": "Your card was declined.",
    },
    EmailKind.AUTHENTICATION_REQUIRED: {"status": "requires_action", "transaction_id": "pi_3QneedsAuth"},
    EmailKind.SCHEDULED_CONFIRMED: {
        "status": "scheduled",
        "transaction_id": None,
        "scheduled_for": "2026-12-15",
    },
    EmailKind.SCHEDULED_CANCELED: {
        "status": "canceled",
        "transaction_id": None,
        "scheduled_for": "2026-12-15",
    },
    EmailKind.DEPOSIT_RECEIVED: {
        "status": "succeeded",
        "payment_kind": "deposit",
        "invoices": [],
        "note": "<b>Deposit</b> for the spring order",
    },
    EmailKind.REFUND_ISSUED: {"status": "partially_refunded"},
    EmailKind.PAYMENT_REVERSED: {"status": "disputed"},
    EmailKind.DISPUTE_WON: {"status": "succeeded"},
}


def payment_context(**overrides: Any) -> dict[str, Any]:
    """What tasks.flows.ledger.payment_email_context writes for a card payment of two invoices."""
    context = {
        "payment_id": 42,
        "reference": "ACME-1042",
        "payment_date": "2026-11-22",
        "transaction_id": "ch_3QabcDEF123",
        "transaction_label": "Stripe charge ID",
        "amount_minor": 123456,
        "currency": "usd",
        "payment_kind": "invoices",
        "status": "succeeded",
        "scheduled_for": None,
        "method": CARD,
        "account": ACCOUNT,
        "seller": SELLER,
        "invoices": [
            {"number": "INV-1001", "site_name": "Plant <2>", "amount_minor": 100000, "discount_minor": 2000},
            {"number": "INV-1002", "site_name": None, "amount_minor": 23456, "discount_minor": 0},
        ],
        "failure_code": None,
        "failure_message": None,
        "short_reason": "Damaged goods",
        "note": None,
        "short_comment": HOSTILE_COMMENT,
    }
    return {**context, **overrides}


def method_context(**overrides: Any) -> dict[str, Any]:
    """What tasks.handlers.common.queue_method_email writes for a bank account."""
    context = {"method": BANK, "account": ACCOUNT, "seller": SELLER, "at": "2026-11-22T18:00:00+00:00"}
    return {**context, **overrides}


def for_kind(kind: str) -> dict[str, Any]:
    """A realistic context for any email kind."""
    if kind == EmailKind.BANK_VERIFICATION_NEEDED:
        return method_context(arrival_date=1_795_000_000, microdeposit_type="amounts")
    if kind == EmailKind.BANK_VERIFICATION_FAILED:
        return method_context(failure_message="The microdeposit amounts did not <match>.")
    if kind in METHOD_KINDS:
        return method_context()
    method = BANK if kind in BANK_KINDS else CARD
    return payment_context(method=method, **PAYMENT_STATES[kind])
