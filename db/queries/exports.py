"""The seller's payments as flat rows for the ERP's reconciliation: one row per payment and invoice,
Remit's payments first, then the external payments the ERP recorded."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

# A payment without invoices (an amount left as credit, a deposit) still gets its one row, invoice empty.
# Dates are the seller's own days, as its ERP books them.
_PAYMENT_LINES = text(
    "SELECT p.id AS payment_id,"
    " a.number AS account_number, a.external_id AS account_external_id,"
    " p.kind, p.status, p.amount_minor, p.refunded_minor, p.currency, m.kind AS method_kind,"
    " coalesce(m.brand, m.bank_name) AS method_name, m.last4 AS method_last4,"
    " p.stripe_payment_intent_id, p.stripe_charge_id, i.number AS invoice_number,"
    " i.external_id AS invoice_external_id, l.amount_minor AS invoice_amount_minor,"
    " l.discount_minor AS invoice_discount_minor, l.state AS allocation_state,"
    " p.created_at, p.scheduled_for, p.finished_at, 'remit' AS source, p.reference, 0 AS source_order,"
    " l.id AS line_id"
    " FROM payments p JOIN accounts a ON a.id = p.account_id JOIN sellers s ON s.id = a.seller_id"
    " LEFT JOIN payment_methods m ON m.id = p.payment_method_id"
    " LEFT JOIN allocations l ON l.payment_id = p.id LEFT JOIN invoices i ON i.id = l.invoice_id"
    " WHERE a.seller_id = :seller_id"
    " AND (p.created_at AT TIME ZONE s.timezone)::date BETWEEN :date_from AND :date_to"
    # Money the ERP recorded itself (check, wire, ...): one row per invoice line, after Remit's payments.
    " UNION ALL SELECT e.id, a.number, a.external_id, e.kind, 'recorded', e.amount_minor, 0, e.currency,"
    " NULL, NULL, NULL, NULL, NULL, i.number, i.external_id, x.amount_minor, 0, 'applied',"
    " e.created_at, NULL, e.created_at, 'external', e.reference, 1, x.id"
    " FROM external_payments e JOIN accounts a ON a.id = e.account_id JOIN sellers s ON s.id = e.seller_id"
    " JOIN external_payment_lines x ON x.external_payment_id = e.id JOIN invoices i ON i.id = x.invoice_id"
    " WHERE e.seller_id = :seller_id"
    " AND (e.created_at AT TIME ZONE s.timezone)::date BETWEEN :date_from AND :date_to"
    " ORDER BY source_order, payment_id, line_id"
)


def list_payment_lines(session: Session, seller_id: int, date_from: date, date_to: date) -> list[Row]:
    """The seller's payments created on its days date_from to date_to, one row per allocation."""
    params = {"seller_id": seller_id, "date_from": date_from, "date_to": date_to}
    return list(session.connection().execute(_PAYMENT_LINES, params))
