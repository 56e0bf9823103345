"""The web tier's entry points for saved cards and bank accounts: validate, write rows, enqueue. Never Stripe.

A save writes the method `verification_pending` with the display data Stripe.js gave the portal; the
`ach` queue's sync_payment_method attaches it at Stripe (a card) or sets it up (a bank account) and
moves it to active, verification_pending with microdeposits on their way, or verification_failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Account, PaymentMethod, Seller
from db.queries import methods as method_rows
from db.queries import payments as payment_rows
from tasks.api import selection
from tasks.api.guard import api_transaction
from tasks.domain import methods as rules
from tasks.domain import requests as checks
from tasks.domain.dates import seller_today
from tasks.domain.errors import RemitError
from tasks.domain.states import MethodKind, MethodStatus
from tasks.flows import messages

S = MethodStatus
_UNIQUE_STRIPE_ID = "uq_payment_methods_stripe_payment_method_id"
_ONE_DEFAULT = "uq_payment_methods_one_default"


@dataclass(frozen=True)
class SavedMethod:
    id: int
    kind: str
    status: str
    last4: str
    brand: str | None
    exp_month: int | None
    exp_year: int | None
    bank_name: str | None
    is_default: bool
    verification_error: str | None
    replayed: bool = False
    nickname: str | None = None
    billing_details: dict[str, Any] | None = None


def save_payment_method(
    account_id: int,
    *,
    stripe_payment_method_id: str | None = None,
    idempotency_key: str,
    kind: str | None = None,
    last4: str | None = None,
    brand: str | None = None,
    exp_month: int | None = None,
    exp_year: int | None = None,
    bank_name: str | None = None,
    set_default: bool = False,
    mandate: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> SavedMethod:
    """Save a PaymentMethod Stripe.js collected; saving the same one again returns the first row."""
    checks.check_id(account_id, "account_not_found", "Account")
    checks.check_idempotency_key(idempotency_key)
    stripe_id = rules.check_stripe_method_id(stripe_payment_method_id)
    display = rules.check_display(kind, last4, brand, exp_month, exp_year, bank_name)
    acceptance = (
        rules.check_mandate(mandate, now or _now()) if display.kind == MethodKind.US_BANK_ACCOUNT else None
    )
    if not isinstance(set_default, bool):
        raise RemitError("invalid_set_default", "set_default must be true or false.")
    try:
        with api_transaction() as session:
            account, seller = selection.load_account(session, account_id, lock=True)
            _check_accepted(seller, display.kind)
            existing = _find_by_stripe_id(session, stripe_id)
            if existing is not None:
                return _replay(existing, account.id)
            method = _insert(session, account, stripe_id, display, acceptance)
            if set_default:
                _make_default(session, account.id, method)
            messages.send_after_commit(session, "sync_payment_method", [(method.id,)])
            return view(method)
    except IntegrityError as exc:
        if _UNIQUE_STRIPE_ID not in str(exc.orig):
            raise
        # Another account's request saved the same PaymentMethod between our look and our insert.
        with api_transaction() as session:
            existing = _find_by_stripe_id(session, stripe_id)
            if existing is None:
                raise
            return _replay(existing, account_id)


def set_default_payment_method(account_id: int, payment_method_id: int) -> SavedMethod:
    """Make this the account's one default method; the previous default stops being it in the same commit."""
    check_ids(account_id, payment_method_id)
    try:
        with api_transaction() as session:
            account, _ = selection.load_account(session, account_id, lock=True)
            method = method_of(session, account, payment_method_id)
            rules.check_default_allowed(method.status)
            if method.is_default:
                return view(method, replayed=True)
            _make_default(session, account.id, method)
            return view(method)
    except IntegrityError as exc:
        if _ONE_DEFAULT not in str(exc.orig):
            raise
        raise RemitError(
            "default_changed", "The default method changed at the same time; try again."
        ) from None


def remove_payment_method(account_id: int, payment_method_id: int) -> SavedMethod:
    """Remove a method no payment still needs; it is detached at Stripe after commit."""
    check_ids(account_id, payment_method_id)
    with api_transaction() as session:
        account, _ = selection.load_account(session, account_id, lock=True)
        method = method_of(session, account, payment_method_id)
        if method.status == S.REMOVED:
            return view(method, replayed=True)
        rules.check_removable(
            method.is_default, _other_candidates(session, method), _payments_using(session, method)
        )
        method.status, method.is_default = S.REMOVED, False
        messages.send_after_commit(session, "detach_payment_method", [(method.id,)])
        return view(method)


