"""Find anything by any id, the webhook inbox and email outbox with their actions, and the review queue."""

from __future__ import annotations

import dramatiq
from sqlalchemy import select

from db.models import AuditEntry, Email, Payment, PaymentEvent, StripeEvent
from tests import factories
from tests.workers.dashboard.support import ago, email, shop_rows, stripe_event
from tests.workers.dashboard.test_payments import _paid


def _waiting(broker, queue: str) -> list[dramatiq.Message]:
    key = f"{broker.namespace}:{queue}"
    return [
        dramatiq.Message.decode(broker.client.hget(f"{key}.msgs", i))
        for i in broker.client.lrange(key, 0, -1)
    ]


def test_one_box_finds_a_payment_by_any_stripe_id_its_id_key_or_invoice(client, db, clock):
    payment_id = _paid(db, clock)
    with db() as session:
        key = session.get(Payment, payment_id).idempotency_key
    for term in ("pi_123", "re_1", "dp_1", str(payment_id), key, "INV-B"):
        answer = client.get(f"/search?q={term}")
        assert (answer.status, answer.header("Location")) == (303, f"/payments/{payment_id}"), term


def test_the_box_finds_events_accounts_and_emails_and_says_when_nothing_matches(client, db, clock):
    _paid(db, clock)
    with db() as session:
        stripe_event(session, "evt_found", clock.now)
        session.commit()
    assert client.get("/search?q=evt_found").header("Location") == "/events/evt_found"
    assert client.get("/search?q=ACME-1").header("Location") == "/payments?account=ACME-1"
    with db() as session:
        factories.invoice(session, shop_rows(session, number="OPEN-1")[1], number="INV-UNPAID")
        session.commit()
    assert client.get("/search?q=INV-UNPAID").header("Location") == "/payments?account=OPEN-1"
    assert (
        client.get("/search?q=ap2@customer.test").header("Location")
        == "/emails?recipient=ap2%40customer.test"
    )
    missing = client.get("/search?q=pi_nobody")
    assert missing.status == 404 and "Nothing matches" in missing.body


def test_a_failed_event_shows_its_payload_and_payment_and_is_reprocessed_once(client, db, broker, clock):
    payment_id = _paid(db, clock)
    with db() as session:
        event = stripe_event(session, "evt_bad", ago(clock.now, minutes=5), status="failed")
        event.payload = {"id": "evt_bad", "data": {"object": {"id": "pi_123", "object": "payment_intent"}}}
        event.error, event.attempts = "KeyError: 'charges'\nTraceback ...", 5
        session.commit()

    listing = client.get("/events?status=failed").body
    assert "evt_bad" in listing and "KeyError: &#39;charges&#39;" in listing and "Traceback" not in listing
    page = client.get("/events/evt_bad")
    assert f'href="/payments/{payment_id}"' in page.body and "&#34;pi_123&#34;" in page.body

    answer = client.post("/events/evt_bad/reprocess", {"csrf": page.csrf})
    assert answer.header("Location") == "/events/evt_bad?done=done"
    with db() as session:
        assert session.get(StripeEvent, "evt_bad").status == "received"
        [entry] = session.scalars(select(AuditEntry)).all()
    assert (entry.action, entry.target) == ("reprocess_event", "stripe_events evt_bad")
    assert [(m.actor_name, m.args) for m in _waiting(broker, "webhooks")] == [
        ("process_stripe_event", ("evt_bad",))
    ]

    again = client.post("/events/evt_bad/reprocess", {"csrf": page.csrf})
    assert again.header("Location") == "/events/evt_bad?done=not_needed"
    assert len(_waiting(broker, "webhooks")) == 1
    assert client.get("/events/evt_nope").status == 404 and client.get("/events/nope").status == 404


def test_a_failed_email_is_previewed_rendered_and_resent_through_the_outbox(client, db, broker, clock):
    from tasks.flows.ledger import payment_email_context

    with db() as session:
        seller, account, method = shop_rows(session)
        payment = factories.payment(session, account, method, status="succeeded", stripe_charge_id="ch_9")
        context = payment_email_context(payment, account, method, seller, [])
        row = email(session, seller, "failed", ago(clock.now, minutes=3), 7, payment, attempts=5)
        row.context, row.last_error = context, "SMTPRecipientsRefused: 550 no such user\nmore detail"
        session.commit()
        email_id = row.id

    page = client.get(f"/emails/{email_id}")
    assert "Subject:" in page.body and "ch_9" in page.body  # the text part, rendered from its context
    assert "550 no such user" in page.body
    preview = client.get(f"/emails/{email_id}/preview")
    assert preview.status == 200 and "<html" in preview.body.lower()
    assert "img-src data:" in preview.header("Content-Security-Policy")

    answer = client.post(f"/emails/{email_id}/resend", {"csrf": page.csrf})
    assert answer.header("Location") == f"/emails/{email_id}?done=done"
    with db() as session:
        assert session.get(Email, email_id).status == "queued"
    assert [(m.actor_name, m.args) for m in _waiting(broker, "emails")] == [("send_email", (email_id,))]
    assert (
        "Nothing to do"
        in client.get(client.post(f"/emails/{email_id}/resend", {"csrf": page.csrf}).header("Location")).body
    )
    assert client.get("/emails/424242").status == 404


