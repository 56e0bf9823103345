"""A short demo round for `make run`: real requests through tasks.api, watched until they settle."""

from __future__ import annotations

import time
from datetime import date

from sqlalchemy import select

from db.models import Account, Invoice, Payment, PaymentMethod
from db.session import transaction
from tasks import api
from tasks.domain.errors import RemitError

# ACH sits in processing for days at Stripe; the demo moves the emulator's clock this far.
ACH_SETTLE_SECONDS = 5 * 86400
FINAL = {"succeeded", "failed", "requires_action", "canceled", "refunded", "disputed"}


def run_demo(emulator, say=print, timeout_s: float = 60.0) -> dict[int, str]:
    """Make the demo payments, settle ACH at the emulator, and report each payment's final status."""
    key = f"demo-{date.today().isoformat()}"
    accounts = _accounts()
    made: dict[int, str] = {}
    for label, call in _requests(accounts, key):
        try:
            receipt = call()
            made[receipt.payment_id] = label
            replay = " (replayed)" if receipt.replayed else ""
            say(
                f"demo: {label}: payment {receipt.payment_id} {receipt.status}, "
                f"{receipt.amount_minor / 100:.2f} "
                f"{receipt.currency.upper()}{replay}"
            )
        except RemitError as refusal:
            say(f"demo: {label}: refused [{refusal.code}] {refusal.message}")
    statuses = _wait(list(made), {"processing"} | FINAL, timeout_s)
    if "processing" in statuses.values():
        say("demo: advancing the Stripe emulator's clock 5 days so ACH debits settle ...")
        emulator.advance(ACH_SETTLE_SECONDS)
        statuses = _wait(list(made), FINAL, timeout_s)
    for payment_id, status in sorted(statuses.items()):
        say(f"demo: payment {payment_id} ({made[payment_id]}): {status}")
    applied = _apply_deposit(accounts["A-1003"], key, say)
    if applied is not None:
        made[applied.payment_id], statuses[applied.payment_id] = "A-1003 applies its deposit", applied.status
    say(f"demo: customer emails written to the outbox: {_outbox_summary(list(made))}")
    return statuses


def _apply_deposit(cedar: dict, key: str, say):
    """The deposit's credit, now available, pays A-1003's oldest open invoices; nothing reaches Stripe."""
    before = api.account_overview(cedar["id"])
    amount = min(before.credit_minor, before.balance_minor)
    if amount <= 0:
        say("demo: A-1003 has no available credit to apply")
        return None
    try:
        receipt = api.apply_credit(cedar["id"], amount=amount, idempotency_key=f"{key}-6")
    except RemitError as refusal:
        say(f"demo: A-1003 applies its deposit: refused [{refusal.code}] {refusal.message}")
        return None
    paid = ", ".join(f"{line.invoice_number} {line.amount_minor / 100:.2f}" for line in receipt.lines)
    after = api.account_overview(cedar["id"])
    say(
        f"demo: A-1003 applies {receipt.credit_used_minor / 100:.2f} of deposit credit: payment "
        f"{receipt.payment_id} {receipt.status}, charged {receipt.amount_minor / 100:.2f} at Stripe; "
        f"paid {paid}"
    )
    say(
        f"demo: A-1003 balance {before.balance_minor / 100:.2f} -> {after.balance_minor / 100:.2f}, "
        f"available credit {before.credit_minor / 100:.2f} -> {after.credit_minor / 100:.2f}, net owed "
        f"{after.net_owed_minor / 100:.2f}"
    )
    return receipt


def _outbox_summary(payment_ids: list[int]) -> str:
    from sqlalchemy import func

    from db.models import Email

    with transaction() as session:
        rows = session.execute(
            select(Email.kind, func.count())
            .where(Email.payment_id.in_(payment_ids))
            .group_by(Email.kind)
            .order_by(Email.kind)
        ).all()
    return ", ".join(f"{kind} x{count}" for kind, count in rows) or "none"


def _accounts() -> dict[str, dict]:
    with transaction() as session:
        found = {}
        for account in session.scalars(select(Account).order_by(Account.id)):
            methods = session.scalars(
                select(PaymentMethod).where(PaymentMethod.account_id == account.id).order_by(PaymentMethod.id)
            ).all()
            invoices = session.scalars(
                select(Invoice)
                .where(Invoice.account_id == account.id, Invoice.parent_id.is_(None))
                .order_by(Invoice.due_on, Invoice.id)
            ).all()
            found[account.number] = {
                "id": account.id,
                "methods": [(m.id, m.kind, m.last4) for m in methods],
                "invoices": [(i.id, i.number) for i in invoices],
            }
        return found


def _requests(accounts: dict[str, dict], key: str):
    acme, ridge, cedar = accounts["A-1001"], accounts["A-1002"], accounts["A-1003"]
    card, declining = acme["methods"][0][0], acme["methods"][1][0]
    bank = ridge["methods"][0][0]
    two_oldest = [i for i, _ in acme["invoices"][:2]]
    parent = [i for i, number in cedar["invoices"] if number.endswith("MS-100")]
    yield (
        "A-1001 pays its two oldest invoices by card",
        lambda: api.pay_invoices(acme["id"], two_oldest, card, f"{key}-1"),
    )
    yield (
        "A-1001 pays one of them again (double click, new key)",
        lambda: api.pay_invoices(acme["id"], two_oldest[:1], card, f"{key}-1b"),
    )
    yield (
        "A-1001 pays its third invoice with a card that declines",
        lambda: api.pay_invoices(acme["id"], [acme["invoices"][2][0]], declining, f"{key}-2"),
    )
    yield (
        "A-1002 pays a custom 1,500.00 by ACH",
        lambda: api.pay_amount(ridge["id"], 150_000, bank, f"{key}-3"),
    )
    yield (
        "A-1003 pays its multi-site invoice (three sites)",
        lambda: api.pay_invoices(cedar["id"], parent, cedar["methods"][0][0], f"{key}-4"),
    )
    yield (
        "A-1003 makes a 250.00 deposit",
        lambda: api.make_deposit(
            cedar["id"], 25_000, cedar["methods"][0][0], f"{key}-5", note="Advance for spring service"
        ),
    )


def _wait(payment_ids: list[int], done: set[str], timeout_s: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        with transaction() as session:
            statuses = dict(
                session.execute(select(Payment.id, Payment.status).where(Payment.id.in_(payment_ids))).all()
            )
        if all(s in done for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.25)
