"""Seeded random sequences of requests, executions and webhooks, checked against the ledger's invariants."""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from db.models import (
    Account,
    Allocation,
    Credit,
    Email,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentMethod,
)
from tasks import api
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus
from tasks.domain.transitions import can_transition, email_for
from tasks.flows import payments as execution
from tasks.flows.balances import figures_for, recompute_balance
from tasks.flows.webhooks import process_event
from tasks.gateways.stripe import IntentResult, use_gateway
from tests import factories
from tests.tasks.handlers.support import make_event, store_event

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
# Fixed seeds keep the run deterministic; FUZZ_SEEDS=500 widens the search when hunting.
SEEDS = list(range(int(os.environ.get("FUZZ_SEEDS", "12"))))
P = PaymentStatus


class FakeGateway:
    """Stripe as a table: each payment's outcome is chosen by the test before execution."""

    def __init__(self) -> None:
        self.outcomes: dict[int, str] = {}

    def create_customer(self, *, account_id, email, name, idempotency_key) -> str:
        return f"cus_{account_id}"

    def create_payment_intent(self, *, params, idempotency_key) -> IntentResult:
        payment_id = int(params["metadata"]["payment_id"])
        status = self.outcomes.get(payment_id, "succeeded")
        if status == "requires_payment_method":
            return IntentResult(
                id=f"pi_{payment_id}",
                status=status,
                error_code="card_declined",
                decline_code="generic_decline",
                error_message="declined",
            )
        if status == "requires_action":
            return IntentResult(
                id=f"pi_{payment_id}",
                status="requires_payment_method",
                error_code="authentication_required",
                error_message="auth",
            )
        return IntentResult(
            id=f"pi_{payment_id}",
            status=status,
            amount=params["amount"],
            currency="usd",
            charge_id=f"ch_{payment_id}" if status == "succeeded" else None,
        )

    def find_payment_intent(self, payment_id):
        return None


@pytest.fixture()
def fake_gateway(broker):
    gateway = FakeGateway()
    use_gateway(gateway)
    yield gateway
    use_gateway(None)


def build_world(db, rng: random.Random) -> dict:
    with db() as session:
        seller = factories.seller(session, timezone="UTC")
        account = factories.account(session, seller, stripe_customer_id="cus_x")
        card = factories.method(session, account).id
        ach = factories.method(session, account, kind="us_bank_account").id
        invoices = []
        for n in range(5):
            discount = rng.choice([0, 0, 100])
            invoices.append(
                factories.invoice(
                    session,
                    account,
                    total_minor=rng.choice([1_000, 2_500, 4_000, 7_300]),
                    due_on=date(2026, 11, 1) + timedelta(days=15 * n),
                    discount_minor=discount,
                    **({"discount_until": date(2026, 12, 1)} if discount else {}),
                ).id
            )
        session.commit()
        return {"account": account.id, "card": card, "ach": ach, "invoices": invoices}


def table_snapshot(db) -> dict:
    with db() as session:
        return {
            model.__tablename__: sorted(
                tuple(sorted((k, repr(v)) for k, v in vars(row).items() if not k.startswith("_")))
                for row in session.scalars(select(model))
            )
            for model in (Payment, Allocation, Credit, Email, PaymentEvent)
        }


def intent(payment_id: int, status: str, error: dict | None = None) -> dict:
    return {
        "id": f"pi_{payment_id}",
        "object": "payment_intent",
        "status": status,
        "amount": 0,
        "latest_charge": f"ch_{payment_id}",
        "metadata": {"payment_id": str(payment_id)},
        "last_payment_error": error,
    }


def charge(payment_id: int, amount: int, refunded: int) -> dict:
    return {
        "id": f"ch_{payment_id}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": f"pi_{payment_id}",
        "metadata": {"payment_id": str(payment_id)},
        "status": "succeeded",
        "refunded": refunded == amount,
    }


def dispute(payment_id: int, amount: int, status: str) -> dict:
    return {
        "id": f"dp_{payment_id}",
        "object": "dispute",
        "amount": amount,
        "currency": "usd",
        "charge": f"ch_{payment_id}",
        "payment_intent": f"pi_{payment_id}",
        "reason": "fraudulent",
        "status": status,
    }


