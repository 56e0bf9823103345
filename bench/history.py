"""The payment history at size: one account with 100,000 payments over 10,000 invoices.

    .venv/bin/python -m bench.history [--payments 100000] [--invoices 10000] [--repeats 50]

Times api.list_payments on the first page and on a page 90% deep (keyset: both should cost the same),
and api.export_payments_csv over every payment, each beside a same-run baseline: the plain SELECT of the
same rows with psycopg, no filters, cursors, method display, invoice numbers or CSV.

Prints one JSON object on stdout; progress goes to stderr. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from bench.common import add_database_arguments, log, print_report, run_on_own_database, timings

# The targets on this machine: a page a portal can show while the person is still clicking,
# and an export of 100,000 payments in under five seconds.
TARGET_PAGE_MS = 20.0
TARGET_EXPORT_ROWS_PER_SECOND = 20_000
PAGE_SIZE = 50
# The deep page starts this far into the history: past any cache a page near the front enjoys.
DEEP_SHARE = 0.9
# One payment in this many pays two invoices, as a customer clearing a site's month does.
TWO_INVOICE_EVERY = 5
# Totals large enough for the ten or so payments each invoice gets: PostgreSQL refuses claims on an
# invoice beyond its total (migration 0007).

_SEED = [
    "INSERT INTO invoices (account_id, number, currency, total_minor, issued_on, due_on,"
    " discount_minor, voided,"
    " customer_visible) SELECT a.id, 'INV-' || lpad(n::text, 6, '0'), 'usd', 100000000 + n % 97 * 100,"
    " date '2024-01-01' + n % 700, date '2024-01-31' + n % 700, 0, false, true"
    " FROM accounts a, generate_series(1, :invoices) AS n",
    "INSERT INTO payments (account_id, kind, amount_minor, currency, payment_method_id, status,"
    " idempotency_key,"
    " request_hash, attempt, refunded_minor, needs_review, note, created_at, updated_at, finished_at)"
    " SELECT m.account_id, 'invoices', 500 + n * 7919 % 1000000, 'usd', m.id,"
    " (ARRAY['succeeded','succeeded','succeeded','failed','processing','canceled'])[1 + n % 6],"
    " 'bench-' || n, repeat('0', 64), 1, 0, false, CASE WHEN n % 50 = 0 THEN 'note ' || n END,"
    " timestamptz '2024-01-01' + n * interval '7 minutes',"
    " timestamptz '2024-01-01' + n * interval '7 minutes',"
    " timestamptz '2024-01-01' + n * interval '7 minutes' + interval '2 seconds'"
    " FROM generate_series(1, :payments) AS n"
    " JOIN payment_methods m ON m.kind = CASE WHEN n % 4 = 0 THEN 'us_bank_account' ELSE 'card' END",
    "INSERT INTO allocations (payment_id, invoice_id, amount_minor, paid_minor, discount_minor, state)"
    " SELECT p.id, 1 + (p.id + k) % :invoices, p.amount_minor, p.amount_minor, 0, 'applied'"
    " FROM payments p, generate_series(0, 1) AS k WHERE k = 0 OR p.id % :two_every = 0",
    "ANALYZE",
]
_BASELINE_PAGE = (
    "SELECT * FROM payments WHERE account_id = %s AND (created_at, id) < (%s, %s)"
    " ORDER BY created_at DESC, id DESC LIMIT %s"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50, help="timed calls of each page")
    add_database_arguments(parser, "remit_bench_history")
    return parser.parse_args(argv)


def seed(args: argparse.Namespace) -> int:
    """The seller, account and its two methods as rows; invoices, payments and allocations set-wise."""
    from sqlalchemy import text

    from db.session import get_engine, transaction
    from tests import factories

    with transaction() as session:
        account = factories.account(session, factories.seller(session, timezone="UTC"))
        factories.method(session, account)
        factories.method(session, account, kind="us_bank_account")
        account_id = account.id
    values = {"payments": args.payments, "invoices": args.invoices, "two_every": TWO_INVOICE_EVERY}
    with get_engine().begin() as connection:
        for statement in _SEED:
            connection.execute(text(statement), {k: v for k, v in values.items() if f":{k}" in statement})
    return account_id


def time_pages(account_id: int, after: str | None, repeats: int) -> list[float]:
    from tasks import api

    api.list_payments(account_id, after=after, limit=PAGE_SIZE)  # a warm connection and compiled query
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        api.list_payments(account_id, after=after, limit=PAGE_SIZE)
        seconds.append(time.perf_counter() - started)
    return seconds


def time_baseline_pages(url: str, account_id: int, position: tuple, repeats: int) -> list[float]:
    import psycopg

    seconds = []
    with psycopg.connect(url) as connection:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            connection.execute(_BASELINE_PAGE, (account_id, *position, PAGE_SIZE)).fetchall()
            seconds.append(time.perf_counter() - started)
    return seconds[1:]


def time_export(account_id: int) -> tuple[int, float]:
    from tasks import api

    started, lines = time.perf_counter(), 0
    for _ in api.export_payments_csv(account_id):
        lines += 1
    return lines - 1, time.perf_counter() - started


def time_baseline_export(url: str, account_id: int) -> tuple[int, float]:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT * FROM payments WHERE account_id = %s", (account_id,)).fetchall()
    return len(rows), time.perf_counter() - started


def deep_position(url: str, account_id: int, share: float) -> tuple:
    """(created_at, id) of the row a page share of the way into the newest-first history starts after."""
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(
            "SELECT created_at, id FROM payments WHERE account_id = %s"
            " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            (account_id, max(int(share * _count(connection, account_id)) - 1, 0)),
        ).fetchone()


def _count(connection, account_id: int) -> int:
    return connection.execute(
        "SELECT count(*) FROM payments WHERE account_id = %s", (account_id,)
    ).fetchone()[0]


def measure(args: argparse.Namespace, url: str, account_id: int) -> dict:
    from tasks.domain.history import encode_cursor

    position = deep_position(url, account_id, DEEP_SHARE)
    log(f"timing pages ({args.repeats} each)")
    first = time_pages(account_id, None, args.repeats)
    deep = time_pages(account_id, encode_cursor("newest", *position), args.repeats)
    newest = (datetime(9999, 1, 1, tzinfo=UTC), 0)
    baseline_first = time_baseline_pages(url, account_id, newest, args.repeats)
    baseline_deep = time_baseline_pages(url, account_id, position, args.repeats)
    log("timing the export")
    rows, spent = time_export(account_id)
    baseline_rows, baseline_spent = time_baseline_export(url, account_id)
    pages = {"first": timings(first), "deep": timings(deep)}
    export_rate = round(rows / spent)
    return {
        "payments": args.payments,
        "invoices": args.invoices,
        "page_size": PAGE_SIZE,
        "first_page": pages["first"],
        "deep_page": {**pages["deep"], "starts_after_share": DEEP_SHARE},
        "export": {"rows": rows, "seconds": round(spent, 3), "rows_per_second": export_rate},
        "baseline": {
            "first_page": timings(baseline_first),
            "deep_page": timings(baseline_deep),
            "export": {"rows": baseline_rows, "rows_per_second": round(baseline_rows / baseline_spent)},
        },
        "targets": {"page_p95_ms": TARGET_PAGE_MS, "export_rows_per_second": TARGET_EXPORT_ROWS_PER_SECOND},
        "target_met": max(p["p95_ms"] for p in pages.values()) < TARGET_PAGE_MS
        and export_rate > TARGET_EXPORT_ROWS_PER_SECOND,
    }


def run(args: argparse.Namespace) -> dict:
    return run_on_own_database(
        args,
        "remit-bench-history",
        f"seeding {args.payments} payments over {args.invoices} invoices",
        seed,
        measure,
    )


def main(argv: list[str] | None = None) -> int:
    return print_report(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
