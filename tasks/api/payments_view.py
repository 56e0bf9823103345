"""One payment as the portal shows it (get_payment, and what every paying entry point returns), and the two
ways a payment waiting for card authentication ends from the portal: confirm_payment and cancel_payment.

While a payment waits for its customer, its PaymentIntent's client secret is retrieved from Stripe when
asked, never stored: Stripe asks that it be kept from logs and storage, and its answer is the intent as it
is now (a secret for an intent that moved on is of no use). The call is one rate-limited GET, made only for
a payment in requires_action, outside any transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from db.queries import credits as credit_rows
from db.queries import invoices as invoice_rows
from db.queries import payment_detail as detail_rows
from db.queries import payments as payment_rows
from tasks.api.guard import api_transaction
from tasks.api.history import MethodDisplay
from tasks.domain import authentication as rules
from tasks.domain import requests as checks
from tasks.domain.errors import RemitError, StripeMisconfigured, StripeUnavailable
from tasks.domain.payment_view import TimelineEntry, customer_timeline, readable_failure
from tasks.domain.states import PaymentStatus
from tasks.flows import authentication as flow

P = PaymentStatus
# Statuses a customer's confirmation can no longer change: the payment ended before it came.
_ENDED = frozenset({P.CANCELED, P.FAILED})


@dataclass(frozen=True)
class PaymentLine:
    invoice_id: int
    invoice_number: str
    amount_minor: int
    discount_minor: int
    credit_used_minor: int = 0


@dataclass(frozen=True)
class CustomerAction:
    """What the web tier needs to finish a payment waiting for its customer, with Stripe.js.

    next_action is Stripe's next_action type (use_stripe_sdk, redirect_to_url: handleNextAction), or
    "confirm_on_session" after an off-session charge was declined for authentication (confirmCardPayment
    with payment_method). Past expires_at the payment is canceled.
    """

    client_secret: str
    next_action: str
    payment_method: str
    expires_at: datetime | None


@dataclass(frozen=True)
class PaymentReceipt:
    """A payment as its customer sees it: what get_payment and every entry point that makes one return."""

    payment_id: int
    status: str
    kind: str
    amount_minor: int
    currency: str
    scheduled_for: date | None
    credit_minor: int  # left as credit on the account by this payment
    lines: tuple[PaymentLine, ...]
    warnings: tuple[str, ...]
    replayed: bool = False
    reference: str | None = None  # the customer-facing one, "<seller prefix>-<number>"
    credit_used_minor: int = 0  # paid from available credit; amount_minor is what Stripe is charged
    refunded_minor: int = 0
    method: MethodDisplay | None = None
    failure_code: str | None = None
    failure_reason: str | None = None  # for a person to read
    timeline: tuple[TimelineEntry, ...] = ()
    action: CustomerAction | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


def describe(session: Session, receipt: PaymentReceipt) -> PaymentReceipt:
    """The receipt with the rest of what its customer sees: method, failure, timeline, dates."""
    payment = detail_rows.find_shown(session, receipt.payment_id)
    spent = credit_rows.sum_spent_per_invoice(session, payment)
    method = None
    if payment.method_kind is not None:  # a payment credit paid in full charged no method
        method = MethodDisplay(
            payment.method_kind, payment.method_brand, payment.method_last4, payment.method_bank_name
        )
    return replace(
        receipt,
        lines=tuple(replace(line, credit_used_minor=spent.get(line.invoice_id, 0)) for line in receipt.lines),
        reference=payment.reference,
        credit_used_minor=payment.credit_used_minor,
        refunded_minor=payment.refunded_minor,
        method=method,
        failure_code=payment.failure_code,
        failure_reason=readable_failure(payment.failure_code, payment.failure_message)
        if payment.status in (P.FAILED, P.CANCELED)
        else None,
        timeline=customer_timeline(detail_rows.timeline_of(payment)),
        created_at=payment.created_at,
        finished_at=payment.finished_at,
    )


def stored_receipt(session: Session, payment, replayed: bool) -> PaymentReceipt:
    """The receipt of a payment read back from its rows."""
    lines = tuple(PaymentLine(*row) for row in invoice_rows.list_allocation_lines(session, payment.id))
    base = PaymentReceipt(
        payment.id,
        payment.status,
        payment.kind,
        payment.amount_minor,
        payment.currency,
        payment.scheduled_for,
        detail_rows.sum_credit_created(session, payment.id),
        lines,
        (),
        replayed,
    )
    return describe(session, base)


def get_payment(account_id: int, payment_id: int) -> PaymentReceipt:
    """The payment as its customer sees it; while it waits for them, what Stripe.js needs to finish it."""
    with api_transaction() as session:
        payment = _own_payment(session, account_id, payment_id)
        receipt = stored_receipt(session, payment, replayed=False)
        if receipt.status != P.REQUIRES_ACTION or payment.stripe_payment_intent_id is None:
            return receipt
        intent_id, expires_at = payment.stripe_payment_intent_id, flow.expires_at(session, payment.id)
        stripe_method = detail_rows.find_method_display(
            session, payment.payment_method_id
        ).stripe_payment_method_id
    with _stripe_answers():
        intent = flow.current_intent(intent_id)
    step = rules.next_step(intent.status, intent.next_action, intent.error_code)
    if step is None or not intent.client_secret:
        return receipt  # Stripe moved on: confirm_payment applies it
    return replace(receipt, action=CustomerAction(intent.client_secret, step, stripe_method, expires_at))


def confirm_payment(account_id: int, payment_id: int, now: datetime | None = None) -> PaymentReceipt:
    """After Stripe.js ran in the customer's browser: apply what Stripe says of the intent now, as its
    webhook would. Safe to call any number of times, before or after the webhooks."""
    now = now or datetime.now(UTC)
    with api_transaction() as session:
        status = _own_payment(session, account_id, payment_id).status
    if status == P.REQUIRES_ACTION:
        with _stripe_answers():
            flow.settle(payment_id, now, source="api:confirm_payment")
    elif status in _ENDED:
        flow.note_late_confirmation(payment_id, now, source="api:confirm_payment")
    return get_payment(account_id, payment_id)


def cancel_payment(account_id: int, payment_id: int, now: datetime | None = None) -> PaymentReceipt:
    """Cancel a scheduled payment, or one waiting for card authentication (at Stripe too), freeing its
    invoices and emailing the customer. Refused once the payment went through or is being charged."""
    now = now or datetime.now(UTC)
    with api_transaction() as session:
        status = _own_payment(session, account_id, payment_id).status
    if status == P.CANCELED:
        return replace(get_payment(account_id, payment_id), replayed=True)
    with _stripe_answers():
        status, _ = flow.cancel(payment_id, now, source="api:cancel_payment", reason=flow.REQUESTED)
    if status != P.CANCELED:
        raise RemitError(
            "not_cancelable", f"Payment {payment_id} is already {status} and can no longer be canceled."
        )
    return get_payment(account_id, payment_id)


@contextmanager
def _stripe_answers() -> Iterator[None]:
    """Stripe out of reach (or refusing our key) is a refusal the web tier can show and retry: nothing
    was applied, and the same call is safe again."""
    try:
        yield
    except (StripeUnavailable, StripeMisconfigured) as exc:
        raise RemitError(
            "stripe_unavailable", "The card processor could not be reached; try again in a moment."
        ) from exc


def _own_payment(session: Session, account_id: object, payment_id: object):
    checks.check_id(payment_id, "payment_not_found", "Payment")
    payment = payment_rows.find_payment(session, payment_id) if checks.is_id(account_id) else None
    if payment is None or payment.account_id != account_id:
        raise RemitError("payment_not_found", f"Payment {payment_id} was not found on this account.")
    return payment
