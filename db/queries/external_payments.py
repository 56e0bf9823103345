"""Payments the seller's ERP recorded outside Remit, and the lines that settle invoices with them."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.models import ExternalPayment, ExternalPaymentLine, Invoice


def find_external_payment(session: Session, seller_id: int, reference: str) -> ExternalPayment | None:
    """The seller's external payment with this ERP reference, or None."""
    return session.scalar(
        select(ExternalPayment).where(
            ExternalPayment.seller_id == seller_id, ExternalPayment.reference == reference
        )
    )


def list_external_lines(session: Session, external_payment_id: int) -> list[tuple[str, int, int]]:
    """(invoice ERP id, invoice id, amount) of each line, in line order."""
    rows = session.execute(
        select(Invoice.external_id, Invoice.id, ExternalPaymentLine.amount_minor)
        .join(Invoice, Invoice.id == ExternalPaymentLine.invoice_id)
        .where(ExternalPaymentLine.external_payment_id == external_payment_id)
        .order_by(ExternalPaymentLine.id)
    )
    return [tuple(row) for row in rows]


def insert_external_payment(
    session: Session, lines: list[tuple[int, int]], as_credit: frozenset[int] = frozenset(), **values
) -> int:
    """A new external payment and its (invoice id, amount) lines, those on invoices in as_credit kept as
    credit; its id."""
    payment_id = session.scalar(insert(ExternalPayment).values(**values).returning(ExternalPayment.id))
    session.execute(
        insert(ExternalPaymentLine),
        [
            {
                "external_payment_id": payment_id,
                "invoice_id": i,
                "amount_minor": a,
                "as_credit": i in as_credit,
            }
            for i, a in lines
        ],
    )
    return payment_id
