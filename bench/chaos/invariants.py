"""The independent checker: what PostgreSQL, the emulator and the mail capture say, held against each other.

Each check reads plain rows (SQL, the emulator's control API, the captured messages) and returns the
violations it found; Remit's own code is used only to recompute account figures and to know which email
a transition owes (tasks.domain.transitions.TABLE, the documented contract).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from bench.chaos.workload import Answer
from tasks.domain.states import PaymentStatus as P
from tasks.domain.transitions import NOTHING_CHARGED, TABLE

PAID = {P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.REFUNDED, P.DISPUTED}
FINAL = {P.SUCCEEDED, P.FAILED, P.CANCELED, P.REFUNDED, P.PARTIALLY_REFUNDED, P.DISPUTED}
# An off-session charge that needs authentication waits, at Stripe, for the customer to come back to it.
CUSTOMER_STEP = ("requires_action", "requires_payment_method")
# Examples kept per invariant in the report; the count says how many there were.
EXAMPLES = 5


@dataclass
class World:
    """Everything the checks look at, read once after the heal."""

    db: dict[str, list[dict]]
    stripe: dict[str, list[dict]]
    mail: list[dict]
    answers: list[Answer]
    faults: list[dict]
    figures: list[dict]


def read_database(libpq_url: str) -> dict[str, list[dict]]:
    queries = {
        # A payment credit paid in full has no method (and no PaymentIntent): LEFT JOIN keeps it.
        "payments": "SELECT p.*, m.kind AS method_kind FROM payments p LEFT JOIN payment_methods m"
        " ON m.id = p.payment_method_id ORDER BY p.id",
        "allocations": "SELECT * FROM allocations ORDER BY id",
        "invoices": "SELECT * FROM invoices ORDER BY id",
        "credits": "SELECT * FROM credits ORDER BY id",
        "external_lines": "SELECT * FROM external_payment_lines ORDER BY id",
        "events": "SELECT id, type, status, error FROM stripe_events",
        "timeline": "SELECT payment_id, from_status, to_status, applied, source, detail, at"
        " FROM payment_events ORDER BY id",
        "emails": "SELECT id, kind, dedupe_key, status, payment_id, attempts, last_error FROM emails",
        "refunds": "SELECT * FROM refunds",
        "disputes": "SELECT * FROM disputes",
        "dead_letters": "SELECT actor, queue, error, attempts, status FROM failed_jobs ORDER BY id",
    }
    with psycopg.connect(libpq_url, row_factory=dict_row) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def read_stripe(emulator) -> dict[str, list[dict]]:
    names = ("payment_intents", "charges", "refunds", "disputes", "events", "deliveries")
    return {name: emulator.listed(name) for name in names}


def read_mail(smtp) -> list[dict]:
    return [
        {"message_id": m["Message-ID"], "dedupe_key": m["X-Remit-Dedupe-Key"], "to": m["To"]}
        for m in smtp.messages
    ]


def one_intent_per_payment(world: World) -> list:
    """No payment has a second PaymentIntent, and no intent has a second charge that took money."""
    by_payment = defaultdict(list)
    for intent in world.stripe["payment_intents"]:
        by_payment[(intent.get("metadata") or {}).get("payment_id")].append(intent["id"])
    found = [{"payment_id": pid, "intents": ids} for pid, ids in by_payment.items() if len(ids) > 1]
    taken = defaultdict(list)
    for charge in world.stripe["charges"]:
        if charge.get("status") in ("succeeded", "pending"):
            taken[charge.get("payment_intent")].append(charge["id"])
    found += [{"intent": pi, "charges": ids} for pi, ids in taken.items() if len(ids) > 1]
    known = {str(p["id"]) for p in world.db["payments"]}
    found += [
        {"intent_without_payment": ids, "payment_id": pid}
        for pid, ids in by_payment.items()
        if pid not in known
    ]
    return found


def stripe_agrees_with_ledger(world: World) -> list:
    """Every intent that took money is recorded paid under its id; nothing paid that Stripe did not take."""
    payments = {
        p["stripe_payment_intent_id"]: p for p in world.db["payments"] if p["stripe_payment_intent_id"]
    }
    intents = {i["id"]: i for i in world.stripe["payment_intents"]}
    found = []
    for intent in intents.values():
        payment = payments.get(intent["id"])
        if intent["status"] == "succeeded" and (payment is None or payment["status"] not in PAID):
            found.append(
                {
                    "intent": intent["id"],
                    "stripe": "succeeded",
                    "recorded": payment and [payment["id"], payment["status"]],
                }
            )
    for payment in world.db["payments"]:
        intent = intents.get(payment["stripe_payment_intent_id"])
        if _paid_from_credit_alone(payment):
            if intent is not None:
                found.append({"payment_id": payment["id"], "credit_only_but_charged": intent["id"]})
            continue
        if payment["status"] in PAID and (intent is None or intent["status"] != "succeeded"):
            found.append(
                {
                    "payment_id": payment["id"],
                    "recorded": payment["status"],
                    "stripe": intent and intent["status"],
                }
            )
    return found


def _paid_from_credit_alone(payment: dict) -> bool:
    """Credit covered it all: nothing to charge, so Stripe must hold no intent for it."""
    return payment["amount_minor"] == 0 and payment["credit_used_minor"] > 0


def disputes_and_refunds_recorded(world: World) -> list:
    """Every dispute and refund at Stripe has its row, in Stripe's status; a standing dispute is not paid."""
    found = []
    disputes = {d["stripe_dispute_id"]: d for d in world.db["disputes"]}
    payments = {
        p["stripe_payment_intent_id"]: p for p in world.db["payments"] if p["stripe_payment_intent_id"]
    }
    for dispute in world.stripe["disputes"]:
        payment = payments.get(dispute["payment_intent"])
        if dispute["id"] not in disputes:
            found.append({"dispute": dispute["id"], "missing_row": True})
        if dispute["status"] != "won" and payment is not None and payment["status"] != P.DISPUTED:
            found.append(
                {"dispute": dispute["id"], "payment_id": payment["id"], "recorded": payment["status"]}
            )
    refunds = {r["stripe_refund_id"]: r for r in world.db["refunds"]}
    for refund in world.stripe["refunds"]:
        row = refunds.get(refund["id"])
        if row is None or row["status"] != refund["status"]:
            found.append(
                {"refund": refund["id"], "stripe": refund["status"], "recorded": row and row["status"]}
            )
    return found


