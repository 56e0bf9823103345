"""The last look: whether a payment may still move money, decided right before it first does. Pure rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tasks.domain.states import MethodStatus


@dataclass(frozen=True)
class Refusal:
    """Why the last look refused: a stored failure code and the message the customer reads."""

    code: str
    message: str


def last_look(
    invoices: Iterable[tuple[str, bool]], method_status: str, saves_method: bool = False
) -> Refusal | None:
    """Refuse a payment whose invoices, as (number, voided) in id order, include a voided one, or whose method
    can no longer be used; None lets it go ahead. A payment that saves its card (saves_method) may use one
    Stripe has not attached yet: the payment attaches it."""
    voided = [number for number, is_voided in invoices if is_voided]
    if voided:
        return Refusal("invoice_voided", f"Invoice {voided[0]} was voided before the payment was made.")
    usable = (
        (MethodStatus.ACTIVE, MethodStatus.VERIFICATION_PENDING) if saves_method else (MethodStatus.ACTIVE,)
    )
    if method_status not in usable:
        return Refusal("method_unavailable", "The payment method can no longer be used.")
    return None
