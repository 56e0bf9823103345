"""The invoice list at size: one account with 10,000 invoices, a tenth of them site invoices under parents,
paid in part by 5,000 payments.

    .venv/bin/python -m bench.invoices [--invoices 10000] [--payments 5000] [--repeats 30]

Times api.list_invoices on the first page and on a page 90% deep (default sort), with a search, with a
status and layout filter, and sorted by the amount owed, and api.export_invoices_csv over every invoice,
beside a same-run baseline: the plain SELECT of the account's invoices with psycopg, no derived status,
children, standing or CSV.

Prints one JSON object on stdout; progress goes to stderr. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.common import add_database_arguments, log, print_report, run_on_own_database, timings

# The targets on this machine: a page a portal can show while the person is still clicking, and
# an export of 10,000 invoices in half a second.
TARGET_PAGE_MS = 20.0
TARGET_EXPORT_ROWS_PER_SECOND = 20_000
PAGE_SIZE = 50
# The deep page starts this far into the list: past any cache a page near the front enjoys.
DEEP_SHARE = 0.9
# One invoice in this many is a parent whose next nine are its sites (multi-site billing).
PARENT_EVERY = 100

_SEED = [
    "INSERT INTO invoices (account_id, number, site_name, currency, total_minor, issued_on, due_on,"
    " discount_minor, voided, customer_visible)"
    " SELECT a.id, 'INV-' || lpad(n::text, 6, '0'),"
    " CASE WHEN n % :parent_every BETWEEN 1 AND 9 THEN 'Site ' || n % :parent_every END, 'usd',"
    " 10000 + n % 97 * 100, date '2024-01-01' + n % 700, date '2024-01-31' + n % 700, 0, n % 211 = 0, true"
    " FROM accounts a, generate_series(1, :invoices) AS n",
    "UPDATE invoices c SET parent_id = p.id FROM invoices p"
    " WHERE c.site_name IS NOT NULL AND p.number = 'INV-' || lpad((substr(c.number, 5)::int"
    " / :parent_every * :parent_every)::text, 6, '0') AND p.account_id = c.account_id",
    "INSERT INTO payments (account_id, kind, amount_minor, currency, payment_method_id, status,"
    " idempotency_key, request_hash, attempt, refunded_minor, needs_review, scheduled_for, created_at,"
    " updated_at)"
    " SELECT m.account_id, 'invoices', 5000, 'usd', m.id,"
    " (ARRAY['succeeded','succeeded','processing','scheduled'])[1 + n % 4], 'bench-' || n, repeat('0', 64),"
    " 1, 0, false, CASE WHEN n % 4 = 3 THEN date '2030-01-01' END, now(), now()"
    " FROM generate_series(1, :payments) AS n, payment_methods m",
    "INSERT INTO allocations (payment_id, invoice_id, amount_minor, paid_minor, discount_minor, state)"
    " SELECT p.id, i.id, 5000, 5000, 0, CASE p.status WHEN 'succeeded' THEN 'applied' ELSE 'reserved' END"
    " FROM payments p JOIN invoices i ON i.number = 'INV-' || lpad((p.id * 2)::text, 6, '0')"
    " WHERE NOT i.voided",
    "ANALYZE",
]
_BASELINE = "SELECT * FROM invoices WHERE account_id = %s ORDER BY due_on, id"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.invoices", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--payments", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls of each page")
    add_database_arguments(parser, "remit_bench_invoices")
    return parser.parse_args(argv)


def seed(args: argparse.Namespace) -> int:
    """The seller, account and a card as rows; invoices, parents, payments and allocations set-wise."""
    from sqlalchemy import text

    from db.session import get_engine, transaction
    from tests import factories

    with transaction() as session:
        account = factories.account(session, factories.seller(session, timezone="UTC"))
        factories.method(session, account)
        account_id = account.id
    values = {"invoices": args.invoices, "payments": args.payments, "parent_every": PARENT_EVERY}
    with get_engine().begin() as connection:
        for statement in _SEED:
            connection.execute(text(statement), {k: v for k, v in values.items() if f":{k}" in statement})
    return account_id


def time_pages(account_id: int, repeats: int, **query) -> list[float]:
    from tasks import api

    api.list_invoices(account_id, limit=PAGE_SIZE, **query)  # a warm connection and compiled queries
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        api.list_invoices(account_id, limit=PAGE_SIZE, **query)
        seconds.append(time.perf_counter() - started)
    return seconds


def deep_cursor(account_id: int, share: float) -> str | None:
    """The cursor of the page that starts share of the way into the default order, walked page by page."""
    from tasks import api

    page = api.list_invoices(account_id, limit=200)
    wanted, seen = share * _total(account_id), len(page.items)
    while page.next_cursor and seen < wanted:
        after = page.next_cursor
        page = api.list_invoices(account_id, after=after, limit=200)
        seen += len(page.items)
    return page.next_cursor


def _total(account_id: int) -> int:
    from tasks import api

    return len(api.list_invoices(account_id))


def time_export(account_id: int) -> tuple[int, float]:
    from tasks import api

    started, lines = time.perf_counter(), 0
    for _ in api.export_invoices_csv(account_id):
        lines += 1
    return lines - 1, time.perf_counter() - started


def time_baseline(url: str, account_id: int, repeats: int) -> tuple[list[float], int]:
    import psycopg

    seconds, rows = [], 0
    with psycopg.connect(url) as connection:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            rows = len(connection.execute(_BASELINE, (account_id,)).fetchall())
            seconds.append(time.perf_counter() - started)
    return seconds[1:], rows


def measure(args: argparse.Namespace, url: str, account_id: int) -> dict:
    log(f"timing pages ({args.repeats} each)")
    pages = {
        "first": timings(time_pages(account_id, args.repeats, sort="due_asc")),
        "deep": timings(time_pages(account_id, args.repeats, after=deep_cursor(account_id, DEEP_SHARE))),
        "search": timings(time_pages(account_id, args.repeats, search="INV-00")),
        "open_multi_site": timings(time_pages(account_id, args.repeats, status="open", layout="multi")),
        # The amount owed is computed from the ledger in the page's own statement, for every invoice.
        "owed_desc": timings(time_pages(account_id, args.repeats, sort="owed_desc")),
    }
    log("timing the export")
    rows, spent = time_export(account_id)
    baseline, baseline_rows = time_baseline(url, account_id, args.repeats)
    export_rate = round(rows / spent)
    return {
        "invoices": args.invoices,
        "payments": args.payments,
        "page_size": PAGE_SIZE,
        "pages": pages,
        "export": {"rows": rows, "seconds": round(spent, 3), "rows_per_second": export_rate},
        "baseline": {
            "select_all_invoices": timings(baseline),
            "rows_per_second": round(baseline_rows / (sum(baseline) / len(baseline))),
        },
        "targets": {"page_p95_ms": TARGET_PAGE_MS, "export_rows_per_second": TARGET_EXPORT_ROWS_PER_SECOND},
        "target_met": max(p["p95_ms"] for p in pages.values()) < TARGET_PAGE_MS
        and export_rate > TARGET_EXPORT_ROWS_PER_SECOND,
    }


def run(args: argparse.Namespace) -> dict:
    return run_on_own_database(
        args,
        "remit-bench-invoices",
        f"seeding {args.invoices} invoices and {args.payments} payments",
        seed,
        measure,
    )


def main(argv: list[str] | None = None) -> int:
    return print_report(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
