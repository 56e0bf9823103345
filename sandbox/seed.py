"""The demo data: one seller, three accounts, about 30 invoices, saved methods made at the Stripe emulator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Account, PaymentMethod, Seller
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
        # The last card's bank asks for 3-D Secure on every payment: the demo completes one and cancels one.
        ["pm_usBankAccount_success", "pm_card_visa", "pm_card_authenticationRequired"],
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
    """Load the demo data; return a one-line summary.

    The seller, its accounts and saved methods are written here; the invoices come in as an ERP sends
    them, through tasks.api.sync_invoices, once the accounts are committed.
    """
    from tasks.flows import feed  # noqa: F401  (its session hooks write the seeded methods' ledger events)
    from tasks.gateways.stripe import get_gateway

    engine = make_engine(settings.database_url)
    try:
        with sessionmaker(bind=engine)() as session:
            if only_if_empty and session.scalar(select(func.count()).select_from(Seller)):
                return "demo data already present: nothing seeded"
            seller_id, methods = _seed(session, get_gateway())
            session.commit()
    finally:
        engine.dispose()
    invoices = _sync_invoices(seller_id, today or date.today())
    return (
        f"seeded seller 'northwind' with {len(ACCOUNTS)} accounts, {invoices} invoices "
        f"(through sync_invoices), {methods} saved methods"
    )


def _seed(session: Session, gateway) -> tuple[int, int]:
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
        portal_payment_url="https://portal.northwind.example/pay/{payment_id}",
        reference_prefix="NWF",
        email_from_name="Northwind Billing",
    )
    session.add(seller)
    session.flush()
    methods = 0
    for number, name, email, tokens in ACCOUNTS:
        account = Account(
            seller_id=seller.id,
            number=number,
            external_id=number,  # the ERP's own id, which its invoices name
            version=1,
            name=name,
            billing_email=email_address(email, f"billing_email of {number}"),
            currency="usd",
            portal_enabled=True,
        )
        session.add(account)
        session.flush()
        methods += _methods(session, gateway, account, tokens)
    return seller.id, methods


def _sync_invoices(seller_id: int, today: date) -> int:
    from tasks import api

    records = [r for index, (number, *_) in enumerate(ACCOUNTS) for r in _invoices(number, today, index)]
    results = api.sync_invoices(seller_id, records)
    refused = [r for r in results if r.code is not None]
    if refused:
        raise RuntimeError(f"the demo invoices were refused: {refused[0].code} {refused[0].message}")
    return len(results)


def _invoices(account_number: str, today: date, index: int) -> list[dict]:
    records = []
    for n, (age, net, total) in enumerate(INVOICE_SHAPES):
        issued = today - timedelta(days=age + index)
        record = _record(account_number, f"{account_number}-{n + 1:03d}", total + index * 100, issued, net)
        if n == len(INVOICE_SHAPES) - 1:
            # 2/10 net 45: two percent off when paid within ten days of issue.
            record["discount_minor"] = record["total_minor"] * 2 // 100
            record["discount_until"] = (issued + timedelta(days=10)).isoformat()
        records.append(record)
    if index == 2:
        records += _multi_site(account_number, today)
    return records


def _multi_site(account_number: str, today: date) -> list[dict]:
    issued = today - timedelta(days=12)
    sites = [("Harbor View Apartments", 41_200), ("Lakeside Offices", 27_850), ("Cedar Point Mall", 63_075)]
    parent = _record(account_number, f"{account_number}-MS-100", sum(t for _, t in sites), issued, 30)
    children = [
        {
            **_record(account_number, f"{parent['number']}-{n}", total, issued, 30),
            "parent_external_id": parent["external_id"],
            "site_name": site,
        }
        for n, (site, total) in enumerate(sites, start=1)
    ]
    return [{**parent, "site_name": "All sites"}, *children]


def _record(account_number: str, number: str, total: int, issued: date, net_days: int) -> dict:
    """An invoice as the ERP sends it (tasks.api.sync_invoices); its number is its ERP id too."""
    return {
        "external_id": number,
        "version": 1,
        "account_external_id": account_number,
        "number": number,
        "currency": "usd",
        "total_minor": total,
        "issued_on": issued.isoformat(),
        "due_on": (issued + timedelta(days=net_days)).isoformat(),
        "customer_visible": True,
        "voided": False,
    }


def _methods(session: Session, gateway, account: Account, tokens: list[str]) -> int:
    return len(attach_methods(session, gateway, account, tokens, key_prefix="seed", agent="remit demo seed"))


def attach_methods(
    session: Session, gateway, account: Account, tokens: list[str], *, key_prefix: str, agent: str
) -> dict[str, int]:
    """Make the account a Stripe customer and save each test token as its method (the first the
    default; bank accounts with an accepted mandate, as Stripe requires); {token: payment_methods.id}.
    Keys start with key_prefix, so each seeder's calls replay only its own."""
    account.stripe_customer_id = gateway.create_customer(
        account_id=account.id,
        email=account.billing_email,
        name=account.name,
        idempotency_key=f"customer:account:{account.id}",
    )
    saved = {}
    for n, token in enumerate(tokens):
        details = gateway.attach_payment_method(
            payment_method=token,
            customer_id=account.stripe_customer_id,
            idempotency_key=f"{key_prefix}:account:{account.id}:{token}",
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
            method.mandate_user_agent = agent
            method.mandate_text_version = "2026-01"
        session.add(method)
        session.flush()
        saved[token] = method.id
    return saved
