"""Shared helpers for webhook tests: signing, a receiver process, rows, emulator payments, polling."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from db.models import Allocation, Dispute, Email, Payment, PaymentEvent, Refund, StripeEvent
from tasks.domain.events import DEPLOYMENT_KEY
from tests import factories
from tests.conftest import TEST_WEBHOOK_SECRETS
from tests.helpers import wait_until  # noqa: F401  (re-exported for the webhook tests)

SECRET = TEST_WEBHOOK_SECRETS[0]
_ids = itertools.count(1)


def sign(payload: bytes, secrets: tuple[str, ...] = (SECRET,), timestamp: int | None = None) -> str:
    """A Stripe-Signature header, one v1 per secret, computed as Stripe documents it."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    parts = [f"t={t}"] + [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets]
    return ",".join(parts)


def make_event(
    event_type: str, obj: dict[str, Any], event_id: str | None = None, created: int | None = None, **extra
) -> dict[str, Any]:
    """A Stripe-shaped event around an object snapshot."""
    return {
        "id": event_id or f"evt_test_{next(_ids):06d}",
        "object": "event",
        "type": event_type,
        "created": created or int(time.time()),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "data": {"object": obj, **extra},
        "request": {"id": None, "idempotency_key": None},
    }


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


@contextmanager
def receiver() -> Iterator[str]:
    """The webhook receiver served by a granian process on a free port; yields its webhook URL."""
    from tests.receiver_server import receiver_process

    with receiver_process() as port:
        yield f"http://127.0.0.1:{port}/stripe/webhooks"


def now() -> datetime:
    return datetime.now(UTC)


def world(
    db,
    *,
    kind: str = "card",
    invoices: tuple[int, ...] = (6_000, 4_000),
    status: str = "submitting",
    intent_id: str | None = None,
    method_overrides: dict | None = None,
) -> dict[str, int]:
    """A seller, account, method, invoices and a payment reserving them; returns their ids."""
    with db() as session, session.begin():
        account = factories.account(session, stripe_customer_id=None)
        method = factories.method(session, account, kind=kind, **(method_overrides or {}))
        rows = [
            factories.invoice(session, account, total, issued_on=date(2026, 1 + i, 1))
            for i, total in enumerate(invoices)
        ]
        payment = factories.payment(
            session,
            account,
            method,
            amount_minor=sum(invoices),
            status=status,
            stripe_payment_intent_id=intent_id,
        )
        allocations = [factories.allocation(session, payment, row) for row in rows]
        return {
            "account": account.id,
            "method": method.id,
            "payment": payment.id,
            "invoices": [row.id for row in rows],
            "allocations": [a.id for a in allocations],
        }


def snapshot(db, payment_id: int) -> dict[str, Any]:
    """Everything a payment's events may change, without ids or timestamps."""
    with db() as session:
        payment = session.get(Payment, payment_id)
        allocations = session.execute(
            select(Allocation.invoice_id, Allocation.state, Allocation.amount_minor)
            .where(Allocation.payment_id == payment_id)
            .order_by(Allocation.invoice_id)
        )
        return {
            "status": payment.status,
            "refunded_minor": payment.refunded_minor,
            "needs_review": payment.needs_review,
            "failure_code": payment.failure_code,
            "charge": bool(payment.stripe_charge_id),
            "allocations": [tuple(r) for r in allocations],
            "emails": sorted(session.scalars(select(Email.dedupe_key).where(Email.payment_id == payment_id))),
            "refunds": sorted(
                (r.amount_minor, r.status)
                for r in session.scalars(select(Refund).where(Refund.payment_id == payment_id))
            ),
            "disputes": sorted(
                (d.status, d.reason)
                for d in session.scalars(select(Dispute).where(Dispute.payment_id == payment_id))
            ),
        }


def event_statuses(db) -> dict[str, int]:
    with db() as session:
        rows = session.execute(select(StripeEvent.status, func.count()).group_by(StripeEvent.status))
        return dict(rows.all())


def timeline(db, payment_id: int) -> list[tuple[str | None, str, bool]]:
    with db() as session:
        rows = session.execute(
            select(PaymentEvent.from_status, PaymentEvent.to_status, PaymentEvent.applied)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
        return [tuple(r) for r in rows]


def store_event(db, event: dict[str, Any]) -> str:
    """Put an event in the inbox the way the receiver would (without sending)."""
    from db.queries.inbox import insert_event as store

    with db() as session, session.begin():
        store(session, event, now())
    return event["id"]


def ours(db, payment_id: int) -> dict[str, Any]:
    """The fields a PaymentIntent this deployment made for the payment carries (tasks.gateways.stripe)."""
    with db() as session:
        payment = session.get(Payment, payment_id)
        metadata = {
            "payment_id": str(payment.id),
            "account_id": str(payment.account_id),
            DEPLOYMENT_KEY: "remit",
        }
        return {
            "amount": payment.amount_minor,
            "currency": payment.currency,
            "customer": payment.account.stripe_customer_id,
            "metadata": metadata,
        }