def invoices_not_overpaid(world: World) -> list:
    """No invoice has more applied (allocations with their discounts, outside payments) than it owes.

    Credit a payment spends is part of its allocations (the credit rows say where it came from), and an
    outside line kept as credit because a payment held its invoice settles nothing there.
    """
    applied = defaultdict(int)
    for row in world.db["allocations"]:
        if row["state"] == "applied":
            applied[row["invoice_id"]] += row["amount_minor"] + row["discount_minor"]
    for row in world.db["external_lines"]:
        if not row["as_credit"]:
            applied[row["invoice_id"]] += row["amount_minor"]
    totals = {i["id"]: i["total_minor"] for i in world.db["invoices"]}
    return [
        {"invoice_id": iid, "owes": totals[iid], "applied": amount}
        for iid, amount in applied.items()
        if amount > totals[iid]
    ]


def credit_spent_once(world: World) -> list:
    """Credit is never spent twice: a paid payment holds applied credit rows worth exactly what it says it
    spent, an ended unpaid one holds none, and no credit row is negative.

    Payments a refund or dispute touched are left out: those give spent credit back by their own rules.
    """
    held = defaultdict(lambda: defaultdict(int))
    for row in world.db["credits"]:
        if row["used_by_payment_id"] is not None:
            held[row["used_by_payment_id"]][row["state"]] += row["amount_minor"]
    touched = {
        line["payment_id"]
        for line in world.db["timeline"]
        if line["applied"] and line["to_status"] in (P.DISPUTED, P.REFUNDED, P.PARTIALLY_REFUNDED)
    }
    found = [
        {"credit_id": row["id"], "amount": row["amount_minor"]}
        for row in world.db["credits"]
        if row["amount_minor"] <= 0
    ]
    for payment in world.db["payments"]:
        spent, rows = payment["credit_used_minor"], held.get(payment["id"], {})
        if payment["id"] in touched:
            continue
        if payment["status"] == P.SUCCEEDED and rows.get("applied", 0) != spent:
            found.append({"payment_id": payment["id"], "spent": spent, "credit_rows": dict(rows)})
        elif payment["status"] in (P.FAILED, P.CANCELED) and (rows.get("reserved") or rows.get("applied")):
            found.append(
                {"payment_id": payment["id"], "status": payment["status"], "credit_rows": dict(rows)}
            )
    return found


