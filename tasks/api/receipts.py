"""Customer-facing references and printable receipts: HTML, and a PDF made from that HTML by WeasyPrint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import emails as email_rows
from db.queries import payments as payment_rows
from emails import render_page
from emails.pdf import html_to_pdf
from tasks.api.guard import api_transaction
from tasks.domain import requests as checks
from tasks.domain.dates import seller_today
from tasks.domain.errors import RemitError
from tasks.domain.references import payment_reference, reference_prefix
from tasks.flows.ledger import payment_email_context

FORMATS = ("html", "pdf")
# What a customer reads for each stored status; one that ended without money moving says so.
STATUS_LABELS = {
    "scheduled": "Scheduled",
    "pending": "Processing",
    "submitting": "Processing",
    "processing": "Processing (bank transfer)",
    "requires_action": "Waiting for your authentication",
    "succeeded": "Paid",
    "failed": "Failed: not charged",
    "canceled": "Canceled: not charged",
    "refunded": "Refunded",
    "partially_refunded": "Partially refunded",
    "disputed": "Reversed",
}


def new_reference(session: Session, seller: Any) -> dict[str, Any]:
    """The columns that give a new payment its reference: call in the transaction that inserts it."""
    number = payment_rows.take_payment_number(session, seller.id)
    prefix = reference_prefix(seller.slug, seller.reference_prefix)
    return {"seller_id": seller.id, "reference": payment_reference(prefix, number)}


def render_receipt(
    account_id: int, payment_id: int, fmt: str = "html", now: datetime | None = None
) -> str | bytes:
    """The payment's receipt, branded for its seller: an HTML page (str) or a PDF document (bytes).

    The facts of the confirmation email: date, reference, method, Stripe id, each invoice with its
    discount, credit created. Another account's payment is as unknown as a missing one. Writes nothing.
    """
    if fmt not in FORMATS:
        raise RemitError("invalid_format", f"The receipt format must be 'html' or 'pdf', not {fmt!r}.")
    checks.check_id(account_id, "account_not_found", "Account")
    checks.check_id(payment_id, "payment_not_found", "Payment")
    with api_transaction() as session:
        payment = payment_rows.find_payment_view(session, payment_id)
        if payment is None or payment.account_id != account_id:
            raise RemitError("payment_not_found", f"Payment {payment_id} was not found on this account.")
        lines = email_rows.list_email_lines_of(session, [payment.id]).get(payment.id, [])
        context = _context(payment, lines, now or datetime.now(UTC))
    html = render_page("receipt", {**context, "show_logo": fmt == "html"})
    return html if fmt == "html" else html_to_pdf(html)


def _context(payment: Any, lines: list[Any], now: datetime) -> dict[str, Any]:
    context = payment_email_context(payment, payment.account, payment.method, payment.seller, lines)
    paid = sum(line["amount_minor"] for line in context["invoices"])
    return {
        **context,
        "status_label": STATUS_LABELS.get(payment.status, payment.status),
        "credit_created_minor": max(payment.amount_minor - paid, 0),
        "issued_on": seller_today(payment.seller, now).isoformat(),
    }
