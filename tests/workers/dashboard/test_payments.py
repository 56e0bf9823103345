"""Payments by state and age, and one payment with its allocations, refunds, disputes, emails and timeline."""

from __future__ import annotations

import re

from db.models import Dispute, PaymentEvent, Refund
from tests import factories
from tests.workers.dashboard.support import ago, email, row_cells, shop_rows

SCRIPT = "<script>alert('x')</script>"


def _paid(db, clock):
    """A succeeded card payment of two invoices, partly refunded, disputed, with receipts and a timeline."""
    with db() as session:
        seller, account, method = shop_rows(session, name=f"Acme {SCRIPT}", number="ACME-1")
        first = factories.invoice(session, account, total_minor=10_000, number="INV-A")
        second = factories.invoice(
            session, account, total_minor=2_345, number="INV-B", site_name="North yard"
        )
        payment = factories.payment(
            session,
            account,
            method,
            amount_minor=12_345,
            status="partially_refunded",
            attempt=1,
            stripe_payment_intent_id="pi_123",
            note=SCRIPT,
            refunded_minor=2_345,
        )
        factories.allocation(session, payment, first, state="applied")
        factories.allocation(session, payment, second, state="applied")
        session.add(
            Refund(
                payment_id=payment.id,
                stripe_refund_id="re_1",
                amount_minor=2_345,
                currency="usd",
                status="succeeded",
                reason="requested_by_customer",
            )
        )
        session.add(
            Dispute(
                payment_id=payment.id,
                stripe_dispute_id="dp_1",
                amount_minor=10_000,
                currency="usd",
                status="needs_response",
                reason="fraudulent",
            )
        )
        email(session, seller, "sent", ago(clock.now, minutes=9), 1, payment)
        email(
            session,
            seller,
            "failed",
            ago(clock.now, minutes=8),
            2,
            payment,
            attempts=5,
            last_error="550 mailbox unavailable",
        )
        # Inserted out of order: the page orders by time, not by id.
        for minutes, old, new, applied, source in [
            (8, "succeeded", "partially_refunded", True, "stripe:evt_refund"),
            (10, None, "pending", True, "api"),
            (9, "submitting", "succeeded", True, "stripe:evt_ok"),
            (9.5, "pending", "submitting", True, "worker"),
            (7, "partially_refunded", "processing", False, "stripe:evt_late"),
        ]:
            session.add(
                PaymentEvent(
                    payment_id=payment.id,
                    at=ago(clock.now, minutes=minutes),
                    from_status=old,
                    to_status=new,
                    applied=applied,
                    source=source,
                    detail={"note": SCRIPT} if source == "api" else {"attempt": 1},
                )
            )
        session.commit()
        return payment.id


def test_detail_shows_the_timeline_in_time_order(client, db, clock):
    payment_id = _paid(db, clock)
    body = client.get(f"/payments/{payment_id}").body
    timeline = body.split("<h2>Timeline</h2>", 1)[1].split("<h2>", 1)[0]
    rows = re.findall(r"<td>([^<]*→[^<]*)</td>\s*<td>(applied|ignored)</td>\s*<td>([^<]*)</td>", timeline)
    assert rows == [
        ("∅ → pending", "applied", "api"),
        ("pending → submitting", "applied", "worker"),
        ("submitting → succeeded", "applied", "stripe:evt_ok"),
        ("succeeded → partially_refunded", "applied", "stripe:evt_refund"),
        ("partially_refunded → processing", "ignored", "stripe:evt_late"),
    ]
    assert "&#34;attempt&#34;: 1" in timeline


def test_detail_shows_allocations_refunds_disputes_and_emails(client, db, clock):
    body = client.get(f"/payments/{_paid(db, clock)}").body
    assert row_cells(body, "INV-A", "Allocations") == (["INV-A", "$100.00", "$0.00", "applied"], False)
    assert row_cells(body, "INV-B North yard", "Allocations")[0][1] == "$23.45"
    assert row_cells(body, "re_1", "Refunds")[0][1:4] == ["$23.45", "succeeded", "requested_by_customer"]
    assert row_cells(body, "dp_1", "Disputes")[0][1:4] == ["$100.00", "needs_response", "fraudulent"]
    failed, alert = row_cells(body, "payment_confirmation", "Emails")
    assert row_cells(body, "payment_confirmation", "Emails")[0][2] == "sent"
    emails = body.split("<h2>Emails</h2>", 1)[1]
    assert re.search(
        r'<tr class="alert"><td><a href="/emails/\d+">payment_confirmation</a></td><td>ap2@customer.test</td>'
        r"<td>failed</td>\s*"
        r'<td class="num">5</td><td>–</td><td>550 mailbox unavailable</td>',
        emails,
    )
    assert "$123.45" in body and "refunded $23.45" in body and "pi_123" in body


def test_user_text_is_escaped_everywhere(client, db, clock):
    payment_id = _paid(db, clock)
    for path in (f"/payments/{payment_id}", "/payments"):
        body = client.get(path).body
        assert "<script>" not in body, path
        assert "&lt;script&gt;" in body, path


def test_list_filters_by_status_account_and_age(client, db, clock):
    with db() as session:
        _, account, method = shop_rows(session, number="A-1")
        _, other, other_method = shop_rows(session, number="B-2")
        old = factories.payment(
            session,
            account,
            method,
            status="processing",
            created_at=ago(clock.now, days=2),
            failure_code=None,
            attempt=1,
        )
        factories.payment(
            session, account, method, status="failed", failure_code="card_declined", amount_minor=999
        )
        factories.payment(session, other, other_method, status="processing")
        session.commit()

    everything = client.get("/payments").body
    assert "3 rows" in everything
    cells, _ = row_cells(everything, str(old.id))
    assert cells[1].startswith("A-1") and cells[2:] == ["invoices", "$100.00", "processing", "2d 0h", "1", ""]
    assert "card_declined" in everything and "$9.99" in everything

    assert "2 rows" in client.get("/payments?status=processing").body
    assert "2 rows" in client.get("/payments?account=A-1").body
    assert "1 row" in client.get("/payments?status=processing&account=A-1&older_than=86400").body
    assert "No payments match." in client.get("/payments?account=nobody").body
    # Refused, no longer read as "any age" and page 1; "²" is a digit to str.isdigit that int() refuses.
    for junk in ("older_than=junk", "page=junk", "older_than=%C2%B2", "page=%C2%B2"):
        assert client.get(f"/payments?{junk}").status == 400, junk


def test_unknown_payment_is_404(client):
    assert client.get("/payments/12345").status == 404


def test_a_payment_credit_paid_in_full_shows_without_a_method(client, db):
    with db() as session:
        _, account, method = shop_rows(session, name="Acme", number="ACME-2")
        invoice = factories.invoice(session, account, total_minor=4_000, number="INV-C")
        payment = factories.payment(
            session,
            account,
            method,
            amount_minor=0,
            credit_used_minor=4_000,
            kind="credit",
            payment_method_id=None,
            status="succeeded",
        )
        factories.allocation(session, payment, invoice, state="applied")
        session.commit()
        payment_id = payment.id
    body = client.get(f"/payments/{payment_id}").body
    assert "none (paid from credit)" in body and "paid from credit</dt><dd>$40.00" in body
    assert "1 row" in client.get("/payments?account=ACME-2").body