def events_for(rng: random.Random, payment: Payment) -> list[dict]:
    """A plausible story Stripe could tell about one payment, then shuffled with duplicates."""
    pid, amount = payment.id, payment.amount_minor
    story = rng.choice(
        ["success", "fail", "ach_success", "ach_fail", "action", "refund", "dispute", "cancel"]
    )
    events = []
    if story in ("ach_success", "ach_fail"):
        events.append(make_event("payment_intent.processing", intent(pid, "processing")))
    if story == "action":
        events.append(make_event("payment_intent.requires_action", intent(pid, "requires_action")))
        story = rng.choice(["success", "fail", "cancel"])
    if story in ("fail", "ach_fail"):
        events.append(
            make_event(
                "payment_intent.payment_failed",
                intent(
                    pid,
                    "requires_payment_method",
                    {"code": "card_declined", "decline_code": "generic_decline"},
                ),
            )
        )
    elif story == "cancel":
        events.append(make_event("payment_intent.canceled", intent(pid, "canceled")))
    else:
        events.append(make_event("payment_intent.succeeded", intent(pid, "succeeded")))
    if story == "refund" or (story == "success" and rng.random() < 0.3):
        partial = rng.randint(1, amount)
        events.append(make_event("charge.refunded", charge(pid, amount, partial)))
        if rng.random() < 0.5:
            events.append(make_event("charge.refunded", charge(pid, amount, amount)))
    if story == "dispute":
        events.append(make_event("charge.dispute.created", dispute(pid, amount, "needs_response")))
        if rng.random() < 0.5:
            events.append(
                make_event("charge.dispute.closed", dispute(pid, amount, rng.choice(["won", "lost"])))
            )
    events += [dict(e) for e in rng.sample(events, k=rng.randint(0, len(events)))]
    rng.shuffle(events)
    return events


def deliver(db, events: list[dict], batched: bool) -> None:
    for event in events:
        store_event(db, event)
    for event in events:
        process_event(event["id"], NOW, batch_size=100 if batched else 1)


def check_invariants(db, world: dict) -> None:
    with db() as session:
        invoices = {i.id: i for i in session.scalars(select(Invoice))}
        allocations = list(session.scalars(select(Allocation)))
        for invoice_id, invoice in invoices.items():
            active = [
                a for a in allocations if a.invoice_id == invoice_id and a.state in ("reserved", "applied")
            ]
            covered = sum(a.amount_minor + a.discount_minor for a in active)
            assert covered <= invoice.total_minor, (
                f"invoice {invoice_id} covered {covered} > {invoice.total_minor}"
            )
            assert sum(1 for a in active if a.state == "reserved") <= 1
        for payment in session.scalars(select(Payment)):
            allocated = sum(
                a.amount_minor
                for a in allocations
                if a.payment_id == payment.id and a.state in ("reserved", "applied")
            )
            credit = session.scalar(
                select(func.coalesce(func.sum(Credit.amount_minor), 0)).where(
                    Credit.payment_id == payment.id, Credit.state.in_(("pending", "available", "applied"))
                )
            )
            if payment.status in (P.FAILED, P.CANCELED, P.DISPUTED, P.REFUNDED):
                expected = 0
            else:
                expected = payment.amount_minor - payment.refunded_minor
            assert allocated + credit == expected, (
                f"payment {payment.id} {payment.status}: "
                f"allocations {allocated} + credit {credit} != {expected}"
            )
            steps = session.execute(
                select(PaymentEvent.from_status, PaymentEvent.to_status)
                .where(PaymentEvent.payment_id == payment.id, PaymentEvent.applied.is_(True))
                .order_by(PaymentEvent.id)
            ).all()
            method = session.get(PaymentMethod, payment.payment_method_id)
            owed = set()
            last = None
            for source, target in steps:
                if source is None or source == target:
                    last = target if source is None else last
                    continue
                assert can_transition(P(source), P(target)), f"payment {payment.id}: {source} -> {target}"
                assert last is None or source == last, (
                    f"payment {payment.id}: timeline jumps {last} -> {source}"
                )
                last = target
                kind = email_for(method.kind, payment.kind, P(source), P(target))
                if kind is not None:
                    owed.add(str(kind))
            if steps and steps[0][0] is None and steps[0][1] == P.SCHEDULED:
                owed.add("scheduled_confirmed")
            if payment.refunded_minor:  # a refund reported after a dispute still owes its email
                owed.add("refund_issued")
            assert last is None or last == payment.status, (
                f"payment {payment.id}: ends {last}, stored {payment.status}"
            )
            kinds = set(session.scalars(select(Email.kind).where(Email.payment_id == payment.id)))
            assert kinds == owed, f"payment {payment.id} {payment.status}: emails {kinds} != owed {owed}"
        keys = session.scalars(select(Email.dedupe_key)).all()
        assert len(keys) == len(set(keys))
    with db() as session, session.begin():
        session.get(Account, world["account"]).balance_stale_since = NOW
    recompute_balance(world["account"], NOW)
    with db() as session:
        account = session.get(Account, world["account"])
        fresh = figures_for(session, account, NOW)
        for name, value in vars(fresh).items():
            assert getattr(account, name) == value, (
                f"account {name}: stored {getattr(account, name)} != {value}"
            )


