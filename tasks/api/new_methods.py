"""Paying with a PaymentMethod Stripe.js just collected: kept for later, or used once and never listed.

A card pays at once; the PaymentIntent itself attaches a card to be kept (setup_future_usage=off_session), and
sync_payment_method records it as active once Stripe has it attached. A bank account still has to be saved
with the ACH agreement and verified before it pays (save_payment_method, verify_microdeposits).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Account, PaymentMethod, Seller
from db.queries import methods as method_rows
from tasks.api import selection
from tasks.domain import methods as rules
from tasks.domain import requests as checks
from tasks.domain.errors import RemitError
from tasks.domain.states import MethodKind, MethodStatus
from tasks.flows import messages

_DISPLAY_FIELDS = ("kind", "last4", "brand", "exp_month", "exp_year")


@dataclass(frozen=True)
class NewMethod:
    stripe_id: str
    display: rules.Display
    save: bool


@dataclass(frozen=True)
class Chosen:
    """The method a payment uses, and whether its PaymentIntent saves it for off-session use."""

    id: int
    saves_method: bool


def check_choice(
    payment_method_id: object, payment_method: object, save_for_future: object, method_display: object
) -> NewMethod | None:
    """A saved method's id, or a new PaymentMethod with its display data: checked before any lock."""
    if payment_method is None:
        if save_for_future is not False or method_display is not None:
            raise RemitError(
                "invalid_payment_method",
                "save_for_future and method_display go with payment_method, a new Stripe PaymentMethod id.",
            )
        checks.check_id(payment_method_id, "method_not_found", "Payment method")
        return None
    if payment_method_id is not None:
        raise RemitError(
            "invalid_payment_method",
            "Give either payment_method_id (a saved method) or payment_method (a new one), not both.",
        )
    if not isinstance(save_for_future, bool):
        raise RemitError("invalid_save_for_future", "save_for_future must be true or false.")
    return NewMethod(
        rules.check_stripe_method_id(payment_method), _check_display(method_display), save_for_future
    )


def choose(
    session: Session, account: Account, seller: Seller, payment_method_id: int | None, new: NewMethod | None
) -> Chosen:
    """The method the payment uses, written first when it is new; refusals say why it cannot pay."""
    if new is None:
        method = selection.load_method(session, account, seller, payment_method_id)
        return Chosen(method.id, selection.is_unattached_card(method))
    existing = method_rows.find_method_by_stripe_id(session, new.stripe_id)
    if existing is not None:
        return _reuse(existing, account, seller)
    if not seller.cards_enabled:
        raise RemitError("method_not_accepted", f"{seller.name} does not accept payments by cards.")
    method = _insert(session, account, new)
    if new.save:
        # Records it active once attached; if the payment fails first, it attaches it (or says why not).
        messages.send_after_commit(session, "sync_payment_method", [(method.id,)])
    return Chosen(method.id, new.save)


def _check_display(method_display: object) -> rules.Display:
    if not isinstance(method_display, dict) or set(method_display) - set(_DISPLAY_FIELDS):
        raise RemitError(
            "invalid_method_details",
            "method_display must be what Stripe.js gave: kind, last4, brand, exp_month, exp_year.",
        )
    display = rules.check_display(*(method_display.get(name) for name in _DISPLAY_FIELDS))
    if display.kind != MethodKind.CARD:
        raise RemitError(
            "method_needs_verification",
            "A bank account pays once it is saved with the debit agreement and verified: "
            "save it with save_payment_method first.",
        )
    return display


def _reuse(existing: PaymentMethod, account: Account, seller: Seller) -> Chosen:
    """The same PaymentMethod given again: a kept one pays like any saved method; a one-time one cannot."""
    if existing.account_id != account.id:
        raise RemitError("method_taken", "This payment method is saved on another account.")
    if not existing.saved:
        raise RemitError(
            "method_used", "This card was used once without being saved; enter it again to pay with it."
        )
    method = selection.check_usable(existing, seller)
    return Chosen(method.id, selection.is_unattached_card(method))


def _insert(session: Session, account: Account, new: NewMethod) -> PaymentMethod:
    display = new.display
    method = PaymentMethod(
        account_id=account.id,
        stripe_payment_method_id=new.stripe_id,
        kind=display.kind,
        brand=display.brand,
        last4=display.last4,
        exp_month=display.exp_month,
        exp_year=display.exp_year,
        is_default=False,
        # Kept: pending until Stripe has it attached. Used once: ready, and never listed.
        status=MethodStatus.VERIFICATION_PENDING if new.save else MethodStatus.ACTIVE,
        saved=new.save,
    )
    method_rows.insert_method(session, method)
    return method
