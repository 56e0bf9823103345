"""`python -m sandbox`: the offline stand-ins, the demo data and `make run`'s whole stack."""

from __future__ import annotations

import argparse

from workers.cli import CommandError, require_database, run_command
from workers.settings import get_settings


def cmd_seed(args: argparse.Namespace) -> int:
    from sandbox.seed import seed_demo
    from tasks.domain.errors import StripeMisconfigured, StripeRefused, StripeUnavailable

    settings = get_settings()
    require_database(settings.database_url, schema=True)
    try:
        summary = seed_demo(settings, only_if_empty=args.if_empty)
    except (StripeUnavailable, StripeMisconfigured, StripeRefused) as exc:
        raise CommandError(
            f"the demo's saved methods need Stripe at {settings.stripe_api_base} and it failed "
            f"({type(exc).__name__}); start the emulator (`python -m sandbox stripe`) and point "
            "STRIPE_API_BASE at it. Nothing was seeded."
        ) from None
    print(summary)
    return 0


def cmd_stripe(args: argparse.Namespace) -> int:
    from sandbox.stripe_emulator import serve

    secrets = [s for s in (args.webhook_secrets or "").split(",") if s]
    serve(
        args.port, state_file=args.state_file, webhook_url=args.webhook_url, webhook_secrets=secrets or None
    )
    return 0


def cmd_smtp(args: argparse.Namespace) -> int:
    from sandbox.smtp_capture import serve

    serve(args.port)
    return 0


def cmd_erp(args: argparse.Namespace) -> int:
    from sandbox.erp import SANDBOX_SECRET, serve

    serve(args.port, [s for s in (args.secrets or SANDBOX_SECRET).split(",") if s])
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from sandbox.dev import run_dev

    return run_dev()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="the whole offline stack in the foreground (make run)").set_defaults(
        fn=cmd_dev
    )

    stripe = sub.add_parser("stripe", help="run the Stripe emulator")
    stripe.add_argument("--port", type=int, default=12111)
    stripe.add_argument("--state-file")
    stripe.add_argument("--webhook-url")
    stripe.add_argument("--webhook-secrets", help="comma-separated whsec_ secrets")
    stripe.set_defaults(fn=cmd_stripe)

    smtp = sub.add_parser("smtp", help="run the SMTP capture server")
    smtp.add_argument("--port", type=int, default=1025)
    smtp.set_defaults(fn=cmd_smtp)

    erp = sub.add_parser("erp", help="run the reference ERP receiver of the ledger feed")
    erp.add_argument("--port", type=int, default=8003)
    erp.add_argument("--secrets", help="comma-separated signing secrets (default: the sandbox's)")
    erp.set_defaults(fn=cmd_erp)

    seed = sub.add_parser("seed", help="load the demo seller, accounts, invoices and saved methods")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when a seller already exists")
    seed.set_defaults(fn=cmd_seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, "sandbox")