def run_seed(db, gateway: FakeGateway, seed: int) -> None:
    rng = random.Random(seed)
    world = build_world(db, rng)
    keys: dict[str, tuple] = {}

    def call(fn, *args, **kwargs):
        before = table_snapshot(db)
        try:
            return fn(*args, **kwargs)
        except RemitError:
            assert table_snapshot(db) == before, f"refused {fn.__name__} changed rows"
            return None

    for step in range(rng.randint(8, 16)):
        action = rng.choice(
            [
                "invoices",
                "invoices",
                "amount",
                "deposit",
                "schedule",
                "cancel",
                "execute",
                "execute",
                "webhooks",
                "webhooks",
                "webhooks",
                "replay",
            ]
        )
        method = world[rng.choice(["card", "card", "ach"])]
        key = f"k{seed}-{step}"
        if action == "invoices":
            chosen = rng.sample(world["invoices"], rng.randint(1, 5))
            short = rng.random() < 0.3
            amount = rng.randint(1, 3_000) if short else None
            args = (world["account"], chosen, method, key)
            kwargs = {"amount": amount, "short_reason": "Damaged goods" if short else None, "now": NOW}
            call(api.pay_invoices, *args, **kwargs)
            keys[key] = (api.pay_invoices, args, kwargs)
        elif action == "amount":
            args = (world["account"], rng.randint(1, 12_000), method, key)
            call(api.pay_amount, *args, now=NOW)
            keys[key] = (api.pay_amount, args, {"now": NOW})
        elif action == "deposit":
            args = (world["account"], rng.randint(1, 5_000), method, key)
            call(api.make_deposit, *args, now=NOW)
            keys[key] = (api.make_deposit, args, {"now": NOW})
        elif action == "schedule":
            chosen = rng.sample(world["invoices"], rng.randint(1, 3))
            kwargs = {"pay_on": date(2026, 12, 5), "now": NOW}
            args = (world["account"], chosen, method, key)
            call(api.pay_invoices, *args, **kwargs)
            keys[key] = (api.pay_invoices, args, kwargs)
        elif action == "replay" and keys:
            fn, args, kwargs = keys[rng.choice(sorted(keys))]
            call(fn, *args, **kwargs)
        else:
            with db() as session:
                payments = list(session.scalars(select(Payment).order_by(Payment.id)))
            if not payments:
                continue
            payment = rng.choice(payments)
            sent = [p for p in payments if p.attempt > 0]
            if action == "webhooks" and sent:
                chosen = rng.sample(sent, rng.randint(1, min(3, len(sent))))
                events = [e for p in chosen for e in events_for(rng, p)]
                rng.shuffle(events)
                deliver(db, events, batched=rng.random() < 0.6)
            elif action == "cancel":
                call(api.cancel_scheduled_payment, world["account"], payment.id, now=NOW)
            elif action in ("execute", "webhooks"):
                pending = [p for p in payments if p.status == P.PENDING]
                payment = rng.choice(pending) if pending else payment
                ach = payment.payment_method_id == world["ach"]
                gateway.outcomes[payment.id] = rng.choice(
                    ["processing"]
                    if ach
                    else ["succeeded", "succeeded", "requires_payment_method", "requires_action"]
                )
                if payment.status == P.SCHEDULED:
                    continue
                execution.execute_payment(payment.id, NOW)
        check_invariants(db, world)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_keep_the_ledger_invariants(db, fake_gateway, seed):
    run_seed(db, fake_gateway, seed)


