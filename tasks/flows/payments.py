"""Queue `payments` logic: execute_payment's phases (record the attempt, make sure of the customer, call
Stripe, record the outcome), and the sweepers that find payments left behind.

State is committed before every Stripe call, so a crash anywhere leaves a row a retry can finish.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from db.queries import RowMissing
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
from tasks.domain.events import contradicts, intent_event_applies
from tasks.domain.intents import failure_fields, target_for_intent
from tasks.domain.last_look import Review
from tasks.domain.states import PaymentStatus
from tasks.flows import last_look, messages
from tasks.flows.customers import ensure_customer
from tasks.flows.ledger import TransitionBatch, apply_transition, record_event, update_payment
from tasks.gateways.stripe import IntentResult, Mandate, get_gateway, payment_intent_params

SOURCE = "worker:execute_payment"
_log = logging.getLogger(__name__)


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
    """Decide the attempt and commit its key before any Stripe call."""
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        if payment is None:
            raise RowMissing(f"payment {payment_id} does not exist")
        decision = decide_attempt(payment.id, payment.status, payment.attempt, payment.first_attempt_at, now)
        if decision.step == Step.NOTHING:
            return NothingToDo(PaymentStatus(payment.status))
        if payment.status == PaymentStatus.PENDING:
            decided = _last_look(session, payment, now)
            if decided.refusal is not None:
                return _fail_at_last_look(session, payment, decided, now)
            if payment.amount_minor == 0:
                return _paid_from_credit(session, payment, now)
            key = {"attempt": decision.attempt, "stripe_idempotency_key": decision.idempotency_key}
            times = {"first_attempt_at": payment.first_attempt_at or now, "last_attempt_at": now}
            apply_transition(
                session,
                payment,
                PaymentStatus.SUBMITTING,
                source=SOURCE,
                now=now,
                detail=key,
                values={**key, **times},
            )
        else:
            _retry_attempt(session, payment, now)
        return _charge(payment, decision)


def lock_in_order(session, payment_id: int):
    """The payment locked the one way every writer locks: its account (KEY SHARE), then the payment; the
    last look locks its invoices after. A money request locks the account FOR UPDATE and then the
    invoices, so a last look that fails (and marks the account stale) can never hold an invoice the
    request waits for while it waits for the account."""
    return payment_rows.lock_payment_in_order(session, payment_id)


def _fail_at_last_look(session, payment, decided: Review, now: datetime) -> FailedAtLastLook:
    """Nothing has reached Stripe yet: the payment fails and its invoices are freed."""
    refusal = decided.refusal
    values = {"failure_code": refusal.code, "failure_message": refusal.message}
    if decided.changes:
        values["last_look_changes"] = list(decided.changes)
    detail = {"last_look": refusal.code, "changes": list(decided.changes)}
    apply_transition(
        session, payment, PaymentStatus.FAILED, source=SOURCE, now=now, detail=detail, values=values
    )
    return FailedAtLastLook(refusal.code)


def _paid_from_credit(session, payment, now: datetime) -> Answered:
    """Credit covers all that is owed now: nothing is charged at Stripe and the payment succeeds."""
    detail = {"paid_from_credit": payment.credit_used_minor, "stripe": "nothing to charge"}
    apply_transition(session, payment, PaymentStatus.SUCCEEDED, source=SOURCE, now=now, detail=detail)
    return Answered(PaymentStatus.SUCCEEDED)


def _retry_attempt(session, payment, now: datetime) -> None:
    """A submitting payment may already be charged at Stripe: it is replayed with its key, never failed here.

    What changed since the first call (an invoice voided, the method removed) is flagged for ops instead.
    """
    decided = None if payment.needs_review else last_look.read(session, payment)
    if decided is None or (decided.refusal is None and not decided.changed):
        update_payment(session, payment, {"last_attempt_at": now}, now=now)
        return
    code, message = (
        (decided.refusal.code, decided.refusal.message)
        if decided.refusal
        else ("invoices_changed", " ".join(decided.changes))
    )
    detail = {"needs_review": code, "message": message, "attempt": payment.attempt}
    values = {"needs_review": True, "last_attempt_at": now}
    record_event(session, payment, source=SOURCE, now=now, detail=detail, values=values)


def _last_look(session, payment, now: datetime) -> Review:
    """Re-read the invoices and the method under lock right before money first moves; what changed from what
    the customer approved is written (new amounts, credit, timeline) unless the payment is refused."""
    decided = last_look.read(session, payment)
    if decided.refusal is None and decided.changed:
        last_look.write(session, payment, decided, now)
    return decided


def _charge(payment, decision: Attempt) -> Charge:
    method, account = payment.method, payment.account
    mandate = None
    if method.mandate_accepted_at is not None:
        accepted_at = int(method.mandate_accepted_at.timestamp())
        mandate = Mandate(accepted_at, method.mandate_ip or "", method.mandate_user_agent or "")
    params = payment_intent_params(
        payment_id=payment.id,
        account_id=payment.account_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        customer_id=account.stripe_customer_id or "",
        payment_method=method.stripe_payment_method_id,
        method_kind=method.kind,
        off_session=payment.scheduled_for is not None,
        mandate=mandate,
        save_method=payment.saves_method,
    )
    customer_id = account.stripe_customer_id or None
    return Charge(
        payment.id, payment.account_id, decision, params, customer_id, account.billing_email, account.name
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
        payment = lock_in_order(session, charge.payment_id)
        decided = _last_look(session, payment, now)
        if decided.refusal is not None:
            return _fail_at_last_look(session, payment, decided, now)
        attempt = Attempt(Step.CREATE, payment.attempt + 1, stripe_key(payment.id, payment.attempt + 1))
        values = {
            "attempt": attempt.attempt,
            "stripe_idempotency_key": attempt.idempotency_key,
            "first_attempt_at": now,
        }
        detail = {
            "attempt": attempt.attempt,
            "stripe_idempotency_key": attempt.idempotency_key,
            "reason": "no PaymentIntent found at Stripe after the search window",
        }
        record_event(session, payment, source=SOURCE, now=now, detail=detail, values=values)
        # Built again: the last look may have changed what is charged.
        return replace(_charge(payment, attempt), customer_id=charge.customer_id)


def _record_outcome(payment_id: int, result: IntentResult, now: datetime) -> Answered:
    """Apply Stripe's answer while the payment is still in flight; one a webhook moved on keeps its state.

    An answer that says Stripe took money our row says was not taken is flagged for ops, never dropped.
    """
    target = target_for_intent(result.status, result.error_code, result.decline_code)
    if target is None:
        raise UnexpectedIntentState(f"payment {payment_id}: PaymentIntent {result.id} is {result.status}")
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        values = {}
        if result.id and payment.stripe_payment_intent_id is None:
            values["stripe_payment_intent_id"] = result.id
        if result.charge_id and payment.stripe_charge_id is None:
            values["stripe_charge_id"] = result.charge_id
        detail = {"payment_intent": result.id, "intent_status": result.status, "attempt": payment.attempt}
        if not intent_event_applies(payment.status):
            if contradicts(payment.status, target):
                said = (
                    f"Stripe reports {target} for PaymentIntent {result.id}; the payment is {payment.status}"
                )
                _log.error("payment %s: %s", payment.id, said)
                values["needs_review"], detail["contradiction"] = True, said
            detail["ignored"] = "payment already past this answer"
            record_event(session, payment, source=SOURCE, now=now, detail=detail, values=values)
            return Answered(PaymentStatus(payment.status))
        if target == PaymentStatus.FAILED and payment.status == PaymentStatus.SUBMITTING:
            values["failure_code"], values["failure_message"] = failure_fields(
                result.error_code, result.decline_code, result.error_message
            )
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


# Due payments moved to pending per transaction: one TransitionBatch, one send of their messages after commit.
DISPATCH_PAGE = 500
# A dispatch pass pages on for this long, then yields (the actor re-sends itself while more is due): a burst
# of due payments (10,000 at a seller's midnight) is all queued within seconds, not at a page per minute,
# and one pass stays far inside the maintenance time limit (2 min) with its retries, so it never runs into
# the next tick's pass, which would take other rows anyway (SKIP LOCKED).
DISPATCH_PASS_SECONDS = 20.0


def dispatch_due_payments(
    now: datetime, page: int | None = None, pass_seconds: float | None = None
) -> dict[str, int | bool]:
    """Move scheduled payments due today (at the seller) to pending, a page per transaction, and send each
    page's messages after its commit; page on until none is left or pass_seconds are spent.

    Returns the payments dispatched, the pages run, and whether more may be due (time ran out on a full page).
    """
    page = page or DISPATCH_PAGE
    deadline = time.monotonic() + (DISPATCH_PASS_SECONDS if pass_seconds is None else pass_seconds)
    dispatched = pages = 0
    while True:
        with transaction() as session:
            due = payment_rows.lock_due_scheduled_payments(session, now, page)
            batch = TransitionBatch(now)
            for payment in due:
                batch.add(session, payment, PaymentStatus.PENDING, source="clock")
            batch.flush(session)
            messages.send_after_commit(session, "execute_payment", [(payment.id,) for payment in due])
        dispatched, pages = dispatched + len(due), pages + 1
        full = len(due) == page
        if not full or time.monotonic() >= deadline:
            return {"dispatched": dispatched, "pages": pages, "more": full}
