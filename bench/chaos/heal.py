"""After the faults: put everything back, then drive the stack to quiescence as the clock would, only sooner.

The sweepers and the reconciler are the clock's own flows (tasks.flows.*), called with a `now` past their
grace periods; the work they find is sent to the workers' actors, as on any tick.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import UTC, datetime, timedelta

import psycopg
import redis
from sqlalchemy import select

from bench.chaos.faults import Chaos
from bench.chaos.workload import customer_authenticates
from db.models import Payment
from db.session import transaction
from tasks.domain.attempts import SEARCH_AFTER
from tasks.flows import ach, balances, emails, payments, reconcile

_log = logging.getLogger("bench.chaos")
# The sweepers take work left alone this long, not their minutes of grace: a settle round comes every few
# seconds, and a shorter wait would re-send work that is merely queued behind the rest.
IDLE_S = 10
# Past every grace an email's attempts earn, and the payments sweeper's (a payment run 20 hours on).
PAST_GRACE = timedelta(hours=1)
# Past the reconciler's longest wait for an in-flight payment (5 days for an ACH debit).
PAST_STUCK = timedelta(days=6)
# Quiet means quiet twice in a row this far apart: a message in flight between two looks is seen.
SETTLE_POLL_S = 2.0
# A retry this far past its due time is not coming (see _messages).
STRANDED_AFTER_MS = 30_000
# Rows that say the stack is still busy; each count must be zero.
BUSY_SQL = {
    # requires_action may wait on a customer who never comes back: the checker tells those from stuck ones.
    "payments_in_flight": "SELECT count(*) FROM payments WHERE status IN "
    "('scheduled','pending','submitting','processing')",
    "events_waiting": "SELECT count(*) FROM stripe_events WHERE status = 'received'",
    "emails_queued": "SELECT count(*) FROM emails WHERE status = 'queued'",
    "balances_stale": "SELECT count(*) FROM accounts WHERE balance_stale_since IS NOT NULL",
}


def heal(chaos: Chaos) -> None:
    """Clear what the faults left: pending Stripe faults, delivery quirks, held and hung requests."""
    emulator = chaos.stack.emulator
    emulator.control("POST", "faults/clear", {})
    chaos.set_webhooks(duplicates=1, shuffle=False, hold=False, stale_seconds=0)
    emulator.control("POST", "release_held", {})
    emulator.control("POST", "release_hangs", {})


def settle(chaos: Chaos, seed: int, timeout_s: float) -> dict:
    """Sweep, reconcile and let customers finish 3-D Secure until nothing is busy twice running."""
    rng = random.Random(f"{seed}:settle")
    deadline, rounds, quiet_in_a_row, busy = time.time() + timeout_s, 0, 0, {}
    while time.time() < deadline and quiet_in_a_row < 2:
        rounds += 1
        _sweep(chaos, rng)
        chaos.stack.emulator.control("POST", "wait_for_deliveries", {"timeout": 10}, timeout=20)
        time.sleep(SETTLE_POLL_S)
        busy = _busy(chaos)
        stranded = busy.pop("retries_stranded")
        quiet_in_a_row = quiet_in_a_row + 1 if not any(busy.values()) else 0
    return {
        "rounds": rounds,
        "quiet": quiet_in_a_row >= 2,
        "still_busy": {k: v for k, v in busy.items() if v},
        "retries_stranded": stranded,
        "redis_keys": {} if quiet_in_a_row >= 2 else _key_sizes(redis.Redis.from_url(chaos.stack.redis.url)),
    }


def _key_sizes(client: redis.Redis) -> dict[str, int]:
    """Each Dramatiq list and hash with its length, for a report of a stack that did not settle."""
    sizes = {}
    for key in client.scan_iter("chaos:*"):
        kind = client.type(key)
        if kind in (b"list", b"hash", b"set"):
            sizes[key.decode()] = {b"list": client.llen, b"hash": client.hlen, b"set": client.scard}[kind](
                key
            )
    return sizes


def _sweep(chaos: Chaos, rng: random.Random) -> None:
    now = datetime.now(UTC)
    _past_search_window(chaos, now)
    passes = [
        lambda: payments.dispatch_due_payments(now),
        lambda: payments.sweep_payments(_idle(now, payments.SUBMITTING_GRACE)),
        lambda: reconcile.sweep_received_events(
            _idle(now, timedelta(seconds=reconcile.RECEIVED_GRACE_SECONDS))
        ),
        # An email's grace grows with its failed attempts (an SMTP outage): the hour is past all of them.
        lambda: emails.sweep_emails(now + PAST_GRACE),
        lambda: balances.sweep_stale_balances(_idle(now, balances.STALE_GRACE)),
        lambda: ach.resend_stuck_methods(_idle(now, ach.SYNC_GRACE)),
        lambda: reconcile.reconcile_with_stripe(
            now + PAST_STUCK,
            lookback_seconds=reconcile.UNDELIVERED_LOOKBACK_SECONDS + int(PAST_STUCK.total_seconds()),
        ),
    ]
    for run in passes:
        try:
            run()
        except Exception:  # noqa: BLE001 - a pass that fails now is tried again next round, as the clock would
            _log.exception("settle pass failed")
    _customers_answer_3ds(chaos, rng)


def _idle(now: datetime, grace: timedelta) -> datetime:
    """The `now` at which a sweeper whose grace is `grace` takes work left alone for IDLE_S."""
    return now + grace - timedelta(seconds=IDLE_S)


def _past_search_window(chaos: Chaos, now: datetime) -> None:
    """Run, as it would run 20 hours on, each payment whose key Stripe answers with a stored 500.

    Stripe replays a stored 500 to every retry of its key, so such a payment stays submitting until
    execute_payment, past the search window (tasks.domain.attempts.SEARCH_AFTER), looks for its intent
    and starts a fresh attempt. Only those keys: a key still in use by a worker would be raced.
    """
    poisoned = {
        r["idempotency_key"] for r in chaos.stack.emulator.listed("requests") if r["fault"] == "500_stored"
    }
    with transaction() as session:
        stuck = (
            session.execute(
                select(Payment.id).where(
                    Payment.status == "submitting", Payment.stripe_idempotency_key.in_(poisoned)
                )
            )
            .scalars()
            .all()
        )
    for payment_id in stuck:
        try:
            payments.execute_payment(payment_id, now + SEARCH_AFTER + PAST_GRACE)
            chaos.searched.add(payment_id)
        except Exception:  # noqa: BLE001 - tried again next round
            _log.exception("execute_payment past the search window failed")


def _customers_answer_3ds(chaos: Chaos, rng: random.Random) -> None:
    """Each payment waiting on 3-D Secure is completed or failed by its customer, as people eventually do."""
    emulator = chaos.stack.emulator
    for intent in emulator.listed("payment_intents"):
        if intent["status"] == "requires_action":
            customer_authenticates(emulator, intent["id"], rng.random() < 0.7)


def _messages(client: redis.Redis) -> dict[str, int]:
    """Messages waiting in a queue, and retries not yet due (or just due), by Dramatiq's Redis layout.

    A retry a live worker took from its delay queue but could not put back (Redis restarting at that moment)
    stays unacknowledged until that worker restarts: Dramatiq requeues only a dead worker's messages, and
    drops its in-memory delay queue on a broker connection error. Retries left in a delay queue long past
    their time were seen too. Their work is the sweepers': they are counted as stranded, not waited for.
    """
    now_ms = time.time() * 1000
    counts = {"messages_queued": 0, "retries_due": 0, "retries_stranded": 0}
    for key in client.scan_iter("chaos:*"):
        name = key.decode()
        if name.startswith("chaos:__") or name.endswith((".XQ", ".XQ.msgs")) or ":stripe:" in name:
            continue
        if name.endswith(".DQ.msgs"):
            for raw in client.hvals(key):
                late = now_ms - json.loads(raw).get("options", {}).get("eta", now_ms)
                counts["retries_stranded" if late > STRANDED_AFTER_MS else "retries_due"] += 1
        elif client.type(key) == b"list" and not name.endswith(".DQ"):  # retries: counted by their eta above
            counts["messages_queued"] += client.llen(key)
    return counts


def _busy(chaos: Chaos) -> dict[str, int]:
    stack = chaos.stack
    url = stack.postgres.url("remit_chaos").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        busy = {name: conn.execute(sql).fetchone()[0] for name, sql in BUSY_SQL.items()}
    busy.update(_messages(redis.Redis.from_url(stack.redis.url)))
    busy["webhooks_held"] = (
        0 if stack.emulator.control("POST", "wait_for_deliveries", {"timeout": 0.1})["done"] else 1
    )
    return busy
