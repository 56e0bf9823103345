"""Queue `payments` logic: execute_payment's phases (record the attempt, make sure of the customer, call Stripe,
record the outcome), and the sweepers that find payments left behind.

State is committed before every Stripe call, so a crash anywhere leaves a row a retry can finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from db.queries import RowMissing
from db.queries import accounts as account_rows
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from db.session import on_commit, transaction
from tasks.domain.attempts import Attempt, Step, decide_attempt, stripe_key
from tasks.domain.errors import StripeRefused
from tasks.domain.intents import failure_fields, target_for_intent
from tasks.domain.states import PaymentStatus
from tasks.gateways.stripe import IntentResult, Mandate, get_gateway, payment_intent_params
from tasks.flows.ledger import apply_transition, record_event, record_quiet_transition

SOURCE = "worker:execute_payment"


class UnexpectedIntentState(Exception):
    """Stripe reported a PaymentIntent state a create-and-confirm call can never produce."""


class FailedAtLastLook(Exception):
    """Stripe holds nothing for the payment and the last look refused a fresh attempt: it failed instead."""


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
    except FailedAtLastLook as failed:
        return str(failed)
    except StripeRefused as refused:
        result = IntentResult(id=None, status="requires_payment_method", error_code=refused.code,
                              error_message=refused.message)
    return _record_outcome(payment_id, result, now)


def _record_attempt(payment_id: int, now: datetime) -> Charge | str:
    """Decide the attempt and commit its key before any Stripe call; plain statements on the common path."""
    with transaction() as session:
        row = payment_rows.lock_payment_to_charge(session, payment_id)
        if row is None:
            raise RowMissing(f"payment {payment_id} does not exist")
        decision = decide_attempt(row.id, row.status, row.attempt, row.first_attempt_at, now)
        if decision.step == Step.NOTHING:
            return f"nothing to do: payment is {row.status}"
        if row.status == PaymentStatus.PENDING:
            problem = _last_look(session, row)
            if problem is not None:
                return _fail_at_last_look(session, payment_id, problem, now)
            record_quiet_transition(
                session, row.id, PaymentStatus.PENDING, PaymentStatus.SUBMITTING, source=SOURCE, now=now,
                detail={"attempt": decision.attempt, "stripe_idempotency_key": decision.idempotency_key},
                attempt=decision.attempt, stripe_idempotency_key=decision.idempotency_key,
                first_attempt_at=row.first_attempt_at or now, last_attempt_at=now,
            )
        else:
            _retry_attempt(session, row, now)
        return _charge(row, decision)


def _fail_at_last_look(session, payment_id: int, problem: tuple[str, str], now: datetime) -> str:
    """Nothing has reached Stripe yet: the payment fails and its invoices are freed."""
    payment = payment_rows.lock_payment(session, payment_id)
    payment.failure_code, payment.failure_message = problem
    apply_transition(session, payment, PaymentStatus.FAILED, source=SOURCE, now=now, detail={"last_look": problem[0]})
    return f"failed: {problem[0]}"


def _retry_attempt(session, row, now: datetime) -> None:
    """A submitting payment may already be charged at Stripe: it is replayed with the same key, never failed here.

    What changed since the first call (an invoice voided, the method removed) is flagged for ops instead.
    """
    problem = None if row.needs_review else _last_look(session, row)
    if problem is None:
        payment_rows.touch_payment_attempt(session, row.id, now)
        return
    payment_rows.move_payment(session, row.id, {"needs_review": True, "last_attempt_at": now}, from_status=row.status,
                         to_status=row.status, source=SOURCE, at=now,
                         detail={"needs_review": problem[0], "message": problem[1], "attempt": row.attempt})


def _last_look(session, row) -> tuple[str, str] | None:
    """Re-read the invoices and the method under lock right before money first moves."""
    voided = [i for i in invoice_rows.lock_payment_invoices(session, row.id) if i.voided]
    if voided:
        return "invoice_voided", f"Invoice {voided[0].number} was voided before the payment was made."
    if row.method_status != "active":
        return "method_unavailable", "The payment method can no longer be used."
    return None


def _charge(row, decision: Attempt) -> Charge:
    mandate = None
    if row.mandate_accepted_at is not None:
        mandate = Mandate(int(row.mandate_accepted_at.timestamp()), row.mandate_ip or "", row.mandate_user_agent or "")
    params = payment_intent_params(
        payment_id=row.id, account_id=row.account_id, amount_minor=row.amount_minor, currency=row.currency,
        customer_id=row.stripe_customer_id or "", payment_method=row.stripe_payment_method_id,
        method_kind=row.method_kind, off_session=row.scheduled_for is not None, mandate=mandate,
    )
    return Charge(row.id, row.account_id, decision, params, row.stripe_customer_id, row.billing_email, row.name)


def _ensure_customer(charge: Charge) -> str:
    """Create the account's Stripe customer once; the key makes concurrent creators agree."""
    customer_id = get_gateway().create_customer(account_id=charge.account_id, email=charge.email, name=charge.name,
                                                idempotency_key=f"remit-customer-{charge.account_id}")
    with transaction() as session:
        return account_rows.update_stripe_customer(session, charge.account_id, customer_id)


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
    """Stripe has no intent for this payment and our old key may be pruned: record a new attempt first.

    Nothing has moved yet, so a fresh attempt gets the last look a first one gets.
    """
    with transaction() as session:
        problem = _last_look(session, payment_rows.lock_payment_to_charge(session, payment_id))
        if problem is None:
            return _record_fresh_attempt(session, payment_id, now)
        outcome = _fail_at_last_look(session, payment_id, problem, now)
    raise FailedAtLastLook(outcome)  # outside the transaction, which commits the failure


