"""Loading and checking what a payment request refers to: account, seller, method, invoices."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Account, PaymentMethod, Seller
from db.queries import accounts as account_rows
from db.queries import invoices as invoice_rows
from db.queries import methods as method_rows
from tasks.domain import payability
from tasks.domain.allocation import OpenInvoice
from tasks.domain.errors import RemitError
from tasks.domain.requests import check_id, check_invoice_ids
from tasks.domain.states import MethodKind, MethodStatus


@dataclass(frozen=True)
class Selection:
    invoices: list[OpenInvoice]
    currency: str


def find_account(session: Session, account_id: object, lock: bool = False) -> Account:
    """The account, or a refusal when there is none with this id.

    Locked, it is the plain values of account_rows.lock_account_row (requests only read it); otherwise the
    mapped row.
    """
    check_id(account_id, "account_not_found", "Account")
    account = (
        account_rows.lock_account_row(session, account_id)
        if lock
        else account_rows.find_account(session, account_id)
    )
    if account is None:
        raise RemitError("account_not_found", f"Account {account_id} was not found.")
    return account


def load_account(session: Session, account_id: object, lock: bool) -> tuple[Account, Seller]:
    """The account (locked when asked) and its seller, refusing unknown or disabled ones."""
    account = find_account(session, account_id, lock)
    seller = account.seller
    if not seller.payments_enabled or not account.portal_enabled:
        raise RemitError("payments_disabled", f"Online payments are turned off for account {account.number}.")
    return account, seller


def load_method(session: Session, account: Account, seller: Seller, method_id: object) -> PaymentMethod:
    """The account's usable payment method (its columns as plain values), or a refusal saying why it
    cannot be used."""
    method = method_rows.find_method_row(session, check_id(method_id, "method_not_found", "Payment method"))
    if method is None or method.account_id != account.id or not method.saved:
        raise RemitError("method_not_found", f"Payment method {method_id} was not found on this account.")
    return check_usable(method, seller)


def check_usable(method: PaymentMethod, seller: Seller) -> PaymentMethod:
    """The method if it can pay now: a card saved a moment ago can (its payment attaches it at Stripe); a
    bank account must be verified first."""
    if method.status == MethodStatus.REMOVED:
        raise RemitError("method_removed", "This payment method was removed; choose another one.")
    if method.status != MethodStatus.ACTIVE and not is_unattached_card(method):
        what = (
            "bank account is not verified"
            if method.kind == MethodKind.US_BANK_ACCOUNT
            else "card is not ready"
        )
        raise RemitError("method_unverified", f"This {what} yet; verify it or choose another method.")
    accepted = seller.cards_enabled if method.kind == MethodKind.CARD else seller.ach_enabled
    if not accepted:
        label = "cards" if method.kind == MethodKind.CARD else "bank accounts (ACH)"
        raise RemitError("method_not_accepted", f"{seller.name} does not accept payments by {label}.")
    return method


def is_unattached_card(method: PaymentMethod) -> bool:
    """A saved card Stripe has not attached yet: a payment with it saves it (setup_future_usage)."""
    return method.kind == MethodKind.CARD and method.status == MethodStatus.VERIFICATION_PENDING


def select_invoices(
    session: Session, account: Account, seller: Seller, invoice_ids: object, lock: bool
) -> Selection:
    """The payable invoices a selection means (a parent brings its children), all checked."""
    ids = check_invoice_ids(invoice_ids, seller.max_invoices_per_payment)
    rows = (invoice_rows.lock_invoices_with_children if lock else invoice_rows.list_invoices_with_children)(
        session, ids
    )
    leaves = payability.choose_leaves(ids, rows, account.id, seller.max_invoices_per_payment)
    standing = invoice_rows.list_standing(session, [i.id for i in leaves.invoices])
    return Selection(payability.open_leaves(leaves, standing, ids), leaves.currency)


def open_account_invoices(session: Session, account: Account, lock: bool) -> list[OpenInvoice]:
    """Every invoice of the account with money still owed and no payment holding it, for custom amounts."""
    rows = invoice_rows.list_payable_invoices(session, account.id)
    if lock:
        rows = invoice_rows.lock_invoices(session, [r.id for r in rows])
    standing = invoice_rows.list_standing(session, [r.id for r in rows])
    return payability.open_for_custom_amount(rows, standing, account.currency)
