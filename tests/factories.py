"""Small row builders for tests; each returns the flushed model instance."""

from __future__ import annotations

import itertools
from datetime import UTC, date, timedelta

from sqlalchemy.orm import Session

from db.models import Account, Allocation, Invoice, Payment, PaymentMethod, Seller
from tasks.domain.addresses import email_address

_counter = itertools.count(1)


def seller(session: Session, **overrides) -> Seller:
    n = next(_counter)
    values = dict(
        slug=f"seller-{n}",
        name=f"Seller {n}",
        brand_color="#0a7d45",
        support_email="help@seller.test",
        timezone="America/Chicago",
        payments_enabled=True,
        cards_enabled=True,
        ach_enabled=True,
        deposits_enabled=True,
        short_pay_reasons=["Damaged goods", "Pricing dispute", "Other"],
        max_invoices_per_payment=200,
    )
    values = {**values, **overrides}
    if values["support_email"] is not None:
        values["support_email"] = email_address(values["support_email"], "support_email")
    return _add(session, Seller(**values))


def account(session: Session, seller_row: Seller | None = None, **overrides) -> Account:
    n = next(_counter)
    seller_row = seller_row or seller(session)
    values = dict(
        seller_id=seller_row.id,
        number=f"A-{n:05d}",
        name=f"Customer {n}",
        billing_email=f"ap{n}@customer.test",
        currency="usd",
        portal_enabled=True,
    )
    values = {**values, **overrides}
    values["billing_email"] = email_address(values["billing_email"], "billing_email")
    return _add(session, Account(**values))


def invoice(session: Session, account_row: Account, total_minor: int = 10_000, **overrides) -> Invoice:
    n = next(_counter)
    issued = overrides.pop("issued_on", date(2026, 11, 1))
    values = dict(
        account_id=account_row.id,
        number=f"INV-{n:05d}",
        currency=account_row.currency,
        total_minor=total_minor,
        issued_on=issued,
        due_on=issued + timedelta(days=30),
        discount_minor=0,
        voided=False,
        customer_visible=True,
    )
    return _add(session, Invoice(**{**values, **overrides}))


def method(session: Session, account_row: Account, kind: str = "card", **overrides) -> PaymentMethod:
    n = next(_counter)
    values = dict(
        account_id=account_row.id,
        stripe_payment_method_id=f"pm_test_{n}",
        kind=kind,
        last4="4242",
        status="active",
        is_default=False,
    )
    if kind == "card":
        values.update(brand="visa", exp_month=12, exp_year=2030)
    else:
        from datetime import datetime

        values.update(
            bank_name="STRIPE TEST BANK",
            last4="6789",
            mandate_accepted_at=datetime.now(UTC),
            mandate_ip="203.0.113.9",
            mandate_user_agent="pytest",
            mandate_text_version="2026-01",
        )
    return _add(session, PaymentMethod(**{**values, **overrides}))


def payment(
    session: Session, account_row: Account, method_row: PaymentMethod, amount_minor: int = 10_000, **overrides
) -> Payment:
    n = next(_counter)
    values = dict(
        account_id=account_row.id,
        kind="invoices",
        amount_minor=amount_minor,
        currency=account_row.currency,
        payment_method_id=method_row.id,
        status="pending",
        idempotency_key=f"key-{n}",
        request_hash="0" * 64,
        attempt=0,
    )
    return _add(session, Payment(**{**values, **overrides}))


def allocation(session: Session, payment_row: Payment, invoice_row: Invoice, **overrides) -> Allocation:
    values = dict(
        payment_id=payment_row.id,
        invoice_id=invoice_row.id,
        amount_minor=invoice_row.total_minor,
        discount_minor=0,
        state="reserved",
    )
    return _add(session, Allocation(**{**values, **overrides}))


def _add(session: Session, row):
    session.add(row)
    session.flush()
    return row


def email_row(session, **row) -> int | None:
    """An outbox row as the outbox writes it (db.queries.emails.add_emails); None for a duplicate key."""
    from db.queries import emails as email_rows

    written = email_rows.add_emails(session, [{"account_id": None, "payment_id": None, **row}])
    return written[0] if written else None
