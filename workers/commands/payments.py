"""`remit payment show ID|pi_...`: a payment's state, lines and timeline, as the dashboard shows them."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from tasks.domain.money import format_money
from workers.commands.common import CommandError


def cmd_show(args: argparse.Namespace) -> int:
    from db.queries.dashboard import find_payment_detail
    from db.queries.payments import find_payment_by_intent
    from db.session import get_sessionmaker

    with get_sessionmaker()() as session:
        payment_id = _payment_id(session, args.payment, find_payment_by_intent)
        detail = find_payment_detail(session, payment_id) if payment_id else None
    if detail is None:
        raise CommandError(f"no payment {args.payment}")
    for line in _lines(detail):
        print(line)
    return 0


def _payment_id(session, given: str, find_by_intent) -> int | None:
    if given.isdigit():
        return int(given)
    if given.startswith("pi_"):
        found = find_by_intent(session, given)
        return found.id if found else None
    raise CommandError(f"{given!r} is neither a payment id (a number) nor a PaymentIntent id (pi_...)")


def _lines(d) -> list[str]:
    p, money = d.payment, lambda minor: format_money(minor, d.payment.currency)
    lines = [
        f"payment {p.id}: {p.status}{' (flagged for review)' if p.needs_review else ''}, "
        f"{money(p.amount_minor)} {p.kind}",
        f"account:    {d.account.number} {d.account.name} (id {d.account.id})",
        f"method:     {d.method.kind} ....{d.method.last4} ({d.method.stripe_payment_method_id})",
        f"stripe:     {p.stripe_payment_intent_id or '-'}  charge {p.stripe_charge_id or '-'}",
        f"created:    {_when(p.created_at)}   finished {_when(p.finished_at)}   attempts {p.attempt}",
    ]
    if p.failure_code or p.failure_message:
        lines.append(f"failure:    {p.failure_code or '-'}: {p.failure_message or ''}")
    if p.refunded_minor:
        lines.append(f"refunded:   {money(p.refunded_minor)}")
    lines.append(f"lines ({len(d.allocations)}):")
    lines += [
        f"  invoice {invoice.number:<16} {money(a.amount_minor):>14}  {a.state}"
        for a, invoice in d.allocations
    ]
    lines += [f"refund {r.stripe_refund_id}: {money(r.amount_minor)} {r.status}" for r in d.refunds]
    lines += [f"dispute {x.stripe_dispute_id}: {money(x.amount_minor)} {x.status}" for x in d.disputes]
    lines += [f"email {e.id} {e.kind} to {e.recipient}: {e.status} ({e.attempts} attempts)" for e in d.emails]
    lines.append(f"timeline ({len(d.events)}):")
    lines += [
        f"  {_when(e.at)}  {e.from_status or '-':>18} -> {e.to_status:<18} {e.source}"
        f"{'' if e.applied else ' (not applied)'}{' ' + json.dumps(e.detail) if e.detail else ''}"
        for e in d.events
    ]
    return lines


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if moment else "-"


def register(sub) -> None:
    from workers.cli import DATABASE, command

    payment = command(sub, "payment", "look at one payment", None, DATABASE)
    verbs = payment.add_subparsers(dest="payment_command", required=True, metavar="{show}")
    show = command(
        verbs, "show", "a payment's state, invoice lines, refunds, emails and timeline", cmd_show, DATABASE
    )
    show.add_argument("payment", help="the payment's id, or its PaymentIntent's id (pi_...)")
