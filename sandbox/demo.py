"""A short demo round for `make run`: real requests through tasks.api, watched until they settle."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import date

from sqlalchemy import select

from db.models import Account, Invoice, Payment, PaymentMethod
from db.session import transaction
from sandbox.erp import SANDBOX_SECRET
from sandbox.stripe_js import StripeJs
from tasks import api
from tasks.domain.errors import RemitError
from tasks.domain.states import PaymentStatus

# ACH sits in processing for days at Stripe; the demo moves the emulator's clock this far.
ACH_SETTLE_SECONDS = 5 * 86400
FINAL = {s.value for s in PaymentStatus} - {"scheduled", "pending", "submitting", "processing"}


def run_demo(emulator, say=print, timeout_s: float = 60.0) -> dict[int, str]:
    """Make the demo payments, settle ACH at the emulator, and report each payment's final status."""
    key = f"demo-{date.today().isoformat()}"
    accounts = _accounts()
    seller_id = accounts["A-1001"]["seller_id"]
    _feed_to_erp(seller_id, say)
    _check_payment(accounts["A-1001"], key, say)
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
    statuses.update(_authentication_round(emulator, accounts["A-1002"], key, say, timeout_s))
    say(f"demo: customer emails written to the outbox: {_outbox_summary(list(statuses))}")
    _erp_report(seller_id, say, timeout_s)
    return statuses


def _authentication_round(emulator, ridge: dict, key: str, say, timeout_s: float) -> dict[int, str]:
    """A-1002's card needs 3-D Secure: one payment is completed in the (emulated) browser, one canceled."""
    card = [method_id for method_id, kind, _ in ridge["methods"] if kind == "card"][-1]
    newest = [invoice_id for invoice_id, _ in ridge["invoices"][-2:]]
    ended = {}
    for n, (invoice_id, finish) in enumerate(zip(newest, ("complete", "cancel"))):
        try:
            receipt = api.pay_invoices(ridge["id"], [invoice_id], card, f"{key}-3ds-{n}")
        except RemitError as refusal:
            say(f"demo: A-1002 3-D Secure card: refused [{refusal.code}] {refusal.message}")
            continue
        _wait([receipt.payment_id], FINAL, timeout_s)
        ended[receipt.payment_id] = _finish(
            StripeJs(emulator.url), ridge["id"], receipt.payment_id, finish, say
        )
    return ended


def _finish(stripe_js: StripeJs, account_id: int, payment_id: int, finish: str, say) -> str:
    """What the portal does with get_payment's action: Stripe.js in the browser, then confirm; or cancel."""
    view = api.get_payment(account_id, payment_id)
    label = f"demo: payment {payment_id} (3-D Secure card)"
    if view.action is None:
        say(f"{label} did not wait for the customer: {view.status}")
        return view.status
    deadline = f"{view.action.expires_at:%Y-%m-%d %H:%M} UTC"
    say(f"{label} waits for the customer ({view.action.next_action}) until {deadline}")
    if finish == "complete":
        stripe_js.pay(view.action.client_secret, view.action.next_action, view.action.payment_method)
        view = api.confirm_payment(account_id, payment_id)
        say(f"{label}: the customer completed 3-D Secure in the browser: {view.status}")
    else:
        view = api.cancel_payment(account_id, payment_id)
        say(f"{label}: the customer canceled it instead: {view.status}")
    return view.status


def _feed_to_erp(seller_id: int, say) -> None:
    """Point the seller's ledger feed at the reference ERP receiver `make run` started (sandbox/erp.py)."""
    url = os.environ.get("SANDBOX_ERP_URL")
    if url:
        api.set_feed_endpoint(seller_id, url, SANDBOX_SECRET)
        say(f"demo: the seller's ledger feed goes to the reference ERP at {url}")


def _check_payment(acme: dict, key: str, say) -> None:
    """The ERP records a check on one invoice; the portal then refuses to take it online."""
    invoice_id, number = acme["invoices"][3]
    try:
        receipt = api.record_external_payment(
            acme["seller_id"],
            acme["external_id"],
            f"CHK-{key}",
            "check",
            [(number, acme["owed"][invoice_id])],
        )
        say(f"demo: the ERP records check {receipt.reference} paying invoice {number} in full")
        api.pay_invoices(acme["id"], [invoice_id], acme["methods"][0][0], f"{key}-check")
        say(f"demo: invoice {number} was charged online after its check: this must not happen")
    except RemitError as refusal:
        say(f"demo: paying invoice {number} online now is refused: [{refusal.code}] {refusal.message}")


def _erp_report(seller_id: int, say, timeout_s: float) -> None:
    """Wait for the receiver to hold the seller's whole feed, then say what it got."""
    from sandbox.erp import running_ledger

    ledger = running_ledger()
    if ledger is None:
        return
    last = api.list_ledger_events(seller_id, 0, 1000)[-1].sequence
    if not ledger.last_sequence.get(seller_id) and _delivered_through(seller_id) >= last:
        # A run over an earlier run's data: the feed delivered every event then, and this run's reference
        # ERP (events in memory) starts empty. Replay them to it, as ops would to a restored ERP.
        say(f"demo: the feed delivered events 1..{last} in an earlier run; replaying them to this run's ERP")
        api.replay_ledger_events(seller_id, 1, last)
    deadline = time.monotonic() + timeout_s
    while ledger.last_sequence.get(seller_id, 0) < last and time.monotonic() < deadline:
        time.sleep(0.25)
    kinds = Counter(event["type"] for event in ledger.events if event["seller_id"] == seller_id)
    got = ", ".join(f"{kind} x{count}" for kind, count in sorted(kinds.items()))
    gaps = f"gaps {ledger.gaps}" if ledger.gaps else "no gaps"
    say(f"demo: the reference ERP holds events 1..{ledger.last_sequence.get(seller_id, 0)} of {last}, {gaps}")
    say(f"demo: ... verified signatures, refused {ledger.refused}: {got}")


def _delivered_through(seller_id: int) -> int:
    """The last sequence the seller's feed endpoint has confirmed, or 0."""
    status = [row for row in api.feed_status() if row["seller_id"] == seller_id]
    return status[0]["delivered_sequence"] if status else 0


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
                "seller_id": account.seller_id,
                "external_id": account.external_id,
                "owed": {i.id: i.total_minor for i in invoices},
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
