"""The seeded random workload: every operation a small function in OPERATIONS, driven from several threads.

An operation makes one or more requests through tasks.api (or acts as Stripe's dashboard or the customer
would) and records each answer in the Ledger, which the checker later holds against the database.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import stripe
from sqlalchemy import select

from bench.chaos.seed import BANK_TOKENS, CARD_TOKENS, SeedAccount
from bench.chaos.stack import API_KEY, Emulator
from db.models import Payment
from db.session import transaction
from tasks import api
from tasks.domain.errors import RemitError
from tasks.flows import messages

# Operations per thread are spaced by a random pause up to this, so a run is a steady trickle with bursts.
MAX_PAUSE_S = 0.4
# Threads that click "pay" on one request, and keys that race for one invoice.
DOUBLE_CLICKS = 4
RACERS = 20
# Joins wait in slices, so Ctrl-C or SIGTERM reaches the main thread and the run still takes its stack down.
JOIN_POLL_S = 0.5


@dataclass(frozen=True)
class Answer:
    """One request and what the web tier answered: accepted (with its payment), refused (a code) or error."""

    op: str
    account_id: int
    key: str | None
    outcome: str
    payment_id: int | None = None
    code: str | None = None
    at: float = field(default_factory=time.time)


class Ledger:
    """Every answer of the run, from every thread."""

    def __init__(self):
        self.answers: list[Answer] = []
        self.notes: list[
            dict
        ] = []  # what the workload saw that is wrong on its face (a stale event accepted)
        self._lock = threading.Lock()

    def add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def note(self, **note) -> None:
        with self._lock:
            self.notes.append(note)

    def counts(self) -> dict[str, int]:
        with self._lock:
            tally = Counter(answer.outcome for answer in self.answers)
        return {"made": sum(tally.values()), **{k: tally.get(k, 0) for k in ("accepted", "refused", "error")}}


@dataclass
class Workload:
    """What operations need: the seeded accounts, the emulator and the ledger."""

    accounts: list[SeedAccount]
    emulator: Emulator
    ledger: Ledger

    def ask(self, op: str, account_id: int, key: str | None, call: Callable[[], object]) -> Answer:
        """Make one request and record its answer."""
        try:
            receipt = call()
            answer = Answer(op, account_id, key, "accepted", getattr(receipt, "payment_id", None))
        except RemitError as exc:
            answer = Answer(op, account_id, key, "refused", code=exc.code)
        except Exception as exc:  # noqa: BLE001 - a fault (database or broker down) answers the caller an error
            answer = Answer(op, account_id, key, "error", code=type(exc).__name__)
        self.ledger.add(answer)
        return answer


def _key(op: str) -> str:
    return f"{op}-{uuid.uuid4().hex[:16]}"


def _method(rng: random.Random, account: SeedAccount) -> int:
    return account.methods[rng.choice(CARD_TOKENS + BANK_TOKENS)]


def pay_invoices(work: Workload, rng: random.Random) -> None:
    account = rng.choice(work.accounts)
    chosen = rng.sample(account.invoices, rng.randint(1, 3))
    method, key = _method(rng, account), _key("pay_invoices")
    work.ask("pay_invoices", account.id, key, lambda: api.pay_invoices(account.id, chosen, method, key))


def pay_short(work: Workload, rng: random.Random) -> None:
    account = rng.choice(work.accounts)
    invoice, method, key = rng.choice(account.invoices), _method(rng, account), _key("pay_short")
    amount = rng.randint(1_00, 5_00)
    work.ask(
        "pay_short",
        account.id,
        key,
        lambda: api.pay_invoices(
            account.id, [invoice], method, key, amount=amount, short_reason="Damaged goods"
        ),
    )


def pay_amount(work: Workload, rng: random.Random) -> None:
    account = rng.choice(work.accounts)
    amount, method, key = rng.randint(10_00, 3_000_00), _method(rng, account), _key("pay_amount")
    work.ask("pay_amount", account.id, key, lambda: api.pay_amount(account.id, amount, method, key))


def make_deposit(work: Workload, rng: random.Random) -> None:
    account = rng.choice(work.accounts)
    amount, method, key = rng.randint(5_00, 500_00), _method(rng, account), _key("make_deposit")
    work.ask("make_deposit", account.id, key, lambda: api.make_deposit(account.id, amount, method, key))


def double_click(work: Workload, rng: random.Random) -> None:
    """One request sent by several threads at once with one key: one payment, the rest replays."""
    account = rng.choice(work.accounts)
    chosen, method, key = [rng.choice(account.invoices)], _method(rng, account), _key("double_click")
    _together(
        [
            lambda: work.ask(
                "double_click", account.id, key, lambda: api.pay_invoices(account.id, chosen, method, key)
            )
        ]
        * DOUBLE_CLICKS
    )


def race_for_invoice(work: Workload, rng: random.Random) -> None:
    """Twenty keys racing for one invoice: at most one may hold it."""
    account = rng.choice(work.accounts)
    invoice = rng.choice(account.invoices)
    calls = []
    for _ in range(RACERS):
        method, key = _method(rng, account), _key("race")
        calls.append(
            lambda m=method, k=key: work.ask(
                "race", account.id, k, lambda: api.pay_invoices(account.id, [invoice], m, k)
            )
        )
    _together(calls)


def scheduled_then_cancel(work: Workload, rng: random.Random) -> None:
    """A payment scheduled for today (asked yesterday), its cancel racing the dispatcher that starts it."""
    account = rng.choice(work.accounts)
    chosen, method, key = [rng.choice(account.invoices)], _method(rng, account), _key("scheduled")
    yesterday = datetime.now(UTC) - timedelta(days=1)
    answer = work.ask(
        "scheduled",
        account.id,
        key,
        lambda: api.pay_invoices(account.id, chosen, method, key, pay_on=date.today(), now=yesterday),
    )
    if answer.payment_id is None:
        return
    pause = rng.uniform(0, 0.3)

    def cancel():
        time.sleep(pause)
        work.ask(
            "cancel", account.id, None, lambda: api.cancel_scheduled_payment(account.id, answer.payment_id)
        )

    _together([cancel, lambda: messages.send_now("dispatch_due_payments", [()])])


def refund_at_stripe(work: Workload, rng: random.Random) -> None:
    """The seller refunds part or all of a paid card payment in Stripe's dashboard."""
    with transaction() as session:
        paid = session.execute(
            select(Payment.stripe_payment_intent_id, Payment.amount_minor)
            .where(Payment.status == "succeeded", Payment.stripe_payment_intent_id.is_not(None))
            .order_by(Payment.id)
        ).all()
    if not paid:
        return
    intent, amount = rng.choice(paid)
    refund = amount if rng.random() < 0.5 else rng.randint(1, amount)
    client = stripe.StripeClient(API_KEY, base_addresses={"api": work.emulator.url}, max_network_retries=0)
    try:
        client.v1.refunds.create(
            {"payment_intent": intent, "amount": refund}, options={"idempotency_key": _key("refund")}
        )
    except stripe.StripeError:
        pass  # refused (already refunded, a fault): the seller would try again later, or not


