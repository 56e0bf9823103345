"""The chaos run's data: one seller, a few accounts, many invoices, and saved methods of every behaviour."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from db.models import Account, Invoice, Seller
from db.session import transaction
from sandbox.seed import attach_methods
from tasks.domain.addresses import email_address

# Test payment methods by the emulator's behaviour (sandbox/stripe_emulator/tokens.py): cards that succeed,
# decline, ask for authentication, get disputed, refuse refunds; bank accounts that settle, fail when they
# settle, and are returned (disputed) after settling.
CARD_TOKENS = (
    "pm_card_visa",
    "pm_card_mastercard",
    "pm_card_chargeDeclined",
    "pm_card_authenticationRequired",
    "pm_card_createDispute",
    "pm_card_refundFail",
)
BANK_TOKENS = ("pm_usBankAccount_success", "pm_usBankAccount_insufficientFunds", "pm_usBankAccount_dispute")
SHORT_PAY_REASONS = ["Damaged goods", "Other"]


@dataclass(frozen=True)
class SeedAccount:
    id: int
    methods: dict[str, int]  # token -> payment_methods.id
    invoices: tuple[int, ...]


def seed(rng: random.Random, accounts: int, invoices_per_account: int) -> list[SeedAccount]:
    """Write the seller, accounts, invoices and methods (attached at the emulator); return what was made."""
    from tasks.gateways.stripe import get_gateway

    gateway, today, made = get_gateway(), date.today(), []
    with transaction() as session:
        seller = _seller(session)
        for n in range(accounts):
            account = Account(
                seller_id=seller.id,
                number=f"C-{n + 1:03d}",
                name=f"Chaos Customer {n + 1}",
                billing_email=email_address(f"ap{n + 1}@chaos.example", "billing_email"),
                currency="usd",
                portal_enabled=True,
            )
            session.add(account)
            session.flush()
            invoices = _invoices(session, rng, account, today, invoices_per_account)
            made.append(SeedAccount(account.id, _methods(session, gateway, account), invoices))
    return made


def _seller(session: Session) -> Seller:
    seller = Seller(
        slug="chaos",
        name="Chaos Supply Co",
        timezone="UTC",
        payments_enabled=True,
        cards_enabled=True,
        ach_enabled=True,
        deposits_enabled=True,
        support_email=email_address("billing@chaos.example", "support_email"),
        short_pay_reasons=SHORT_PAY_REASONS,
        max_invoices_per_payment=200,
    )
    session.add(seller)
    session.flush()
    return seller


def _invoices(
    session: Session, rng: random.Random, account: Account, today: date, count: int
) -> tuple[int, ...]:
    rows = []
    for n in range(count):
        issued = today - timedelta(days=rng.randint(0, 90))
        rows.append(
            Invoice(
                account_id=account.id,
                number=f"{account.number}-{n + 1:04d}",
                currency="usd",
                total_minor=rng.randint(5_00, 5_000_00),
                issued_on=issued,
                due_on=issued + timedelta(days=30),
                customer_visible=True,
                voided=False,
                discount_minor=0,
            )
        )
    session.add_all(rows)
    session.flush()
    return tuple(row.id for row in rows)


def _methods(session: Session, gateway, account: Account) -> dict[str, int]:
    tokens = list(CARD_TOKENS + BANK_TOKENS)
    return attach_methods(session, gateway, account, tokens, key_prefix="chaos", agent="remit chaos seed")
