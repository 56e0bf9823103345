"""How a payment is spread over invoices: full, short and custom amounts, with early-payment discounts.

Pure functions over plain values; amounts are integers in minor units of one currency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tasks.domain.states import AllocationState

# What a payment's email shows as taken back from an invoice, by the allocation's state, from what the
# payment paid it and what of that still stands: the lines then add up to the payment whatever was
# refunded since; other states show nothing taken back. Plain operators, so the rule reads integers
# and SQL columns alike.
TAKEN_BACK: dict[AllocationState, Callable[[Any, Any], Any]] = {
    AllocationState.REVERSED: lambda paid, standing: paid,
    AllocationState.APPLIED: lambda paid, standing: paid - standing,
}


@dataclass(frozen=True)
class OpenInvoice:
    """An invoice as allocation sees it: what it totals and what has already been settled on it."""

    id: int
    number: str
    due_on: date
    total_minor: int
    settled_minor: int = 0
    discount_minor: int = 0
    discount_until: date | None = None

    @property
    def owed_minor(self) -> int:
        return self.total_minor - self.settled_minor

    def discount_on(self, today: date) -> int:
        """The early-payment discount available today, only on an untouched invoice."""
        if (
            self.discount_minor
            and self.settled_minor == 0
            and self.discount_until
            and today <= self.discount_until
        ):
            return self.discount_minor
        return 0


@dataclass(frozen=True)
class Line:
    invoice_id: int
    number: str
    amount_minor: int
    discount_minor: int = 0


@dataclass(frozen=True)
class Plan:
    lines: tuple[Line, ...]
    total_minor: int
    credit_minor: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)


def oldest_first(invoices: list[OpenInvoice]) -> list[OpenInvoice]:
    """Due date, then number: the order money is applied in."""
    return sorted(invoices, key=lambda i: (i.due_on, i.number, i.id))


def plan_in_full(invoices: list[OpenInvoice], today: date) -> Plan:
    """Pay every invoice in full, taking each discount still available and warning of forfeited ones."""
    lines, warnings = [], []
    for invoice in oldest_first(invoices):
        discount = invoice.discount_on(today)
        if invoice.discount_minor and not discount:
            warnings.append(_forfeit_warning(invoice, today))
        lines.append(Line(invoice.id, invoice.number, invoice.owed_minor - discount, discount))
    return Plan(tuple(lines), sum(line.amount_minor for line in lines), 0, tuple(warnings))


def plan_amount(invoices: list[OpenInvoice], amount_minor: int, today: date) -> Plan:
    """An amount spread oldest invoice first: one it covers down to its discounted total takes the discount,
    and what is left goes on to the next invoice, then becomes credit. An invoice the amount pays only in
    part keeps no discount, and the plan warns of each discount forfeited."""
    lines, warnings, remaining = [], [], amount_minor
    for invoice in oldest_first(invoices):
        if remaining <= 0:
            break
        discount = invoice.discount_on(today)
        if remaining >= invoice.owed_minor - discount:
            lines.append(Line(invoice.id, invoice.number, invoice.owed_minor - discount, discount))
            remaining -= invoice.owed_minor - discount
            if invoice.discount_minor and not discount:
                warnings.append(_forfeit_warning(invoice, today))
            continue
        lines.append(Line(invoice.id, invoice.number, remaining))
        remaining = 0
        if invoice.discount_minor:
            warnings.append(
                _partial_warning(invoice, today) if discount else _forfeit_warning(invoice, today)
            )
    return Plan(tuple(lines), amount_minor, remaining, tuple(warnings))


def _partial_warning(invoice: OpenInvoice, today: date) -> str:
    due = invoice.owed_minor - invoice.discount_on(today)
    return (
        f"Invoice {invoice.number}: paying less than its discounted total of {due} forfeits its "
        f"early-payment discount of {invoice.discount_minor}."
    )


def _forfeit_warning(invoice: OpenInvoice, today: date) -> str:
    if invoice.settled_minor:
        return (
            f"Invoice {invoice.number}: the early-payment discount applies only when it is paid in full "
            "at once."
        )
    if invoice.discount_until and today > invoice.discount_until:
        return (
            f"Invoice {invoice.number}: the early-payment discount ended on "
            f"{invoice.discount_until.isoformat()}."
        )
    return f"Invoice {invoice.number}: the early-payment discount applies only when it is paid in full."
