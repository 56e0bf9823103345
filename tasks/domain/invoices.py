"""An invoice's status, derived from its allocations and dates, never stored by hand. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from tasks.domain.states import AllocationState, PaymentStatus

# An allocation in this state has paid its invoice: its amount and discount count as settled.
SETTLING_STATE = AllocationState.APPLIED
# An allocation in this state holds its invoice for its payment, whose status the invoice shows.
HOLDING_STATE = AllocationState.RESERVED
# Invoices a customer can pay have these flags (and are not parents: their children are paid instead).
PAYABLE_FLAGS = {"voided": False, "customer_visible": True}


class InvoiceStatus(StrEnum):
    VOID = "void"
    PAID = "paid"
    PENDING = "pending"
    SCHEDULED = "scheduled"
    PARTIALLY_PAID = "partially_paid"
    OPEN = "open"


@dataclass(frozen=True)
class InvoiceState:
    status: InvoiceStatus
    overdue: bool
    owed_minor: int


def invoice_state(
    *, voided: bool, total_minor: int, settled_minor: int, held_by: str | None, due_on: date, today: date
) -> InvoiceState:
    """Status and overdue flag; held_by is the status of the payment holding a reservation, if any.

    An ACH payment still processing holds its invoice as pending: money counts only once settled.
    """
    owed = max(total_minor - settled_minor, 0)
    if voided:
        return InvoiceState(InvoiceStatus.VOID, False, 0)
    if held_by == PaymentStatus.SCHEDULED:
        status = InvoiceStatus.SCHEDULED
    elif held_by is not None:
        status = InvoiceStatus.PENDING
    elif owed == 0:
        status = InvoiceStatus.PAID
    elif settled_minor > 0:
        status = InvoiceStatus.PARTIALLY_PAID
    else:
        status = InvoiceStatus.OPEN
    return InvoiceState(status, owed > 0 and due_on < today, owed)


def combine_holds(holds: list[str | None]) -> str | None:
    """The hold a parent shows for its children: an in-flight payment outranks a scheduled one."""
    present = [h for h in holds if h is not None]
    if not present:
        return None
    in_flight = [h for h in present if h != PaymentStatus.SCHEDULED]
    return in_flight[0] if in_flight else PaymentStatus.SCHEDULED
