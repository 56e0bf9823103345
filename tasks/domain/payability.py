"""Which invoices a payment may cover: a selection's leaves and what is still open on them. Pure rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from tasks.domain.allocation import OpenInvoice
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus

# Per invoice id: (money applied, discounts included; status of the payment holding it, or None).
Standing = Mapping[int, tuple[int, str | None]]
_UNTOUCHED = (0, None)


@dataclass(frozen=True)
class InvoiceFacts:
    """An invoice as these rules read it; rows with the same attributes do as well."""

    id: int
    number: str
    currency: str
    due_on: date
    total_minor: int
    account_id: int = 0
    parent_id: int | None = None
    customer_visible: bool = True
    voided: bool = False
    discount_minor: int = 0
    discount_until: date | None = None


@dataclass(frozen=True)
class Leaves:
    """The invoices a selection pays (a parent stands for its children), their currency, the first asked."""

    invoices: tuple[InvoiceFacts, ...]
    currency: str
    first_number: str


def choose_leaves(
    ids: Sequence[int], rows: Sequence[InvoiceFacts], account_id: int, max_invoices: int
) -> Leaves:
    """The leaves of the asked ids among rows (the asked invoices and their children), or a refusal."""
    asked = set(ids)
    children = [r for r in rows if r.parent_id in asked]
    by_id = _visible(ids, rows, account_id)
    leaves = _leaves(ids, by_id, children)
    if len(leaves) > max_invoices:
        raise RemitError(
            "too_many_invoices",
            f"At most {max_invoices} invoices can be paid at once; this selection covers {len(leaves)}.",
        )
    currencies = {invoice.currency for invoice in leaves}
    if len(currencies) > 1:
        raise RemitError(
            "mixed_currencies", f"The selected invoices are in different currencies: {sorted(currencies)}."
        )
    return Leaves(tuple(leaves), currencies.pop(), by_id[ids[0]].number)


def _visible(ids: Sequence[int], rows: Sequence[InvoiceFacts], account_id: int) -> dict[int, InvoiceFacts]:
    """The account's rows its customer sees, by id; other asked ids are not found (whoever owns them)."""
    by_id = {r.id: r for r in rows if r.account_id == account_id and r.customer_visible}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise RemitError("invoice_not_found", f"Invoice {missing[0]} was not found on this account.")
    return by_id


def _leaves(
    ids: Sequence[int], by_id: dict[int, InvoiceFacts], children: list[InvoiceFacts]
) -> list[InvoiceFacts]:
    """A parent is paid through its unvoided visible children; an asked invoice must not be voided itself."""
    parents = {c.parent_id for c in children}
    for invoice_id in ids:
        if by_id[invoice_id].voided:
            raise RemitError(
                "invoice_void", f"Invoice {by_id[invoice_id].number} was voided and cannot be paid."
            )
    leaves = {i: by_id[i] for i in ids if i not in parents}
    for child in children:
        if child.id in by_id and not child.voided:
            leaves[child.id] = by_id[child.id]
    return list(leaves.values())


def open_leaves(leaves: Leaves, standing: Standing, ids: Sequence[int]) -> list[OpenInvoice]:
    """What is still owed on the leaves, refusing one a payment holds or one asked for that is paid."""
    open_invoices = []
    for invoice in leaves.invoices:
        paid, held = standing.get(invoice.id, _UNTOUCHED)
        if held is not None:
            state = "scheduled" if held == PaymentStatus.SCHEDULED else "pending"
            raise RemitError(
                "invoice_unavailable", f"Invoice {invoice.number} already has a {state} payment."
            )
        if paid < invoice.total_minor:
            open_invoices.append(_open(invoice, paid))
        elif invoice.id in ids:
            raise RemitError("invoice_paid", f"Invoice {invoice.number} is already paid.")
    if not open_invoices:
        # Every child of the asked parents is paid: the parent counts as paid.
        raise RemitError("invoice_paid", f"Invoice {leaves.first_number} is already paid.")
    return open_invoices


def open_for_custom_amount(
    rows: Sequence[InvoiceFacts], standing: Standing, currency: str
) -> list[OpenInvoice]:
    """The payable invoices with money still owed, in the account's currency, that no payment holds."""
    open_invoices = []
    for invoice in rows:
        paid, held = standing.get(invoice.id, _UNTOUCHED)
        if held is None and paid < invoice.total_minor and invoice.currency == currency:
            open_invoices.append(_open(invoice, paid))
    return open_invoices


def _open(invoice: InvoiceFacts, paid: int) -> OpenInvoice:
    return OpenInvoice(
        invoice.id,
        invoice.number,
        invoice.due_on,
        invoice.total_minor,
        paid,
        invoice.discount_minor,
        invoice.discount_until,
    )