def authenticate(work: Workload, rng: random.Random) -> None:
    """Customers complete or abandon 3-D Secure on payments waiting for them."""
    for intent in work.emulator.listed("payment_intents"):
        if intent["status"] == "requires_action" and rng.random() < 0.5:
            customer_authenticates(work.emulator, intent["id"], rng.random() < 0.7)


def pay_with_credit(work: Workload, rng: random.Random) -> None:
    """Invoices paid with credit first and a method for the rest (nothing charged when credit covers it)."""
    account = rng.choice(work.accounts)
    chosen = rng.sample(account.invoices, rng.randint(1, 2))
    method, key = _method(rng, account), _key("pay_with_credit")
    work.ask(
        "pay_with_credit",
        account.id,
        key,
        lambda: api.pay_invoices(account.id, chosen, method, key, use_credit=True),
    )


def apply_credit(work: Workload, rng: random.Random) -> None:
    """Credit alone pays named invoices in full, or an amount oldest invoice first."""
    account = rng.choice(work.accounts)
    key = _key("apply_credit")
    if rng.random() < 0.5:
        chosen = [rng.choice(account.invoices)]
        work.ask("apply_credit", account.id, key, lambda: api.apply_credit(account.id, chosen, None, key))
    else:
        amount = rng.randint(1_00, 200_00)
        work.ask("apply_credit", account.id, key, lambda: api.apply_credit(account.id, None, amount, key))


