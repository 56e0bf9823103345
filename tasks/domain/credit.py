"""Spending available credit on a payment's invoice lines: oldest credit first, oldest invoice first. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CreditPiece:
    """One available credit row: what it still holds."""

    id: int
    amount_minor: int


@dataclass(frozen=True)
class Spent:
    """What one credit row pays: (invoice id, amount) pieces, and what of it stays available."""

    credit_id: int
    pieces: tuple[tuple[int, int], ...]
    left_minor: int


@dataclass(frozen=True)
class CreditUse:
    spent: tuple[Spent, ...]
    used_minor: int

    def on_invoice(self, invoice_id: int) -> int:
        """The credit this use puts on one invoice."""
        return sum(a for s in self.spent for i, a in s.pieces if i == invoice_id)


NO_CREDIT = CreditUse((), 0)


def spend_credit(credits: Sequence[CreditPiece], lines: Sequence[tuple[int, int]]) -> CreditUse:
    """Spend the credits, in the order given (oldest first), on the (invoice id, amount) lines in their order.

    Credit pays invoices only: a line is never paid beyond its amount, and what the credits do not cover
    is left for the card.
    """
    owed = [list(line) for line in lines]
    spent, at = [], 0
    for credit in credits:
        pieces, left = [], credit.amount_minor
        while left and at < len(owed):
            invoice_id, amount = owed[at]
            take = min(left, amount)
            pieces.append((invoice_id, take))
            left, owed[at][1] = left - take, amount - take
            at += owed[at][1] == 0
        if not pieces:
            break
        spent.append(Spent(credit.id, tuple(pieces), left))
    return CreditUse(tuple(spent), sum(a for s in spent for _, a in s.pieces))


def give_back(
    pieces: Sequence[CreditPiece], amount_minor: int
) -> tuple[tuple[int, ...], tuple[int, int] | None]:
    """Which spent credit rows (newest first, as given) return whole to available credit, and (id, amount
    kept spent) of the one split, so that amount_minor is given back."""
    whole, remaining = [], amount_minor
    for piece in pieces:
        if remaining <= 0:
            break
        if remaining < piece.amount_minor:
            return tuple(whole), (piece.id, piece.amount_minor - remaining)
        whole.append(piece.id)
        remaining -= piece.amount_minor
    return tuple(whole), None
