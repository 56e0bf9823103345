"""An account's derived figures, computed from the ledger rows. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class InvoiceFacts:
    total_minor: int
    settled_minor: int
    due_on: date


@dataclass(frozen=True)
class Figures:
    balance_minor: int
    overdue_minor: int
    pending_minor: int
    scheduled_minor: int
    credit_minor: int


def compute_figures(
    invoices: list[InvoiceFacts], pending_minor: int, scheduled_minor: int, credit_minor: int, today: date
) -> Figures:
    """Balance is what is still owed; overdue is the part owed on invoices past their due date."""
    owed = [(max(i.total_minor - i.settled_minor, 0), i.due_on) for i in invoices]
    return Figures(
        balance_minor=sum(amount for amount, _ in owed),
        overdue_minor=sum(amount for amount, due in owed if due < today),
        pending_minor=pending_minor,
        scheduled_minor=scheduled_minor,
        credit_minor=credit_minor,
    )