def _record_fresh_attempt(session, payment_id: int, now: datetime) -> str:
    payment = payment_rows.lock_payment(session, payment_id)
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
        payment = payment_rows.lock_payment(session, payment_id)
        values = {}
        if result.id and payment.stripe_payment_intent_id is None:
            values["stripe_payment_intent_id"] = result.id
        if result.charge_id and payment.stripe_charge_id is None:
            values["stripe_charge_id"] = result.charge_id
        if target == PaymentStatus.FAILED and payment.status == PaymentStatus.SUBMITTING:
            values["failure_code"], values["failure_message"] = failure_fields(
                result.error_code, result.decline_code, result.error_message)
        detail = {"payment_intent": result.id, "intent_status": result.status, "attempt": payment.attempt}
        apply_transition(session, payment, target, source=SOURCE, now=now, detail=detail, values=values)
        return str(target)

# A pending payment's message normally runs within a second; a minute means the send was lost.
PENDING_GRACE = timedelta(seconds=60)
# Longer than execute_payment's own retry backoff (max 60 s), so the sweeper only catches given-up work.
SUBMITTING_GRACE = timedelta(minutes=3)
# Bounds one pass; the next pass takes the rest.
SWEEP_LIMIT = 500


def sweep_payments(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send execute_payment for payments stuck pending or submitting; return counts by status."""
    from tasks.payments import execute_payment
    from workers.broker import send_all

    with transaction() as session:
        rows = payment_rows.list_due_stuck_payments(session, now, PENDING_GRACE, SUBMITTING_GRACE, limit)
    counts = {"pending": 0, "submitting": 0}
    send_all([execute_payment.message(payment_id) for payment_id, _ in rows])
    for _, status in rows:
        counts[status] += 1
    return counts


def dispatch_due_payments(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Move scheduled payments due today (at the seller) to pending and send them, after commit."""
    from tasks.payments import execute_payment
    from workers.broker import send_all

    with transaction() as session:
        due = payment_rows.lock_due_scheduled_payments(session, now, limit)
        for payment in due:
            apply_transition(session, payment, PaymentStatus.PENDING, source="clock", now=now)
        messages = [execute_payment.message(payment.id) for payment in due]
        on_commit(session, lambda: send_all(messages))
    return {"dispatched": len(due)}
