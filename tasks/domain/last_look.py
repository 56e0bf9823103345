"""The last look: what a payment may still charge, decided right before money first moves. Pure rules.

It reads what each invoice owes now (its total, voided, hidden, paid by anything else) and never charges
more than the customer approved nor more than is owed: a full-invoice payment charges what is owed now;
an invoice void, hidden or already paid drops out and the rest is charged; when nothing remains the
payment fails. A short or custom amount is capped at what is owed now and the difference becomes credit
where the seller takes deposits, else the payment fails. Every difference is said in a line of `changes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tasks.domain.states import MethodStatus


@dataclass(frozen=True)
class Refusal:
    """Why the last look refused: a stored failure code and the message the customer reads."""

    code: str
    message: str


@dataclass(frozen=True)
class HeldLine:
    """One allocation of the payment beside its invoice as it stands now."""

    allocation_id: int
    invoice_id: int
    number: str
    approved_minor: int  # what the customer approved for this invoice (credit spent on it included)
    discount_minor: int  # the discount the customer approved taking
    credit_minor: int  # the part of approved_minor paid from credit
    voided: bool
    visible: bool
    total_minor: int
    settled_minor: int  # paid by anything else: applied allocations, external payments


@dataclass(frozen=True)
class Terms:
    """The payment as approved: whether it pays its invoices in full, what it charges, the seller's rule."""

    in_full: bool
    charge_minor: int
    deposits_enabled: bool
    method_status: str | None  # None: credit pays it all, no method is charged
    # The payment saves its card (Stripe attaches it as part of the charge): a card Stripe has not
    # attached yet (verification_pending) may pay.
    saves_method: bool = False


@dataclass(frozen=True)
class Review:
    """What the last look decided: a refusal, or the new amounts (unchanged when nothing changed)."""

    refusal: Refusal | None = None
    # allocation id -> (new amount, discount still granted) of the lines kept but changed
    amounts: dict[int, tuple[int, int]] = field(default_factory=dict)
    dropped: tuple[int, ...] = ()  # allocation ids released
    credit_back: dict[int, int] = field(default_factory=dict)  # invoice id -> spent credit given back
    charge_minor: int = 0
    new_credit_minor: int = 0
    changes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def review(lines: Sequence[HeldLine], terms: Terms) -> Review:
    """The last look over a payment's lines as they stand now (see the module's rule)."""
    usable = (
        (MethodStatus.ACTIVE, MethodStatus.VERIFICATION_PENDING)
        if terms.saves_method
        else (MethodStatus.ACTIVE,)
    )
    if terms.method_status is not None and terms.method_status not in usable:
        return Review(Refusal("method_unavailable", "The payment method can no longer be used."))
    amounts, dropped, credit_back, changes = {}, [], {}, []
    card_cut = 0  # card money no longer needed on the invoices
    for line in lines:
        new, discount, why = _due_now(line)
        kept_credit = min(line.credit_minor, new)
        card_cut += (line.approved_minor - line.credit_minor) - (new - kept_credit)
        if line.credit_minor > kept_credit:
            credit_back[line.invoice_id] = line.credit_minor - kept_credit
        if (new, discount) == (line.approved_minor, line.discount_minor):
            continue
        if new <= 0:
            dropped.append(line.allocation_id)
            changes.append(f"Invoice {line.number} {why}: removed from this payment.")
            continue
        amounts[line.allocation_id] = (new, discount)
        if new != line.approved_minor:
            changes.append(
                f"Invoice {line.number} now owes {new}: paid {new} instead of {line.approved_minor}."
            )
        else:
            changes.append(f"Invoice {line.number}: its early-payment discount no longer applies.")
    if lines and len(dropped) == len(lines):
        return Review(_nothing_left(lines), changes=tuple(changes))
    if terms.in_full or card_cut == 0:
        return _reviewed(amounts, dropped, credit_back, terms.charge_minor - card_cut, 0, changes)
    if not terms.deposits_enabled:
        message = f"The invoices now owe {card_cut} less than this payment; it was not charged."
        return Review(Refusal("amount_above_owed", message), changes=tuple(changes))
    changes.append(f"{card_cut} no invoice owes any more was kept as credit on the account.")
    return _reviewed(amounts, dropped, credit_back, terms.charge_minor, card_cut, changes)


def _due_now(line: HeldLine) -> tuple[int, int, str]:
    """What the invoice takes from this payment now (never more than approved), the approved discount if
    it still pays the untouched invoice in full, and why it takes nothing."""
    if line.voided:
        return 0, 0, "was voided"
    if not line.visible:
        return 0, 0, "was withdrawn by the seller"
    discount = line.discount_minor if line.settled_minor == 0 else 0
    due = max(line.total_minor - line.settled_minor - discount, 0)
    new = min(line.approved_minor, due)
    return new, discount if new == due else 0, "is already paid"


def _nothing_left(lines: Sequence[HeldLine]) -> Refusal:
    numbers = ", ".join(line.number for line in lines)
    return Refusal("nothing_owed", f"Nothing is owed any more on {numbers}; the payment was not charged.")


def _reviewed(amounts, dropped, credit_back, charge, new_credit, changes) -> Review:
    return Review(None, amounts, tuple(dropped), credit_back, charge, new_credit, tuple(changes))
