"""Queue `payments` logic: execute_payment's phases (record the attempt, make sure of the customer, call Stripe,
record the outcome), and the sweepers that find payments left behind.

State is committed before every Stripe call, so a crash anywhere leaves a row a retry can finish.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from db.queries import RowMissing
from db.queries import invoices as invoice_rows
from db.queries import payments as payment_rows
from db.session import transaction
from tasks.domain.attempts import (
    Answered,
    Attempt,
    FailedAtLastLook,
    NothingToDo,
    Outcome,
    Step,
    decide_attempt,
    stripe_key,
)
from tasks.domain.errors import StripeRefused
from tasks.domain.intents import failure_fields, target_for_intent
from tasks.domain.last_look import Refusal, last_look
from tasks.domain.states import PaymentStatus
from tasks.flows import messages
from tasks.flows.customers import ensure_customer
from tasks.flows.ledger import apply_transition, record_event, record_quiet_transition
from tasks.gateways.stripe import IntentResult, Mandate, get_gateway, payment_intent_params

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


def execute_payment(payment_id: int, now: datetime) -> Outcome:
    """Drive one payment through Stripe; each phase returns the next one's input, or the outcome."""
    phase = _record_attempt(payment_id, now)
    while True:
        match phase:
            case Charge(customer_id=None):
                phase = _with_customer(phase)
            case Charge(attempt=Attempt(step=Step.SEARCH)):
                phase = _search_stripe(phase, now)
            case Charge():
                phase = _call_stripe(phase)
            case IntentResult():
                phase = _record_outcome(payment_id, phase, now)
            case NothingToDo() | FailedAtLastLook() | Answered():
                return phase


def _record_attempt(payment_id: int, now: datetime) -> Charge | NothingToDo | FailedAtLastLook:
    """Decide the attempt and commit its key before any Stripe call; plain statements on the common path."""
    with transaction() as session:
        row = payment_rows.lock_payment_to_charge(session, payment_id)
        if row is None:
            raise RowMissing(f"payment {payment_id} does not exist")
        decision = decide_attempt(row.id, row.status, row.attempt, row.first_attempt_at, now)
        if decision.step == Step.NOTHING:
            return NothingToDo(PaymentStatus(row.status))
        if row.status == PaymentStatus.PENDING:
            refusal = _last_look(session, row)
            if refusal is not None:
                return _fail_at_last_look(session, payment_id, refusal, now)
            record_quiet_transition(
                session,
                row.id,
                PaymentStatus.PENDING,
                PaymentStatus.SUBMITTING,
                source=SOURCE,
                now=now,
                detail={"attempt": decision.attempt, "stripe_idempotency_key": decision.idempotency_key},
                attempt=decision.attempt,
                stripe_idempotency_key=decision.idempotency_key,
                first_attempt_at=row.first_attempt_at or now,
                last_attempt_at=now,
            )
        else:
            _retry_attempt(session, row, now)
        return _charge(row, decision)


def _fail_at_last_look(session, payment_id: int, refusal: Refusal, now: datetime) -> FailedAtLastLook:
    """Nothing has reached Stripe yet: the payment fails and its invoices are freed."""
    payment = payment_rows.lock_payment(session, payment_id)
    payment.failure_code, payment.failure_message = refusal.code, refusal.message
    apply_transition(
        session, payment, PaymentStatus.FAILED, source=SOURCE, now=now, detail={"last_look": refusal.code}
    )
    return FailedAtLastLook(refusal.code)


def _retry_attempt(session, row, now: datetime) -> None:
    """A submitting payment may already be charged at Stripe: it is replayed with the same key, never failed here.

    What changed since the first call (an invoice voided, the method removed) is flagged for ops instead.
    """
    refusal = None if row.needs_review else _last_look(session, row)
    if refusal is None:
        payment_rows.touch_payment_attempt(session, row.id, now)
        return
    payment_rows.move_payment(
        session,
        row.id,
        {"needs_review": True, "last_attempt_at": now},
        from_status=row.status,
        to_status=row.status,
        source=SOURCE,
        at=now,
        detail={"needs_review": refusal.code, "message": refusal.message, "attempt": row.attempt},
    )


def _last_look(session, row) -> Refusal | None:
    """Re-read the invoices and the method under lock right before money first moves."""
    invoices = invoice_rows.lock_payment_invoices(session, row.id)
    return last_look([(i.number, i.voided) for i in invoices], row.method_status)


