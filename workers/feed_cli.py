"""`remit feed ...`: ops commands for the sellers' ledger feeds (endpoints, secrets, status, replay)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `remit feed` and its commands to the remit command."""
    feed = subparsers.add_parser("feed", help="the sellers' ledger feeds: endpoints, status, replay")
    commands = feed.add_subparsers(dest="feed_command", required=True)
    endpoint = commands.add_parser(
        "endpoint", help="set a seller's endpoint (prints the secret to give its ERP)"
    )
    endpoint.add_argument("--seller", type=int, required=True, help="the seller's id")
    endpoint.add_argument("--url", required=True, help="the ERP's https endpoint receiving the events")
    endpoint.add_argument("--secret", help="the signing secret (default: a new random one)")
    endpoint.set_defaults(fn=cmd_endpoint)
    retire = commands.add_parser("retire-secrets", help="sign with one secret only: the end of a roll-out")
    retire.add_argument("--seller", type=int, required=True, help="the seller's id")
    retire.add_argument("--keep", required=True, help="the secret to keep")
    retire.set_defaults(fn=cmd_retire)
    status = commands.add_parser("status", help="every endpoint: lag and the failing delivery")
    status.add_argument("--failing", action="store_true", help="only endpoints with a failing delivery")
    status.set_defaults(fn=cmd_status)
    replay = commands.add_parser("replay", help="post a range of a seller's events again, now")
    replay.add_argument("--seller", type=int, required=True, help="the seller's id")
    replay.add_argument("--from", dest="first", type=int, required=True, help="first sequence number")
    replay.add_argument("--to", dest="last", type=int, required=True, help="last sequence number")
    replay.set_defaults(fn=cmd_replay)


def cmd_endpoint(args: argparse.Namespace) -> int:
    secret = _api(lambda api: api.set_feed_endpoint(args.seller, args.url, args.secret))
    print(f"seller {args.seller}: feed posted to {args.url}")
    print(f"signing secret (give it to the ERP; older secrets keep signing until retired): {secret}")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    _api(lambda api: api.retire_feed_secrets(args.seller, args.keep))
    print(f"seller {args.seller}: signing with one secret only")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rows = _api(lambda api: api.feed_status(failing_only=args.failing))
    for row in rows:
        lag = row["last_sequence"] - row["delivered_sequence"]
        line = f"seller {row['seller_id']} {row['url']}: delivered {row['delivered_sequence']}, {lag} behind"
        if row["failing_sequence"] is not None:
            line += (
                f"; FAILING at #{row['failing_sequence']} since {row['first_attempt_at']:%Y-%m-%d %H:%M} UTC,"
                f" {row['attempts']} attempts, last answer {row['response_code'] or 'none'}:"
                f" {(row['last_error'] or '')[:120]}; next try {row['next_attempt_at']}"
            )
        print(line)
    print(f"{len(rows)} endpoint(s)" + (" failing" if args.failing else ""))
    return 1 if args.failing and rows else 0


def cmd_replay(args: argparse.Namespace) -> int:
    delivered, failed = _api(lambda api: api.replay_ledger_events(args.seller, args.first, args.last))
    span = f"events {args.first} to {args.last}"
    print(f"seller {args.seller}: replayed {span}: {delivered} delivered, {failed} failed")
    return 0 if not failed else 1


def _api(call):
    from tasks import api
    from tasks.domain.errors import RemitError
    from workers.cli import CommandError, require_database
    from workers.settings import get_settings

    require_database(get_settings().database_url, schema=True)
    try:
        return call(api)
    except RemitError as refusal:
        raise CommandError(f"[{refusal.code}] {refusal.message}") from None
