"""ERP sync benchmark: one sync_invoices call of N new invoices, then the same batch replayed (all unchanged).

Run: python -m bench.sync [--invoices 10000] on its own database (created, migrated and dropped). Prints one
JSON object; exits 1 when the target is missed. The baseline, in the same run, syncs a sample one record per
call (what a row-at-a-time client would do) and scales it to N: the batch must beat it by far, and finish
within the target.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from bench.common import add_database_arguments, print_report, run_on_own_database

# The issue asks for 10,000 invoices "within seconds" on this 2-core machine.
TARGETS = {"sync_10000_s": 5.0}
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def run(invoices: int, baseline_sample: int) -> dict:
    """Seed a seller and 50 accounts, time the batch, its replay and the one-per-call sample; the report."""
    from tasks import api

    seller_id, accounts = _seed_seller(api)
    records = [_invoice(n, accounts) for n in range(invoices)]
    started = time.perf_counter()
    first = api.sync_invoices(seller_id, records, NOW)
    batch_s = time.perf_counter() - started
    started = time.perf_counter()
    replay = api.sync_invoices(seller_id, records, NOW)
    replay_s = time.perf_counter() - started
    sample = [_invoice(invoices + n, accounts) for n in range(baseline_sample)]
    started = time.perf_counter()
    for record in sample:
        api.sync_invoices(seller_id, [record], NOW)
    per_record_s = (time.perf_counter() - started) / max(baseline_sample, 1)
    first_applied = sum(r.outcome == "applied" for r in first)
    unchanged = sum(r.outcome == "unchanged" for r in replay)
    return {
        "invoices": invoices,
        "applied": first_applied,
        "unchanged_on_replay": unchanged,
        "batch_s": round(batch_s, 3),
        "replay_s": round(replay_s, 3),
        "baseline_one_per_call_s": round(per_record_s * invoices, 3),
        "speedup": round(per_record_s * invoices / batch_s, 1) if batch_s else None,
        "targets": TARGETS,
        "target_met": batch_s * 10_000 / max(invoices, 1) <= TARGETS["sync_10000_s"]
        and first_applied == invoices
        and unchanged == invoices,
    }


def _seed_seller(api) -> tuple[int, list[str]]:
    from db.models import Seller
    from db.session import transaction

    with transaction() as session:
        seller = Seller(slug=f"bench-{uuid.uuid4().hex[:12]}", name="Bench ERP", timezone="UTC")
        session.add(seller)
        session.flush()
        seller_id = seller.id
    accounts = [
        {
            "external_id": f"C{n}",
            "version": 1,
            "number": f"A{n}",
            "name": f"Customer {n}",
            "billing_email": f"ap{n}@bench.test",
        }
        for n in range(50)
    ]
    api.sync_accounts(seller_id, accounts)
    return seller_id, [a["external_id"] for a in accounts]


def _invoice(n: int, accounts: list[str]) -> dict:
    issued = date(2026, 10, 1) + timedelta(days=n % 60)
    return {
        "external_id": f"I{n}",
        "version": 1,
        "account_external_id": accounts[n % len(accounts)],
        "number": f"INV-{n:06d}",
        "total_minor": 1_000 + n % 9_000,
        "issued_on": issued.isoformat(),
        "due_on": (issued + timedelta(days=30)).isoformat(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--baseline-sample", type=int, default=200)
    add_database_arguments(parser, "remit_bench_sync")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_on_own_database(
        args,
        "remit-bench-sync",
        f"syncing {args.invoices} invoices",
        lambda args: None,
        lambda args, url, seeded: run(args.invoices, args.baseline_sample),
    )
    return print_report(report)


if __name__ == "__main__":
    sys.exit(main())
