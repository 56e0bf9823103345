"""The phases of the `ach` queue's method actors: read the row, call Stripe with a key from our row, record.

Every record phase re-reads the method under lock and changes only a method still pending, so a second
run, or a webhook handler that got there first, changes nothing and owes no second email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from db.models import PaymentMethod
from db.queries import RowMissing
from db.queries import accounts as account_rows
from db.queries import methods as method_rows
from db.session import transaction
from tasks.domain import methods as rules
from tasks.domain.errors import StripeRefused
from tasks.domain.states import EmailKind, MethodStatus
from tasks.flows import messages
from tasks.flows.customers import ensure_customer
from tasks.gateways.stripe import Mandate, MethodDetails, get_gateway
from tasks.handlers.common import queue_method_email

S = MethodStatus
# A sync message normally runs within seconds; its retries (tasks.ach) give up after about 9 minutes.
# A pending method untouched for longer lost its message; resending touches it, so at most one per grace.
SYNC_GRACE = timedelta(minutes=15)
# Bounds one sweep pass; the next pass takes the rest.
SWEEP_LIMIT = 500
UNVERIFIED = "The bank account could not be verified."


class UnexpectedSetupState(Exception):
    """Stripe reported a SetupIntent state that a confirmed bank-account setup can never be in."""


@dataclass(frozen=True)
class Saved:
    """What the Stripe calls for one saved method need, read from our rows."""

    method_id: int
    account_id: int
    kind: str
    status: str
    stripe_id: str
    setup_intent_id: str | None
    mandate: Mandate | None
    customer_id: str | None
    email: str
    name: str


def sync_payment_method(method_id: int, now: datetime) -> str:
    """Attach a saved card, or set up a saved bank account, at Stripe once; return what happened."""
    saved = _load(method_id)
    step = rules.sync_step(saved.kind, saved.status, saved.setup_intent_id)
    if step == rules.SyncStep.NOTHING:
        return f"nothing to do: method is {saved.status}"
    customer_id = saved.customer_id or ensure_customer(saved.account_id, saved.email, saved.name)
    gateway = get_gateway()
    try:
        if step == rules.SyncStep.ATTACH:
            details = gateway.attach_payment_method(
                payment_method=saved.stripe_id,
                customer_id=customer_id,
                idempotency_key=rules.attach_key(method_id),
            )
            return _record(method_id, now, S.ACTIVE, details=details)
        setup = gateway.create_setup_intent(
            customer_id=customer_id,
            payment_method=saved.stripe_id,
            mandate=saved.mandate,
            metadata={"payment_method_id": str(method_id), "account_id": str(saved.account_id)},
            idempotency_key=rules.setup_key(method_id),
        )
        details = gateway.retrieve_payment_method(setup["payment_method"])
    except StripeRefused as refused:
        return _record(method_id, now, S.VERIFICATION_FAILED, error=refused.message)
    return _record_setup(method_id, now, setup, details)


def verify_bank_account(
    method_id: int, amounts: list[int] | None, descriptor_code: str | None, now: datetime
) -> str:
    """Send one microdeposit verification attempt to Stripe and record its verdict."""
    verification = rules.Verification(tuple(amounts) if amounts else None, descriptor_code)
    saved = _load(method_id)
    if saved.status != S.VERIFICATION_PENDING or saved.setup_intent_id is None:
        return f"nothing to do: method is {saved.status}"
    gateway = get_gateway()
    try:
        setup = gateway.verify_setup_intent_microdeposits(
            saved.setup_intent_id,
            amounts=verification.amounts,
            descriptor_code=verification.descriptor_code,
            idempotency_key=rules.verify_key(method_id, verification),
        )
    except StripeRefused as refused:
        after = rules.status_for_refused_verification(refused.code)
        if after is not None:
            return _record(method_id, now, after, error=refused.message)
        if refused.code != "setup_intent_unexpected_state":
            raise
        # Already verified or failed at Stripe (the hosted page, a timeout): take Stripe's word for it.
        setup = gateway.retrieve_setup_intent(saved.setup_intent_id)
    return _record_setup(method_id, now, setup, None)


def detach_payment_method(method_id: int, now: datetime) -> str:
    """Detach a removed method from the customer at Stripe; one that is not attached is fine."""
    saved = _load(method_id)
    if saved.status != S.REMOVED:
        return f"nothing to do: method is {saved.status}"
    detached = get_gateway().detach_payment_method(
        saved.stripe_id, idempotency_key=rules.detach_key(method_id, saved.stripe_id)
    )
    return "detached" if detached else "nothing to do: not attached at Stripe"


def resend_stuck_methods(
    now: datetime, grace: timedelta = SYNC_GRACE, limit: int = SWEEP_LIMIT
) -> dict[str, int]:
    """Send sync_payment_method again for saved methods whose first sync never happened; return the count."""
    with transaction() as session:
        ids = method_rows.lock_due_unsynced_methods(session, now, grace, limit)
        if ids:
            method_rows.mark_methods_touched(session, ids, now)
    messages.send_now("sync_payment_method", [(method_id,) for method_id in ids])
    return {"resent": len(ids)}


def _load(method_id: int) -> Saved:
    with transaction() as session:
        method = method_rows.find_method(session, method_id)
        if method is None:
            raise RowMissing(f"payment method {method_id} does not exist")
        account = account_rows.find_account(session, method.account_id)
        mandate = None
        if method.mandate_accepted_at is not None:
            mandate = Mandate(
                int(method.mandate_accepted_at.timestamp()),
                method.mandate_ip or "",
                method.mandate_user_agent or "",
            )
        return Saved(
            method.id,
            account.id,
            method.kind,
            method.status,
            method.stripe_payment_method_id,
            method.stripe_setup_intent_id,
            mandate,
            account.stripe_customer_id,
            account.billing_email,
            account.name,
        )


def _record_setup(method_id: int, now: datetime, setup: dict[str, Any], details: MethodDetails | None) -> str:
    after = rules.status_for_setup(setup["status"], setup["next_action"])
    if after is None:
        raise UnexpectedSetupState(f"method {method_id}: SetupIntent {setup['id']} is {setup['status']}")
    error = (setup["error_message"] or UNVERIFIED) if after == S.VERIFICATION_FAILED else None
    return _record(method_id, now, after, error=error, details=details, setup=setup)


def _record(
    method_id: int,
    now: datetime,
    after: MethodStatus,
    *,
    error: str | None = None,
    details: MethodDetails | None = None,
    setup: dict[str, Any] | None = None,
) -> str:
    """Move a still-pending method to its outcome, with Stripe's display data and the email it owes."""
    with transaction() as session:
        method = _lock(session, method_id)
        if details is not None:
            method.stripe_payment_method_id = (
                details.id
            )  # a test token becomes the PaymentMethod made from it
        if method.status != S.VERIFICATION_PENDING:
            if method.status == S.REMOVED and details is not None:
                _detach_after_commit(session, method.id)
            return f"nothing to do: method is {method.status}"
        if setup is not None:
            method.stripe_setup_intent_id = method.stripe_setup_intent_id or setup["id"]
        if details is not None and details.kind != method.kind:
            after, error = (
                S.VERIFICATION_FAILED,
                f"Stripe says this payment method is a {details.kind}, not a {method.kind}.",
            )
        elif details is not None:
            _copy_display(method, details)
        _move(session, method, after, error, setup, now)
        return str(after)


