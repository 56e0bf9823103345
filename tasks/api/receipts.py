"""Customer-facing references and printable receipts (HTML, and PDF made from it by WeasyPrint)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.queries import payments as payment_rows
from tasks.domain.references import payment_reference, reference_prefix


def new_reference(session: Session, seller: Any) -> dict[str, Any]:
    """The columns that give a new payment its reference: call in the transaction that inserts it."""
    number = payment_rows.take_payment_number(session, seller.id)
    return {
        "seller_id": seller.id,
        "reference": payment_reference(reference_prefix(seller.slug, seller.reference_prefix), number),
    }