def test_a_flagged_payment_is_listed_for_review_and_resolved_with_a_note(client, db, clock):
    with db() as session:
        _, account, method = shop_rows(session, number="REV-1")
        flagged = factories.payment(
            session, account, method, status="succeeded", needs_review=True, stripe_payment_intent_id="pi_rev"
        )
        factories.payment(session, account, method, status="succeeded")
        session.commit()
        payment_id = flagged.id

    queue = client.get("/review").body
    assert f'href="/payments/{payment_id}"' in queue and "1 row" in queue
    assert "https://dashboard.stripe.com/test/payments/pi_rev" in queue
    page = client.get(f"/payments/{payment_id}")
    assert "Needs review." in page.body
    assert client.post(f"/payments/{payment_id}/resolve", {"csrf": page.csrf, "note": " "}).status == 400

    answer = client.post(
        f"/payments/{payment_id}/resolve", {"csrf": page.csrf, "note": "refund checked at Stripe"}
    )
    assert answer.header("Location") == f"/payments/{payment_id}?done=done"
    with db() as session:
        assert session.get(Payment, payment_id).needs_review is False
        line = session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == payment_id)).one()
        entry = session.scalars(select(AuditEntry)).one()
    assert (line.source, line.detail) == (
        "ops:admin",
        {"review_resolved_by": "admin", "note": "refund checked at Stripe"},
    )
    assert (entry.operator, entry.action, entry.detail) == (
        "admin",
        "resolve_review",
        {"note": "refund checked at Stripe"},
    )
    assert "Nothing needs review." in client.get("/review").body


def _won_dispute(db, *, reversal: bool) -> int:
    """A payment whose chargeback reversed its one allocation, the dispute since won, flagged for review."""
    from db.models import Dispute

    with db() as session:
        _, account, method = shop_rows(session)
        invoice = factories.invoice(session, account, 10_000)
        payment = factories.payment(
            session,
            account,
            method,
            status="disputed",
            needs_review=True,
            refunded_minor=0 if reversal else 500,
        )
        allocation = factories.allocation(session, payment, invoice, state="reversed")
        session.add(
            Dispute(
                payment_id=payment.id,
                stripe_dispute_id="dp_won",
                amount_minor=10_000,
                currency="usd",
                status="won",
                reversal={"allocations": [allocation.id], "credits": []} if reversal else None,
            )
        )
        session.commit()
        return payment.id


def test_re_applying_a_won_dispute_goes_through_the_disputes_flow_and_is_audited(client, db):
    from db.models import Allocation

    payment_id = _won_dispute(db, reversal=True)
    page = client.get(f"/payments/{payment_id}")
    assert "Re-apply the won dispute" in page.body
    answer = client.post(f"/payments/{payment_id}/reinstate", {"csrf": page.csrf})
    assert answer.header("Location") == f"/payments/{payment_id}?done=done"
    with db() as session:
        payment = session.get(Payment, payment_id)
        assert (payment.status, payment.needs_review) == ("succeeded", False)
        assert [a.state for a in session.scalars(select(Allocation))] == ["applied"]
        [entry] = session.scalars(select(AuditEntry)).all()
        assert (entry.operator, entry.action, entry.detail["reinstated_minor"]) == (
            "admin",
            "reinstate_won_dispute",
            10_000,
        )
    # A second click finds nothing left to reinstate and changes nothing.
    again = client.post(f"/payments/{payment_id}/reinstate", {"csrf": page.csrf})
    assert again.header("Location") == f"/payments/{payment_id}?done=not_needed"


def test_a_won_dispute_whose_reversal_is_unknown_is_left_for_a_person(client, db):
    payment_id = _won_dispute(db, reversal=False)
    page = client.get(f"/payments/{payment_id}")
    answer = client.post(f"/payments/{payment_id}/reinstate", {"csrf": page.csrf})
    assert answer.header("Location") == f"/payments/{payment_id}?done=unavailable"
    assert "re-apply this money by hand" in client.get(answer.header("Location")).body
    with db() as session:
        assert session.get(Payment, payment_id).needs_review is True
        assert session.scalars(select(AuditEntry)).all() == []