def _move(
    session,
    method: PaymentMethod,
    after: MethodStatus,
    error: str | None,
    setup: dict[str, Any] | None,
    now: datetime,
) -> None:
    awaiting = bool(setup) and setup["next_action"] == "verify_with_microdeposits"
    email = rules.email_for_method(method.kind, method.status, after, awaiting)
    method.status = after
    method.verification_error = error
    if after == S.VERIFICATION_FAILED:
        method.is_default = False  # so the customer can remove it, and payments fall back to choosing
    if email == EmailKind.BANK_VERIFICATION_NEEDED:
        queue_method_email(
            session,
            method,
            email,
            now,
            {"arrival_date": setup["arrival_date"], "microdeposit_type": setup["microdeposit_type"]},
        )
    elif email == EmailKind.BANK_VERIFICATION_FAILED:
        queue_method_email(session, method, email, now, {"failure_message": error})
    elif email is not None:
        queue_method_email(session, method, email, now)


def _copy_display(method: PaymentMethod, details: MethodDetails) -> None:
    """Stripe's display data wins over what the portal sent; keep the portal's where Stripe has none."""
    method.last4 = details.last4
    method.brand = details.brand or method.brand
    method.exp_month = details.exp_month or method.exp_month
    method.exp_year = details.exp_year or method.exp_year
    method.bank_name = details.bank_name or method.bank_name


def _lock(session, method_id: int) -> PaymentMethod:
    method = method_rows.lock_method(session, method_id)
    if method is None:
        raise RowMissing(f"payment method {method_id} does not exist")
    return method


def _detach_after_commit(session, method_id: int) -> None:
    messages.send_after_commit(session, "detach_payment_method", [(method_id,)])
