"""Every message Remit's code sends, built from an actor's name, sent together once its transaction commits.

Flows name the actor instead of importing its module: the queue modules import the flows, never
the other way round, so no flow needs a function-level import to send a message.
"""

from __future__ import annotations

from collections.abc import Iterable

import dramatiq
from sqlalchemy.orm import Session

from db.session import on_commit
from workers.broker import send_all

# Actor name -> its queue, as the actor modules declare them (tests/tasks/flows/test_messages.py holds
# this table against the broker's registered actors). The names are the wire contract: never rename one.
ACTOR_QUEUES: dict[str, str] = {
    "execute_payment": "payments",
    "process_stripe_event": "webhooks",
    "sync_payment_method": "ach",
    "verify_bank_account": "ach",
    "detach_payment_method": "ach",
    "update_payment_method": "ach",
    "send_email": "emails",
    "recompute_balance": "balances",
    "deliver_ledger_events": "feed",
    # Sent by the clock (schedules/schedule.py); listed so the table is the whole wire contract.
    "sweep_payments": "maintenance",
    "dispatch_due_payments": "maintenance",
    "sweep_stale_balances": "maintenance",
    "recompute_all_balances": "maintenance",
    "sweep_stripe_events": "maintenance",
    "reconcile_stripe": "maintenance",
    "sweep_emails": "maintenance",
    "sweep_saved_methods": "maintenance",
    "mirror_dead_letters": "maintenance",
    "purge_personal_data": "maintenance",
    "expire_authentications": "maintenance",
    "sweep_ledger_feed": "maintenance",
}


def message(actor_name: str, *args: object) -> dramatiq.Message:
    """The message actor.message(*args) builds, without importing the actor's module."""
    return dramatiq.Message(
        queue_name=ACTOR_QUEUES[actor_name], actor_name=actor_name, args=args, kwargs={}, options={}
    )


def send_after_commit(session: Session, actor_name: str, calls: Iterable[tuple[object, ...]]) -> None:
    """Send actor_name once per argument tuple in calls after the transaction commits; none on rollback."""
    messages = [message(actor_name, *args) for args in calls]
    if messages:
        on_commit(session, lambda: send_all(messages))


def send_now(actor_name: str, calls: Iterable[tuple[object, ...]]) -> None:
    """Send at once (the caller's transaction has already committed, or wrote nothing the messages need)."""
    send_all([message(actor_name, *args) for args in calls])