def _charge(row, decision: Attempt) -> Charge:
    mandate = None
    if row.mandate_accepted_at is not None:
        mandate = Mandate(
            int(row.mandate_accepted_at.timestamp()), row.mandate_ip or "", row.mandate_user_agent or ""
        )
    params = payment_intent_params(
        payment_id=row.id,
        account_id=row.account_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        customer_id=row.stripe_customer_id or "",
        payment_method=row.stripe_payment_method_id,
        method_kind=row.method_kind,
        off_session=row.scheduled_for is not None,
        mandate=mandate,
    )
    return Charge(
        row.id, row.account_id, decision, params, row.stripe_customer_id or None, row.billing_email, row.name
    )


def _with_customer(charge: Charge) -> Charge:
    return replace(charge, customer_id=ensure_customer(charge.account_id, charge.email, charge.name))


def _search_stripe(charge: Charge, now: datetime) -> IntentResult | Charge | FailedAtLastLook:
    """Past the search window, take the intent Stripe holds for the payment, or start a fresh attempt."""
    try:
        found = get_gateway().find_payment_intent(charge.payment_id)
    except StripeRefused as refused:
        return _refused(refused)
    if found is not None:
        return found
    return _start_fresh_attempt(charge, now)


def _call_stripe(charge: Charge) -> IntentResult:
    """Create the attempt's intent, or replay it: the key is the attempt's own."""
    params = {**charge.params, "customer": charge.customer_id}
    key = charge.attempt.idempotency_key
    try:
        return get_gateway().create_payment_intent(params=params, idempotency_key=key)
    except StripeRefused as refused:
        return _refused(refused)


def _refused(refused: StripeRefused) -> IntentResult:
    """A refusal is Stripe's answer too: the payment needs another method."""
    return IntentResult(
        id=None, status="requires_payment_method", error_code=refused.code, error_message=refused.message
    )


def _start_fresh_attempt(charge: Charge, now: datetime) -> Charge | FailedAtLastLook:
    """Stripe has no intent for this payment and our old key may be pruned: record a new attempt first.

    Nothing has moved yet, so a fresh attempt gets the last look a first one gets.
    """
    with transaction() as session:
        refusal = _last_look(session, payment_rows.lock_payment_to_charge(session, charge.payment_id))
        if refusal is not None:
            return _fail_at_last_look(session, charge.payment_id, refusal, now)
        return replace(charge, attempt=_record_fresh_attempt(session, charge.payment_id, now))


def _record_fresh_attempt(session, payment_id: int, now: datetime) -> Attempt:
    payment = payment_rows.lock_payment(session, payment_id)
    payment.attempt += 1
    payment.stripe_idempotency_key = stripe_key(payment.id, payment.attempt)
    payment.first_attempt_at = now
    record_event(
        session,
        payment,
        source=SOURCE,
        now=now,
        detail={
            "attempt": payment.attempt,
            "stripe_idempotency_key": payment.stripe_idempotency_key,
            "reason": "no PaymentIntent found at Stripe after the search window",
        },
    )
    return Attempt(Step.CREATE, payment.attempt, payment.stripe_idempotency_key)


def _record_outcome(payment_id: int, result: IntentResult, now: datetime) -> Answered:
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
                result.error_code, result.decline_code, result.error_message
            )
        detail = {"payment_intent": result.id, "intent_status": result.status, "attempt": payment.attempt}
        apply_transition(session, payment, target, source=SOURCE, now=now, detail=detail, values=values)
        return Answered(target)


# A pending payment's message normally runs within a second; a minute means the send was lost.
PENDING_GRACE = timedelta(seconds=60)
# Longer than execute_payment's own retry backoff (max 60 s), so the sweeper only catches given-up work.
SUBMITTING_GRACE = timedelta(minutes=3)
# Bounds one pass; the next pass takes the rest.
SWEEP_LIMIT = 500


def sweep_payments(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send execute_payment for payments stuck pending or submitting; return counts by status."""
    with transaction() as session:
        rows = payment_rows.list_due_stuck_payments(session, now, PENDING_GRACE, SUBMITTING_GRACE, limit)
    counts = {"pending": 0, "submitting": 0}
    messages.send_now("execute_payment", [(payment_id,) for payment_id, _ in rows])
    for _, status in rows:
        counts[status] += 1
    return counts


def dispatch_due_payments(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Move scheduled payments due today (at the seller) to pending and send them, after commit."""
    with transaction() as session:
        due = payment_rows.lock_due_scheduled_payments(session, now, limit)
        for payment in due:
            apply_transition(session, payment, PaymentStatus.PENDING, source="clock", now=now)
        messages.send_after_commit(session, "execute_payment", [(payment.id,) for payment in due])
    return {"dispatched": len(due)}
