"""The phases of execute_payment: record the attempt, make sure of the customer, call Stripe, record the outcome.

State is committed before every Stripe call, so a crash anywhere leaves a row a retry can finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from db import queries
from db.models import Account
from db.session import transaction
from tasks.domain.attempts import Attempt, Step, decide_attempt, stripe_key
from tasks.domain.errors import StripeRefused
from tasks.domain.intents import failure_fields, target_for_intent
from tasks.domain.states import PaymentStatus
from tasks.gateways.stripe import IntentResult, Mandate, get_gateway, payment_intent_params
from tasks.ledger import apply_transition, record_event

SOURCE = "worker:execute_payment"


class UnexpectedIntentState(Exception):
    """Stripe reported a PaymentIntent state a create-and-confirm call can never produce."""


@dataclass(frozen=True)
class Charge:
    """Everything the Stripe call needs, read from our rows inside the recording transaction."""

    payment_id: int
    account_id: int
    attempt: Attempt
    params: dict
    customer_id: str | None
    email: str
    name: str


def execute_payment(payment_id: int, now: datetime) -> str:
    """Drive one payment through Stripe; return what happened in a word."""
    charge = _record_attempt(payment_id, now)
    if isinstance(charge, str):
        return charge
    customer_id = charge.customer_id or _ensure_customer(charge)
    params = {**charge.params, "customer": customer_id}
    try:
        result = _call_stripe(charge, params, now)
    except StripeRefused as refused:
        result = IntentResult(id=None, status="requires_payment_method", error_code=refused.code,
                              error_message=refused.message)
    return _record_outcome(payment_id, result, now)


def _record_attempt(payment_id: int, now: datetime) -> Charge | str:
    with transaction() as session:
        payment = queries.lock_payment(session, payment_id)
        if payment is None:
            raise queries.RowMissing(f"payment {payment_id} does not exist")
        decision = decide_attempt(payment.id, payment.status, payment.attempt, payment.first_attempt_at, now)
        if decision.step == Step.NOTHING:
            return f"nothing to do: payment is {payment.status}"
        problem = _last_look(session, payment)
        if problem is not None:
            payment.failure_code, payment.failure_message = problem
            apply_transition(session, payment, PaymentStatus.FAILED, source=SOURCE, now=now,
                             detail={"last_look": problem[0]})
            return f"failed: {problem[0]}"
        if payment.status == PaymentStatus.PENDING:
            apply_transition(session, payment, PaymentStatus.SUBMITTING, source=SOURCE, now=now,
                             detail={"attempt": decision.attempt, "stripe_idempotency_key": decision.idempotency_key})
            payment.attempt = decision.attempt
            payment.stripe_idempotency_key = decision.idempotency_key
            payment.first_attempt_at = payment.first_attempt_at or now
        payment.last_attempt_at = now
        return _charge(session, payment, decision)


def _last_look(session, payment) -> tuple[str, str] | None:
    """Re-read the invoices under lock right before money moves."""
    invoices = queries.lock_payment_invoices(session, payment.id)
    voided = [i for i in invoices if i.voided]
    if voided:
        return "invoice_voided", f"Invoice {voided[0].number} was voided before the payment was made."
    if payment.method.status != "active":
        return "method_unavailable", "The payment method can no longer be used."
    return None


def _charge(session, payment, decision: Attempt) -> Charge:
    account, method = payment.account, payment.method
    mandate = None
    if method.mandate_accepted_at is not None:
        mandate = Mandate(int(method.mandate_accepted_at.timestamp()), method.mandate_ip or "", method.mandate_user_agent or "")
    params = payment_intent_params(
        payment_id=payment.id, account_id=account.id, amount_minor=payment.amount_minor, currency=payment.currency,
        customer_id=account.stripe_customer_id or "", payment_method=method.stripe_payment_method_id,
        method_kind=method.kind, off_session=payment.scheduled_for is not None, mandate=mandate,
    )
    return Charge(payment.id, account.id, decision, params, account.stripe_customer_id, account.billing_email,
                  account.name)


def _ensure_customer(charge: Charge) -> str:
    """Create the account's Stripe customer once; the key makes concurrent creators agree."""
    customer_id = get_gateway().create_customer(account_id=charge.account_id, email=charge.email, name=charge.name,
                                                idempotency_key=f"remit-customer-{charge.account_id}")
    with transaction() as session:
        session.execute(update(Account).where(Account.id == charge.account_id, Account.stripe_customer_id.is_(None))
                        .values(stripe_customer_id=customer_id))
        return session.get(Account, charge.account_id).stripe_customer_id


def _call_stripe(charge: Charge, params: dict, now: datetime) -> IntentResult:
    gateway = get_gateway()
    if charge.attempt.step == Step.SEARCH:
        found = gateway.find_payment_intent(charge.payment_id)
        if found is not None:
            return found
        key = _start_fresh_attempt(charge.payment_id, now)
        return gateway.create_payment_intent(params=params, idempotency_key=key)
    return gateway.create_payment_intent(params=params, idempotency_key=charge.attempt.idempotency_key)


def _start_fresh_attempt(payment_id: int, now: datetime) -> str:
    """Stripe has no intent for this payment and our old key may be pruned: record a new attempt first."""
    with transaction() as session:
        payment = queries.lock_payment(session, payment_id)
        payment.attempt += 1
        payment.stripe_idempotency_key = stripe_key(payment.id, payment.attempt)
        payment.first_attempt_at = now
        record_event(session, payment, source=SOURCE, now=now,
                     detail={"attempt": payment.attempt, "stripe_idempotency_key": payment.stripe_idempotency_key,
                             "reason": "no PaymentIntent found at Stripe after the search window"})
        return payment.stripe_idempotency_key


def _record_outcome(payment_id: int, result: IntentResult, now: datetime) -> str:
    target = target_for_intent(result.status, result.error_code, result.decline_code)
    if target is None:
        raise UnexpectedIntentState(f"payment {payment_id}: PaymentIntent {result.id} is {result.status}")
    with transaction() as session:
        payment = queries.lock_payment(session, payment_id)
        if result.id and payment.stripe_payment_intent_id is None:
            payment.stripe_payment_intent_id = result.id
        if result.charge_id and payment.stripe_charge_id is None:
            payment.stripe_charge_id = result.charge_id
        if target == PaymentStatus.FAILED and payment.status == PaymentStatus.SUBMITTING:
            payment.failure_code, payment.failure_message = failure_fields(
                result.error_code, result.decline_code, result.error_message)
        detail = {"payment_intent": result.id, "intent_status": result.status, "attempt": payment.attempt}
        apply_transition(session, payment, target, source=SOURCE, now=now, detail=detail)
        return str(target)