def waiting_on_customer(world: World) -> list[dict]:
    """Payments Stripe and Remit both hold for the customer's authentication: not final, and rightly so."""
    intents = {i["id"]: i["status"] for i in world.stripe["payment_intents"]}
    return [
        p
        for p in world.db["payments"]
        if p["status"] == P.REQUIRES_ACTION and intents.get(p["stripe_payment_intent_id"]) in CUSTOMER_STEP
    ]


def payments_final(world: World) -> list:
    """Every payment ended (or waits on its customer); none still holds an invoice it no longer pays."""
    status = {p["id"]: p["status"] for p in world.db["payments"]}
    intents = {i["id"]: i["status"] for i in world.stripe["payment_intents"]}
    waiting = {p["id"] for p in waiting_on_customer(world)}
    found = [
        {
            "payment_id": p["id"],
            "status": p["status"],
            "intent": p["stripe_payment_intent_id"],
            "stripe": intents.get(p["stripe_payment_intent_id"]),
            "timeline": _timeline(world, p["id"]),
        }
        for p in world.db["payments"]
        if p["status"] not in FINAL and p["id"] not in waiting
    ]
    found += [
        {
            "payment_id": a["payment_id"],
            "invoice_id": a["invoice_id"],
            "reserved_but": status[a["payment_id"]],
        }
        for a in world.db["allocations"]
        if a["state"] == "reserved" and status[a["payment_id"]] in FINAL
    ]
    return found


def events_processed(world: World) -> list:
    """Every event Stripe delivered with a 2xx is stored and processed (or knowingly ignored)."""
    stored = {e["id"]: e for e in world.db["events"]}
    delivered = {
        d["event_id"] for d in world.stripe["deliveries"] if d["status"] and 200 <= d["status"] < 300
    }
    found = []
    for event_id in sorted(delivered):
        row = stored.get(event_id)
        if row is None or row["status"] not in ("processed", "ignored"):
            found.append({"event": event_id, "stored": row and row["status"], "error": row and row["error"]})
    return found


def owed_emails_sent_once(world: World) -> list:
    """Each email a payment's transitions owe was sent, and reached the mail server under one Message-ID."""
    payments = {p["id"]: p for p in world.db["payments"]}
    owed = set()
    for line in world.db["timeline"]:
        if not line["applied"] or line["from_status"] == line["to_status"] or line["from_status"] is None:
            continue
        move = (P(line["from_status"]), P(line["to_status"]))
        rule = TABLE.get(move) or NOTHING_CHARGED.get(move)
        payment = payments[line["payment_id"]]
        kind = rule and rule.email_for(payment["method_kind"], payment["kind"])
        if kind:
            owed.add(f"{kind}:payment:{payment['id']}")
    emails = {e["dedupe_key"]: e for e in world.db["emails"]}
    found = [{"owed": key, "missing_row": True} for key in sorted(owed) if key not in emails]
    ids = defaultdict(set)
    for message in world.mail:
        ids[message["dedupe_key"]].add(message["message_id"])
    for key, email in emails.items():
        if email["status"] != "sent" or len(ids.get(key, ())) != 1:
            found.append(
                {
                    "email": key,
                    "status": email["status"],
                    "message_ids": sorted(ids.get(key, ())),
                    "error": email["last_error"],
                }
            )
    found += [{"mail_without_row": key} for key in ids if key not in emails]
    return found