def _waiting_for_customer(rng: random.Random) -> tuple[int, int, str] | None:
    """A payment waiting on its customer's 3-D Secure: (account, payment, intent), or None."""
    with transaction() as session:
        waiting = session.execute(
            select(Payment.account_id, Payment.id, Payment.stripe_payment_intent_id)
            .where(Payment.status == "requires_action", Payment.stripe_payment_intent_id.is_not(None))
            .order_by(Payment.id)
        ).all()
    return tuple(rng.choice(waiting)) if waiting else None


def confirm_3ds(work: Workload, rng: random.Random) -> None:
    """The customer completes (or fails) 3-D Secure in Stripe.js, then the portal calls confirm_payment,
    racing the webhook that says the same."""
    chosen = _waiting_for_customer(rng)
    if chosen is None:
        return
    account_id, payment_id, intent = chosen
    # If the intent moved on meanwhile, confirm_payment still reads what Stripe says now.
    customer_authenticates(work.emulator, intent, rng.random() < 0.8)
    work.ask("confirm_3ds", account_id, None, lambda: api.confirm_payment(account_id, payment_id))


def cancel_3ds(work: Workload, rng: random.Random) -> None:
    """The customer gives up on 3-D Secure and cancels, sometimes while completing it on another tab."""
    chosen = _waiting_for_customer(rng)
    if chosen is None:
        return
    account_id, payment_id, intent = chosen
    calls = [
        lambda: work.ask("cancel_3ds", account_id, None, lambda: api.cancel_payment(account_id, payment_id))
    ]
    if rng.random() < 0.3:
        calls.append(lambda: customer_authenticates(work.emulator, intent, True))
    _together(calls)


def customer_authenticates(emulator: Emulator, intent: str, success: bool) -> None:
    """The customer completes (or fails) 3-D Secure on the intent at the emulator. Refused when the intent
    moved on meanwhile (succeeded, or canceled first), as Stripe refuses it: the customer is too late."""
    try:
        emulator.control("POST", "authenticate", {"payment_intent": intent, "success": success})
    except OSError:
        pass


# Operation name -> (weight, function). Add a line here to add an operation to every run.
OPERATIONS: dict[str, tuple[int, Callable[[Workload, random.Random], None]]] = {
    "pay_invoices": (30, pay_invoices),
    "pay_short": (5, pay_short),
    "pay_amount": (8, pay_amount),
    "make_deposit": (8, make_deposit),
    "double_click": (6, double_click),
    "race_for_invoice": (2, race_for_invoice),
    "scheduled_then_cancel": (6, scheduled_then_cancel),
    "refund_at_stripe": (5, refund_at_stripe),
    "authenticate": (4, authenticate),
    "pay_with_credit": (5, pay_with_credit),
    "apply_credit": (4, apply_credit),
    "confirm_3ds": (4, confirm_3ds),
    "cancel_3ds": (2, cancel_3ds),
}


def drive(work: Workload, seed: int, threads: int, until: float) -> None:
    """Run operations from `threads` threads, each with its own seeded random stream, until `until`."""

    def loop(index: int) -> None:
        rng = random.Random(f"{seed}:workload:{index}")
        names = list(OPERATIONS)
        weights = [OPERATIONS[name][0] for name in names]
        while time.time() < until:
            name = rng.choices(names, weights)[0]
            try:
                OPERATIONS[name][1](work, rng)
            except Exception as exc:  # noqa: BLE001 - a fault hit the harness's own look-up; the run goes on
                work.ledger.note(kind="operation_interrupted", op=name, error=type(exc).__name__)
            time.sleep(rng.uniform(0, MAX_PAUSE_S))

    _together([lambda i=i: loop(i) for i in range(threads)])


def _together(calls: list[Callable[[], object]]) -> None:
    """Start every call on its own thread behind one barrier, and wait for all."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        call()

    workers = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for worker in workers:
        worker.start()
    for worker in workers:
        while worker.is_alive():
            worker.join(JOIN_POLL_S)