def verify_microdeposits(
    account_id: int,
    payment_method_id: int,
    amounts: list[int] | None = None,
    descriptor_code: str | None = None,
    now: datetime | None = None,
) -> SavedMethod:
    """Hand the customer's microdeposit amounts or code to the `ach` queue; the verdict lands on the method.

    The attempt is counted on the method (at most rules.MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY per seller's day)
    and committed before it is sent; the attempt itself travels in the message, and an enqueue that fails
    raises here, so the customer is never told "submitted" for an attempt that was lost (it still counts).
    """
    check_ids(account_id, payment_method_id)
    verification = rules.check_verification(amounts, descriptor_code)
    with api_transaction() as session:
        account, seller = selection.load_account(session, account_id, lock=False)
        method = method_of(session, account, payment_method_id)
        rules.check_verifiable(method.kind, method.status, method.stripe_setup_intent_id)
        today = seller_today(seller, now or _now())
        method.verification_attempts = rules.count_verification_attempt(
            method.verification_attempts_on, method.verification_attempts, today
        )
        method.verification_attempts_on = today
        shown = view(method)
    amounts = list(verification.amounts) if verification.amounts else None
    messages.send_now("verify_bank_account", [(shown.id, amounts, verification.descriptor_code)])
    return shown


def list_payment_methods(account_id: int) -> list[SavedMethod]:
    """The account's methods that were not removed, the default first."""
    checks.check_id(account_id, "account_not_found", "Account")
    with api_transaction() as session:
        account, _ = selection.load_account(session, account_id, lock=False)
        rows = method_rows.list_methods_not_removed(session, account.id)
        return [view(row) for row in rows]


def check_ids(account_id: object, method_id: object) -> None:
    """Refuse what cannot be an id (a bool, a string, 2**63) before anything is read or locked."""
    checks.check_id(account_id, "account_not_found", "Account")
    checks.check_id(method_id, "method_not_found", "Payment method")


def _check_accepted(seller: Seller, kind: MethodKind) -> None:
    accepted = seller.cards_enabled if kind == MethodKind.CARD else seller.ach_enabled
    if not accepted:
        label = "cards" if kind == MethodKind.CARD else "bank accounts (ACH)"
        raise RemitError("method_not_accepted", f"{seller.name} does not accept payments by {label}.")


def _find_by_stripe_id(session: Session, stripe_id: str) -> PaymentMethod | None:
    return method_rows.find_method_by_stripe_id(session, stripe_id)


def _replay(existing: PaymentMethod, account_id: int) -> SavedMethod:
    if existing.account_id != account_id:
        raise RemitError("method_taken", "This payment method is saved on another account.")
    if existing.status == S.REMOVED:
        raise RemitError(
            "method_removed", "This payment method was removed; enter the card or account again."
        )
    return view(existing, replayed=True)


def _insert(
    session: Session,
    account: Account,
    stripe_id: str,
    display: rules.Display,
    acceptance: rules.MandateAcceptance | None,
) -> PaymentMethod:
    method = PaymentMethod(
        account_id=account.id,
        stripe_payment_method_id=stripe_id,
        kind=display.kind,
        brand=display.brand,
        bank_name=display.bank_name,
        last4=display.last4,
        exp_month=display.exp_month,
        exp_year=display.exp_year,
        is_default=False,
        status=S.VERIFICATION_PENDING,
    )
    if acceptance is not None:
        method.mandate_accepted_at, method.mandate_ip = acceptance.accepted_at, acceptance.ip_address
        method.mandate_user_agent, method.mandate_text_version = (
            acceptance.user_agent,
            acceptance.text_version,
        )
    method_rows.insert_method(session, method)
    return method


def _make_default(session: Session, account_id: int, method: PaymentMethod) -> None:
    """Clear the old default before setting the new one: the partial unique index sees one at a time."""
    method_rows.mark_others_not_default(session, account_id, method.id)
    method.is_default = True
    session.flush()


def method_of(session: Session, account: Account, method_id: object) -> PaymentMethod:
    """The account's saved method, locked; another account's id, or a card used once and not kept, is as
    unknown as a missing one."""
    method = method_rows.lock_method(
        session, checks.check_id(method_id, "method_not_found", "Payment method")
    )
    if method is None or method.account_id != account.id or not method.saved:
        raise RemitError("method_not_found", f"Payment method {method_id} was not found on this account.")
    return method


def _payments_using(session: Session, method: PaymentMethod) -> int:
    return payment_rows.count_payments_with_method(session, method.id, rules.IN_USE_STATUSES)


def _other_candidates(session: Session, method: PaymentMethod) -> int:
    """Other methods of the account that could become the default instead."""
    return method_rows.count_other_methods(
        session, method.account_id, method.id, [S.ACTIVE, S.VERIFICATION_PENDING]
    )


def view(method: PaymentMethod, replayed: bool = False) -> SavedMethod:
    return SavedMethod(
        method.id,
        method.kind,
        method.status,
        method.last4,
        method.brand,
        method.exp_month,
        method.exp_year,
        method.bank_name,
        method.is_default,
        method.verification_error,
        replayed,
        method.nickname,
        method.billing_details,
    )


def _now() -> datetime:
    return datetime.now(UTC)
