"""Rows and messages for dashboard tests, and readers for its HTML tables and Prometheus text."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import dramatiq

from db.models import Email, StripeEvent
from tests import factories


def enqueue(broker, queue: str, at: datetime, *, delay_ms: int | None = None, actor: str = "execute_payment"):
    """Put a message stamped `at` on a queue, as if sent then."""
    message = dramatiq.Message(
        queue_name=queue,
        actor_name=actor,
        args=(1,),
        kwargs={},
        options={},
        message_timestamp=int(at.timestamp() * 1000),
    )
    return broker.enqueue(message, delay=delay_ms)


def row_cells(body: str, first_cell: str, section: str | None = None) -> tuple[list[str], bool]:
    """The text of the table row whose first cell reads first_cell, and whether it is highlighted.

    With section, only the part of the page under the <h2> of that name is searched.
    """
    if section is not None:
        body = re.split(f"<h2[^>]*>{re.escape(section)}</h2>", body, maxsplit=1)[1].split("<h2", 1)[0]
    for attrs, inner in re.findall(r"<tr([^>]*)>(.*?)</tr>", body, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", inner, re.S)
        ]
        if cells and cells[0] == "" and len(cells) > 1:  # a selection checkbox comes first
            cells = cells[1:]
        if cells and cells[0] == first_cell:
            return cells, 'class="alert"' in attrs
    raise AssertionError(f"no row starting {first_cell!r}")


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.]+(?:e[+-]?[0-9]+)?)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples keyed by (name, labels); fails on any line that is not valid exposition format."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter", "histogram"), line
            typed.add(name)
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        base = re.sub(r"_(total|created|bucket|count|sum)$", "", name)
        assert name in typed or base in typed, f"{name} has no TYPE line"
        if labels is not None:
            assert re.fullmatch(f"{LABEL.pattern}(,{LABEL.pattern})*", labels), f"bad labels: {line!r}"
        pairs = frozenset(LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def shop_rows(session, **account_overrides):
    seller = factories.seller(session)
    account = factories.account(session, seller, **account_overrides)
    method = factories.method(session, account)
    return seller, account, method


def stripe_event(session, event_id: str, received_at: datetime, status: str = "received") -> StripeEvent:
    row = StripeEvent(
        id=event_id, type="payment_intent.succeeded", payload={}, received_at=received_at, status=status
    )
    session.add(row)
    return row


def email(session, seller, status: str, created_at: datetime, n: int, payment=None, **extra) -> Email:
    row = Email(
        kind="payment_confirmation",
        recipient=f"ap{n}@customer.test",
        context={},
        dedupe_key=f"test:{n}",
        seller_id=seller.id,
        payment_id=payment.id if payment else None,
        status=status,
        created_at=created_at,
        **extra,
    )
    session.add(row)
    return row


def ago(now: datetime, **delta) -> datetime:
    return now - timedelta(**delta)
