"""Ledger feed benchmark: N events written in one transaction, then delivered, signed and in order, to the
reference ERP receiver (sandbox/erp.py) over HTTP on loopback.

Run: python -m bench.feed [--events 10000] on its own database (created, migrated and dropped). Prints one
JSON object; exits 1 when the target is missed or an event arrived out of order. The baseline, in the same
run, delivers a sample the naive way (a new connection and a transaction per event) and scales it to N: the
feed's kept-alive connection and page-at-a-time bookkeeping must beat it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

from bench.common import add_database_arguments, print_report, run_on_own_database

# An ERP back from a weekend outage catches up on 10,000 events within a minute on this 2-core machine.
TARGETS = {"deliver_10000_s": 60.0}


def run(events: int, baseline_sample: int) -> dict:
    """Seed a seller with an endpoint at the receiver, write the events, time their delivery; the report."""
    from sandbox.erp import make_server
    from tasks import api
    from tasks.flows.feed_delivery import deliver_feed

    secret = "rfsec_bench_" + uuid.uuid4().hex
    server, ledger = make_server(0, [secret])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        seller_id = _seed_seller()
        api.set_feed_endpoint(seller_id, f"http://127.0.0.1:{server.server_address[1]}/feed", secret)
        write_s = _write(seller_id, events)
        started = time.perf_counter()
        while deliver_feed(seller_id, datetime.now(UTC)):
            pass
        deliver_s = time.perf_counter() - started
        received = sum(1 for e in ledger.events if e["seller_id"] == seller_id)
        in_order = received == events and not ledger.gaps and ledger.refused == 0
        baseline_s = _naive(seller_id, baseline_sample, server.server_address[1], secret) * events
    finally:
        server.shutdown()
        server.server_close()
    return {
        "events": events,
        "write_s": round(write_s, 3),
        "deliver_s": round(deliver_s, 3),
        "events_per_s": round(events / deliver_s) if deliver_s else None,
        "received_in_order": in_order,
        "baseline_naive_s": round(baseline_s, 3),
        "speedup": round(baseline_s / deliver_s, 1) if deliver_s else None,
        "targets": TARGETS,
        "target_met": in_order and deliver_s * 10_000 / max(events, 1) <= TARGETS["deliver_10000_s"],
    }


def _seed_seller() -> int:
    from db.models import Seller
    from db.session import transaction

    with transaction() as session:
        seller = Seller(slug=f"bench-{uuid.uuid4().hex[:12]}", name="Bench feed", timezone="UTC")
        session.add(seller)
        session.flush()
        return seller.id


def _write(seller_id: int, events: int) -> float:
    from db.session import transaction
    from tasks.flows import feed

    started = time.perf_counter()
    with transaction() as session:
        for n in range(events):
            data = {"payment_id": n, "amount_minor": 1_000 + n, "currency": "usd", "status": "succeeded"}
            feed.emit(session, "payment.succeeded", data, seller_id=seller_id)
    return time.perf_counter() - started


def _naive(seller_id: int, sample: int, port: int, secret: str) -> float:
    """Seconds per event delivered the naive way: a fresh connection and a transaction for each."""
    import requests

    from db.queries import feed_endpoints as endpoint_rows
    from db.queries import ledger_events as event_rows
    from db.session import transaction
    from tasks.domain.feed import SIGNATURE_HEADER, signature_header
    from tasks.flows.feed_delivery import event_body

    with transaction() as session:
        chosen = event_rows.list_events_after(session, seller_id, 0, sample)
    started = time.perf_counter()
    for event in chosen:
        body = event_body(event)
        headers = {
            SIGNATURE_HEADER: signature_header([secret], int(time.time()), body),
            "Connection": "close",
        }
        answer = requests.post(f"http://127.0.0.1:{port}/feed", data=body, headers=headers, timeout=10)
        with transaction() as session:
            now = datetime.now(UTC)
            row = dict(seller_id=seller_id, event_id=event.id, sequence=event.sequence, replay=True)
            endpoint_rows.insert_deliveries(
                session,
                [
                    {
                        **row,
                        "status": "succeeded",
                        "attempts": 1,
                        "response_code": answer.status_code,
                        "last_error": None,
                        "first_attempt_at": now,
                        "last_attempt_at": now,
                    }
                ],
            )
    return (time.perf_counter() - started) / max(len(chosen), 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.feed", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--baseline-sample", type=int, default=300)
    add_database_arguments(parser, "remit_bench_feed", "the feed's lock lives there")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run_on_own_database(
        args,
        "remit-bench-feed",
        f"writing and delivering {args.events} ledger events",
        lambda args: None,
        lambda args, url, seeded: run(args.events, args.baseline_sample),
    )
    return print_report(report)


if __name__ == "__main__":
    sys.exit(main())