def timeline_matches_status(world: World) -> list:
    """Each payment's status is where its timeline of applied transitions ends."""
    last = {}
    for line in world.db["timeline"]:
        if line["applied"]:
            last[line["payment_id"]] = line["to_status"]
    return [
        {"payment_id": p["id"], "status": p["status"], "timeline_ends": last.get(p["id"])}
        for p in world.db["payments"]
        if last.get(p["id"], p["status"]) != p["status"]
    ]


def answers_have_rows(world: World) -> list:
    """Every request the web tier accepted has its payment, under its key; one key is one payment."""
    payments = {p["id"]: p for p in world.db["payments"]}
    found, by_key = [], defaultdict(set)
    for answer in world.answers:
        if answer.outcome != "accepted" or answer.payment_id is None:
            continue
        row = payments.get(answer.payment_id)
        if (
            row is None
            or row["account_id"] != answer.account_id
            or (answer.key and row["idempotency_key"] != answer.key)
        ):
            found.append({"op": answer.op, "key": answer.key, "payment_id": answer.payment_id})
        if answer.key:
            by_key[(answer.account_id, answer.key)].add(answer.payment_id)
    found += [{"key": key[1], "payments": sorted(ids)} for key, ids in by_key.items() if len(ids) > 1]
    return found


def account_figures_recomputed(world: World) -> list:
    """The stored balance figures equal a recomputation from the ledger."""
    return [row for row in world.figures if row["stored"] != row["recomputed"]]


def stale_signatures_refused(world: World) -> list:
    """A replayed event with a stale signature was never accepted."""
    return [fault for fault in world.faults if fault.get("accepted")]


CHECKS: dict[str, Callable[[World], list]] = {
    "one_intent_and_charge_per_payment": one_intent_per_payment,
    "stripe_agrees_with_ledger": stripe_agrees_with_ledger,
    "disputes_and_refunds_recorded": disputes_and_refunds_recorded,
    "invoices_not_overpaid": invoices_not_overpaid,
    "credit_spent_once": credit_spent_once,
    "payments_final": payments_final,
    "timeline_matches_status": timeline_matches_status,
    "delivered_events_processed": events_processed,
    "owed_emails_sent_once": owed_emails_sent_once,
    "account_figures_recomputed": account_figures_recomputed,
    "accepted_requests_have_rows": answers_have_rows,
    "stale_signatures_refused": stale_signatures_refused,
}


def check(world: World) -> dict[str, dict]:
    results = {}
    for name, fn in CHECKS.items():
        found = fn(world)
        results[name] = {"violations": len(found), "examples": [_plain(f) for f in found[:EXAMPLES]]}
    return results


def recompute_figures(now: datetime | None = None) -> list[dict]:
    """Stored figures beside tasks.flows.balances.figures_for's recomputation, per account."""
    from sqlalchemy import select

    from db.models import Account
    from db.session import transaction
    from tasks.flows.balances import figures_for

    now = now or datetime.now(UTC)
    rows = []
    fields = ("balance_minor", "overdue_minor", "pending_minor", "scheduled_minor", "credit_minor")
    with transaction() as session:
        for account in session.scalars(select(Account).order_by(Account.id)):
            figures = figures_for(session, account, now)
            rows.append(
                {
                    "account_id": account.id,
                    "stored": {f: getattr(account, f) for f in fields},
                    "recomputed": {f: getattr(figures, f) for f in fields},
                }
            )
    return rows


def _timeline(world: World, payment_id: int) -> list[str]:
    """A payment's timeline in one line per entry, for the report's examples."""
    return [
        f"{line['at']:%H:%M:%S.%f} {line['from_status']}->{line['to_status']} "
        f"{'applied' if line['applied'] else 'refused'} by {line['source']} "
        f"{json.dumps(line['detail'])[:160]}"
        for line in world.db["timeline"]
        if line["payment_id"] == payment_id
    ]


def _plain(value):
    return value if isinstance(value, dict) else {"value": str(value)}
