"""The sweeper re-sends lost event messages; the reconciler recovers undelivered events and stuck intents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import Payment, StripeEvent
from tasks.domain.errors import StripeRefused, StripeUnavailable
from tasks.flows.reconcile import reconcile_with_stripe, sweep_received_events
from tasks.gateways.stripe import IntentResult
from tests.tasks.handlers.support import make_event, now, snapshot, timeline, world

MANDATE = {
    "customer_acceptance": {"type": "online", "online": {"ip_address": "203.0.113.9", "user_agent": "t"}}
}


def stored(db, event, received_ago_s: int) -> str:
    from db.queries.inbox import insert_event as store_event

    with db() as session, session.begin():
        store_event(session, event, now() - timedelta(seconds=received_ago_s))
    return event["id"]


def queued_ids(broker) -> list[str]:
    import json

    raw = broker.client.hvals(f"{broker.namespace}:webhooks.msgs")
    return sorted(json.loads(m)["args"][0] for m in raw)


def test_sweeper_resends_only_events_still_received_past_the_grace_period(db, broker):
    old = stored(db, make_event("payment_intent.succeeded", {"id": "pi_1"}), 600)
    done = stored(db, make_event("payment_intent.succeeded", {"id": "pi_2"}), 600)
    stored(db, make_event("payment_intent.succeeded", {"id": "pi_3"}), 5)
    with db() as session, session.begin():
        session.get(StripeEvent, done).status = "processed"
    assert sweep_received_events(now(), grace_seconds=120) == {"resent": 1}
    assert queued_ids(broker) == [old]


def test_sweeper_respects_its_limit(db, broker):
    for _ in range(3):
        stored(db, make_event("customer.created", {"id": "cus_1"}), 600)
    assert sweep_received_events(now(), grace_seconds=120, limit=2) == {"resent": 2}


def card_payment(db, gateway, pm="pm_card_visa") -> dict:
    ids = world(db, intent_id=None)
    gateway.create_payment_intent(
        params={
            "amount": 10_000,
            "currency": "usd",
            "payment_method": pm,
            "confirm": True,
            "metadata": {"payment_id": str(ids["payment"]), "account_id": str(ids["account"])},
            "payment_method_types": ["card"],
        },
        idempotency_key=f"reconcile-{ids['payment']}",
    )
    return ids


def test_reconciler_recovers_events_stripe_never_delivered(db, emulator, gateway):
    emulator.add_webhook_endpoint("http://127.0.0.1:9/stripe/webhooks", secrets=["whsec_test_primary"])
    emulator.webhook_retry_delays = []
    ids = card_payment(db, gateway)
    assert emulator.wait_for_deliveries(timeout=10)
    counts = reconcile_with_stripe(now(), gateway)
    assert counts["events_recovered"] >= 1 and counts["events_listed"] >= counts["events_recovered"]
    state = snapshot(db, ids["payment"])
    assert state["status"] == "succeeded" and [a[1] for a in state["allocations"]] == ["applied", "applied"]
    assert reconcile_with_stripe(now(), gateway)["events_recovered"] == 0
    with db() as session:
        statuses = set(session.scalars(select(StripeEvent.status)))
        assert statuses <= {"processed", "ignored"}


def test_reconciler_settles_an_ach_payment_stuck_in_processing(db, emulator, gateway):
    ids = world(db, kind="us_bank_account", status="processing", intent_id=None)
    intent = gateway.create_payment_intent(
        params={
            "amount": 10_000,
            "currency": "usd",
            "payment_method": "pm_usBankAccount_success",
            "confirm": True,
            "mandate_data": MANDATE,
            "metadata": {"payment_id": str(ids["payment"])},
            "payment_method_types": ["us_bank_account"],
        },
        idempotency_key=f"reconcile-{ids['payment']}",
    )
    with db() as session, session.begin():
        payment = session.get(Payment, ids["payment"])
        payment.stripe_payment_intent_id = intent.id
        payment.updated_at = now() - timedelta(days=6)
    assert reconcile_with_stripe(now(), gateway)["payments_moved"] == 0  # Stripe still says processing
    with db() as session, session.begin():
        session.get(Payment, ids["payment"]).updated_at = now() - timedelta(days=6)
    emulator.advance(5 * 86_400)
    counts = reconcile_with_stripe(now(), gateway)
    assert (counts["payments_checked"], counts["payments_moved"]) == (1, 1)
    state = snapshot(db, ids["payment"])
    assert state["status"] == "succeeded" and state["emails"] == [f"ach_settled:payment:{ids['payment']}"]
    assert timeline(db, ids["payment"]) == [("processing", "succeeded", True)]


def test_reconciler_fails_a_declined_payment_left_submitting(db, emulator, gateway):
    ids = card_payment(db, gateway, "pm_card_visa_chargeDeclined")
    intent_id = emulator.payment_intents()[-1]["id"]
    with db() as session, session.begin():
        payment = session.get(Payment, ids["payment"])
        payment.stripe_payment_intent_id = intent_id
        payment.updated_at = now() - timedelta(hours=1)
    assert reconcile_with_stripe(now(), gateway)["payments_moved"] == 1
    state = snapshot(db, ids["payment"])
    assert (state["status"], state["failure_code"]) == ("failed", "card_declined")
    assert [a[1] for a in state["allocations"]] == ["released", "released"]


class WaitingStripe:
    """Stripe as the reconciler sees it: no undelivered events; every intent still waits on its customer
    except those named as succeeded."""

    def __init__(self, succeeded: tuple[str, ...] = (), refused: tuple[str, ...] = ()) -> None:
        self.succeeded, self.refused = succeeded, refused
        self.retrieved: list[str] = []

    def list_events(self, params):
        return []

    def retrieve_payment_intent(self, intent_id):
        self.retrieved.append(intent_id)
        if intent_id in self.refused:
            raise StripeRefused("resource_missing", f"No such payment_intent: '{intent_id}'", 404)
        if intent_id in self.succeeded:
            return IntentResult(
                id=intent_id, status="succeeded", amount=10_000, currency="usd", charge_id=f"ch_{intent_id}"
            )
        return IntentResult(
            id=intent_id, status="requires_payment_method", error_code="authentication_required"
        )


def waiting_payment(db, intent_id: str, updated_ago: timedelta) -> int:
    ids = world(db, status="requires_action", intent_id=intent_id)
    with db() as session, session.begin():
        session.get(Payment, ids["payment"]).updated_at = now() - updated_ago
    return ids["payment"]


def test_reconciler_reaches_every_stuck_payment_not_only_the_oldest_unmovable_ones(db):
    waiting = [waiting_payment(db, f"pi_wait{n}", timedelta(days=3 - n)) for n in range(2)]
    done = waiting_payment(db, "pi_done", timedelta(days=1))
    stripe = WaitingStripe(succeeded=("pi_done",))
    for _ in range(2):
        reconcile_with_stripe(now(), stripe, limit=2)
    assert stripe.retrieved == ["pi_wait0", "pi_wait1", "pi_done", "pi_wait0"]
    assert snapshot(db, done)["status"] == "succeeded"
    assert [snapshot(db, p)["status"] for p in waiting] == ["requires_action", "requires_action"]


def test_reconciler_marks_a_payment_it_could_not_move_without_touching_updated_at(db):
    payment_id = waiting_payment(db, "pi_wait", timedelta(days=1))
    with db() as session:
        updated_at = session.get(Payment, payment_id).updated_at
    at = now()
    counts = reconcile_with_stripe(at, WaitingStripe())
    assert (counts["payments_checked"], counts["payments_moved"]) == (1, 0)
    with db() as session:
        payment = session.get(Payment, payment_id)
        assert (payment.status, payment.reconciled_at, payment.updated_at) == (
            "requires_action",
            at,
            updated_at,
        )


def test_a_payment_stripe_will_not_return_does_not_stop_the_run_and_goes_to_the_back_of_the_line(db):
    missing = waiting_payment(db, "pi_missing", timedelta(days=3))
    done = waiting_payment(db, "pi_done", timedelta(days=2))
    stripe = WaitingStripe(succeeded=("pi_done",), refused=("pi_missing",))
    at = now()
    counts = reconcile_with_stripe(at, stripe)
    assert (counts["payments_checked"], counts["payments_moved"], counts["payments_failed"]) == (2, 1, 1)
    assert snapshot(db, done)["status"] == "succeeded"
    with db() as session:
        assert session.get(Payment, missing).reconciled_at == at  # asked last next time


def test_stripe_unavailable_stops_the_run_for_a_retry(db):
    waiting_payment(db, "pi_wait", timedelta(days=1))

    class Down(WaitingStripe):
        def retrieve_payment_intent(self, intent_id):
            raise StripeUnavailable("APIConnectionError: connection refused")

    with pytest.raises(StripeUnavailable):
        reconcile_with_stripe(now(), Down())


class SlotsThatRateLimit:
    """The shared limiter as the gateway sees it: it counts slots, and the chosen one makes Stripe answer
    the events listing with 429 `times` times."""

    def __init__(self, emulator, slot: int, times: int) -> None:
        self.emulator, self.slot, self.times = emulator, slot, times
        self.slots = 0

    def acquire(self, endpoint: str) -> float:
        self.slots += 1
        if self.slots == self.slot:
            self.emulator.inject_fault("429", count=self.times, path="/v1/events", method="GET")
        return 0.0


def paged_gateway(emulator, limiter):
    from tasks.gateways.stripe import StripeGateway
    from tasks.gateways.stripe_transport import build_client

    seeding = StripeGateway(build_client("sk_test_remit_tests", emulator.url, 5.0, 0))
    for n in range(3):  # three customer.created events: three pages of one
        seeding.create_customer(
            account_id=n, email=f"c{n}@example.com", name=f"C{n}", idempotency_key=f"c-{n}"
        )
    return StripeGateway(build_client("sk_test_remit_tests", emulator.url, 5.0, 0), limiter)


def test_every_page_of_events_takes_a_limiter_slot_and_a_429_on_a_later_page_is_retried_in_place(emulator):
    limiter = SlotsThatRateLimit(emulator, slot=2, times=1)
    gateway = paged_gateway(emulator, limiter)
    listed = gateway.list_events({"limit": 1})
    assert [e["id"] for e in listed] == [e["id"] for e in reversed(emulator.events())]
    assert limiter.slots == 4  # three pages, the second asked twice


def test_a_later_page_still_rate_limited_is_stripe_unavailable_not_a_raw_sdk_error(emulator):
    from tasks.gateways.stripe_transport import RATE_LIMITED_RETRIES

    gateway = paged_gateway(emulator, SlotsThatRateLimit(emulator, slot=2, times=RATE_LIMITED_RETRIES + 1))
    with pytest.raises(StripeUnavailable, match="RateLimitError"):
        gateway.list_events({"limit": 1})
