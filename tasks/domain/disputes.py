"""How a dispute ends for its payment, and where a won dispute's money goes. Pure.

Stripe ends a dispute in one of a few ways: an inquiry (warning_*) closes without a chargeback, or
a chargeback is lost (the money stays with the customer) or won (Stripe returns it). The decision
reads the dispute's status as kept (never backwards), so any delivery order ends alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tasks.domain.events import dispute_is_closed, dispute_is_inquiry

# Statuses a payment must be in for a chargeback to take its money back.
CHARGEBACK_OPEN = ("needs_response", "under_review")
# The event that says Stripe gave the money back, whatever status its snapshot shows.
FUNDS_REINSTATED = "charge.dispute.funds_reinstated"


class Step(StrEnum):
    """What a dispute event does to its payment."""

    REVERSE = "reverse"  # a chargeback takes the money back: allocations and credit reversed
    REINSTATE = "reinstate"  # a won chargeback: the reversed money goes back on invoices, or to credit
    NOTE = "note"  # only a timeline line


@dataclass(frozen=True)
class Decision:
    """The step, and the needs_review flag to set (None leaves it as it is)."""

    step: Step
    needs_review: bool | None


def reported_status(event_type: str, status: str) -> str:
    """The status an event reports: funds reinstated means won, even from a snapshot taken earlier."""
    if event_type == FUNDS_REINSTATED and not dispute_is_closed(status):
        return "won"
    return status


def decide(status: str, *, reversed_: bool, reinstated: bool, disputable: bool) -> Decision:
    """The step for a dispute in status (as kept) whose chargeback did (reversed_) or did not reverse yet."""
    if dispute_is_inquiry(status) or status == "charge_refunded":
        # An open inquiry needs a response; one closed (or refunded) without a chargeback needs nothing.
        return Decision(Step.NOTE, not dispute_is_closed(status))
    if status == "won":
        if reinstated:
            return Decision(Step.NOTE, None)  # a repeat: a flag set when it became credit stays
        # First seen won (its opening delivered late): reversed then reinstated, as in order.
        return Decision(Step.REINSTATE if reversed_ or disputable else Step.NOTE, False)
    open_chargeback = status in CHARGEBACK_OPEN or not dispute_is_closed(status)
    if reversed_ or not disputable:
        # A chargeback on a payment with nothing left to take back (refunded, failed) needs a person.
        return Decision(Step.NOTE, open_chargeback or (not reversed_ and not disputable))
    return Decision(Step.REVERSE, open_chargeback)


@dataclass(frozen=True)
class Reversed:
    """An allocation a chargeback reversed, as the reinstatement sees it."""

    id: int
    invoice_id: int
    amount_minor: int
    discount_minor: int


@dataclass(frozen=True)
class Reinstatement:
    """Allocations applied again whole, ones applied again reduced to (id, amount), parts that become credit
    as (invoice id, amount); together they add up to what the chargeback took."""

    whole: tuple[int, ...]
    reduced: tuple[tuple[int, int], ...]
    credit: tuple[tuple[int, int], ...]
    reinstated_minor: int

    @property
    def credit_minor(self) -> int:
        return sum(amount for _, amount in self.credit)


def split_reinstatement(reversed_: Sequence[Reversed], owed_minor: Mapping[int, int]) -> Reinstatement:
    """Put each reversed allocation back on its invoice as far as the invoice still owes it.

    owed_minor is what each invoice can still take now (its total less everything applied, reserved by
    another payment or paid outside Remit; 0 when voided). An allocation fits whole with its discount;
    otherwise it keeps its discount and covers only what is left of the invoice, and the rest of its
    money becomes credit. An invoice paid meanwhile in full takes nothing back: all of it is credit.
    """
    whole, reduced, credit, reinstated = [], [], [], 0
    for allocation in reversed_:
        owed = max(owed_minor.get(allocation.invoice_id, 0), 0)
        if owed >= allocation.amount_minor + allocation.discount_minor:
            whole.append(allocation.id)
            reinstated += allocation.amount_minor
            continue
        kept = min(allocation.amount_minor, max(owed - allocation.discount_minor, 0))
        if kept > 0:
            reduced.append((allocation.id, kept))
            reinstated += kept
        credit.append((allocation.invoice_id, allocation.amount_minor - kept))
    return Reinstatement(tuple(whole), tuple(reduced), tuple(credit), reinstated)
