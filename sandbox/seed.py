"""The demo data: one seller, three accounts, about 30 invoices, saved methods made at the Stripe emulator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Account, Invoice, PaymentMethod, Seller
from db.session import make_engine
from tasks.domain.addresses import email_address

SHORT_PAY_REASONS = ["Damaged goods", "Pricing dispute", "Service not completed", "Other"]
ACCOUNTS = [
    (
        "A-1001",
        "Acme Plumbing Supply",
        "ap@acme-plumbing.example",
        ["pm_card_visa", "pm_card_chargeDeclined"],
    ),
    (
        "A-1002",
        "Blue Ridge Facilities",
        "payables@blueridge.example",
        ["pm_usBankAccount_success", "pm_card_visa"],
    ),
    ("A-1003", "Cedar Point Property Management", "finance@cedarpoint.example", ["pm_card_mastercard"]),
]
# (days since issue, net days, total in cents): a spread of current and overdue invoices.
INVOICE_SHAPES = [
    (75, 30, 48_250),
    (62, 30, 12_900),
    (45, 30, 230_000),
    (40, 30, 7_525),
    (28, 30, 99_999),
    (20, 30, 15_000),
    (14, 30, 64_310),
    (7, 30, 3_200),
    (3, 45, 125_000),
]


def seed_demo(settings, only_if_empty: bool = False, today: date | None = None) -> str:
    """Load the demo data; return a one-line summary."""
    from tasks.gateways.stripe import get_gateway

    engine = make_engine(settings.database_url)
    try:
        with sessionmaker(bind=engine)() as session:
            if only_if_empty and session.scalar(select(func.count()).select_from(Seller)):
                return "demo data already present: nothing seeded"
            summary = _seed(session, get_gateway(), today or date.today())
            session.commit()
            return summary
    finally:
        engine.dispose()


def _seed(session: Session, gateway, today: date) -> str:
    seller = Seller(
        slug="northwind",
        name="Northwind Field Services",
        brand_color="#0a5c8a",
        logo_url="https://northwind.example/logo.png",
        support_email=email_address("billing@northwind.example", "support_email"),
        support_phone="+1 555 0100",
        timezone="America/Chicago",
        payments_enabled=True,
        cards_enabled=True,
        ach_enabled=True,
        deposits_enabled=True,
        short_pay_reasons=SHORT_PAY_REASONS,
        max_invoices_per_payment=200,
        reference_prefix="NWF",
        email_from_name="Northwind Billing",
    )
    session.add(seller)
    session.flush()
    invoices = methods = 0
    for index, (number, name, email, tokens) in enumerate(ACCOUNTS):
        account = Account(
            seller_id=seller.id,
            number=number,
            name=name,
            billing_email=email_address(email, f"billing_email of {number}"),
            currency="usd",
            portal_enabled=True,
        )
        session.add(account)
        session.flush()
        invoices += _invoices(session, account, today, index)
        methods += _methods(session, gateway, account, tokens)
    return (
        f"seeded seller 'northwind' with {len(ACCOUNTS)} accounts, {invoices} invoices, "
        f"{methods} saved methods"
    )


def _invoices(session: Session, account: Account, today: date, index: int) -> int:
    count = 0
    for n, (age, net, total) in enumerate(INVOICE_SHAPES):
        issued = today - timedelta(days=age + index)
        invoice = Invoice(
            account_id=account.id,
            number=f"{account.number}-{n + 1:03d}",
            currency="usd",
            total_minor=total + index * 100,
            issued_on=issued,
            due_on=issued + timedelta(days=net),
            customer_visible=True,
            voided=False,
            discount_minor=0,
        )
        if n == len(INVOICE_SHAPES) - 1:
            # 2/10 net 45: two percent off when paid within ten days of issue.
            invoice.discount_minor = invoice.total_minor * 2 // 100
            invoice.discount_until = issued + timedelta(days=10)
        session.add(invoice)
        count += 1
    if index == 2:
        count += _multi_site(session, account, today)
    session.flush()
    return count


def _multi_site(session: Session, account: Account, today: date) -> int:
    issued = today - timedelta(days=12)
    sites = [("Harbor View Apartments", 41_200), ("Lakeside Offices", 27_850), ("Cedar Point Mall", 63_075)]
    parent = Invoice(
        account_id=account.id,
        number=f"{account.number}-MS-100",
        currency="usd",
        total_minor=sum(total for _, total in sites),
        issued_on=issued,
        due_on=issued + timedelta(days=30),
        customer_visible=True,
        voided=False,
        discount_minor=0,
        site_name="All sites",
    )
    session.add(parent)
    session.flush()
    for n, (site, total) in enumerate(sites, start=1):
        session.add(
            Invoice(
                account_id=account.id,
                number=f"{account.number}-MS-100-{n}",
                parent_id=parent.id,
                site_name=site,
                currency="usd",
                total_minor=total,
                issued_on=issued,
                due_on=issued + timedelta(days=30),
                customer_visible=True,
                voided=False,
                discount_minor=0,
            )
        )
    return 1 + len(sites)


def _methods(session: Session, gateway, account: Account, tokens: list[str]) -> int:
    account.stripe_customer_id = gateway.create_customer(
        account_id=account.id,
        email=account.billing_email,
        name=account.name,
        idempotency_key=f"customer:account:{account.id}",
    )
    for n, token in enumerate(tokens):
        details = gateway.attach_payment_method(
            payment_method=token,
            customer_id=account.stripe_customer_id,
            idempotency_key=f"seed:account:{account.id}:{token}",
        )
        method = PaymentMethod(
            account_id=account.id,
            stripe_payment_method_id=details.id,
            kind=details.kind,
            brand=details.brand,
            bank_name=details.bank_name,
            last4=details.last4,
            exp_month=details.exp_month,
            exp_year=details.exp_year,
            is_default=n == 0,
            status="active",
        )
        if details.kind == "us_bank_account":
            method.mandate_accepted_at = datetime.now(UTC)
            method.mandate_ip = "203.0.113.10"
            method.mandate_user_agent = "remit demo seed"
            method.mandate_text_version = "2026-01"
        session.add(method)
    session.flush()
    return len(tokens)