FINAL_EMAILS = {
    "payment_confirmation",
    "ach_settled",
    "deposit_received",
    "refund_issued",
    "payment_reversed",
    "dispute_won",
}


def converge_world(db, rng: random.Random, kind: str, method_kind: str) -> int:
    """One payment already sent to Stripe (submitting), of the given kind, on a fresh account."""
    with db() as session:
        account = factories.account(
            session, factories.seller(session, timezone="UTC"), stripe_customer_id="cus_x"
        )
        method = factories.method(session, account, kind=method_kind)
        totals = [rng.choice([1_000, 2_500, 4_000]) for _ in range(3)] if kind != "deposit" else []
        extra = 0 if kind == "invoices" else rng.choice([0, 500, 3_000]) + (0 if totals else 1_000)
        payment = factories.payment(
            session,
            account,
            method,
            amount_minor=sum(totals) + extra,
            status="submitting",
            kind=kind,
            attempt=1,
        )
        payment.stripe_payment_intent_id = f"pi_{payment.id}"
        for n, total in enumerate(totals):
            invoice = factories.invoice(session, account, total, due_on=date(2026, 11, 1) + timedelta(days=n))
            factories.allocation(session, payment, invoice)
        if extra:
            session.add(
                Credit(
                    account_id=account.id,
                    payment_id=payment.id,
                    amount_minor=extra,
                    currency="usd",
                    state="pending",
                )
            )
        session.commit()
        return payment.id


def settled_state(db, payment_id: int) -> dict:
    with db() as session:
        payment = session.get(Payment, payment_id)
        allocations = session.execute(
            select(Allocation.invoice_id, Allocation.state, Allocation.amount_minor)
            .where(Allocation.payment_id == payment_id)
            .order_by(Allocation.invoice_id)
        )
        credits = session.execute(
            select(Credit.state, Credit.amount_minor).where(Credit.payment_id == payment_id)
        )
        return {
            "status": payment.status,
            "refunded_minor": payment.refunded_minor,
            "needs_review": payment.needs_review,
            "allocations": [(i, s, a if s == "applied" else None) for i, s, a in allocations],
            "credits": sorted((s, a if s != "reversed" else None) for s, a in credits),
            "emails": sorted(session.scalars(select(Email.dedupe_key).where(Email.payment_id == payment_id))),
        }


@pytest.mark.parametrize("seed", SEEDS)
def test_any_delivery_order_of_a_payments_events_ends_alike(db, fake_gateway, seed):
    from tests.conftest import truncate_all

    rng = random.Random(seed)
    kind, method_kind = rng.choice(["invoices", "amount", "deposit"]), rng.choice(["card", "us_bank_account"])
    world_seed = rng.random()
    payment_id = converge_world(db, random.Random(world_seed), kind, method_kind)
    with db() as session:
        # A canceled event before requires_action is refused while submitting (not in the transition
        # table); the reconciler settles that one, so it is left out here.
        events = [
            e
            for e in events_for(rng, session.get(Payment, payment_id))
            if e["type"] != "payment_intent.canceled"
        ]
    results = []
    for order in range(3):
        if order:
            truncate_all()
            assert converge_world(db, random.Random(world_seed), kind, method_kind) == payment_id
            events = [dict(e, id=f"{e['id']}_{order}") for e in events]
            rng.shuffle(events)
        deliver(db, events, batched=order == 2)
        results.append(settled_state(db, payment_id))
    for (
        r
    ) in results:  # emails of intermediate states (and of refunds a later total overtook) depend on the order
        r["emails"] = sorted({k.split(":")[0] for k in r["emails"]} & FINAL_EMAILS)
    assert results[1] == results[0], [e["type"] for e in events]
    assert results[2] == results[0], [e["type"] for e in events]
